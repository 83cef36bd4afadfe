package kstream_test

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/kstest"
	"github.com/kstreamgo/kstream/serde"
)

// The expected outputs of the tests below were traced by hand through Kafka
// Streams' processors, then checked against Kafka Streams 4.4.0's
// TopologyTestDriver with the record cache disabled: they are identical,
// except where a comment says kstream deliberately differs.

// Windowed keys and records of windowed results.
type (
	wkey          = kstream.Windowed[string]
	wRec[V any]   = kstream.Record[wkey, V]
	wIn           = pipe[string, string]
	windowBuilder func(g kstream.Grouped[string, string])
)

const ms = time.Millisecond

var wSerde = kstream.WindowedSerde(serde.String)

func wrec[V any](ts int64, k string, start, end int64, v V, hs ...kstream.Header) wRec[V] {
	return kstream.Record[wkey, V]{Key: wkey{Key: k, Start: start, End: end}, Value: v, Timestamp: ts, Headers: hs}
}

func wtomb[V any](ts int64, k string, start, end int64) wRec[V] {
	return kstream.Record[wkey, V]{Key: wkey{Key: k, Start: start, End: end}, Timestamp: ts, Tombstone: true}
}

// at is an input record with an empty value, or with value v.
func at(ts int64, k string, v ...string) wIn {
	return in(rec(ts, k, strings.Join(v, "")))
}

// concat folds values into a string: window contents in arrival order.
func concat(_ string, v, a string) string { return a + v }

// windowTopology builds "in" -> GroupByKey -> agg -> "out".
func windowTopology(t testing.TB, agg windowBuilder) *kstream.Topology {
	b := kstream.NewBuilder()
	agg(kstream.Source(b, "in", serde.String, serde.String).GroupByKey())
	return mustBuild(t, b)
}

func toOut[V any](tbl kstream.Table[wkey, V]) { tbl.ToStream().To("out", nil, nil) }

// runWindows pipes inputs through the topology and returns the output.
func runWindows[V any](t testing.TB, topo *kstream.Topology, vs serde.Serde[V], parts int, inputs []wIn) ([]wRec[V], *kstest.Driver) {
	t.Helper()
	got, d, _ := runWindowsOut(t, topo, vs, parts, inputs)
	return got, d
}

// runWindowsOut is runWindows, also returning the reader of "out" for the
// records that come later.
func runWindowsOut[V any](t testing.TB, topo *kstream.Topology, vs serde.Serde[V], parts int, inputs []wIn) ([]wRec[V], *kstest.Driver, *kstest.OutputTopic[wkey, V]) {
	t.Helper()
	d := kstest.NewDriver(t, topo, kstest.Partitions(parts))
	pipeAll(t, d, serde.String, serde.String, inputs)
	out := kstest.Output(d, "out", wSerde, vs)
	return out.Records(), d, out
}

// byKey orders records by key (stable, so each key keeps its order) and
// drops headers: for comparing outputs whose interleaving across partitions
// depends on where keys land.
func byKey[V any](rs []wRec[V]) []wRec[V] {
	out := slices.Clone(rs)
	for i := range out {
		out[i].Headers = nil
	}
	slices.SortStableFunc(out, func(a, b wRec[V]) int { return cmp.Compare(a.Key.Key, b.Key.Key) })
	return out
}

// checkWindowStore checks windows present (with their values) and absent in
// the store, read with the windowed key serde.
func checkWindowStore[V any](t testing.TB, d *kstest.Driver, store string, vs serde.Serde[V], present map[wkey]V, absent ...wkey) {
	t.Helper()
	sv := kstest.Store(d, store, wSerde, vs)
	for k, want := range present {
		got, ok := sv.Get(k)
		if !ok {
			t.Errorf("store %s: window %+v missing, want %v", store, k, want)
		} else {
			checkEqual(t, fmt.Sprintf("store %s window %+v", store, k), got, want)
		}
	}
	for _, k := range absent {
		if got, ok := sv.Get(k); ok {
			t.Errorf("store %s: window %+v = %v, want absent (expired)", store, k, got)
		}
	}
}

func TestTumblingWindows(t *testing.T) {
	for _, parts := range partitionCounts {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			topo := windowTopology(t, func(g kstream.Grouped[string, string]) {
				toOut(kstream.WindowedBy(g, kstream.Tumbling(10*ms).Grace(5*ms)).Count(kstream.Named("counts")))
			})
			checkEqual(t, "internal topics", topo.InternalTopics("kstest"), []string{"kstest-counts-changelog"})
			// Only "a" is ever late or out of order, and "b" never passes
			// "a": stream time is the same in every partition layout.
			got, d, out := runWindowsOut(t, topo, serde.Int64, parts, []wIn{
				at(1, "a"),
				at(4, "b"),
				at(12, "a"), // stream time 12
				at(8, "a"),  // out of order, within grace: [0,10) closes at 15
				at(15, "a"), // stream time 15: [0,10) closes
				at(9, "a"),  // late: dropped and counted
				at(13, "b"), // b's own new window
				{Record: rec(14, "", "x"), NullKey: true}, // null key: dropped
				in(tomb[string, string](14, "a")),         // tombstone: dropped
			})
			checkRecords(t, "out", got, []wRec[int64]{
				wrec[int64](1, "a", 0, 10, 1),
				wrec[int64](4, "b", 0, 10, 1),
				wrec[int64](12, "a", 10, 20, 1),
				wrec[int64](8, "a", 0, 10, 2), // the window's timestamp: its largest record timestamp
				wrec[int64](15, "a", 10, 20, 2),
				wrec[int64](13, "b", 10, 20, 1),
			})
			checkEqual(t, "dropped", d.Dropped("counts"), int64(3))
			checkWindowStore(t, d, "counts", serde.Int64,
				map[wkey]int64{{"a", 10, 20}: 2, {"b", 10, 20}: 1},
				wkey{"a", 0, 10}) // expired: retention is size + grace

			// Stream time far ahead: a's old window expires from the store.
			kstest.Input(d, "in", serde.String, serde.String).PipeAt(100, "a", "")
			checkWindowStore(t, d, "counts", serde.Int64, map[wkey]int64{{"a", 100, 110}: 1}, wkey{"a", 10, 20})

			// A restart restores the windows and the stream time: a record
			// for a window that closed before the restart is still late.
			d.Restart()
			in := kstest.Input(d, "in", serde.String, serde.String)
			in.PipeAt(84, "a", "") // [80,90) closed at stream time 95
			in.PipeAt(103, "a", "")
			checkRecords(t, "after restart", out.Records(), []wRec[int64]{
				wrec[int64](100, "a", 100, 110, 1),
				wrec[int64](103, "a", 100, 110, 2),
			})
			checkEqual(t, "dropped after restart", d.Dropped("counts"), int64(1))
		})
	}
}

func TestHoppingWindows(t *testing.T) {
	for _, parts := range partitionCounts {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			topo := windowTopology(t, func(g kstream.Grouped[string, string]) {
				toOut(kstream.WindowedBy(g, kstream.Hopping(10*ms, 5*ms)).Count(kstream.Named("counts")))
			})
			got, d := runWindows(t, topo, serde.Int64, parts, []wIn{
				at(3, "a"),  // [0,10) only: no window starts before the epoch
				at(7, "a"),  // [0,10) and [5,15)
				at(12, "a"), // [5,15) and [10,20); stream time 12 closes [0,10)
				at(9, "a"),  // late for [0,10) only: still counted in [5,15)
				at(4, "a"),  // late for its only window: dropped
				at(10, "b"), // b: [5,15) and [10,20), ascending
			})
			checkRecords(t, "out", got, []wRec[int64]{
				wrec[int64](3, "a", 0, 10, 1),
				wrec[int64](7, "a", 0, 10, 2),
				wrec[int64](7, "a", 5, 15, 1),
				wrec[int64](12, "a", 5, 15, 2),
				wrec[int64](12, "a", 10, 20, 1),
				wrec[int64](12, "a", 5, 15, 3),
				wrec[int64](10, "b", 5, 15, 1),
				wrec[int64](10, "b", 10, 20, 1),
			})
			checkEqual(t, "dropped", d.Dropped("counts"), int64(1))
		})
	}
}

func TestTimeWindowsReduceAndAggregate(t *testing.T) {
	b := kstream.NewBuilder()
	g := kstream.Source(b, "in", serde.String, serde.String).GroupByKey()
	w := kstream.WindowedBy(g, kstream.Tumbling(10*ms))
	w.Reduce(func(a, v string) string { return a + "+" + v }, kstream.Named("r")).ToStream().To("reduce", nil, nil)
	kstream.AggregateWindowed(w, func() int64 { return 100 }, func(_ string, v string, a int64) int64 { return a + int64(len(v)) },
		serde.Int64, kstream.Named("agg")).ToStream().To("agg", nil, nil)
	d := kstest.NewDriver(t, mustBuild(t, b))
	pipeAll(t, d, serde.String, serde.String, []wIn{at(1, "k", "x"), at(2, "k", "yy"), at(11, "k", "z")})
	checkRecords(t, "reduce", kstest.Output(d, "reduce", wSerde, serde.String).Records(), []wRec[string]{
		wrec(1, "k", 0, 10, "x"), wrec(2, "k", 0, 10, "x+yy"), wrec(11, "k", 10, 20, "z"),
	})
	checkRecords(t, "aggregate", kstest.Output(d, "agg", wSerde, serde.Int64).Records(), []wRec[int64]{
		wrec[int64](1, "k", 0, 10, 101), wrec[int64](2, "k", 0, 10, 103), wrec[int64](11, "k", 10, 20, 101),
	})
}

func TestEmitOnWindowClose(t *testing.T) {
	build := func(g kstream.Grouped[string, string]) {
		toOut(kstream.WindowedBy(g, kstream.Tumbling(10*ms).Grace(5*ms)).
			Count(kstream.Named("counts"), kstream.EmitOnWindowClose()))
	}
	inputs := []wIn{
		at(1, "a"),
		at(2, "b"),
		at(6, "a"),
		at(11, "a"), // stream time 11
		at(8, "b"),  // within grace
		at(14, "a"),
		at(3, "a"),                          // within grace: [0,10) is not final yet
		in(rec(15, "a", "", hdr("h", "x"))), // stream time 15 closes [0,10)
		at(4, "a"),                          // late: dropped
		at(30, "b"),                         // stream time 30 closes [10,20)
	}
	t.Run("partitions=1", func(t *testing.T) {
		got, d := runWindows(t, windowTopology(t, build), serde.Int64, 1, inputs)
		checkRecords(t, "out", got, []wRec[int64]{
			// Final results only, stamped with the window's timestamp, with
			// the headers of the record that closed them, in (start, key)
			// order.
			wrec[int64](6, "a", 0, 10, 3, hdr("h", "x")),
			wrec[int64](8, "b", 0, 10, 2, hdr("h", "x")),
			// Kafka Streams 4.4 loses this one: the jump of stream time to
			// 30 expires [10,20) in its store before it looks for windows
			// to emit.
			wrec[int64](15, "a", 10, 20, 3),
		})
		checkEqual(t, "dropped", d.Dropped("counts"), int64(1))
		checkWindowStore(t, d, "counts", serde.Int64, map[wkey]int64{{"b", 30, 40}: 1}, wkey{"a", 0, 10}, wkey{"a", 10, 20})
	})
	t.Run("partitions=3", func(t *testing.T) {
		// Windows close per partition: each key's last record closes its
		// partition's windows.
		got, _ := runWindows(t, windowTopology(t, build), serde.Int64, 3, append(slices.Clone(inputs), at(100, "a"), at(100, "b")))
		checkRecords(t, "out", byKey(got), []wRec[int64]{
			wrec[int64](6, "a", 0, 10, 3),
			wrec[int64](15, "a", 10, 20, 3),
			wrec[int64](8, "b", 0, 10, 2),
			wrec[int64](30, "b", 30, 40, 1),
		})
	})
}

// Many windows closing at once: final results in key order, then all expired.
func TestEmitOnWindowCloseManyWindows(t *testing.T) {
	topo := windowTopology(t, func(g kstream.Grouped[string, string]) {
		toOut(kstream.WindowedBy(g, kstream.Tumbling(10*ms)).Count(kstream.Named("counts"), kstream.EmitOnWindowClose()))
	})
	var inputs []wIn
	var want []wRec[int64]
	var expired []wkey
	for i := range 300 {
		k := fmt.Sprintf("k%03d", 299-i) // piped in reverse key order
		inputs = append(inputs, at(7, k), at(int64(i%5), k))
		want = append(want, wrec[int64](7, fmt.Sprintf("k%03d", i), 0, 10, 2))
		expired = append(expired, wkey{k, 0, 10})
	}
	got, d := runWindows(t, topo, serde.Int64, 1, append(inputs, at(10, "z")))
	checkRecords(t, "out", got, want)
	checkWindowStore(t, d, "counts", serde.Int64, map[wkey]int64{{"z", 10, 20}: 1}, expired...)
}

// The sliding window scenario is traced by hand through Kafka Streams'
// KStreamSlidingWindowAggregate (reverse iteration), window by window.
func TestSlidingWindows(t *testing.T) {
	build := func(opts ...kstream.Opt) windowBuilder {
		return func(g kstream.Grouped[string, string]) {
			w := kstream.WindowedBy(g, kstream.Sliding(10*ms).Grace(20*ms))
			toOut(kstream.AggregateWindowed(w, func() string { return "" }, concat, serde.String, append(opts, kstream.Named("s"))...))
		}
	}
	inputs := []wIn{
		at(20, "a", "A"),
		at(25, "a", "B"),
		at(40, "a", "C"),
		at(22, "a", "D"), // out of order: updates two windows, creates two
		at(9, "a", "E"),  // late: even [10,20] closed (9+1+10 <= 40-20)
		at(11, "a", "F"), // its left window [1,11] is late, [10,20] is not
		at(45, "a", "G"),
	}
	for _, parts := range partitionCounts {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			got, d := runWindows(t, windowTopology(t, build()), serde.String, parts, inputs)
			checkRecords(t, "out", got, []wRec[string]{
				wrec(20, "a", 10, 20, "A"),
				wrec(25, "a", 21, 31, "B"),  // the right window of the record at 20
				wrec(25, "a", 15, 25, "AB"), // left window, from [10,20]'s aggregate
				wrec(40, "a", 30, 40, "C"),
				wrec(25, "a", 21, 31, "BD"), // existing windows containing 22, newest first
				wrec(25, "a", 15, 25, "ABD"),
				wrec(22, "a", 12, 22, "AD"), // its left window
				wrec(25, "a", 23, 33, "B"),  // its right window: the later records within 10
				wrec(20, "a", 10, 20, "AF"),
				wrec(45, "a", 41, 51, "G"),
				wrec(45, "a", 35, 45, "CG"),
			})
			checkEqual(t, "dropped", d.Dropped("s"), int64(1))
		})
	}
	t.Run("emit on close", func(t *testing.T) {
		got, _ := runWindows(t, windowTopology(t, build(kstream.EmitOnWindowClose())), serde.String, 1,
			append(slices.Clone(inputs), at(100, "a", "Z")))
		checkRecords(t, "out", got, []wRec[string]{
			wrec(20, "a", 10, 20, "AF"), // closed by the record at 45 (end 20 < 45-20)
			wrec(22, "a", 12, 22, "AD"),
			// The rest closed by the record at 100. Kafka Streams 4.4 loses
			// them: its store expired them before the emit looked.
			wrec(25, "a", 15, 25, "ABD"),
			wrec(25, "a", 21, 31, "BD"),
			wrec(25, "a", 23, 33, "B"),
			wrec(40, "a", 30, 40, "C"),
			wrec(45, "a", 35, 45, "CG"),
			wrec(45, "a", 41, 51, "G"),
		})
	})
}

// A sliding window closes when stream time passes its (inclusive) end plus
// grace; windows closing together come out in key order.
func TestSlidingWindowsEmitBoundary(t *testing.T) {
	topo := windowTopology(t, func(g kstream.Grouped[string, string]) {
		toOut(kstream.WindowedBy(g, kstream.Sliding(10*ms)).Count(kstream.Named("s"), kstream.EmitOnWindowClose()))
	})
	d := kstest.NewDriver(t, topo)
	out := kstest.Output(d, "out", wSerde, serde.Int64)
	in := kstest.Input(d, "in", serde.String, serde.String)
	in.PipeAt(20, "a", "")
	in.PipeAt(20, "b", "")
	checkRecords(t, "at 20", out.Records(), nil) // [10,20] ends at stream time: open
	in.PipeAt(21, "b", "")
	checkRecords(t, "at 21", out.Records(), []wRec[int64]{wrec[int64](20, "a", 10, 20, 1), wrec[int64](20, "b", 10, 20, 1)})
	in.PipeAt(22, "b", "")
	checkRecords(t, "at 22", out.Records(), []wRec[int64]{wrec[int64](21, "b", 11, 21, 2)})
}

func TestSlidingWindowsEarlyRecords(t *testing.T) {
	topo := windowTopology(t, func(g kstream.Grouped[string, string]) {
		w := kstream.WindowedBy(g, kstream.Sliding(10*ms))
		toOut(w.Reduce(func(a, v string) string { return a + v }, kstream.Named("s")))
	})
	got, _ := runWindows(t, topo, serde.String, 1, []wIn{
		at(3, "a", "A"), // before the time difference: the window [0,10]
		at(5, "a", "B"),
		at(2, "a", "C"),
		at(12, "a", "D"),
	})
	checkRecords(t, "out", got, []wRec[string]{
		wrec(3, "a", 0, 10, "A"),
		wrec(5, "a", 4, 14, "B"), // the right window of the record at 3
		wrec(5, "a", 0, 10, "AB"),
		wrec(5, "a", 3, 13, "AB"), // the right window of the record at 2
		wrec(5, "a", 0, 10, "ABC"),
		wrec(12, "a", 4, 14, "BD"),
		wrec(12, "a", 3, 13, "ABD"),
		wrec(12, "a", 6, 16, "D"),
		wrec(12, "a", 2, 12, "ABCD"),
	})
}

// The session scenario follows Kafka Streams' KStreamSessionWindowAggregate:
// merged sessions are deleted with a tombstone stamped with their end, and
// the merged session is forwarded stamped with its end.
func TestSessionWindows(t *testing.T) {
	build := func(opts ...kstream.Opt) windowBuilder {
		return func(g kstream.Grouped[string, string]) {
			sg := kstream.SessionWindowedBy(g, 10*ms).Grace(100 * ms)
			toOut(kstream.AggregateSession(sg, func() string { return "" }, concat,
				func(_ string, a, b string) string { return a + b }, serde.String, append(opts, kstream.Named("sessions"))...))
		}
	}
	inputs := []wIn{
		at(0, "a", "A"),
		at(5, "a", "B"),  // extends [0,0]
		at(30, "a", "C"), // a new session
		at(18, "a", "D"), // 13 after B, 12 before C: a session of its own
		at(20, "a", "E"), // bridges [18,18] and [30,30]
		at(12, "a", "F"), // bridges [0,5] and [18,30]
		at(25, "a", "G"), // inside [0,30]: Kafka Streams deletes and rewrites it
		at(200, "a", "H"),
		at(25, "a", "I"), // [0,30] closed at 200 - 10 - 100: late
	}
	for _, parts := range partitionCounts {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			got, d := runWindows(t, windowTopology(t, build()), serde.String, parts, inputs)
			checkRecords(t, "out", got, []wRec[string]{
				wrec(0, "a", 0, 0, "A"),
				wtomb[string](0, "a", 0, 0),
				wrec(5, "a", 0, 5, "AB"),
				wrec(30, "a", 30, 30, "C"),
				wrec(18, "a", 18, 18, "D"),
				wtomb[string](18, "a", 18, 18),
				wtomb[string](30, "a", 30, 30),
				wrec(30, "a", 18, 30, "DCE"),
				wtomb[string](5, "a", 0, 5),
				wtomb[string](30, "a", 18, 30),
				wrec(30, "a", 0, 30, "ABDCEF"), // merged oldest first
				wtomb[string](30, "a", 0, 30),
				wrec(30, "a", 0, 30, "ABDCEFG"),
				wrec(200, "a", 200, 200, "H"),
			})
			checkEqual(t, "dropped", d.Dropped("sessions"), int64(1))
			checkWindowStore(t, d, "sessions", serde.String,
				map[wkey]string{{"a", 200, 200}: "H"},
				wkey{"a", 0, 30}, wkey{"a", 0, 5}, wkey{"a", 18, 30}) // expired, merged away, merged away
		})
	}
	t.Run("emit on close", func(t *testing.T) {
		got, _ := runWindows(t, windowTopology(t, build(kstream.EmitOnWindowClose())), serde.String, 1,
			append(slices.Clone(inputs), in(rec(500, "a", "Z", hdr("h", "z")))))
		checkRecords(t, "out", got, []wRec[string]{
			wrec(30, "a", 0, 30, "ABDCEFG"),              // closed by H
			wrec(200, "a", 200, 200, "H", hdr("h", "z")), // closed by Z
		})
	})
}

// A session closes when stream time passes its end plus gap plus grace.
func TestSessionWindowsEmitBoundary(t *testing.T) {
	topo := windowTopology(t, func(g kstream.Grouped[string, string]) {
		toOut(kstream.SessionWindowedBy(g, 10*ms).Grace(5*ms).Count(kstream.Named("s"), kstream.EmitOnWindowClose()))
	})
	d := kstest.NewDriver(t, topo)
	out := kstest.Output(d, "out", wSerde, serde.Int64)
	in := kstest.Input(d, "in", serde.String, serde.String)
	in.PipeAt(0, "a", "")
	in.PipeAt(15, "b", "")
	checkRecords(t, "at 15", out.Records(), nil)
	in.PipeAt(16, "b", "")
	checkRecords(t, "at 16", out.Records(), []wRec[int64]{wrec[int64](0, "a", 0, 0, 1)})
}

func TestSessionWindowsCountReduce(t *testing.T) {
	b := kstream.NewBuilder()
	sg := kstream.SessionWindowedBy(kstream.Source(b, "in", serde.String, serde.String).GroupByKey(), 10*ms)
	sg.Count(kstream.Named("c")).ToStream().To("count", nil, nil)
	sg.Reduce(func(a, v string) string { return a + v }, kstream.Named("r")).ToStream().To("reduce", nil, nil)
	d := kstest.NewDriver(t, mustBuild(t, b))
	pipeAll(t, d, serde.String, serde.String, []wIn{
		at(0, "a", "x"),
		at(10, "a", "y"), // exactly the gap: merges (both ends inclusive)
		at(21, "a", "z"), // 11 after: a new session
		at(15, "b", "w"), // another key
	})
	checkRecords(t, "count", kstest.Output(d, "count", wSerde, serde.Int64).Records(), []wRec[int64]{
		wrec[int64](0, "a", 0, 0, 1),
		wtomb[int64](0, "a", 0, 0),
		wrec[int64](10, "a", 0, 10, 2),
		wrec[int64](21, "a", 21, 21, 1),
		wrec[int64](15, "b", 15, 15, 1),
	})
	checkRecords(t, "reduce", kstest.Output(d, "reduce", wSerde, serde.String).Records(), []wRec[string]{
		wrec(0, "a", 0, 0, "x"),
		wtomb[string](0, "a", 0, 0),
		wrec(10, "a", 0, 10, "xy"),
		wrec(21, "a", 21, 21, "z"),
		wrec(15, "b", 15, 15, "w"),
	})
}

// Kafka Streams' session store hides the sessions that ended a retention
// (gap + grace) or more before the time it has observed, the largest session
// end written, which is the stream time before the current record. So a
// record exactly a gap after its key's session merges with it, unless a
// record of another key in the same task moved stream time there first.
func TestSessionWindowsStoreTime(t *testing.T) {
	topo := windowTopology(t, func(g kstream.Grouped[string, string]) {
		toOut(kstream.SessionWindowedBy(g, 10*ms).Count(kstream.Named("s")))
	})
	got, _ := runWindows(t, topo, serde.Int64, 1, []wIn{
		at(0, "a"), at(10, "a"), // merge: the store had seen 0
		at(100, "b"), at(110, "c"), // c moves stream time to 110...
		at(110, "b"), // ...so b's [100,100] is hidden: a new session
	})
	checkRecords(t, "out", got, []wRec[int64]{
		wrec[int64](0, "a", 0, 0, 1),
		wtomb[int64](0, "a", 0, 0),
		wrec[int64](10, "a", 0, 10, 2),
		wrec[int64](100, "b", 100, 100, 1),
		wrec[int64](110, "c", 110, 110, 1),
		wrec[int64](110, "b", 110, 110, 1),
	})
}

// outOfOrderInputs is a deterministic out-of-order input over three keys,
// with late records.
func outOfOrderInputs(n int) []wIn {
	var out []wIn
	ts := int64(0)
	for i := range n {
		ts += int64((i*7)%5) + 1
		late := ts - int64((i*13)%37)
		k := string(rune('a' + i%3))
		out = append(out, at(max(late, 0), k, string(rune('A'+i%26))))
	}
	return out
}

// reduceCases are a reduction "w" over each kind of window, with and without
// emit-on-close, with the options opts.
func reduceCases(opts ...kstream.Opt) []struct {
	name  string
	build windowBuilder
} {
	cat := func(a, v string) string { return a + v }
	o := func(more ...kstream.Opt) []kstream.Opt {
		return append(append([]kstream.Opt{kstream.Named("w")}, opts...), more...)
	}
	return []struct {
		name  string
		build windowBuilder
	}{
		{"tumbling", func(g kstream.Grouped[string, string]) {
			toOut(kstream.WindowedBy(g, kstream.Tumbling(10*ms).Grace(8*ms)).Reduce(cat, o()...))
		}},
		{"tumbling emit on close", func(g kstream.Grouped[string, string]) {
			toOut(kstream.WindowedBy(g, kstream.Tumbling(10*ms).Grace(8*ms)).Reduce(cat, o(kstream.EmitOnWindowClose())...))
		}},
		{"hopping", func(g kstream.Grouped[string, string]) {
			toOut(kstream.WindowedBy(g, kstream.Hopping(12*ms, 4*ms).Grace(5*ms)).Reduce(cat, o()...))
		}},
		{"hopping emit on close", func(g kstream.Grouped[string, string]) {
			toOut(kstream.WindowedBy(g, kstream.Hopping(12*ms, 4*ms).Grace(5*ms)).Reduce(cat, o(kstream.EmitOnWindowClose())...))
		}},
		{"sliding", func(g kstream.Grouped[string, string]) {
			toOut(kstream.WindowedBy(g, kstream.Sliding(9*ms).Grace(10*ms)).Reduce(cat, o()...))
		}},
		{"sliding emit on close", func(g kstream.Grouped[string, string]) {
			toOut(kstream.WindowedBy(g, kstream.Sliding(9*ms).Grace(10*ms)).Reduce(cat, o(kstream.EmitOnWindowClose())...))
		}},
		{"session", func(g kstream.Grouped[string, string]) {
			toOut(kstream.SessionWindowedBy(g, 3*ms).Grace(10*ms).Reduce(cat, o()...))
		}},
		{"session emit on close", func(g kstream.Grouped[string, string]) {
			toOut(kstream.SessionWindowedBy(g, 3*ms).Grace(10*ms).Reduce(cat, o(kstream.EmitOnWindowClose())...))
		}},
	}
}

// runWithRestarts pipes inputs one by one, restarting the driver after each,
// and returns the output and the records dropped by "w".
func runWithRestarts(t *testing.T, topo *kstream.Topology, parts int, inputs []wIn) ([]wRec[string], int64, *kstest.Driver) {
	t.Helper()
	d := kstest.NewDriver(t, topo, kstest.Partitions(parts))
	var dropped int64
	for _, p := range inputs {
		pipeAll(t, d, serde.String, serde.String, []wIn{p})
		dropped += d.Dropped("w")
		d.Restart()
	}
	return kstest.Output(d, "out", wSerde, serde.String).Records(), dropped, d
}

// A restart after every record must not change the output: windows and
// stream time come back from the changelog, so windows close at the same
// records and late records stay late.
func TestWindowsRestartTransparent(t *testing.T) {
	inputs := outOfOrderInputs(120)
	for _, c := range reduceCases() {
		for _, parts := range partitionCounts {
			t.Run(fmt.Sprintf("%s/partitions=%d", c.name, parts), func(t *testing.T) {
				topo := windowTopology(t, c.build)
				want, d0 := runWindows(t, topo, serde.String, parts, inputs)
				if len(want) == 0 || d0.Dropped("w") == 0 {
					t.Fatalf("the scenario should produce output (%d records) and late records (%d)", len(want), d0.Dropped("w"))
				}
				got, dropped, _ := runWithRestarts(t, topo, parts, inputs)
				checkRecords(t, "output with restarts", got, want)
				checkEqual(t, "dropped with restarts", dropped, d0.Dropped("w"))
			})
		}
	}
}

func TestWindowedRepartition(t *testing.T) {
	for _, parts := range partitionCounts {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			b := kstream.NewBuilder()
			s := kstream.Source(b, "in", serde.String, serde.String)
			// Re-key by value, through a named grouping shared by two
			// windowed aggregations.
			g := kstream.GroupBy(s, func(_, v string) string { return v }, serde.String, kstream.Named("by-page"))
			kstream.WindowedBy(g, kstream.Tumbling(10*ms)).Count(kstream.Named("per-10")).ToStream().To("out", nil, nil)
			kstream.SessionWindowedBy(g, 5*ms).Count(kstream.Named("visits")).ToStream().To("sessions", nil, nil)
			topo := mustBuild(t, b)
			checkEqual(t, "internal topics", topo.InternalTopics("kstest"), []string{
				"kstest-by-page-repartition", "kstest-per-10-changelog", "kstest-visits-changelog",
			})
			d := kstest.NewDriver(t, topo, kstest.Partitions(parts))
			pipeAll(t, d, serde.String, serde.String, []wIn{
				at(1, "u1", "/home"), at(3, "u2", "/home"), at(4, "u3", "/cart"), at(11, "u1", "/home"),
			})
			checkRecords(t, "out", kstest.Output(d, "out", wSerde, serde.Int64).Records(), []wRec[int64]{
				wrec[int64](1, "/home", 0, 10, 1), wrec[int64](3, "/home", 0, 10, 2),
				wrec[int64](4, "/cart", 0, 10, 1), wrec[int64](11, "/home", 10, 20, 1),
			})
			checkRecords(t, "sessions", kstest.Output(d, "sessions", wSerde, serde.Int64).Records(), []wRec[int64]{
				wrec[int64](1, "/home", 1, 1, 1), wtomb[int64](1, "/home", 1, 1), wrec[int64](3, "/home", 1, 3, 2),
				wrec[int64](4, "/cart", 4, 4, 1), wrec[int64](11, "/home", 11, 11, 1),
			})
		})
	}
}

func TestWindowedSerdes(t *testing.T) {
	keys := []wkey{
		{"", 0, 0}, {"", 0, 1}, {"", 1, 0}, {"a", -5, 3}, {"a", 0, 10}, {"a", 10, 20},
		{"a\x00", 0, 0}, {"a\x00b", 7, 9}, {"ab", 0, 10}, {"b", -1 << 62, 1 << 62},
	}
	var encs [][]byte
	for _, k := range keys {
		b, err := wSerde.Append([]byte("prefix"), k)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("prefix")) {
			t.Fatalf("Append(%+v) dropped dst: %q", k, b)
		}
		got, err := wSerde.Decode(b[len("prefix"):])
		if err != nil || got != k {
			t.Errorf("round trip of %+v: %+v, %v", k, got, err)
		}
		encs = append(encs, b[len("prefix"):])
	}
	// Encodings sort like (key bytes, start, end).
	if !slices.IsSortedFunc(encs, bytes.Compare) {
		t.Errorf("windowed encodings are not ordered like their keys: %q", encs)
	}
	if _, err := wSerde.Decode([]byte("a\x00\x01short")); err == nil {
		t.Error("decoding a truncated window succeeded")
	}

	// Kafka Streams' layouts.
	tw := kstream.TimeWindowedSerde(serde.String, 10*ms)
	b, _ := tw.Append(nil, wkey{"k", 20, 30})
	checkEqual(t, "time-windowed bytes", b, []byte("k\x00\x00\x00\x00\x00\x00\x00\x14"))
	got, err := tw.Decode(b)
	checkEqual(t, "time-windowed decode", got, wkey{"k", 20, 30})
	checkEqual(t, "time-windowed error", err, error(nil))
	sw := kstream.SessionWindowedSerde(serde.String)
	b, _ = sw.Append(nil, wkey{"k", 20, 25})
	checkEqual(t, "session-windowed bytes", b, []byte("k\x00\x00\x00\x00\x00\x00\x00\x19\x00\x00\x00\x00\x00\x00\x00\x14"))
	got, err = sw.Decode(b)
	checkEqual(t, "session-windowed decode", got, wkey{"k", 20, 25})
	checkEqual(t, "session-windowed error", err, error(nil))
}

func TestWindowBuildErrors(t *testing.T) {
	cases := []windowBuildError{
		{"zero size", func(g kstream.Grouped[string, string]) {
			kstream.WindowedBy(g, kstream.Tumbling(0)).Count(kstream.Named("w"))
		}, "window size 0s must be positive"},
		{"advance above size", func(g kstream.Grouped[string, string]) {
			kstream.WindowedBy(g, kstream.Hopping(10*ms, 11*ms)).Count(kstream.Named("w"))
		}, "window advance 11ms must be positive and at most the window size 10ms"},
		{"sub-millisecond", func(g kstream.Grouped[string, string]) {
			kstream.WindowedBy(g, kstream.Tumbling(1500*time.Microsecond)).Count(kstream.Named("w"))
		}, "window size 1.5ms is not a whole number of milliseconds"},
		{"negative grace", func(g kstream.Grouped[string, string]) {
			kstream.WindowedBy(g, kstream.Sliding(10*ms).Grace(-ms)).Count(kstream.Named("w"))
		}, "grace period -1ms must not be negative"},
		{"session gap", func(g kstream.Grouped[string, string]) {
			kstream.SessionWindowedBy(g, 0).Count(kstream.Named("w"))
		}, "session inactivity gap 0s must be positive"},
		{"zero time difference", func(g kstream.Grouped[string, string]) {
			kstream.WindowedBy(g, kstream.Sliding(0)).Count(kstream.Named("w"))
		}, "sliding window time difference 0s must be positive"},
		{"nil windows", func(g kstream.Grouped[string, string]) {
			kstream.WindowedBy(g, nil).Count(kstream.Named("w"))
		}, "nil window specification"},
		{"unnamed", func(g kstream.Grouped[string, string]) {
			kstream.WindowedBy(g, kstream.Tumbling(10*ms)).Count()
		}, "needs kstream.Named"},
	}
	testWindowBuildErrors(t, cases)
}

func TestWindowedDescribe(t *testing.T) {
	b := kstream.NewBuilder()
	g := kstream.Source(b, "in", serde.String, serde.String).GroupByKey()
	kstream.WindowedBy(g, kstream.Tumbling(time.Minute)).Count(kstream.Named("per-minute"))
	kstream.WindowedBy(g, kstream.Sliding(time.Minute)).Count(kstream.Named("sliding"))
	kstream.SessionWindowedBy(g, time.Minute).Count(kstream.Named("sessions"))
	desc := mustBuild(t, b).Describe()
	for _, want := range []string{
		"Processor: per-minute (windowed-count, stores: [per-minute])",
		"Processor: sliding (sliding-windowed-count, stores: [sliding])",
		"Processor: sessions (session-windowed-count, stores: [sessions])",
		"Store: per-minute (changelog: <appID>-per-minute-changelog)",
	} {
		if !strings.Contains(desc, want) {
			t.Errorf("Describe() lacks %q:\n%s", want, desc)
		}
	}
}

func ExampleWindowedBy() {
	b := kstream.NewBuilder()
	clicks := kstream.Source(b, "clicks", serde.String, serde.String) // user -> page
	perMinute := kstream.WindowedBy(clicks.GroupByKey(), kstream.Tumbling(time.Minute).Grace(10*time.Second))
	perMinute.Count(kstream.Named("clicks-per-minute"), kstream.EmitOnWindowClose()).
		ToStream().To("user-clicks", kstream.WindowedSerde(serde.String), serde.Int64)
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	d := kstest.NewDriver(nil, topo)
	defer d.Close()
	in := kstest.Input(d, "clicks", serde.String, serde.String)
	in.PipeAt(1_000, "ann", "/home")
	in.PipeAt(50_000, "ann", "/cart")
	in.PipeAt(61_000, "ann", "/home")
	in.PipeAt(59_000, "ann", "/help") // out of order, within the grace period
	in.PipeAt(70_000, "ann", "/home") // closes [0s, 60s)
	for _, r := range kstest.Output(d, "user-clicks", kstream.WindowedSerde(serde.String), serde.Int64).Records() {
		fmt.Printf("%s [%ds, %ds): %d clicks\n", r.Key.Key, r.Key.Start/1000, r.Key.End/1000, r.Value)
	}
	// Output:
	// ann [0s, 60s): 3 clicks
}

func ExampleSessionWindowedBy() {
	b := kstream.NewBuilder()
	clicks := kstream.Source(b, "clicks", serde.String, serde.String)
	// Visits: clicks at most 5 minutes apart. The grace period lets a late
	// click still join visits.
	kstream.SessionWindowedBy(clicks.GroupByKey(), 5*time.Minute).Grace(5*time.Minute).Count(kstream.Named("visits")).
		ToStream().To("visits", kstream.WindowedSerde(serde.String), serde.Int64)
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	d := kstest.NewDriver(nil, topo)
	defer d.Close()
	in := kstest.Input(d, "clicks", serde.String, serde.String)
	const minute = 60_000
	in.PipeAt(0, "ann", "/home")
	in.PipeAt(8*minute, "ann", "/home")
	in.PipeAt(4*minute, "ann", "/cart") // joins both visits into one
	for _, r := range kstest.Output(d, "visits", kstream.WindowedSerde(serde.String), serde.Int64).Records() {
		if r.Tombstone {
			fmt.Printf("%s [%dm, %dm]: merged away\n", r.Key.Key, r.Key.Start/minute, r.Key.End/minute)
			continue
		}
		fmt.Printf("%s [%dm, %dm]: %d clicks\n", r.Key.Key, r.Key.Start/minute, r.Key.End/minute, r.Value)
	}
	// Output:
	// ann [0m, 0m]: 1 clicks
	// ann [8m, 8m]: 1 clicks
	// ann [0m, 0m]: merged away
	// ann [8m, 8m]: merged away
	// ann [0m, 8m]: 3 clicks
}

// windowBuildError is a windowed aggregation that Build refuses: build adds
// it to a grouped stream, and the Build error contains want.
type windowBuildError struct {
	name  string
	build func(g kstream.Grouped[string, string])
	want  string
}

func testWindowBuildErrors(t *testing.T, cases []windowBuildError) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := kstream.NewBuilder()
			c.build(kstream.Source(b, "in", serde.String, serde.String).GroupByKey())
			_, err := b.Build()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Build error %v, want one containing %q", err, c.want)
			}
		})
	}
}
