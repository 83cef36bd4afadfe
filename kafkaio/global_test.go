package kafkaio_test

import (
	"errors"
	"testing"
	"time"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/internal/runtime"
	"github.com/kstreamgo/kstream/kafkaio"
	"github.com/kstreamgo/kstream/serde"
	"github.com/kstreamgo/kstream/state"
)

type lookup struct {
	ctx   *kstream.ProcessorContext[string, string]
	store state.Store
}

func (l *lookup) Init(ctx *kstream.ProcessorContext[string, string]) (err error) {
	l.ctx = ctx
	l.store, err = ctx.Store("customers")
	return err
}

func (l *lookup) Process(r kstream.Record[string, string]) error {
	name := "?"
	if b, ok, err := l.store.Get([]byte(r.Value)); err != nil {
		return err
	} else if ok {
		name = string(b[8:])
	}
	l.ctx.Forward(kstream.Record[string, string]{Key: r.Key, Value: name, Timestamp: r.Timestamp})
	return nil
}

func (l *lookup) Close() error { return nil }

// TestGlobalTableBootstrapAndUpdates: a global table is read to its end
// before the first order is processed, kept current while the stream reads
// it, and queried; restarted, an instance with a state directory reads only
// the records added since its stores' checkpoint, one without all of them.
func TestGlobalTableBootstrapAndUpdates(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c cluster) {
		for _, persistent := range []bool{false, true} {
			t.Run(map[bool]string{false: "memory", true: "state-dir"}[persistent], func(t *testing.T) {
				testGlobalTable(t, c, persistent)
			})
		}
	})
}

func testGlobalTable(t *testing.T, c cluster, persistent bool) {
	customers, orders, out, app := unique("customers"), unique("orders"), unique("enriched"), unique("global")
	mustCreate(t, c, 2, customers)
	mustCreate(t, c, 3, orders, out)
	produce(t, c, customers, []rec{{key: []byte("c1"), value: []byte("Ada")}, {key: []byte("c2"), value: []byte("Bob")}})
	produce(t, c, orders, []rec{{key: []byte("o1"), value: []byte("c1")}, {key: []byte("o2"), value: []byte("c2")}})
	b := kstream.NewBuilder()
	kstream.SourceGlobalTable(b, customers, serde.String, serde.String, kstream.Named("customers"))
	s := kstream.Source(b, orders, serde.String, serde.String)
	kstream.Process(s, func() kstream.Processor[string, string, string, string] { return &lookup{} },
		kstream.WithStores("customers")).To(out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	var opts []kafkaio.Opt
	dir := t.TempDir()
	if persistent {
		opts = append(opts, kafkaio.StateDir(dir), kafkaio.MemoryBudget(64<<20))
	}
	a, err := kafkaio.NewApp(topo, appOpts(c, app, false, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	stop := runApp(t, a)
	latest := func() map[string]string {
		m := map[string]string{}
		for _, r := range consumeAll(t, c, out, false) {
			m[string(r.Key)] = string(r.Value)
		}
		return m
	}
	// Bootstrapped before the first order: both names are known.
	waitFor(t, time.Minute, "first orders", func() bool { return len(latest()) == 2 })
	if m := latest(); m["o1"] != "Ada" || m["o2"] != "Bob" {
		t.Fatalf("first orders: %v", m)
	}
	// Interactive queries read the global store on every instance.
	names, err := kafkaio.Store(a, "customers", serde.String, serde.String)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok, err := names.Get("c1"); err != nil || !ok || v != "Ada" {
		t.Errorf("query c1: %q %v %v, want Ada", v, ok, err)
	}
	if active, standbys, err := names.Hosts("c1"); err != nil || active != "" || standbys != nil {
		t.Errorf("Hosts of a global key: %q %v %v, want none (every instance holds it)", active, standbys, err)
	}
	// The table is updated while the stream reads it.
	produce(t, c, customers, []rec{{key: []byte("c2"), value: []byte("Bea")}, {key: []byte("c1"), value: nil}})
	time.Sleep(time.Second) // global updates propagate asynchronously, as in Kafka Streams
	produce(t, c, orders, []rec{{key: []byte("o3"), value: []byte("c2")}, {key: []byte("o4"), value: []byte("c1")}})
	waitFor(t, time.Minute, "later orders", func() bool { return len(latest()) == 4 })
	if m := latest(); m["o3"] != "Bea" || m["o4"] != "?" {
		t.Fatalf("later orders: %v", m)
	}
	all := map[string]string{}
	if err := names.All(func(k, v string) bool { all[k] = v; return true }); err != nil || len(all) != 1 || all["c2"] != "Bea" {
		t.Errorf("query all: %v %v, want c2=Bea only", all, err)
	}
	if got := a.Stats().GlobalApplied; got != 4 {
		t.Errorf("the global store applied %d records, want 4", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// A restart: one more customer was added meanwhile.
	produce(t, c, customers, []rec{{key: []byte("c3"), value: []byte("Cy")}})
	if a, err = kafkaio.NewApp(topo, appOpts(c, app, false, opts...)...); err != nil {
		t.Fatal(err)
	}
	stop = runApp(t, a)
	if names, err = kafkaio.Store(a, "customers", serde.String, serde.String); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the restarted instance's global store", func() bool { return a.State() == kafkaio.StateRunning })
	all = map[string]string{}
	if err := names.All(func(k, v string) bool { all[k] = v; return true }); err != nil || len(all) != 2 || all["c2"] != "Bea" || all["c3"] != "Cy" {
		t.Errorf("after the restart, query all: %v %v, want c2=Bea and c3=Cy", all, err)
	}
	want := int64(5) // the whole topic again
	if persistent {
		want = 1 // only the record after the checkpoint
	}
	if got := a.Stats().GlobalApplied; got != want {
		t.Errorf("the restarted instance's global store applied %d records at its bootstrap, want %d", got, want)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if !persistent {
		return
	}

	// A checkpoint ahead of the topic (as if the topic had been recreated):
	// the stores are wiped (a key written beside the checkpoint goes too)
	// and the topic read in full.
	gsub, _ := runtime.GlobalSubTopology(topo)
	db, err := state.Open(kafkaio.StateDBPath(dir, app), state.MemoryBudget(64<<20))
	if err != nil {
		t.Fatal(err)
	}
	batch := db.NewBatch()
	ghost, _ := serde.String.Append(nil, "ghost")
	if err := batch.Store(db.Store("customers", -1)).Put(ghost, append(make([]byte, 8), "Gus"...)); err != nil {
		t.Fatal(err)
	}
	ahead := map[string]int64{customers + "/0": 1000, customers + "/1": 1000}
	if err := batch.SetCheckpoint(runtime.CheckpointName(app, runtime.TaskID{SubTopology: gsub, Partition: -1}), ahead); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(batch.Commit(), batch.Close(), db.Close()); err != nil {
		t.Fatal(err)
	}
	if a, err = kafkaio.NewApp(topo, appOpts(c, app, false, opts...)...); err != nil {
		t.Fatal(err)
	}
	stop = runApp(t, a)
	if names, err = kafkaio.Store(a, "customers", serde.String, serde.String); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the restarted instance's global store", func() bool { return a.State() == kafkaio.StateRunning })
	all = map[string]string{}
	if err := names.All(func(k, v string) bool { all[k] = v; return true }); err != nil || len(all) != 2 || all["c2"] != "Bea" || all["c3"] != "Cy" {
		t.Errorf("after a checkpoint ahead of the topic, query all: %v %v, want c2=Bea and c3=Cy", all, err)
	}
	if got := a.Stats().GlobalApplied; got != 5 {
		t.Errorf("after a checkpoint ahead of the topic, the global store applied %d records, want the whole topic's 5", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
