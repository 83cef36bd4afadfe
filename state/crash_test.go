package state

import (
	"bufio"
	"bytes"
	"fmt"
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
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashLosesWholeCommits$", "-test.v")
			cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashFlushEnv+"="+tc.flush.String())
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			type report struct {
				at     time.Time
				commit int
			}
			var reports []report
			scanned := make(chan struct{})
			go func() {
				defer close(scanned)
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					if n, ok := strings.CutPrefix(sc.Text(), "committed "); ok {
						c, _ := strconv.Atoi(n)
						mu.Lock()
						reports = append(reports, report{time.Now(), c})
						mu.Unlock()
					}
				}
			}()
			// Run until the child has committed for a while.
			deadline := time.Now().Add(time.Minute)
			for {
				mu.Lock()
				started := len(reports) > 0 && time.Since(reports[0].at) > 2*tc.margin+time.Second
				mu.Unlock()
				if started {
					break
				}
				if time.Now().After(deadline) {
					_ = cmd.Process.Kill()
					t.Fatalf("the child did not commit for long enough; its stderr:\n%s", stderr.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			killed := time.Now()
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			<-scanned
			_ = cmd.Wait()
			mu.Lock()
			safe, last := 0, reports[len(reports)-1].commit
			for _, r := range reports {
				if tc.margin > 0 && killed.Sub(r.at) >= tc.margin {
					safe = r.commit
				}
			}
			mu.Unlock()

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
