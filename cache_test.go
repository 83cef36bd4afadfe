package kstream_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/internal/runtime"
	"github.com/kstreamgo/kstream/serde"
)

// TestCachedAggregation drives a task directly (kstest flushes after every
// record) through a cached count, a table filter that needs the old values
// (odd counts only) and a sink: nothing goes out until the task flushes,
// then one update per key, in the order of the keys' latest updates, with
// the latest count and timestamp; an update after a flush carries the value
// flushed before as its old value (the filter turns 3 -> 4 into a
// tombstone). Without Cached, every update goes out at once.
func TestCachedAggregation(t *testing.T) {
	for _, cached := range []bool{true, false} {
		t.Run(map[bool]string{true: "cached", false: "uncached"}[cached], func(t *testing.T) {
			b := kstream.NewBuilder()
			opts := []kstream.Opt{kstream.Named("counts")}
			if cached {
				opts = append(opts, kstream.Cached())
			}
			kstream.Source(b, "in", serde.String, serde.String).GroupByKey().Count(opts...).
				Filter(func(_ string, n int64) bool { return n%2 == 1 }).ToStream().To("out", serde.String, serde.Int64)
			task := firstTask(t, b)
			var ts int64
			process := func(keys ...string) {
				t.Helper()
				recs := make([]graph.RawRecord, len(keys))
				for i, k := range keys {
					ts++
					recs[i] = graph.RawRecord{Key: []byte(k), Value: []byte("v"), Timestamp: ts, Offset: ts}
				}
				if err := task.Process("in", recs); err != nil {
					t.Fatal(err)
				}
			}
			flush := func() {
				t.Helper()
				if err := task.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			out := func() []string {
				t.Helper()
				return sinkOutput(t, task, func(k []byte, ts int64) string { return fmt.Sprintf("%s@%d", k, ts) })
			}
			check := func(step string, got, want []string) {
				t.Helper()
				if !slices.Equal(got, want) {
					t.Errorf("%s: output %q, want %q", step, got, want)
				}
			}

			process("a", "a", "b", "a") // counts a=1,2 b=1 a=3
			if cached {
				check("before the flush", out(), nil)
				flush()
				check("first flush", out(), []string{"b@3=1", "a@4=3"})
			} else {
				check("uncached", out(), []string{"a@1=1", "a@2=null", "b@3=1", "a@4=3"})
			}
			process("a") // a=4: it was 3 downstream, so the filter deletes it
			flush()
			check("second flush", out(), []string{"a@5=null"})
			flush()
			check("empty flush", out(), nil)
		})
	}
}

// TestCachedSessionCount checks Cached on a session-windowed count: the
// sessions that later records replace before the flush (and their
// tombstones) forward nothing, the final session forwards once, and the
// keys go out in the order of their latest updates.
func TestCachedSessionCount(t *testing.T) {
	b := kstream.NewBuilder()
	ws := kstream.WindowedSerde(serde.String)
	kstream.SessionWindowedBy(kstream.Source(b, "in", serde.String, serde.String).GroupByKey(), 10*time.Second).
		Count(kstream.Named("sessions"), kstream.Cached()).ToStream().To("out", ws, serde.Int64)
	task := firstTask(t, b)
	recs := []graph.RawRecord{
		{Key: []byte("a"), Value: []byte("v"), Timestamp: 1_000, Offset: 0},
		{Key: []byte("b"), Value: []byte("v"), Timestamp: 2_000, Offset: 1},
		{Key: []byte("a"), Value: []byte("v"), Timestamp: 8_000, Offset: 2}, // extends a's session
		{Key: []byte("a"), Value: []byte("v"), Timestamp: 9_000, Offset: 3}, // and again
	}
	if err := task.Process("in", recs); err != nil {
		t.Fatal(err)
	}
	if err := task.Flush(); err != nil {
		t.Fatal(err)
	}
	got := sinkOutput(t, task, func(k []byte, _ int64) string {
		w, err := ws.Decode(k)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%s[%d,%d]", w.Key, w.Start, w.End)
	})
	// Uncached, a would also send [1000,1000]=1, [1000,8000]=2 and their
	// tombstones: the sessions that each extension replaced.
	want := []string{"b[2000,2000]=1", "a[1000,9000]=3"}
	if !slices.Equal(got, want) {
		t.Errorf("output %q, want %q", got, want)
	}
}

// firstTask builds b and returns the task of its first sub-topology on
// partition 0, closed when the test ends.
func firstTask(t *testing.T, b *kstream.Builder) *runtime.Task {
	t.Helper()
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	task, err := runtime.NewTask(topo, &runtime.Config{AppID: "app"}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = task.Close() })
	return task
}

// sinkOutput drains the task's records to topic "out" (not its changelog
// records) as "<key>=<int64 value, or null>", key as describe shows it.
func sinkOutput(t *testing.T, task *runtime.Task, describe func(key []byte, ts int64) string) []string {
	t.Helper()
	o := task.Output()
	var got []string
	for i := range o.Len() {
		r := o.At(i)
		if r.Topic != "out" {
			continue
		}
		v := "null"
		if b := o.Value(r); b != nil {
			n, err := serde.Int64.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			v = fmt.Sprint(n)
		}
		got = append(got, describe(o.Key(r), r.Timestamp)+"="+v)
	}
	o.Reset()
	return got
}
