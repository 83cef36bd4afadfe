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

// TestStoreScans reads a count store spread over three tasks with All,
// Range and Prefix, on memory and on Pebble stores.
func TestStoreScans(t *testing.T) {
	for _, persistent := range []bool{false, true} {
		b := kstream.NewBuilder()
		kstream.Source(b, "in", serde.String, serde.String).GroupByKey().Count(kstream.Named("counts"))
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		opts := []kstest.Option{kstest.Partitions(3)}
		if persistent {
			opts = append(opts, kstest.StateDir(t.TempDir()))
		}
		d := kstest.NewDriver(t, topo, opts...)
		in := kstest.Input(d, "in", serde.String, serde.String)
		want := map[string]int64{}
		for i, k := range []string{"apple", "avocado", "banana", "b", "blueberry", "cherry", "c", "apple", "banana", "date"} {
			in.PipeAt(int64(i), k, "")
			want[k]++
		}
		sv := kstest.Store(d, "counts", serde.String, serde.Int64)
		collect := func(scan func(fn func(string, int64) bool)) map[string]int64 {
			got := map[string]int64{}
			scan(func(k string, v int64) bool {
				if _, dup := got[k]; dup {
					t.Errorf("key %s seen twice", k)
				}
				got[k] = v
				return true
			})
			return got
		}
		subset := func(in func(string) bool) map[string]int64 {
			m := map[string]int64{}
			for k, v := range want {
				if in(k) {
					m[k] = v
				}
			}
			return m
		}
		for _, tc := range []struct {
			name string
			got  map[string]int64
			want map[string]int64
		}{
			{"All", collect(sv.All), want},
			{"Range(b, c)", collect(func(fn func(string, int64) bool) { sv.Range("b", "c", fn) }),
				subset(func(k string) bool { return k >= "b" && k <= "c" })},
			{"Range(c, b)", collect(func(fn func(string, int64) bool) { sv.Range("c", "b", fn) }), map[string]int64{}},
			{"Prefix(a)", collect(func(fn func(string, int64) bool) { sv.Prefix("a", fn) }),
				subset(func(k string) bool { return k[0] == 'a' })},
		} {
			if len(tc.got) != len(tc.want) {
				t.Errorf("persistent=%v %s = %v, want %v", persistent, tc.name, tc.got, tc.want)
				continue
			}
			for k, v := range tc.want {
				if tc.got[k] != v {
					t.Errorf("persistent=%v %s = %v, want %v", persistent, tc.name, tc.got, tc.want)
					break
				}
			}
		}
		calls := 0
		sv.All(func(string, int64) bool { calls++; return false })
		if calls != 1 {
			t.Errorf("persistent=%v: All went on after fn returned false: %d calls", persistent, calls)
		}
	}
}
