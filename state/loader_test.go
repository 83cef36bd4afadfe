package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kstreamgo/kstream/serde"
)

// loaderModel applies the same writes to a Loader and to a map per
// partition, and checks the DB against the map after each Commit.
type loaderModel struct {
	t     *testing.T
	db    *DB
	l     *Loader
	views []Store
	want  []map[string]string // committed
	next  []map[string]*string
}

func newLoaderModel(t *testing.T, db *DB, parts int) *loaderModel {
	m := &loaderModel{t: t, db: db, l: db.NewLoader()}
	t.Cleanup(func() { m.l.Close() })
	for p := range parts {
		m.views = append(m.views, db.Store("s", int32(p)))
		m.want = append(m.want, map[string]string{})
		m.next = append(m.next, map[string]*string{})
	}
	return m
}

func (m *loaderModel) put(p int, k, v string) {
	m.t.Helper()
	if err := m.l.Put(m.views[p], []byte(k), []byte(v)); err != nil {
		m.t.Fatalf("Put(%d, %q): %v", p, k, err)
	}
	m.next[p][k] = &v
}

func (m *loaderModel) del(p int, k string) {
	m.t.Helper()
	if err := m.l.Delete(m.views[p], []byte(k)); err != nil {
		m.t.Fatalf("Delete(%d, %q): %v", p, k, err)
	}
	m.next[p][k] = nil
}

// commit commits with Commit and checks the DB, or with CommitAsync, and
// the writes are checked after the next commit.
func (m *loaderModel) commit() { m.commitWith("Commit", m.l.Commit, true) }

func (m *loaderModel) commitAsync() { m.commitWith("CommitAsync", m.l.CommitAsync, false) }

func (m *loaderModel) commitWith(name string, commit func() error, verify bool) {
	m.t.Helper()
	if err := commit(); err != nil {
		m.t.Fatalf("%s: %v", name, err)
	}
	if n, s := m.l.Count(), m.l.Size(); n != 0 || s != 0 {
		m.t.Fatalf("after %s: Count %d, Size %d", name, n, s)
	}
	m.fold()
	if verify {
		m.verify()
	}
}

// fold moves the writes since the last commit into the committed state.
func (m *loaderModel) fold() {
	for p := range m.views {
		for k, v := range m.next[p] {
			if v == nil {
				delete(m.want[p], k)
			} else {
				m.want[p][k] = *v
			}
		}
		clear(m.next[p])
	}
}

// verify checks every partition by Range and by Get.
func (m *loaderModel) verify() {
	m.t.Helper()
	for p, s := range m.views {
		var want []string
		for _, k := range slices.Sorted(maps.Keys(m.want[p])) {
			want = append(want, k+"="+m.want[p][k])
		}
		if got := collect(m.t, s, nil, nil); !slices.Equal(got, want) {
			m.t.Fatalf("partition %d: Range gives %d entries, want %d\n got %q\nwant %q", p, len(got), len(want), head(got), head(want))
		}
		for k, v := range m.want[p] {
			wantGet(m.t, s, k, v, true)
		}
	}
}

func head(s []string) []string { return s[:min(len(s), 20)] }

// TestLoader loads keys of mixed lengths sharing long prefixes, repeated
// keys and deletions, in random order into three partitions, over several
// commits, on every backend, and checks the DB against a model. The
// commits go to Pebble as batches, or as ingested sstables (every commit,
// for the test), applied at once or, every other one, by CommitAsync; the
// sstables are one per partition, or two (split: from 50 records on, for
// the test).
func TestLoader(t *testing.T) {
	for _, be := range backends {
		for _, mode := range []string{"batch", "ingest", "ingest/split"} {
			t.Run(be.name+"/"+mode, func(t *testing.T) { testLoader(t, be.open(t), mode) })
		}
	}
}

func testLoader(t *testing.T, db *DB, mode string) {
	ingest := mode != "batch"
	db.ingester.splitAt = 0
	if ingest {
		db.ingester.large, db.ingester.empty = 1, 1
	}
	if mode == "ingest/split" {
		db.ingester.splitAt = 50
	}
	m := newLoaderModel(t, db, 3)
	r := rand.New(rand.NewPCG(1, 2))
	keys := []string{"", "a", "a\x00", "a\x00\x00", "ab", "abcdefgh", "abcdefgh\x00", "abcdefghi", "abcdefgi", "\xff", "\xff\xff"}
	for i := range 300 {
		keys = append(keys, fmt.Sprintf("user-%d", r.IntN(1000)), strings.Repeat("x", r.IntN(40))+fmt.Sprint(i%7))
	}
	for round := range 6 {
		for i := range 2000 {
			p, k := r.IntN(3), keys[r.IntN(len(keys))]
			if r.IntN(5) == 0 {
				m.del(p, k)
			} else {
				m.put(p, k, fmt.Sprintf("%d.%d", round, i))
			}
		}
		if round%2 == 0 {
			m.commitAsync()
		} else {
			m.commit()
		}
	}
	if got := db.ingests.Load(); ingest != (got > 0) {
		t.Errorf("%d commits ingested", got)
	}
	// 6 commits into 3 partitions.
	if got, split := db.pdb.Metrics().Total().TablesIngested, mode == "ingest/split"; split != (got > 18) {
		t.Errorf("%d tables ingested in %s mode", got, mode)
	}
}

// TestLoaderSortedAndSingle covers input that needs no sort, a single
// record, and a commit with only a checkpoint.
func TestLoaderSortedAndSingle(t *testing.T) {
	db := openDB(t, t.TempDir())
	m := newLoaderModel(t, db, 1)
	for i := range 1000 {
		m.put(0, fmt.Sprintf("k%04d", i), fmt.Sprint(i))
	}
	m.commit()
	m.put(0, "k0500", "new")
	m.commit()
	if err := m.l.SetCheckpoint("task", map[string]int64{"t/0": 9}); err != nil {
		t.Fatal(err)
	}
	if m.l.Count() != 1 || m.l.Size() == 0 {
		t.Errorf("a checkpoint: Count %d, Size %d", m.l.Count(), m.l.Size())
	}
	m.commit()
	if got, ok, err := db.Checkpoint("task"); err != nil || !ok || got["t/0"] != 9 {
		t.Errorf("Checkpoint = %v, %v, %v", got, ok, err)
	}
}

// TestLoaderCheckpoint commits a checkpoint with the records: DB.Checkpoint
// reads it, the last SetCheckpoint of a task wins, and nothing is visible
// before Commit.
func TestLoaderCheckpoint(t *testing.T) {
	db := openDB(t, t.TempDir())
	s := db.Store("s", 0)
	l := db.NewLoader()
	defer l.Close()
	if err := l.Put(s, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{5, 7} {
		if err := l.SetCheckpoint("app/0_0", map[string]int64{"in/0": off, "cl/0": off * 10}); err != nil {
			t.Fatal(err)
		}
	}
	if l.Count() != 2 { // the record and one checkpoint: the second replaced the first
		t.Errorf("Count = %d, want 2", l.Count())
	}
	if _, ok, _ := db.Checkpoint("app/0_0"); ok {
		t.Error("checkpoint visible before Commit")
	}
	wantGet(t, s, "k", "", false)
	if err := l.Commit(); err != nil {
		t.Fatal(err)
	}
	got, ok, err := db.Checkpoint("app/0_0")
	if err != nil || !ok || got["in/0"] != 7 || got["cl/0"] != 70 || len(got) != 2 {
		t.Errorf("Checkpoint = %v, %v, %v; want in/0=7 cl/0=70", got, ok, err)
	}
	wantGet(t, s, "k", "v", true)
}

// TestLoaderCacheCoherence caches values through views, then loads new
// values and deletions of the same keys: after Commit, Get never returns a
// cached old value, through a view or through a batch's view.
func TestLoaderCacheCoherence(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			db := be.open(t)
			s := db.Store("s", 0)
			batch := db.NewBatch()
			defer batch.Close()
			bs := batch.Store(s)
			for _, k := range []string{"a", "b", "c"} {
				mustPut(t, s, k, "old-"+k)
			}
			wantGet(t, s, "a", "old-a", true) // cached now
			wantGet(t, s, "b", "old-b", true)
			wantGet(t, bs, "c", "old-c", true)
			before := db.Stats()

			l := db.NewLoader()
			defer l.Close()
			if err := l.Put(s, []byte("a"), []byte("new-a")); err != nil {
				t.Fatal(err)
			}
			if err := l.Delete(bs, []byte("b")); err != nil { // a batch's view: unwrapped
				t.Fatal(err)
			}
			if err := l.Put(bs, []byte("c"), []byte("new-c")); err != nil {
				t.Fatal(err)
			}
			wantGet(t, s, "a", "old-a", true) // not committed yet
			if err := l.Commit(); err != nil {
				t.Fatal(err)
			}
			wantGet(t, s, "a", "new-a", true)
			wantGet(t, s, "b", "", false)
			wantGet(t, s, "c", "new-c", true)
			wantGet(t, bs, "a", "new-a", true)
			wantGet(t, bs, "b", "", false)
			wantGet(t, db.Store("s", 0), "c", "new-c", true)
			if db.cache != nil && db.Stats().CacheMisses == before.CacheMisses {
				t.Error("no cache miss after Commit: the old entries are still reachable")
			}
			// The batch, not written, is unaffected and still writes.
			mustPut(t, bs, "a", "batch-a")
			if err := batch.Commit(); err != nil {
				t.Fatal(err)
			}
			wantGet(t, s, "a", "batch-a", true)
		})
	}
}

// TestLoaderOtherPartitions reads another partition concurrently with loads
// and commits: its values and its cache entries are unaffected.
func TestLoaderOtherPartitions(t *testing.T) {
	db := openDB(t, t.TempDir())
	other := db.Store("s", 1)
	for i := range 100 {
		mustPut(t, other, fmt.Sprint(i), fmt.Sprint(i))
	}
	epoch := other.(*view).part.epoch.Load()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var readErr error
	wg.Go(func() {
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			k := fmt.Sprint(n % 100)
			v, ok, err := other.Get([]byte(k))
			if err != nil || !ok || string(v) != k {
				readErr = fmt.Errorf("Get(%s) = %q, %v, %v", k, v, ok, err)
				return
			}
		}
	})
	l := db.NewLoader()
	defer l.Close()
	s := db.Store("s", 0)
	for c := range 20 {
		for i := range 500 {
			if err := l.Put(s, []byte(fmt.Sprint(i)), []byte(fmt.Sprint(c))); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if readErr != nil {
		t.Fatal(readErr)
	}
	if got := other.(*view).part.epoch.Load(); got != epoch {
		t.Errorf("the other partition's epoch moved from %d to %d", epoch, got)
	}
	wantGet(t, s, "499", "19", true)
}

// TestLoaderLargeCommit commits more than half a memtable at once, which
// Pebble applies as a flushable batch, and checks the data after Commit and
// after reopening the DB.
func TestLoaderLargeCommit(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, MemoryBudget(MinMemoryBudget)) // 4 MiB memtables
	if err != nil {
		t.Fatal(err)
	}
	l := db.NewLoader()
	s := db.Store("big", 3)
	val := bytes.Repeat([]byte("v"), 100)
	const n = 60_000 // about 8 MiB
	for i := range n {
		if err := l.Put(s, benchKey(nil, (i*stride)%n), val); err != nil {
			t.Fatal(err)
		}
	}
	if l.Size() < 4<<20 {
		t.Fatalf("Size = %d, want more than a memtable", l.Size())
	}
	if err := l.SetCheckpoint("big", map[string]int64{"cl/3": n}); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(); err != nil {
		t.Fatal(err)
	}
	if cap(l.arena) > maxRetainedRecords || cap(l.recs)*24 > maxRetainedRecords || l.tmp != nil {
		t.Errorf("after a commit of %d records the loader keeps %d bytes of arena, %d records", n, cap(l.arena), cap(l.recs))
	}
	count := func(db *DB) int {
		got := 0
		var prev []byte
		err := db.Store("big", 3).Range(nil, nil, func(k, v []byte) bool {
			if bytes.Compare(prev, k) >= 0 || !bytes.Equal(v, val) {
				t.Fatalf("Range: %q after %q, value %q", k, prev, v)
			}
			prev = append(prev[:0], k...)
			got++
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := count(db); got != n {
		t.Errorf("%d keys after Commit, want %d", got, n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openDB(t, dir)
	if got := count(db); got != n {
		t.Errorf("%d keys after reopening, want %d", got, n)
	}
	if off, ok, err := db.Checkpoint("big"); err != nil || !ok || off["cl/3"] != n {
		t.Errorf("Checkpoint after reopening = %v, %v, %v", off, ok, err)
	}
}

// TestLoaderKeepsBuffersWhileRestoring checks that commits of
// LoaderCommitBytes keep the loader's buffers (three sets: two being
// committed, one loaded), so that loading as much again allocates nothing,
// and that a smaller commit, as at the end of a restore, drops them all.
func TestLoaderKeepsBuffersWhileRestoring(t *testing.T) {
	db, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l := db.NewLoader()
	defer l.Close()
	s := db.Store("keep", 0)
	val := bytes.Repeat([]byte("v"), 100)
	key := make([]byte, 0, 16)
	i := 0
	load := func() { // one commit's worth of records
		for l.Size() < LoaderCommitBytes {
			key = benchKey(key[:0], i)
			if err := l.Put(s, key, val); err != nil {
				t.Fatal(err)
			}
			i++
		}
	}
	for _, commit := range []func() error{l.CommitAsync, l.CommitAsync, l.CommitAsync, l.Commit} {
		load()
		if err := commit(); err != nil {
			t.Fatal(err)
		}
	}
	if allocs := testing.AllocsPerRun(1, load); allocs != 0 {
		t.Errorf("loading a commit's worth again allocated %v times, want 0", allocs)
	}
	if err := l.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := l.Put(s, []byte("last"), val); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(); err != nil {
		t.Fatal(err)
	}
	bufs := []*recordBuf{&l.recordBuf}
	for _, c := range l.spare {
		bufs = append(bufs, &c.recordBuf)
	}
	for _, b := range bufs {
		if cap(b.arena) > maxRetainedRecords || cap(b.recs)*24 > maxRetainedRecords || b.tmp != nil {
			t.Errorf("after a small commit the loader keeps %d bytes of arena, %d records", cap(b.arena), cap(b.recs))
		}
	}
	got := 0
	if err := s.Range(nil, nil, func(k, v []byte) bool { got++; return true }); err != nil {
		t.Fatal(err)
	}
	if got != i+1 {
		t.Errorf("%d keys, want %d", got, i+1)
	}
}

// TestLoaderIngestPlacement checks where Pebble places the sstables a
// Loader ingests after DropPartition: those of partitions that held no key
// go to the bottom level, which they overlap nowhere, and need no
// compaction; over a partition that held keys, the drop's range deletion
// waits in the memtable, and the table waits for its flush, to go to L0.
// Either way the data
// read back is the loaded data, without the dropped keys.
func TestLoaderIngestPlacement(t *testing.T) {
	db := openDB(t, t.TempDir())
	db.ingester.large, db.ingester.empty = 1, 1
	old := db.Store("s", 1)
	if err := old.Put([]byte("dropped"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	l := db.NewLoader()
	defer l.Close()
	for p := range int32(4) {
		if err := db.DropPartition("s", p); err != nil {
			t.Fatal(err)
		}
		s := db.Store("s", p)
		for i := range 100 {
			if err := l.Put(s, []byte(fmt.Sprintf("k%03d", i)), []byte{byte(p)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if l6 := db.pdb.Metrics().Levels[6].TablesCount; l6 != 3 {
		t.Errorf("%d tables in L6, want 3: all but that of partition 1, which held a key", l6)
	}
	for p := range int32(4) {
		s := db.Store("s", p)
		wantGet(t, s, "k042", string([]byte{byte(p)}), true)
		wantGet(t, s, "dropped", "", false)
		if got := len(collect(t, s, nil, nil)); got != 100 {
			t.Errorf("partition %d: %d keys, want 100", p, got)
		}
	}
}

// TestLoaderIngestTables checks which commits are ingested, and that a
// commit writes one sstable per partition: a commit smaller than
// ingestBytes is ingested only when every partition it writes holds no key
// yet; the tables of two partitions on either side of a third one's keys
// overlap none of them, so both go to the bottom level, where a table
// spanning the two would not.
func TestLoaderIngestTables(t *testing.T) {
	db := openDB(t, t.TempDir())
	db.ingester.large, db.ingester.empty = 1<<30, 1 // only into empty partitions
	between := db.Store("s", 2)
	if err := between.Put([]byte("k"), []byte("2")); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(); err != nil { // an sstable in L0
		t.Fatal(err)
	}
	l := db.NewLoader()
	defer l.Close()
	load := func(parts ...int32) {
		t.Helper()
		for _, p := range parts {
			if err := l.Put(db.Store("s", p), []byte("k"), []byte{'0' + byte(p)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	load(1, 3)
	if n := db.ingests.Load(); n != 1 {
		t.Fatalf("a commit into empty partitions: %d ingests, want 1", n)
	}
	if l6 := db.pdb.Metrics().Levels[6].TablesCount; l6 != 2 {
		t.Errorf("%d tables in L6, want 2, one per partition", l6)
	}
	load(3, 4) // partition 3 holds a key now
	load(2)
	if n := db.ingests.Load(); n != 1 {
		t.Errorf("commits into partitions that hold keys: %d ingests in all, want 1", n)
	}
	wantGet(t, db.Store("s", 0), "k", "", false)
	for p := int32(1); p < 5; p++ {
		wantGet(t, db.Store("s", p), "k", string([]byte{'0' + byte(p)}), true)
	}
}

// TestLoaderIngestSplit checks that a table ingested into an empty
// partition goes to the bottom level even where a table there spans the
// partition, holding keys on either side of it: Pebble splits that table.
func TestLoaderIngestSplit(t *testing.T) {
	db := openDB(t, t.TempDir())
	db.ingester.large, db.ingester.empty = 1, 1
	for _, p := range []int32{1, 3} {
		if err := db.Store("s", p).Put([]byte("k"), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	lo, hi := storePrefix("s", 1), serde.PrefixEnd(storePrefix("s", 3))
	if err := db.pdb.Compact(context.Background(), lo, hi, true); err != nil {
		t.Fatal(err)
	}
	if l6 := db.pdb.Metrics().Levels[6].TablesCount; l6 != 1 {
		t.Fatalf("%d tables in L6 before the load, want 1 spanning partitions 1 to 3", l6)
	}
	l := db.NewLoader()
	defer l.Close()
	if err := l.Put(db.Store("s", 2), []byte("k"), []byte("2")); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(); err != nil {
		t.Fatal(err)
	}
	if m := db.pdb.Metrics(); m.Levels[0].TablesCount != 0 || m.Levels[6].TablesCount != 3 {
		t.Errorf("%d tables in L0 and %d in L6, want 0 and 3 (the spanning table split in two)", m.Levels[0].TablesCount, m.Levels[6].TablesCount)
	}
	for p, want := range map[int32]string{1: "x", 2: "2", 3: "x"} {
		wantGet(t, db.Store("s", p), "k", want, true)
	}
}

// TestLoaderCommitAsyncThenClose closes the DB right after a CommitAsync:
// Close waits for the commit, which then survives a reopening, checkpoint
// included.
func TestLoaderCommitAsyncThenClose(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	db.ingester.large = 1
	l := db.NewLoader()
	s := db.Store("s", 0)
	const n = 50_000
	for i := range n {
		if err := l.Put(s, benchKey(nil, i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.SetCheckpoint("t", map[string]int64{"cl/0": n}); err != nil {
		t.Fatal(err)
	}
	if err := l.CommitAsync(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close during a CommitAsync: %v", err)
	}
	if err := l.Commit(); !errors.Is(err, ErrClosed) {
		t.Errorf("Commit after the DB's Close: %v, want ErrClosed", err)
	}
	db = openDB(t, dir)
	if got := len(collect(t, db.Store("s", 0), nil, nil)); got != n {
		t.Errorf("%d keys after reopening, want %d", got, n)
	}
	if ck, ok, err := db.Checkpoint("t"); err != nil || !ok || ck["cl/0"] != n {
		t.Errorf("checkpoint after reopening: %v %v %v", ck, ok, err)
	}
}

// TestLoaderIngestErrors checks that Open removes the sstables a crash left
// in the ingest directory, and that a failed ingest is reported by the
// Commit that ingests, and after a CommitAsync by the next commit.
func TestLoaderIngestErrors(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, ingestDirName, "7.sst")
	if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, []byte("left by a crash"), 0o644); err != nil {
		t.Fatal(err)
	}
	db := openDB(t, dir)
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Open, %s: %v, want it removed", stale, err)
	}
	db.ingester.large, db.ingester.empty = 1, 1
	s := db.Store("s", 0)
	// Without the ingest directory, writing the sstable fails.
	if err := os.RemoveAll(filepath.Join(dir, ingestDirName)); err != nil {
		t.Fatal(err)
	}
	l := db.NewLoader()
	for _, async := range []bool{false, true} {
		if err := l.Put(s, []byte("k"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		var err error
		if async {
			if err := l.CommitAsync(); err != nil {
				t.Fatalf("CommitAsync: %v, want the error from the next commit", err)
			}
			err = l.Commit()
		} else {
			err = l.Commit()
		}
		if err == nil || !strings.HasPrefix(err.Error(), "state: loader: commit: ingesting 1 records: ") {
			t.Errorf("Commit (async %v) without the ingest directory: %v", async, err)
		}
	}
	if err := l.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wantGet(t, s, "k", "", false)
	// A failed CommitAsync that nothing waited for is Close's error.
	if err := os.MkdirAll(filepath.Join(dir, ingestDirName), 0o755); err != nil {
		t.Fatal(err)
	}
	l = db.NewLoader()
	if err := l.Put(s, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := l.CommitAsync(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("Close after a CommitAsync: %v", err)
	}
	wantGet(t, s, "k", "v", true)
}

func TestLoaderErrors(t *testing.T) {
	db := openDB(t, t.TempDir())
	other := openDB(t, "other", InMemory())
	l := db.NewLoader()
	for _, s := range []Store{NewMemory(), other.Store("s", 0), other.NewBatch().Store(other.Store("s", 0))} {
		err := l.Put(s, []byte("k"), []byte("v"))
		if err == nil || !strings.HasPrefix(err.Error(), "state: ") {
			t.Errorf("Put to %T of another DB: %v", s, err)
		}
		if err := l.Delete(s, []byte("k")); err == nil {
			t.Errorf("Delete in %T of another DB: no error", s)
		}
	}
	if l.Count() != 0 {
		t.Errorf("Count = %d after failed writes", l.Count())
	}
	closed := db.Store("s", 0)
	closed.Close()
	if err := l.Put(closed, []byte("k"), []byte("v")); !errors.Is(err, ErrClosed) {
		t.Errorf("Put to a closed view: %v", err)
	}
	if err := l.Commit(); err != nil {
		t.Errorf("empty Commit: %v", err)
	}
	if err := l.Put(db.Store("s", 0), []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wantGet(t, db.Store("s", 0), "k", "", false) // dropped by Close
	for name, err := range map[string]error{
		"Put":           l.Put(db.Store("s", 0), []byte("k"), []byte("v")),
		"Delete":        l.Delete(db.Store("s", 0), []byte("k")),
		"SetCheckpoint": l.SetCheckpoint("t", nil),
		"Commit":        l.Commit(),
		"Close":         l.Close(),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	l2 := db.NewLoader()
	if err := l2.Put(db.Store("s", 0), []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l2.Commit(); !errors.Is(err, ErrClosed) {
		t.Errorf("Commit after the DB's Close: %v", err)
	}
	if err := db.NewLoader().Put(db.Store("s", 0), []byte("k"), []byte("v")); !errors.Is(err, ErrClosed) {
		t.Errorf("Put of a loader of a closed DB: %v", err)
	}
}

// TestLoaderSort checks the loader's sort against a stable sort of the
// same records, on keys that share prefixes of every length, with repeats.
func TestLoaderSort(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for round := range 200 {
		l := &Loader{}
		n := 1 + r.IntN(300)
		prefix := strings.Repeat("p", r.IntN(20))
		for range n {
			k := prefix + string(randBytes(r, r.IntN(12)))
			off := len(l.arena)
			l.arena = append(l.arena, k...)
			if len(l.recs) == 0 {
				l.lcp = len(k)
			} else {
				l.lcp = commonPrefix(l.arena[l.recs[0].off:][:l.lcp], []byte(k))
			}
			l.recs = append(l.recs, loadRecord{off: uint32(off), klen: uint32(len(k))})
		}
		want := slices.Clone(l.recs)
		slices.SortStableFunc(want, func(a, b loadRecord) int {
			return bytes.Compare(l.arena[a.off:a.off+a.klen], l.arena[b.off:b.off+b.klen])
		})
		l.sort(l.recs)
		for i := range want {
			if l.recs[i].off != want[i].off {
				t.Fatalf("round %d: record %d is %q at %d, want %q at %d", round, i,
					l.arena[l.recs[i].off:][:l.recs[i].klen], l.recs[i].off, l.arena[want[i].off:][:want[i].klen], want[i].off)
			}
		}
	}
}

// randBytes returns n bytes from a small alphabet that includes 0x00 and
// 0xff, so that keys repeat and differ only in padding-like bytes.
func randBytes(r *rand.Rand, n int) []byte {
	alphabet := []byte{0x00, 0x01, 'a', 'b', 0x7f, 0x80, 0xfe, 0xff}
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return b
}

func TestCommonPrefix(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"a", "", 0}, {"abc", "abd", 2}, {"abcdefghij", "abcdefghij", 10},
		{"abcdefghijk", "abcdefghijx", 10}, {"abcdefgh", "abcdefgh12", 8}, {"x1234567", "y1234567", 0}} {
		if got := commonPrefix([]byte(c.a), []byte(c.b)); got != c.want {
			t.Errorf("commonPrefix(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

// TestLoaderCommitsInFlight: two CommitAsync commits are applied at once,
// and Pebble ingests them in their order: the second one, its tables
// written, waits for the first, so that the later write of a key wins; and
// when the first fails, the second applies nothing, checkpoint included,
// and the loader's next Commit reports the first one's error.
func TestLoaderCommitsInFlight(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprintf("first fails %v", fail), func(t *testing.T) {
			db := openDB(t, t.TempDir())
			db.ingester.large, db.ingester.empty = 1, 1
			first := db.ingests.Load() + 1
			release, waiting := make(chan struct{}), make(chan struct{})
			db.ingester.hook = func(seq uint64) error {
				switch seq {
				case first: // tables written, not ingested
					<-release
					if fail {
						return errors.New("injected")
					}
				case first + 1:
					close(waiting) // about to wait for the first
				}
				return nil
			}
			l := db.NewLoader()
			defer l.Close()
			s := db.Store("s", 0)
			for round, v := range []string{"first", "second"} {
				for i := range 100 {
					if err := l.Put(s, fmt.Appendf(nil, "k%02d", i), []byte(v)); err != nil {
						t.Fatal(err)
					}
				}
				if err := l.SetCheckpoint("t", map[string]int64{"cl/0": int64(round + 1)}); err != nil {
					t.Fatal(err)
				}
				if err := l.CommitAsync(); err != nil {
					t.Fatalf("CommitAsync %s: %v", v, err)
				}
			}
			<-waiting // both commits in flight
			close(release)
			err := l.Commit()
			if fail {
				if err == nil || !strings.Contains(err.Error(), "injected") {
					t.Errorf("Commit after a failed CommitAsync: %v, want the injected error", err)
				}
				wantGet(t, s, "k07", "", false)
				if ck, ok, err := db.Checkpoint("t"); err != nil || ok {
					t.Errorf("checkpoint %v %v %v, want none", ck, ok, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantGet(t, s, "k07", "second", true)
			if ck, ok, err := db.Checkpoint("t"); err != nil || !ok || ck["cl/0"] != 2 {
				t.Errorf("checkpoint %v %v %v, want cl/0 at 2", ck, ok, err)
			}
		})
	}
}
