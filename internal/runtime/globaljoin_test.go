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

// TestJoinLookupsAllocateNothing: a stream–table join and a stream–global
// table join look each record's key up in the table's store (in a state DB,
// read through its cache) without allocating: the store appends the value
// to the join's buffer.
func TestJoinLookupsAllocateNothing(t *testing.T) {
	for _, global := range []bool{false, true} {
		t.Run(map[bool]string{false: "table", true: "global-table"}[global], func(t *testing.T) {
			testJoinAllocs(t, global)
		})
	}
}

func testJoinAllocs(t *testing.T, global bool) {
	b := kstream.NewBuilder()
	orders := kstream.Source(b, "orders", serde.String, serde.String)
	byPrice := func(_, _ string, price int64) int64 { return price }
	var joined kstream.Stream[string, int64]
	if global {
		prices := kstream.SourceGlobalTable(b, "prices", serde.String, serde.Int64, kstream.Named("prices"))
		joined = kstream.JoinGlobal(orders, prices, func(_, item string) string { return item }, byPrice, kstream.Named("join"))
	} else {
		prices := kstream.SourceTable(b, "prices", serde.String, serde.Int64, kstream.Named("prices"))
		joined = kstream.JoinTable(orders, prices, byPrice, kstream.Named("join"))
	}
	var sum int64
	joined.Foreach(func(_ string, price int64) { sum += price })
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	db, err := state.Open(t.TempDir()) // the default budget has a read cache
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cfg := &runtime.Config{AppID: "alloc", DB: db}
	// The table: its task (the global one, or the orders' own) reads the
	// prices.
	sub, tableSub, tableP := 0, 0, int32(0)
	if global {
		tableSub, _ = runtime.GlobalSubTopology(topo)
		sub, tableP = 1-tableSub, -1
	}
	table, err := runtime.NewTask(topo, cfg, tableSub, tableP)
	if err != nil {
		t.Fatal(err)
	}
	defer table.Close()
	items := make([]string, 100)
	var recs []graph.RawRecord
	for i := range items {
		items[i] = "item-" + strconv.Itoa(i)
		v, _ := serde.Int64.Append(nil, int64(i))
		recs = append(recs, graph.RawRecord{Key: []byte(items[i]), Value: v, Offset: int64(i)})
	}
	if err := table.ProcessPartition("prices", 0, recs); err != nil {
		t.Fatal(err)
	}
	if err := table.Commit(map[string]int64{"prices/0": 100}); err != nil {
		t.Fatal(err)
	}
	task := table
	if global {
		c := *cfg
		c.GlobalStore = table.Store
		if task, err = runtime.NewTask(topo, &c, sub, 0); err != nil {
			t.Fatal(err)
		}
		defer task.Close()
	}
	join := task.Executor("join").(func(string, string, *graph.Meta))
	var m graph.Meta
	run := func() {
		for i, item := range items {
			m.Timestamp = int64(i)
			if global {
				join("order", item, &m)
			} else {
				join(item, "order", &m)
			}
		}
	}
	run()
	if want := int64(99 * 100 / 2); sum != want {
		t.Fatalf("joined prices sum to %d, want %d", sum, want)
	}
	if allocs := testing.AllocsPerRun(100, run); allocs != 0 {
		t.Errorf("%v allocations per %d records, want 0", allocs, len(items))
	}
}
