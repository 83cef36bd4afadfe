package runtime_test

import (
	"encoding/binary"
	"maps"
	"slices"
	"strconv"
	"testing"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/internal/runtime"
	"github.com/kstreamgo/kstream/serde"
	"github.com/kstreamgo/kstream/state"
)

// TestBulkLoad: in bulk-load mode a task's writes go to its loader, reads
// of its stores fail until the mode ends, and Commit applies the writes with
// the checkpoint.
func TestBulkLoad(t *testing.T) {
	task := globalTask(t, openDB(t))

	task.BulkLoad(true)
	recs := []graph.RawRecord{
		{Key: []byte("a"), Value: []byte("1"), Timestamp: 10, Offset: 0},
		{Key: []byte("b"), Value: []byte("2"), Timestamp: 11, Offset: 1},
		{Key: []byte("a"), Value: nil, Timestamp: 12, Offset: 2}, // a tombstone
	}
	if err := task.ProcessPartition("rates", 0, recs); err != nil {
		t.Fatal(err)
	}
	if task.RestorePending() == 0 {
		t.Error("bulk-loaded writes are not pending in the loader")
	}
	if _, _, err := task.Store("rates").Get([]byte("b")); err == nil {
		t.Error("a read during the bulk load succeeded, want an error")
	}
	if err := task.Commit(map[string]int64{"rates/0": 3}); err != nil {
		t.Fatal(err)
	}
	task.BulkLoad(false)
	s := task.Store("rates")
	if v, ok, err := s.Get([]byte("b")); err != nil || !ok || string(v[8:]) != "2" {
		t.Errorf("b after the commit: %q %v %v, want 2", v, ok, err)
	}
	if _, ok, err := s.Get([]byte("a")); err != nil || ok {
		t.Errorf("a after the commit: found %v (%v), want deleted", ok, err)
	}
	if ckpt, ok, err := task.Checkpoint(); err != nil || !ok || ckpt["rates/0"] != 3 {
		t.Errorf("checkpoint %v %v %v, want rates/0 at 3", ckpt, ok, err)
	}
	// Out of bulk mode, writes go to the write buffer again: readable at once.
	if err := task.ProcessPartition("rates", 0, []graph.RawRecord{{Key: []byte("c"), Value: []byte("3"), Timestamp: 13, Offset: 3}}); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := s.Get([]byte("c")); err != nil || !ok || string(v[8:]) != "3" {
		t.Errorf("c before a commit: %q %v %v, want 3 from the write buffer", v, ok, err)
	}
}

// TestBulkLoadInMemory: in bulk-load mode, in-memory stores stage a task's
// writes and apply them in batches; reads fail until the mode ends, Commit
// applies what is staged, and the result is that of the writes in order,
// across the batches' boundaries.
func TestBulkLoadInMemory(t *testing.T) {
	task := globalTask(t, nil)

	task.BulkLoad(true)
	want := map[string]string{}
	var recs []graph.RawRecord
	for i := range 2500 { // more than two batches of staged writes
		k := "k" + strconv.Itoa(i%97)
		r := graph.RawRecord{Key: []byte(k), Value: []byte(strconv.Itoa(i)), Timestamp: int64(i), Offset: int64(i)}
		if i%7 == 0 {
			r.Value = nil // a tombstone
			delete(want, k)
		} else {
			want[k] = string(r.Value)
		}
		recs = append(recs, r)
	}
	for chunk := range slices.Chunk(recs, 300) {
		if err := task.ProcessPartition("rates", 0, chunk); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := task.Store("rates").Get([]byte("k1")); err == nil {
		t.Error("a read during the bulk load succeeded, want an error")
	}
	if err := task.Commit(nil); err != nil {
		t.Fatal(err)
	}
	task.BulkLoad(false)
	got := map[string]string{}
	err := task.Store("rates").Range(nil, nil, func(k, v []byte) bool {
		got[string(k)] = string(v[8:])
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		t.Errorf("store after the bulk load has %d keys, want %d: %v", len(got), len(want), got)
	}
}

// openDB opens a state DB in a temporary directory, closed after the
// test's tasks.
func openDB(t *testing.T) *state.DB {
	t.Helper()
	db, err := state.Open(t.TempDir(), state.MemoryBudget(64<<20))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() }) // after the task's
	return db
}

// globalTask returns the global task of a topology with a global table
// "rates", on db (nil: in memory), closed at the end of the test.
func globalTask(t *testing.T, db *state.DB) *runtime.Task {
	t.Helper()
	b := kstream.NewBuilder()
	kstream.SourceGlobalTable(b, "rates", serde.String, serde.String, kstream.Named("rates"))
	kstream.Source(b, "in", serde.String, serde.String).Foreach(func(string, string) {})
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	gsub, _ := runtime.GlobalSubTopology(topo)
	task, err := runtime.NewTask(topo, &runtime.Config{AppID: "bulk", DB: db}, gsub, -1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { task.Close() })
	return task
}

// TestCommitRestore: a restore's CommitRestore may apply its records on
// another goroutine (a large commit, which the DB ingests as an sstable);
// the restore's last Commit waits for it, and the store then holds the
// last write of each key, with the last checkpoint.
func TestCommitRestore(t *testing.T) {
	task := globalTask(t, openDB(t))
	val := make([]byte, 100)
	const n = 60_000 // about 7 MiB: ingested, and on another goroutine
	chunk := func(from, to int, round byte) []graph.RawRecord {
		var recs []graph.RawRecord
		for i := from; i < to; i++ {
			v := append([]byte{round}, val...)
			recs = append(recs, graph.RawRecord{Key: []byte("k" + strconv.Itoa(i)), Value: v, Offset: int64(i)})
		}
		return recs
	}
	if err := task.Restore("rates", chunk(0, n, 1)); err != nil {
		t.Fatal(err)
	}
	if task.RestorePending() < state.LoaderCommitBytes/2 {
		t.Fatalf("%d bytes pending: too few to be ingested", task.RestorePending())
	}
	if err := task.CommitRestore(map[string]int64{"rates/0": n}); err != nil {
		t.Fatal(err)
	}
	// The second round overwrites the first half and deletes one key.
	second := chunk(0, n/2, 2)
	second = append(second, graph.RawRecord{Key: []byte("k" + strconv.Itoa(n-1)), Offset: n})
	if err := task.Restore("rates", second); err != nil {
		t.Fatal(err)
	}
	if err := task.Commit(map[string]int64{"rates/0": n + 1}); err != nil {
		t.Fatal(err)
	}
	s := task.Store("rates")
	for _, c := range []struct {
		i     int
		round byte
	}{{0, 2}, {n/2 - 1, 2}, {n / 2, 1}, {n - 2, 1}, {n - 1, 0}} {
		v, ok, err := s.Get([]byte("k" + strconv.Itoa(c.i)))
		switch {
		case err != nil:
			t.Fatal(err)
		case c.round == 0 && ok:
			t.Errorf("k%d: found, want deleted", c.i)
		case c.round != 0 && (!ok || len(v) != 8+1+len(val) || v[8] != c.round):
			t.Errorf("k%d: %v %q, want round %d", c.i, ok, v, c.round)
		}
	}
	if ckpt, ok, err := task.Checkpoint(); err != nil || !ok || ckpt["rates/0"] != n+1 {
		t.Errorf("checkpoint %v %v %v, want rates/0 at %d", ckpt, ok, err, n+1)
	}
}

// TestCommitRestoreThenCommit: when a restore's last CommitRestore took
// every restored record (the last chunk filled a commit), the restore's
// last Commit has no record left to load, and must still wait for that
// commit: the task processes next, and reads its store.
func TestCommitRestoreThenCommit(t *testing.T) {
	task := globalTask(t, openDB(t))
	val := make([]byte, 100)
	const n = 60_000 // about 7 MiB: ingested, and on another goroutine
	recs := make([]graph.RawRecord, 0, n)
	for i := range n {
		recs = append(recs, graph.RawRecord{Key: []byte("k" + strconv.Itoa(i)), Value: val, Offset: int64(i)})
	}
	if err := task.Restore("rates", recs); err != nil {
		t.Fatal(err)
	}
	if err := task.CommitRestore(map[string]int64{"rates/0": n}); err != nil {
		t.Fatal(err)
	}
	if err := task.Commit(map[string]int64{"rates/0": n}); err != nil {
		t.Fatal(err)
	}
	s := task.Store("rates")
	for _, i := range []int{0, n / 2, n - 1} {
		if _, ok, err := s.Get([]byte("k" + strconv.Itoa(i))); err != nil || !ok {
			t.Errorf("k%d right after the restore's last Commit: found %v (%v), want found", i, ok, err)
		}
	}
}

// TestPrepareRestore: a restore into an in-memory store may prepare its
// chunks on one goroutine (PrepareRestore) and apply them on another
// (ApplyRestore), the next chunk prepared while the one before is applied;
// the store then holds what Restore leaves, timestamps included. A task on a
// DB restores through its loader: PrepareRestore declines.
func TestPrepareRestore(t *testing.T) {
	var recs []graph.RawRecord
	for i := range 5000 {
		r := graph.RawRecord{Key: []byte("k" + strconv.Itoa(i%613)), Value: []byte(strconv.Itoa(i)), Timestamp: int64(1000 + i), Offset: int64(i)}
		switch {
		case i%11 == 0:
			r.Value = nil // a tombstone
		case i%101 == 0:
			r.Key = nil // skipped
		}
		recs = append(recs, r)
	}
	chunks := slices.Collect(slices.Chunk(recs, 256))

	restored := globalTask(t, nil)
	for _, c := range chunks {
		if err := restored.Restore("rates", c); err != nil {
			t.Fatal(err)
		}
	}
	pipelined := globalTask(t, nil)
	var batches [2]runtime.RestoreBatch
	prepared := make(chan *runtime.RestoreBatch)
	free := make(chan *runtime.RestoreBatch, 2)
	free <- &batches[0]
	free <- &batches[1]
	go func() {
		defer close(prepared)
		for _, c := range chunks {
			b := <-free
			if !pipelined.PrepareRestore("rates", c, b) {
				t.Error("PrepareRestore declined an in-memory store")
				return
			}
			prepared <- b
		}
	}()
	for b := range prepared {
		if err := pipelined.ApplyRestore("rates", b); err != nil {
			t.Fatal(err)
		}
		free <- b
	}
	dump := func(task *runtime.Task) map[string]string {
		m := map[string]string{}
		err := task.Store("rates").Range(nil, nil, func(k, v []byte) bool {
			m[string(k)] = string(v)
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	want, got := dump(restored), dump(pipelined)
	if len(want) < 500 || !maps.Equal(got, want) {
		t.Errorf("pipelined restore: %d keys, Restore: %d keys; equal %v", len(got), len(want), maps.Equal(got, want))
	}
	if v := want["k1"]; len(v) < 8 || binary.BigEndian.Uint64([]byte(v)) != 1000+4905 || v[8:] != "4905" {
		t.Errorf("k1 = %q, want timestamp 5905 and value 4905", v)
	}

	onDB := globalTask(t, openDB(t))
	if onDB.PrepareRestore("rates", chunks[0], &batches[0]) {
		t.Error("PrepareRestore prepared a batch for a task on a DB")
	}
	if restored.PrepareRestore("nope", chunks[0], &batches[0]) {
		t.Error("PrepareRestore prepared a batch for an unknown store")
	}
}
