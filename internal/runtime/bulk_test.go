package runtime_test

import (
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
	b := kstream.NewBuilder()
	kstream.SourceGlobalTable(b, "rates", serde.String, serde.String, kstream.Named("rates"))
	kstream.Source(b, "in", serde.String, serde.String).Foreach(func(string, string) {})
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	db, err := state.Open(t.TempDir(), state.MemoryBudget(64<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	gsub, _ := runtime.GlobalSubTopology(topo)
	task, err := runtime.NewTask(topo, &runtime.Config{AppID: "bulk", DB: db}, gsub, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer task.Close()

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
