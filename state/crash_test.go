package state

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The crash test's child process: it commits to a DB in crashDirEnv, each
// commit crashKeys keys and the checkpoint {"in/0": commit number}, and
// prints each commit number, until it is killed.
const (
	crashDirEnv   = "KSTREAM_STATE_CRASH_DIR"
	crashFlushEnv = "KSTREAM_STATE_CRASH_FLUSH"
	crashKeys     = 10
	crashTask     = "0_0"
)

func crashKey(commit, i int) string { return fmt.Sprintf("k%08d-%d", commit, i) }

// runCrashChild is the child's side of TestCrashLosesWholeCommits.
func runCrashChild(t *testing.T, dir string) {
	flush, err := time.ParseDuration(os.Getenv(crashFlushEnv))
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(dir, FlushInterval(flush))
	if err != nil {
		t.Fatal(err)
	}
	b := db.NewBatch()
	s := b.Store(db.Store("s", 0))
	value := bytes.Repeat([]byte{'v'}, 100)
	for c := 1; ; c++ {
		for i := range crashKeys {
			if err := s.Put([]byte(crashKey(c, i)), value); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.SetCheckpoint(crashTask, map[string]int64{"in/0": int64(c)}); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
		fmt.Println("committed", c)
		time.Sleep(time.Millisecond)
	}
}

// TestCrashLosesWholeCommits kills a process that commits to a DB in a
// directory (SIGKILL: no Close, no flush) and reopens the DB. Without a
// write-ahead log, the commits after the last flush are lost, but only
// whole ones: the stores hold exactly the keys of the commits up to the
// checkpoint that survived. With a short FlushInterval, the commits made
// well before the kill survive.
func TestCrashLosesWholeCommits(t *testing.T) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		runCrashChild(t, dir)
		return
	}
	if testing.Short() {
		t.Skip("-short: runs and kills child processes")
	}
	for _, tc := range []struct {
		name  string
		flush time.Duration
		// margin: the commits reported this long before the kill must
		// have survived it (0: no such check).
		margin time.Duration
	}{
		{"flush-every-50ms", 50 * time.Millisecond, 1500 * time.Millisecond},
		{"flush-hourly", time.Hour, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			child := startCrashChild(t, "TestCrashLosesWholeCommits", "committed ",
				crashDirEnv+"="+dir, crashFlushEnv+"="+tc.flush.String())
			// Run until the child has committed for a while.
			child.waitUntil(t, "commit for long enough", func(r []crashReport) bool {
				return len(r) > 0 && time.Since(r[0].at) > 2*tc.margin+time.Second
			})
			killed, reports := child.kill(t)
			safe, last := 0, reports[len(reports)-1].n
			for _, r := range reports {
				if tc.margin > 0 && killed.Sub(r.at) >= tc.margin {
					safe = r.n
				}
			}

			db := openDB(t, dir)
			ck, ok, err := db.Checkpoint(crashTask)
			if err != nil {
				t.Fatal(err)
			}
			got := int64(0)
			if ok {
				got = ck["in/0"]
			}
			t.Logf("the child committed %d times; %d survived the kill (checkpoint found: %v)", last, got, ok)
			if got > int64(last) {
				t.Fatalf("checkpoint %d is ahead of the last commit reported, %d", got, last)
			}
			if got < int64(safe) {
				t.Errorf("checkpoint %d: the commits up to %d, reported %v before the kill, were lost (FlushInterval %v)", got, safe, tc.margin, tc.flush)
			}
			// Exactly the keys of commits 1..got, each once.
			var n int64
			err = db.Store("s", 0).Range(nil, nil, func(k, _ []byte) bool {
				c, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(string(k), "k"), "-", 2)[0])
				if err != nil || int64(c) > got {
					t.Errorf("key %q survived, past checkpoint %d", k, got)
				}
				n++
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
			if n != got*crashKeys {
				t.Errorf("%d keys survived; want %d (%d per commit up to checkpoint %d)", n, got*crashKeys, crashKeys, got)
			}
		})
	}
}

// The loader crash test's child process: it loads an endless changelog
// (loaderCrashRecord) into a DB in loaderCrashDirEnv, committing with
// CommitAsync every loaderCrashChunk records, each commit ingested, with
// the checkpoint {"cl/0": next record}; before each commit it prints
// "loading <next record>". FlushInterval is an hour: the checkpoints stay
// in the memtable, lost at the kill, while the ingested tables survive;
// only the checkpoint of the tenth commit is flushed.
const (
	loaderCrashDirEnv = "KSTREAM_STATE_LOADER_CRASH_DIR"
	loaderCrashChunk  = 3000
	loaderCrashKeys   = 5000
)

// loaderCrashRecord is record i of the changelog: a put of one of
// loaderCrashKeys keys, or every fifth record a deletion (value nil).
func loaderCrashRecord(i int) (key, value []byte) {
	key = fmt.Appendf(nil, "k%05d", (i*7919)%loaderCrashKeys)
	if i%5 == 4 {
		return key, nil
	}
	return key, fmt.Appendf(nil, "v%d", i)
}

// loadCrashRecords loads records from to end into s, committing every
// loaderCrashChunk records with commit, after report.
func loadCrashRecords(l *Loader, s Store, from, end int, commit func() error, report func(int)) error {
	for i := from; i < end; i++ {
		k, v := loaderCrashRecord(i)
		var err error
		if v == nil {
			err = l.Delete(s, k)
		} else {
			err = l.Put(s, k, v)
		}
		if err != nil {
			return err
		}
		if (i+1)%loaderCrashChunk == 0 || i+1 == end {
			if err := l.SetCheckpoint(crashTask, map[string]int64{"cl/0": int64(i + 1)}); err != nil {
				return err
			}
			report(i + 1)
			if err := commit(); err != nil {
				return err
			}
		}
	}
	return nil
}

func runLoaderCrashChild(t *testing.T, dir string) {
	db, err := Open(dir, FlushInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	db.ingester.large, db.ingester.empty = 1, 1 // every commit is ingested
	l := db.NewLoader()
	commits := 0
	commit := func() error {
		if err := l.CommitAsync(); err != nil {
			return err
		}
		if commits++; commits == 10 {
			// The checkpoint of the first 10 commits survives.
			if err := l.Commit(); err != nil {
				return err
			}
			return db.Flush()
		}
		return nil
	}
	err = loadCrashRecords(l, db.Store("s", 0), 0, 1<<40, commit, func(next int) { fmt.Println("loading", next) })
	t.Fatal(err)
}

// TestLoaderCrash kills a process that loads a changelog with ingested
// commits, in which the checkpoints live in the memtable only (no flush,
// no write-ahead log), so that the tables ingested survive the kill while
// their checkpoints do not: the stores get ahead of their checkpoint. A
// restore from the checkpoint that survived, to the end of what the child
// loaded, must give the state of the changelog exactly.
func TestLoaderCrash(t *testing.T) {
	if dir := os.Getenv(loaderCrashDirEnv); dir != "" {
		runLoaderCrashChild(t, dir)
		return
	}
	if testing.Short() {
		t.Skip("-short: runs and kills a child process")
	}
	dir := t.TempDir()
	child := startCrashChild(t, "TestLoaderCrash", "loading ", loaderCrashDirEnv+"="+dir)
	child.waitUntil(t, "announce ten commits", func(r []crashReport) bool {
		return len(r) > 0 && r[len(r)-1].n >= 30*loaderCrashChunk
	})
	_, reports := child.kill(t)
	end := reports[len(reports)-1].n

	db := openDB(t, dir)
	ck, _, err := db.Checkpoint(crashTask)
	if err != nil {
		t.Fatal(err)
	}
	from := int(ck["cl/0"])
	s := db.Store("s", 0)
	// Records ingested past the checkpoint survived: values "v<i>" with i
	// at or past it.
	ahead := 0
	if err := s.Range(nil, nil, func(_, v []byte) bool {
		if i, err := strconv.Atoi(string(v[1:])); err == nil && i >= from {
			ahead++
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("the child announced commits up to record %d; checkpoint at %d; %d keys hold records past it", end, from, ahead)
	if ahead == 0 || from != 10*loaderCrashChunk {
		t.Fatalf("checkpoint %d (want %d, flushed), %d records past it: the test no longer puts the stores ahead of their checkpoint", from, 10*loaderCrashChunk, ahead)
	}
	// The restore: from the checkpoint to the end.
	l := db.NewLoader()
	if err := loadCrashRecords(l, s, from, end, l.CommitAsync, func(int) {}); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i := range end {
		k, v := loaderCrashRecord(i)
		if v == nil {
			delete(want, string(k))
		} else {
			want[string(k)] = string(v)
		}
	}
	got := map[string]string{}
	if err := s.Range(nil, nil, func(k, v []byte) bool { got[string(k)] = string(v); return true }); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		t.Errorf("after the restore from %d to %d: %d keys, want %d", from, end, len(got), len(want))
		for k, v := range want {
			if got[k] != v {
				t.Errorf("key %s = %q, want %q", k, got[k], v)
				break
			}
		}
	}
	if ck, _, err := db.Checkpoint(crashTask); err != nil || ck["cl/0"] != int64(end) {
		t.Errorf("checkpoint after the restore: %v %v, want %d", ck, err, end)
	}
}

// crashChild is the child process of a crash test: the test binary running
// one test, which prints numbers, each on a line after a prefix.
type crashChild struct {
	cmd     *exec.Cmd
	stderr  bytes.Buffer
	mu      sync.Mutex
	reports []crashReport
	done    chan struct{} // closed at the end of the child's output
}

// crashReport is a number the child printed, and when it was read.
type crashReport struct {
	at time.Time
	n  int
}

// startCrashChild starts the test binary running test, with env added to
// its environment, and reads the numbers it prints after prefix.
func startCrashChild(t *testing.T, test, prefix string, env ...string) *crashChild {
	t.Helper()
	c := &crashChild{done: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.v")
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.Stderr = &c.stderr
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if n, ok := strings.CutPrefix(sc.Text(), prefix); ok {
				v, _ := strconv.Atoi(n)
				c.mu.Lock()
				c.reports = append(c.reports, crashReport{time.Now(), v})
				c.mu.Unlock()
			}
		}
	}()
	return c
}

// waitUntil waits, a minute at most, until cond holds for the numbers read
// so far, and fails the test if the child ends or the minute passes first.
func (c *crashChild) waitUntil(t *testing.T, what string, cond func([]crashReport) bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		c.mu.Lock()
		ok := cond(c.reports)
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-c.done:
			_ = c.cmd.Wait()
			t.Fatalf("the child ended before it did %s; its stderr:\n%s", what, c.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = c.cmd.Process.Kill()
			_ = c.cmd.Wait()
			t.Fatalf("the child did not %s in a minute; its stderr:\n%s", what, c.stderr.String())
		}
	}
}

// kill kills the child (SIGKILL) and returns when, and every number it
// printed.
func (c *crashChild) kill(t *testing.T) (time.Time, []crashReport) {
	t.Helper()
	killed := time.Now()
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-c.done
	_ = c.cmd.Wait()
	return killed, c.reports
}
