package kstest_test

import (
	"testing"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/kstest"
	"github.com/kstreamgo/kstream/serde"
)

// TestPebbleStateDir runs a count on Pebble stores: a restart replays no
// changelog record (the checkpoints are current), and counting goes on.
func TestPebbleStateDir(t *testing.T) {
	b := kstream.NewBuilder()
	kstream.Source(b, "in", serde.String, serde.String).GroupByKey().Count(kstream.Named("counts")).
		ToStream().To("out", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := kstest.NewDriver(t, topo, kstest.Partitions(3), kstest.StateDir(t.TempDir()))
	in := kstest.Input(d, "in", serde.String, serde.String)
	out := kstest.Output(d, "out", serde.String, serde.Int64)
	for _, k := range []string{"a", "b", "a", "c", "a"} {
		in.Pipe(k, "")
	}
	d.Restart()
	if d.Restored != 0 {
		t.Errorf("restart replayed %d changelog records, want 0", d.Restored)
	}
	in.Pipe("a", "")
	in.Pipe("b", "")
	got := kstest.LatestByKey(out)
	if got["a"] != 4 || got["b"] != 2 || got["c"] != 1 {
		t.Errorf("counts %v, want a=4 b=2 c=1", got)
	}
	if v, ok := kstest.Store(d, "counts", serde.String, serde.Int64).Get("a"); !ok || v != 4 {
		t.Errorf("store a = %d %v", v, ok)
	}
}
