package kstream_test

import (
	"strings"
	"testing"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/kstest"
	"github.com/kstreamgo/kstream/serde"
	"github.com/kstreamgo/kstream/state"
)

// enricher looks order keys up in the global customers store.
type enricher struct {
	ctx   *kstream.ProcessorContext[string, string]
	store state.Store
}

func (e *enricher) Init(ctx *kstream.ProcessorContext[string, string]) (err error) {
	e.ctx = ctx
	e.store, err = ctx.Store("customers")
	return err
}

func (e *enricher) Process(r kstream.Record[string, string]) error {
	name := "?"
	if b, ok, err := e.store.Get([]byte(r.Value)); err != nil {
		return err
	} else if ok {
		name = string(b[8:]) // global table values are timestamped
	}
	if err := e.store.Put([]byte("x"), []byte("y")); err == nil {
		name += " (global store was writable!)"
	}
	e.ctx.Forward(kstream.Record[string, string]{Key: r.Key, Value: name, Timestamp: r.Timestamp})
	return nil
}

func (e *enricher) Close() error { return nil }

func TestGlobalTableReadFromEveryTask(t *testing.T) {
	b := kstream.NewBuilder()
	g := kstream.SourceGlobalTable(b, "customers", serde.String, serde.String)
	if g.StoreName() != "customers" {
		t.Fatalf("store name %q", g.StoreName())
	}
	orders := kstream.Source(b, "orders", serde.String, serde.String)
	kstream.Process(orders, func() kstream.Processor[string, string, string, string] { return &enricher{} },
		kstream.WithStores("customers")).To("enriched", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := kstest.NewDriver(t, topo, kstest.Partitions(4))
	cust := kstest.Input(d, "customers", serde.String, serde.String)
	in := kstest.Input(d, "orders", serde.String, serde.String)
	out := kstest.Output(d, "enriched", serde.String, serde.String)
	for _, c := range [][2]string{{"c1", "Ada"}, {"c2", "Bob"}, {"c3", "Cy"}, {"c4", "Di"}} {
		cust.Pipe(c[0], c[1])
	}
	for i, c := range []string{"c1", "c2", "c3", "c4", "c9"} {
		in.PipeAt(int64(i), "o"+c, c)
	}
	// The table is updated while the stream reads it.
	cust.Pipe("c2", "Bea")
	cust.PipeTombstone("c3")
	in.PipeAt(10, "o2-again", "c2")
	in.PipeAt(11, "o3-again", "c3")
	got := map[string]string{}
	for _, r := range out.Records() {
		got[r.Key] = r.Value
	}
	want := map[string]string{"oc1": "Ada", "oc2": "Bob", "oc3": "Cy", "oc4": "Di", "oc9": "?", "o2-again": "Bea", "o3-again": "?"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %v", got)
	}
	if v, ok := kstest.Store(d, "customers", serde.String, serde.String).Get("c2"); !ok || v != "Bea" {
		t.Errorf("store c2 = %q %v", v, ok)
	}
	d.Restart()
	in.PipeAt(12, "o1-after-restart", "c1")
	if r := out.Records(); len(r) != 1 || r[0].Value != "Ada" {
		t.Errorf("after restart: %v", r)
	}
	if desc := topo.Describe(); !strings.Contains(desc, "for global store") {
		t.Errorf("Describe does not show the global sub-topology:\n%s", desc)
	}
}
