package kafkaio_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/internal/graph"
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
	// The bootstrap's progress: an entry per partition read.
	bootstrapped := func(a *kafkaio.App) (n int64) {
		t.Helper()
		for _, p := range a.RestoreProgress() {
			if p.Task != "global" || p.Store != "customers" || p.Topic != customers || !p.Done || p.Remaining != 0 {
				t.Errorf("restore progress %+v: want a finished bootstrap of store customers from %s", p, customers)
			}
			n += p.Restored
		}
		return n
	}
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
	if n := bootstrapped(a); n != 2 {
		t.Errorf("the bootstrap's progress sums to %d records, want 2", n)
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

	// A restart reads the customers again (want: how many), then holds
	// c2=Bea and c3=Cy.
	restart := func(after string, want int64) {
		t.Helper()
		a, err := kafkaio.NewApp(topo, appOpts(c, app, false, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		stop := runApp(t, a)
		names, err := kafkaio.Store(a, "customers", serde.String, serde.String)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "the restarted instance's global store", func() bool { return a.State() == kafkaio.StateRunning })
		all := map[string]string{}
		if err := names.All(func(k, v string) bool { all[k] = v; return true }); err != nil || len(all) != 2 || all["c2"] != "Bea" || all["c3"] != "Cy" {
			t.Errorf("after %s, query all: %v %v, want c2=Bea and c3=Cy", after, all, err)
		}
		if got := a.Stats().GlobalApplied; got != want {
			t.Errorf("after %s, the global store applied %d records at its bootstrap, want %d", after, got, want)
		}
		if n := bootstrapped(a); n != want {
			t.Errorf("after %s, the bootstrap's progress sums to %d records, want %d", after, n, want)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
	produce(t, c, customers, []rec{{key: []byte("c3"), value: []byte("Cy")}})
	if !persistent {
		restart("a restart", 5) // the whole topic again
		return
	}
	restart("a restart", 1) // only the record after the checkpoint

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
	restart("a checkpoint ahead of the topic", 5)
}

// TestGlobalTableErrorPolicies: a global table's records that do not decode
// go through the error policies as a task's do: counted and left out when
// skipped, written to the dead-letter topic with the error headers, and
// failing the app (at its bootstrap, here) by default.
func TestGlobalTableErrorPolicies(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c cluster) {
		setup := func(t *testing.T, opts ...kafkaio.Opt) (*kafkaio.App, string) {
			rates, orders, app := unique("rates"), unique("orders"), unique("gpolicy")
			mustCreate(t, c, 1, rates, orders)
			one, _ := serde.Int64.Append(nil, 1)
			three, _ := serde.Int64.Append(nil, 3)
			produce(t, c, rates, []rec{{key: []byte("a"), value: one}, {key: []byte("b"), value: []byte{0, 1, 2}}, {key: []byte("c"), value: three}})
			b := kstream.NewBuilder()
			kstream.SourceGlobalTable(b, rates, serde.String, serde.Int64, kstream.Named("rates"))
			kstream.Source(b, orders, serde.String, serde.String).Foreach(func(string, string) {})
			topo, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			a, err := kafkaio.NewApp(topo, appOpts(c, app, false, opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			return a, rates
		}
		checkStore := func(t *testing.T, a *kafkaio.App) {
			t.Helper()
			waitFor(t, time.Minute, "the app to run", func() bool { return a.State() == kafkaio.StateRunning })
			rates, err := kafkaio.Store(a, "rates", serde.String, serde.Int64)
			if err != nil {
				t.Fatal(err)
			}
			all := map[string]int64{}
			if err := rates.All(func(k string, v int64) bool { all[k] = v; return true }); err != nil || len(all) != 2 || all["a"] != 1 || all["c"] != 3 {
				t.Errorf("global store: %v %v, want a=1 c=3", all, err)
			}
			if s := a.Stats().Skipped; s != 1 {
				t.Errorf("skipped %d records, want 1", s)
			}
		}
		t.Run("fail", func(t *testing.T) {
			a, rates := setup(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err := a.Run(ctx)
			var re *graph.RecordError
			if !errors.As(err, &re) || re.Topic != rates || re.Partition != 0 || re.Offset != 1 || !re.Deserialization {
				t.Fatalf("Run returned %v, want a deserialization error of %s/0 offset 1", err, rates)
			}
		})
		t.Run("skip", func(t *testing.T) {
			reader := sdkmetric.NewManualReader()
			a, _ := setup(t, kafkaio.OnDeserializationError(kafkaio.PolicySkip),
				kafkaio.MeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
			stop := runApp(t, a)
			checkStore(t, a)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			// The metric counts it too, for the global task.
			var rm metricdata.ResourceMetrics
			if err := reader.Collect(context.Background(), &rm); err != nil {
				t.Fatal(err)
			}
			var skipped int64
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					if d, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "kstream.records.skipped" {
						for _, p := range d.DataPoints {
							if v, _ := p.Attributes.Value("kstream.task"); v.AsString() == "global" {
								skipped += p.Value
							}
						}
					}
				}
			}
			if skipped != 1 {
				t.Errorf("kstream.records.skipped of the global task = %d, want 1", skipped)
			}
		})
		t.Run("dead-letter", func(t *testing.T) {
			dlq := unique("dlq")
			a, rates := setup(t, kafkaio.DeadLetterTopic(dlq), kafkaio.OnDeserializationError(kafkaio.PolicyDeadLetter))
			stop := runApp(t, a)
			checkStore(t, a)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			got := consumeAll(t, c, dlq, false)
			if len(got) != 1 {
				t.Fatalf("dead-letter topic has %d records, want 1", len(got))
			}
			r := got[0]
			if string(r.Key) != "b" || string(r.Value) != "\x00\x01\x02" {
				t.Errorf("dead letter: key %q value %x, want the raw record", r.Key, r.Value)
			}
			for k, v := range map[string]string{"kstream.error.kind": "deserialization", "kstream.source.topic": rates,
				"kstream.source.partition": "0", "kstream.source.offset": "1"} {
				if got := header(r, k); got != v {
					t.Errorf("dead letter: header %s = %q, want %q", k, got, v)
				}
			}
			if header(r, "kstream.node") == "" || header(r, "kstream.error") == "" {
				t.Errorf("dead letter: headers %v, want the node and the error", r.Headers)
			}
		})
	})
}

// TestGlobalTableFromLogStart bootstraps a global table whose topic's
// retention already deleted its first records: the bootstrap reads from the
// log's start, as a consumer would, with a state directory or without.
func TestGlobalTableFromLogStart(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c cluster) {
		for _, persistent := range []bool{false, true} {
			codes, in, out := unique("codes"), unique("in"), unique("out")
			mustCreate(t, c, 1, codes, in, out)
			var recs []rec
			for i := range 10 {
				recs = append(recs, rec{key: fmt.Appendf(nil, "k%d", i), value: fmt.Appendf(nil, "v%d", i)})
			}
			produce(t, c, codes, recs)
			del := kadm.Offsets{}
			del.Add(kadm.Offset{Topic: codes, Partition: 0, At: 4})
			if res, err := admin(t, c).DeleteRecords(context.Background(), del); err != nil || res.Error() != nil {
				t.Fatal(err, res.Error())
			}
			b := kstream.NewBuilder()
			kstream.SourceGlobalTable(b, codes, serde.String, serde.String, kstream.Named("codes"))
			kstream.Source(b, in, serde.String, serde.String).To(out, serde.String, serde.String)
			topo, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			var opts []kafkaio.Opt
			if persistent {
				opts = append(opts, kafkaio.StateDir(t.TempDir()))
			}
			a, err := kafkaio.NewApp(topo, appOpts(c, unique("global-start"), false, opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			stop := runApp(t, a)
			waitFor(t, time.Minute, "the bootstrap", func() bool { return a.State() == kafkaio.StateRunning })
			store, err := kafkaio.Store(a, "codes", serde.String, serde.String)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			if err := store.All(func(k, v string) bool { got[k] = v; return true }); err != nil {
				t.Fatal(err)
			}
			if len(got) != 6 || got["k4"] != "v4" || got["k9"] != "v9" || a.Stats().GlobalApplied != 6 {
				t.Errorf("persistent %v: the global store holds %v after %d records, want k4..k9", persistent, got, a.Stats().GlobalApplied)
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
		}
	})
}
