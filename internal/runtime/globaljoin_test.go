package runtime_test

import (
	"strconv"
	"testing"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/internal/runtime"
	"github.com/kstreamgo/kstream/serde"
	"github.com/kstreamgo/kstream/state"
)

// TestGlobalJoinAllocatesNothing: a stream–global table join looks each
// record's key up in the global store (in a state DB, read through its
// cache) without allocating: the store appends the value to the join's
// buffer.
func TestGlobalJoinAllocatesNothing(t *testing.T) {
	b := kstream.NewBuilder()
	prices := kstream.SourceGlobalTable(b, "prices", serde.String, serde.Int64, kstream.Named("prices"))
	var sum int64
	kstream.JoinGlobal(kstream.Source(b, "orders", serde.String, serde.String), prices,
		func(_, item string) string { return item },
		func(_, _ string, price int64) int64 { return price }, kstream.Named("join")).
		Foreach(func(_ string, price int64) { sum += price })
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	db, err := state.Open(t.TempDir()) // the default budget has a read cache
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	gsub, _ := runtime.GlobalSubTopology(topo)
	global, err := runtime.NewTask(topo, &runtime.Config{AppID: "alloc", DB: db}, gsub, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer global.Close()
	items := make([]string, 100)
	var recs []graph.RawRecord
	for i := range items {
		items[i] = "item-" + strconv.Itoa(i)
		v, _ := serde.Int64.Append(nil, int64(i))
		recs = append(recs, graph.RawRecord{Key: []byte(items[i]), Value: v, Offset: int64(i)})
	}
	if err := global.ProcessPartition("prices", 0, recs); err != nil {
		t.Fatal(err)
	}
	if err := global.Commit(map[string]int64{"prices/0": 100}); err != nil {
		t.Fatal(err)
	}
	sub := 1 - gsub // the orders' sub-topology
	task, err := runtime.NewTask(topo, &runtime.Config{AppID: "alloc", GlobalStore: global.Store}, sub, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer task.Close()
	join := task.Executor("join").(func(string, string, *graph.Meta))
	var m graph.Meta
	run := func() {
		for i, item := range items {
			m.Timestamp = int64(i)
			join("order", item, &m)
		}
	}
	run()
	if want := int64(99 * 100 / 2); sum != want {
		t.Fatalf("joined prices sum to %d, want %d", sum, want)
	}
	if allocs := testing.AllocsPerRun(100, run); allocs != 0 {
		t.Errorf("stream–global table join: %v allocations per %d records, want 0", allocs, len(items))
	}
}

// TestTableJoinAllocatesNothing: a stream–table join's lookups in the
// table's store (in a state DB, read through its cache) allocate nothing.
func TestTableJoinAllocatesNothing(t *testing.T) {
	b := kstream.NewBuilder()
	prices := kstream.SourceTable(b, "prices", serde.String, serde.Int64, kstream.Named("prices"))
	var sum int64
	kstream.JoinTable(kstream.Source(b, "orders", serde.String, serde.String), prices,
		func(_, _ string, price int64) int64 { return price }, kstream.Named("join")).
		Foreach(func(_ string, price int64) { sum += price })
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	db, err := state.Open(t.TempDir()) // the default budget has a read cache
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	task, err := runtime.NewTask(topo, &runtime.Config{AppID: "alloc", DB: db}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer task.Close()
	items := make([]string, 100)
	var recs []graph.RawRecord
	for i := range items {
		items[i] = "item-" + strconv.Itoa(i)
		v, _ := serde.Int64.Append(nil, int64(i))
		recs = append(recs, graph.RawRecord{Key: []byte(items[i]), Value: v, Offset: int64(i)})
	}
	if err := task.Process("prices", recs); err != nil {
		t.Fatal(err)
	}
	if err := task.Commit(map[string]int64{"prices/0": 100}); err != nil {
		t.Fatal(err)
	}
	join := task.Executor("join").(func(string, string, *graph.Meta))
	var m graph.Meta
	run := func() {
		for i, item := range items {
			m.Timestamp = int64(i)
			join(item, "order", &m)
		}
	}
	run()
	if want := int64(99 * 100 / 2); sum != want {
		t.Fatalf("joined prices sum to %d, want %d", sum, want)
	}
	if allocs := testing.AllocsPerRun(100, run); allocs != 0 {
		t.Errorf("stream–table join: %v allocations per %d records, want 0", allocs, len(items))
	}
}
