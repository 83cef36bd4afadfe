package kstream_test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/kstest"
	"github.com/kstreamgo/kstream/serde"
)

// Cogroup tests. The topologies read "words" (string values), "amounts"
// (int64 values) and "ratings" (float64 values), all keyed by strings.

// cgStep is one input record of a cogroup test: v is a string, an int64 or
// a float64, as its topic takes; nil is a tombstone. An empty key is a null
// key.
type cgStep struct {
	topic string
	ts    int64
	key   string
	v     any
}

func cgPipe(t testing.TB, d *kstest.Driver, steps []cgStep) {
	t.Helper()
	for _, s := range steps {
		switch s.topic {
		case "words":
			cgPipeOne(t, kstest.Input(d, s.topic, serde.String, serde.String), s)
		case "amounts":
			cgPipeOne(t, kstest.Input(d, s.topic, serde.String, serde.Int64), s)
		case "ratings":
			cgPipeOne(t, kstest.Input(d, s.topic, serde.String, serde.Float64), s)
		default:
			t.Fatalf("no topic %q", s.topic)
		}
	}
}

func cgPipeOne[V any](t testing.TB, in *kstest.InputTopic[string, V], s cgStep) {
	t.Helper()
	var v V
	if s.v != nil {
		var ok bool
		if v, ok = s.v.(V); !ok {
			t.Fatalf("value %v (%T) for topic %s", s.v, s.v, s.topic)
		}
	}
	switch {
	case s.key == "":
		in.PipeNullKeyAt(s.ts, v)
	case s.v == nil:
		in.PipeTombstoneAt(s.ts, s.key)
	default:
		in.PipeAt(s.ts, s.key, v)
	}
}

// cgWords and cgAmounts fold words ("+w") and amounts ("#n") into a string.
func cgWords(_ string, v, a string) string { return a + "+" + v }

func cgAmounts(_ string, v int64, a string) string { return a + "#" + strconv.FormatInt(v, 10) }

func cgEmpty() string { return "" }

// cgTwo cogroups "words" and "amounts", grouped by key.
func cgTwo(b *kstream.Builder) kstream.Cogrouped[string, string] {
	words := kstream.Source(b, "words", serde.String, serde.String).GroupByKey()
	amounts := kstream.Source(b, "amounts", serde.String, serde.Int64).GroupByKey()
	return kstream.CogroupWith(kstream.Cogroup(words, cgWords), amounts, cgAmounts)
}

// sortByKey orders records by key, stably (each key keeps its order), and
// drops headers: outputs whose interleaving across partitions depends on
// where keys land compare per key.
func sortByKey[K cmp.Ordered, V any](rs []kstream.Record[K, V]) []kstream.Record[K, V] {
	out := slices.Clone(rs)
	for i := range out {
		out[i].Headers = nil
	}
	slices.SortStableFunc(out, func(a, b kstream.Record[K, V]) int { return cmp.Compare(a.Key, b.Key) })
	return out
}

func TestCogroupTwoStreams(t *testing.T) {
	for _, parts := range partitionCounts {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			b := kstream.NewBuilder()
			kstream.AggregateCogrouped(cgTwo(b), cgEmpty, serde.String, kstream.Named("cg")).
				ToStream().To("out", serde.String, serde.String)
			topo := mustBuild(t, b)
			checkEqual(t, "internal topics", topo.InternalTopics("kstest"), []string{"kstest-cg-changelog"})
			d := kstest.NewDriver(t, topo, kstest.Partitions(parts))
			cgPipe(t, d, []cgStep{
				{"words", 10, "a", "x"},
				{"amounts", 4, "a", int64(5)}, // older than the aggregate: keeps ts 10
				{"amounts", 7, "b", int64(2)},
				{"words", 11, "", "n"},        // null key: dropped
				{"amounts", 12, "", int64(9)}, // null key: dropped
				{"words", 20, "a", nil},       // tombstone: dropped
				{"amounts", 21, "b", nil},     // tombstone: dropped
				{"words", 30, "b", "y"},
				{"amounts", 15, "a", int64(1)},
			})
			got := kstest.Output(d, "out", serde.String, serde.String).Records()
			checkRecords(t, "out", sortByKey(got), []strRec{
				rec(10, "a", "+x"), rec(10, "a", "+x#5"), rec(15, "a", "+x#5#1"),
				rec(7, "b", "#2"), rec(30, "b", "#2+y"),
			})
			checkEqual(t, "dropped", d.Dropped("cg"), int64(4))
			checkStore(t, d, "cg", serde.String, map[string]string{"a": "+x#5#1", "b": "#2+y"})
		})
	}
}

// cgStats is the aggregate of three streams of different value types.
type cgStats struct {
	Words   []string
	Total   int64
	Ratings float64
	N       int
}

func TestCogroupThreeStreams(t *testing.T) {
	for _, parts := range partitionCounts {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			b := kstream.NewBuilder()
			words := kstream.Source(b, "words", serde.String, serde.String).GroupByKey()
			amounts := kstream.Source(b, "amounts", serde.String, serde.Int64).GroupByKey()
			ratings := kstream.Source(b, "ratings", serde.String, serde.Float64).GroupByKey()
			c := kstream.Cogroup(words, func(_ string, v string, a cgStats) cgStats {
				a.Words, a.N = append(a.Words, v), a.N+1
				return a
			})
			c = kstream.CogroupWith(c, amounts, func(_ string, v int64, a cgStats) cgStats {
				a.Total, a.N = a.Total+v, a.N+1
				return a
			})
			c = kstream.CogroupWith(c, ratings, func(_ string, v float64, a cgStats) cgStats {
				a.Ratings, a.N = a.Ratings+v, a.N+1
				return a
			})
			stats := serde.JSON[cgStats]()
			kstream.AggregateCogrouped(c, func() cgStats { return cgStats{Words: []string{}} }, stats, kstream.Named("stats")).
				ToStream().To("out", serde.String, stats)
			d := kstest.NewDriver(t, mustBuild(t, b), kstest.Partitions(parts))
			cgPipe(t, d, []cgStep{
				{"words", 1, "a", "hello"},
				{"ratings", 2, "a", 4.5},
				{"amounts", 3, "b", int64(7)},
				{"amounts", 4, "a", int64(10)},
				{"ratings", 5, "b", 1.0},
				{"words", 6, "a", "world"},
				{"ratings", 7, "a", nil},
				{"amounts", 8, "a", int64(-3)},
			})
			out := kstest.Output(d, "out", serde.String, stats)
			got := out.Records()
			want := []kstream.Record[string, cgStats]{
				rec(1, "a", cgStats{Words: []string{"hello"}, N: 1}),
				rec(2, "a", cgStats{Words: []string{"hello"}, Ratings: 4.5, N: 2}),
				rec(4, "a", cgStats{Words: []string{"hello"}, Total: 10, Ratings: 4.5, N: 3}),
				rec(6, "a", cgStats{Words: []string{"hello", "world"}, Total: 10, Ratings: 4.5, N: 4}),
				rec(8, "a", cgStats{Words: []string{"hello", "world"}, Total: 7, Ratings: 4.5, N: 5}),
				rec(3, "b", cgStats{Words: []string{}, Total: 7, N: 1}),
				rec(5, "b", cgStats{Words: []string{}, Total: 7, Ratings: 1, N: 2}),
			}
			checkRecords(t, "out", sortByKey(got), want)
			checkStore(t, d, "stats", stats, map[string]cgStats{"a": want[4].Value, "b": want[6].Value})
			checkEqual(t, "dropped", d.Dropped("stats"), int64(1))
		})
	}
}

// TestCogroupRepartition cogroups three streams of page events: clicks
// (user -> page) regrouped by page with GroupBy (an unnamed grouping),
// views (page -> count) already keyed by page, and purchases (order ->
// page) re-keyed by SelectKey and grouped with a name. Whatever the number
// of partitions, and so wherever the records land, the totals are right.
func TestCogroupRepartition(t *testing.T) {
	build := func() *kstream.Topology {
		b := kstream.NewBuilder()
		clicks := kstream.GroupBy(kstream.Source(b, "clicks", serde.String, serde.String),
			func(_, page string) string { return page }, serde.String)
		views := kstream.Source(b, "views", serde.String, serde.Int64).GroupByKey()
		purchases := kstream.SelectKey(kstream.Source(b, "purchases", serde.String, serde.String),
			func(_, page string) string { return page }).GroupByKey(kstream.Named("by-page"))
		c := kstream.Cogroup(clicks, func(_, _ string, a int64) int64 { return a + 1 })
		c = kstream.CogroupWith(c, views, func(_ string, n, a int64) int64 { return a + 10*n })
		c = kstream.CogroupWith(c, purchases, func(_, _ string, a int64) int64 { return a + 1000 })
		kstream.AggregateCogrouped(c, func() int64 { return 0 }, serde.Int64, kstream.Named("page-stats")).
			ToStream().To("out", serde.String, serde.Int64)
		return mustBuild(t, b)
	}
	topo := build()
	checkEqual(t, "internal topics", topo.InternalTopics("kstest"), []string{
		"kstest-by-page-repartition", "kstest-page-stats-changelog", "kstest-page-stats-cogroup-0-repartition",
	})
	rng := rand.New(rand.NewPCG(1, 2))
	pages := []string{"/home", "/cart", "/help", "/about", "/shop"}
	want := map[string]int64{}
	var steps []func(d *kstest.Driver)
	for i := range 300 {
		page := pages[rng.IntN(len(pages))]
		id := strconv.Itoa(i)
		ts := int64(i)
		switch rng.IntN(3) {
		case 0:
			want[page]++
			steps = append(steps, func(d *kstest.Driver) {
				kstest.Input(d, "clicks", serde.String, serde.String).PipeAt(ts, "user"+id, page)
			})
		case 1:
			n := int64(rng.IntN(5))
			want[page] += 10 * n
			steps = append(steps, func(d *kstest.Driver) {
				kstest.Input(d, "views", serde.String, serde.Int64).PipeAt(ts, page, n)
			})
		default:
			want[page] += 1000
			steps = append(steps, func(d *kstest.Driver) {
				kstest.Input(d, "purchases", serde.String, serde.String).PipeAt(ts, "order"+id, page)
			})
		}
	}
	for _, parts := range []int{1, 2, 3, 5} {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			d := kstest.NewDriver(t, build(), kstest.Partitions(parts))
			for _, s := range steps {
				s(d)
			}
			out := kstest.Output(d, "out", serde.String, serde.Int64)
			recs := out.Records()
			if len(recs) != len(steps) {
				t.Errorf("%d updates, want one per record (%d)", len(recs), len(steps))
			}
			got := map[string]int64{}
			for _, r := range recs {
				if r.Value < got[r.Key] {
					t.Errorf("total of %s went down: %d after %d", r.Key, r.Value, got[r.Key])
				}
				got[r.Key] = r.Value
			}
			checkEqual(t, "totals", got, want)
			checkStore(t, d, "page-stats", serde.Int64, want)
		})
	}
}

// TestCogroupTimestamps: an update is stamped with the larger of the
// record's timestamp and the aggregate's, whichever stream updates it.
func TestCogroupTimestamps(t *testing.T) {
	b := kstream.NewBuilder()
	kstream.AggregateCogrouped(cgTwo(b), cgEmpty, serde.String, kstream.Named("cg")).
		ToStream().To("out", serde.String, serde.String)
	d := kstest.NewDriver(t, mustBuild(t, b))
	cgPipe(t, d, []cgStep{
		{"amounts", 50, "a", int64(1)},
		{"words", 20, "a", "x"},
		{"words", 70, "a", "y"},
		{"amounts", 60, "a", int64(2)},
		{"words", 5, "b", "z"},
	})
	checkRecords(t, "out", kstest.Output(d, "out", serde.String, serde.String).Records(), []strRec{
		rec(50, "a", "#1"), rec(50, "a", "#1+x"), rec(70, "a", "#1+x+y"), rec(70, "a", "#1+x+y#2"), rec(5, "b", "+z"),
	})
}

// TestCogroupWindowed checks the windowed cogroups against hand-traced
// results: tumbling windows with grace, their final results only, and the
// windows kept with a longer retention.
func TestCogroupWindowed(t *testing.T) {
	steps := []cgStep{
		{"words", 1, "a", "x"},
		{"amounts", 3, "a", int64(5)},
		{"words", 12, "a", "y"},        // stream time 12
		{"amounts", 9, "a", int64(6)},  // [0, 10) open until 15
		{"amounts", 16, "a", int64(7)}, // stream time 16: [0, 10) closes
		{"words", 8, "a", "late"},      // late for the words too, though their own largest timestamp is 12
		{"words", 14, "b", "v"},
		{"amounts", 30, "b", int64(1)}, // stream time 30: [10, 20) closes
		{"words", 2, "", "n"},          // null key
		{"amounts", 31, "b", nil},      // tombstone
	}
	cases := []struct {
		name string
		opts []kstream.Opt
		want []wRec[string]
	}{
		{"updates", nil, []wRec[string]{
			wrec(1, "a", 0, 10, "+x"), wrec(3, "a", 0, 10, "+x#5"), wrec(12, "a", 10, 20, "+y"),
			wrec(9, "a", 0, 10, "+x#5#6"), wrec(16, "a", 10, 20, "+y#7"), wrec(14, "b", 10, 20, "+v"),
			wrec(30, "b", 30, 40, "#1"),
		}},
		{"emit-on-close", []kstream.Opt{kstream.EmitOnWindowClose()}, []wRec[string]{
			wrec(9, "a", 0, 10, "+x#5#6"),
			wrec(16, "a", 10, 20, "+y#7"), wrec(14, "b", 10, 20, "+v"),
		}},
		{"retention", []kstream.Opt{kstream.Retention(time.Minute)}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := kstream.NewBuilder()
			opts := append([]kstream.Opt{kstream.Named("cw")}, c.opts...)
			kstream.AggregateCogroupedWindowed(cgTwo(b), kstream.Tumbling(10*ms).Grace(5*ms), cgEmpty, serde.String, opts...).
				ToStream().To("out", wSerde, serde.String)
			d := kstest.NewDriver(t, mustBuild(t, b))
			cgPipe(t, d, steps)
			got := kstest.Output(d, "out", wSerde, serde.String).Records()
			for i := range got {
				got[i].Headers = nil
			}
			if c.want != nil {
				checkRecords(t, "out", got, c.want)
			}
			checkEqual(t, "dropped", d.Dropped("cw"), int64(3))
			if c.name == "retention" {
				checkWindowStore(t, d, "cw", serde.String, map[wkey]string{
					{Key: "a", Start: 0, End: 10}: "+x#5#6", {Key: "b", Start: 30, End: 40}: "#1",
				})
			} else {
				checkWindowStore(t, d, "cw", serde.String, map[wkey]string{{Key: "b", Start: 30, End: 40}: "#1"},
					wkey{Key: "a", Start: 0, End: 10}, wkey{Key: "a", Start: 10, End: 20})
			}
		})
	}
}

// cgVal is a record of either stream, for the reference topology of
// TestCogroupWindowedLikeMerged.
type cgVal struct {
	word   string
	amount int64
	isWord bool
}

func cgFold(k string, v cgVal, a string) string {
	if v.isWord {
		return cgWords(k, v.word, a)
	}
	return cgAmounts(k, v.amount, a)
}

// cgWindowCase is a windowed aggregation built twice: over a cogroup of
// "words" and "amounts", and over their merge, mapped to cgVal, folded by
// cgFold. Given the records in the same order, both must give the same
// output.
type cgWindowCase struct {
	name      string
	cogroup   func(c kstream.Cogrouped[string, string], opts ...kstream.Opt) kstream.Table[wkey, string]
	reference func(g kstream.Grouped[string, cgVal], opts ...kstream.Opt) kstream.Table[wkey, string]
}

func cgWindowCases() []cgWindowCase {
	windowed := func(w kstream.Windows) cgWindowCase {
		return cgWindowCase{
			cogroup: func(c kstream.Cogrouped[string, string], opts ...kstream.Opt) kstream.Table[wkey, string] {
				return kstream.AggregateCogroupedWindowed(c, w, cgEmpty, serde.String, opts...)
			},
			reference: func(g kstream.Grouped[string, cgVal], opts ...kstream.Opt) kstream.Table[wkey, string] {
				return kstream.AggregateWindowed(kstream.WindowedBy(g, w), cgEmpty, cgFold, serde.String, opts...)
			},
		}
	}
	mergeSessions := func(_, a, b string) string { return a + "|" + b }
	session := cgWindowCase{
		cogroup: func(c kstream.Cogrouped[string, string], opts ...kstream.Opt) kstream.Table[wkey, string] {
			return kstream.AggregateCogroupedSession(c, 10*ms, 5*ms, cgEmpty, mergeSessions, serde.String, opts...)
		},
		reference: func(g kstream.Grouped[string, cgVal], opts ...kstream.Opt) kstream.Table[wkey, string] {
			return kstream.AggregateSession(kstream.SessionWindowedBy(g, 10*ms).Grace(5*ms), cgEmpty, cgFold, mergeSessions, serde.String, opts...)
		},
	}
	cases := []cgWindowCase{
		windowed(kstream.Tumbling(10 * ms).Grace(5 * ms)),
		windowed(kstream.Hopping(10*ms, 3*ms).Grace(4 * ms)),
		windowed(kstream.Sliding(10 * ms).Grace(5 * ms)),
		session,
	}
	for i, n := range []string{"tumbling", "hopping", "sliding", "session"} {
		cases[i].name = n
	}
	return cases
}

// cgRandomSteps returns n records of keys a..d for "words" and "amounts",
// with timestamps moving forward and often back, so that records are out
// of order and late; a few null keys and tombstones.
func cgRandomSteps(seed uint64, n int) []cgStep {
	rng := rand.New(rand.NewPCG(seed, 7))
	var steps []cgStep
	var now int64
	for i := range n {
		now += int64(rng.IntN(4))
		ts := max(0, now-int64(rng.IntN(25)))
		key := string(rune('a' + rng.IntN(4)))
		if rng.IntN(40) == 0 {
			key = ""
		}
		var s cgStep
		if rng.IntN(2) == 0 {
			s = cgStep{"words", ts, key, "w" + strconv.Itoa(i)}
		} else {
			s = cgStep{"amounts", ts, key, int64(i)}
		}
		if key != "" && rng.IntN(40) == 0 {
			s.v = nil
		}
		steps = append(steps, s)
	}
	return steps
}

// TestCogroupWindowedLikeMerged: with one stream time per aggregation, a
// windowed cogroup behaves exactly as the windowed aggregation of its
// streams merged, in every kind of window, with and without
// EmitOnWindowClose, and across restarts from the changelogs.
func TestCogroupWindowedLikeMerged(t *testing.T) {
	steps := cgRandomSteps(3, 400)
	for _, c := range cgWindowCases() {
		for _, emit := range []bool{false, true} {
			for _, restart := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/emit-on-close=%v/restart=%v", c.name, emit, restart), func(t *testing.T) {
					opts := []kstream.Opt{kstream.Named("w")}
					if emit {
						opts = append(opts, kstream.EmitOnWindowClose())
					}
					b := kstream.NewBuilder()
					c.cogroup(cgTwo(b), opts...).ToStream().To("out", wSerde, serde.String)
					got, dropped := cgRun(t, mustBuild(t, b), steps, restart)

					rb := kstream.NewBuilder()
					words := kstream.MapValues(kstream.Source(rb, "words", serde.String, serde.String),
						func(v string) cgVal { return cgVal{word: v, isWord: true} })
					amounts := kstream.MapValues(kstream.Source(rb, "amounts", serde.String, serde.Int64),
						func(v int64) cgVal { return cgVal{amount: v} })
					c.reference(words.Merge(amounts).GroupByKey(), opts...).ToStream().To("out", wSerde, serde.String)
					want, wantDropped := cgRun(t, mustBuild(t, rb), steps, false)

					if len(want) < 20 || wantDropped < 10 {
						t.Fatalf("the scenario should give output (%d records) and drop records (%d)", len(want), wantDropped)
					}
					checkRecords(t, "out", got, want)
					checkEqual(t, "dropped", dropped, wantDropped)
				})
			}
		}
	}
}

// cgRun pipes steps through topo with one partition, restarting the driver
// every 37 records if restart, and returns the output and the number of
// records the node "w" dropped.
func cgRun(t *testing.T, topo *kstream.Topology, steps []cgStep, restart bool) ([]wRec[string], int64) {
	t.Helper()
	d := kstest.NewDriver(t, topo)
	out := kstest.Output(d, "out", wSerde, serde.String)
	var got []wRec[string]
	var dropped int64
	for i, s := range steps {
		cgPipe(t, d, []cgStep{s})
		if restart && i%37 == 36 {
			got = append(got, out.Records()...)
			dropped += d.Dropped("w")
			d.Restart()
		}
	}
	got = append(got, out.Records()...)
	for i := range got {
		got[i].Headers = nil
	}
	return got, dropped + d.Dropped("w")
}

// TestCogroupRestart: after a crash, the aggregates restored from the
// changelog continue where they were.
func TestCogroupRestart(t *testing.T) {
	for _, parts := range partitionCounts {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			b := kstream.NewBuilder()
			kstream.AggregateCogrouped(cgTwo(b), cgEmpty, serde.String, kstream.Named("cg")).
				ToStream().To("out", serde.String, serde.String)
			d := kstest.NewDriver(t, mustBuild(t, b), kstest.Partitions(parts))
			cgPipe(t, d, []cgStep{{"words", 1, "a", "x"}, {"amounts", 2, "a", int64(1)}, {"amounts", 3, "b", int64(2)}})
			out := kstest.Output(d, "out", serde.String, serde.String)
			before := kstest.LatestByKey(out)
			checkEqual(t, "before the restart", before, map[string]string{"a": "+x#1", "b": "#2"})
			d.Restart()
			checkStore(t, d, "cg", serde.String, before)
			if got := out.Records(); len(got) != 0 {
				t.Errorf("the restart produced output: %v", got)
			}
			cgPipe(t, d, []cgStep{{"words", 4, "b", "y"}, {"amounts", 5, "a", int64(3)}})
			checkRecords(t, "after the restart", sortByKey(out.Records()), []strRec{rec(5, "a", "+x#1#3"), rec(4, "b", "#2+y")})
		})
	}
}

// TestCogroupCached drives a task directly (kstest flushes after every
// record): with Cached, updates from both streams wait for the flush, one
// per key.
func TestCogroupCached(t *testing.T) {
	b := kstream.NewBuilder()
	words := kstream.Source(b, "words", serde.String, serde.String).GroupByKey()
	amounts := kstream.Source(b, "amounts", serde.String, serde.Int64).GroupByKey()
	c := kstream.CogroupWith(kstream.Cogroup(words, func(_, _ string, a int64) int64 { return a + 1 }),
		amounts, func(_ string, v, a int64) int64 { return a + v })
	kstream.AggregateCogrouped(c, func() int64 { return 0 }, serde.Int64, kstream.Named("cg"), kstream.Cached()).
		ToStream().To("out", serde.String, serde.Int64)
	task := firstTask(t, b)
	process := func(topic, key string, value []byte, ts int64) {
		t.Helper()
		if err := task.Process(topic, []graph.RawRecord{{Key: []byte(key), Value: value, Timestamp: ts, Offset: ts}}); err != nil {
			t.Fatal(err)
		}
	}
	n := func(v int64) []byte { b, _ := serde.Int64.Append(nil, v); return b }
	out := func() []string {
		t.Helper()
		return sinkOutput(t, task, func(k []byte, ts int64) string { return fmt.Sprintf("%s@%d", k, ts) })
	}
	process("words", "a", []byte("x"), 1)
	process("amounts", "b", n(10), 2)
	process("amounts", "a", n(5), 3)
	process("words", "a", []byte("y"), 4)
	if got := out(); len(got) != 0 {
		t.Errorf("output before the flush: %q", got)
	}
	if err := task.Flush(); err != nil {
		t.Fatal(err)
	}
	checkEqual(t, "after the flush", out(), []string{"b@2=10", "a@4=7"})
	process("amounts", "b", n(1), 5)
	if err := task.Flush(); err != nil {
		t.Fatal(err)
	}
	checkEqual(t, "after the second flush", out(), []string{"b@5=11"})
}

func TestCogroupBuildErrors(t *testing.T) {
	type custom struct{ N int }
	cases := []struct {
		name  string
		build func(b *kstream.Builder)
		want  []string
	}{
		{"missing name", func(b *kstream.Builder) {
			kstream.AggregateCogrouped(cgTwo(b), cgEmpty, serde.String)
		}, []string{"cogroup-aggregate operator after node", "needs kstream.Named"}},
		{"missing aggregate serde", func(b *kstream.Builder) {
			words := kstream.Source(b, "words", serde.String, serde.String).GroupByKey()
			c := kstream.Cogroup(words, func(_, _ string, a custom) custom { return a })
			kstream.AggregateCogrouped(c, func() custom { return custom{} }, nil, kstream.Named("cg"))
		}, []string{"node cg: no aggregate value serde"}},
		{"missing key serde", func(b *kstream.Builder) {
			s := kstream.Map(kstream.Source(b, "words", serde.String, serde.String),
				func(k, v string) (custom, string) { return custom{len(v)}, v })
			c := kstream.Cogroup(s.GroupByKey(), func(_ custom, _ string, a int64) int64 { return a + 1 })
			kstream.AggregateCogrouped(c, func() int64 { return 0 }, serde.Int64, kstream.Named("cg"))
		}, []string{"node cg-cogroup-0-repartition-sink: no key serde"}},
		{"nil initializer and aggregator", func(b *kstream.Builder) {
			words := kstream.Source(b, "words", serde.String, serde.String).GroupByKey()
			amounts := kstream.Source(b, "amounts", serde.String, serde.Int64).GroupByKey()
			c := kstream.CogroupWith(kstream.Cogroup(words, cgWords), amounts, nil)
			kstream.AggregateCogrouped(c, nil, serde.String, kstream.Named("cg"))
		}, []string{"cogroup-aggregate cg: the initializer is nil", "cogroup-aggregate cg: the aggregator of stream 1 (after node"}},
		{"another builder", func(b *kstream.Builder) {
			other := kstream.Source(kstream.NewBuilder(), "amounts", serde.String, serde.Int64).GroupByKey()
			words := kstream.Source(b, "words", serde.String, serde.String).GroupByKey()
			kstream.AggregateCogrouped(kstream.CogroupWith(kstream.Cogroup(words, cgWords), other, cgAmounts),
				cgEmpty, serde.String, kstream.Named("cg"))
		}, []string{"CogroupWith: the grouped stream after node", "belongs to another Builder"}},
		{"cogrouped twice", func(b *kstream.Builder) {
			words := kstream.Source(b, "words", serde.String, serde.String, kstream.Named("words-src")).GroupByKey()
			c := kstream.CogroupWith(kstream.Cogroup(words, cgWords), words, cgWords)
			kstream.AggregateCogrouped(c, cgEmpty, serde.String, kstream.Named("cg"))
		}, []string{"CogroupWith: the stream after node words-src is cogrouped twice"}},
		{"one repartition topic for two groupings", func(b *kstream.Builder) {
			first := func(_, v string) string { return v[:1] }
			g1 := kstream.GroupBy(kstream.Source(b, "words", serde.String, serde.String), first, serde.String, kstream.Named("g"))
			g2 := kstream.GroupBy(kstream.Source(b, "more", serde.String, serde.String), first, serde.String, kstream.Named("g"))
			kstream.AggregateCogrouped(kstream.CogroupWith(kstream.Cogroup(g1, cgWords), g2, cgWords),
				cgEmpty, serde.String, kstream.Named("cg"))
		}, []string{"cogroup-aggregate cg: streams 0 (after node", "would both repartition through topic <appID>-g-repartition"}},
		{"bad window", func(b *kstream.Builder) {
			kstream.AggregateCogroupedWindowed(cgTwo(b), kstream.Hopping(10*ms, 20*ms), cgEmpty, serde.String, kstream.Named("cw"))
		}, []string{"cogroup-windowed-aggregate cw: window advance"}},
		{"nil window", func(b *kstream.Builder) {
			kstream.AggregateCogroupedWindowed(cgTwo(b), nil, cgEmpty, serde.String, kstream.Named("cw"))
		}, []string{"cogroup-windowed-aggregate cw: nil window specification"}},
		{"short retention", func(b *kstream.Builder) {
			kstream.AggregateCogroupedWindowed(cgTwo(b), kstream.Sliding(10*ms), cgEmpty, serde.String,
				kstream.Named("cs"), kstream.Retention(10*ms))
		}, []string{"cogroup-sliding-windowed-aggregate cs: retention 10ms must be at least twice the time difference"}},
		{"bad session", func(b *kstream.Builder) {
			kstream.AggregateCogroupedSession(cgTwo(b), 0, -time.Second, cgEmpty, nil, serde.String, kstream.Named("cses"))
		}, []string{"cogroup-session-windowed-aggregate cses: session inactivity gap 0s must be positive",
			"cogroup-session-windowed-aggregate cses: the session merger is nil"}},
		{"unnamed windowed", func(b *kstream.Builder) {
			kstream.AggregateCogroupedWindowed(cgTwo(b), kstream.Tumbling(time.Second), cgEmpty, serde.String)
		}, []string{"the cogroup-windowed-aggregate operator after node", "needs kstream.Named"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := kstream.NewBuilder()
			c.build(b)
			_, err := b.Build()
			if err == nil {
				t.Fatalf("Build succeeded, want errors containing %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Build error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestCogroupZeroValues: the zero Cogrouped and Grouped make nothing, and
// CogroupWith of the zero Cogrouped starts one.
func TestCogroupZeroValues(t *testing.T) {
	if tbl := kstream.AggregateCogrouped(kstream.Cogrouped[string, string]{}, cgEmpty, serde.String, kstream.Named("x")); tbl.StoreName() != "" {
		t.Errorf("the zero Cogrouped made a table with store %q", tbl.StoreName())
	}
	if tbl := kstream.AggregateCogrouped(kstream.Cogroup(kstream.Grouped[string, string]{}, cgWords), cgEmpty, serde.String); tbl.StoreName() != "" {
		t.Errorf("the zero Grouped made a table with store %q", tbl.StoreName())
	}
	b := kstream.NewBuilder()
	words := kstream.Source(b, "words", serde.String, serde.String).GroupByKey()
	c := kstream.CogroupWith(kstream.Cogrouped[string, string]{}, words, cgWords)
	kstream.AggregateCogrouped(c, cgEmpty, serde.String, kstream.Named("cg")).ToStream().To("out", nil, nil)
	d := kstest.NewDriver(t, mustBuild(t, b))
	cgPipe(t, d, []cgStep{{"words", 1, "a", "x"}})
	checkRecords(t, "out", kstest.Output(d, "out", serde.String, serde.String).Records(), []strRec{rec(1, "a", "+x")})
}

func TestCogroupDescribe(t *testing.T) {
	b := kstream.NewBuilder()
	words := kstream.Source(b, "words", serde.String, serde.String, kstream.Named("words-source"))
	regrouped := kstream.GroupBy(words, func(_, v string) string { return v }, serde.String)
	amounts := kstream.Source(b, "amounts", serde.String, serde.Int64, kstream.Named("amounts-source")).GroupByKey()
	kstream.AggregateCogrouped(kstream.CogroupWith(kstream.Cogroup(regrouped, cgWords), amounts, cgAmounts),
		cgEmpty, serde.String, kstream.Named("cg")).ToStream().To("out", nil, nil)
	topo := mustBuild(t, b)
	desc := topo.Describe()
	for _, want := range []string{
		"Processor: cg-cogroup-agg-0 (cogroup-agg, stores: [cg])",
		"Processor: cg-cogroup-agg-1 (cogroup-agg, stores: [cg])",
		"Processor: cg (cogroup-aggregate, stores: [cg])",
		"<-- cg-cogroup-agg-0, cg-cogroup-agg-1",
		"Source: cg-cogroup-0-repartition-source (topic: <appID>-cg-cogroup-0-repartition)",
		"Store: cg (changelog: <appID>-cg-changelog)",
	} {
		if !strings.Contains(desc, want) {
			t.Errorf("Describe() lacks %q:\n%s", want, desc)
		}
	}
	// The aggregation and both its inputs are one sub-topology: the
	// repartition topic and "amounts" are co-partitioned.
	if n := strings.Count(desc, "Sub-topology"); n != 2 {
		t.Errorf("%d sub-topologies, want 2:\n%s", n, desc)
	}
	t.Logf("\n%s", desc)
	m := topo.Mermaid()
	for _, want := range []string{"cg-cogroup-agg-0", "cg-cogroup-agg-1", `"<appID>-cg-cogroup-0-repartition"`} {
		if !strings.Contains(m, want) {
			t.Errorf("Mermaid() lacks %q:\n%s", want, m)
		}
	}
}

func ExampleCogroup() {
	b := kstream.NewBuilder()
	// Per customer: orders (order amounts in cents) and returns (refunded
	// amounts), two streams of different value types, into one balance.
	type balance struct{ Orders, Returns, Net int64 }
	orders := kstream.Source(b, "orders", serde.String, serde.Int64).GroupByKey()
	returns := kstream.Source(b, "returns", serde.String, serde.Float64).GroupByKey()
	c := kstream.Cogroup(orders, func(_ string, cents int64, a balance) balance {
		a.Orders++
		a.Net += cents
		return a
	})
	c = kstream.CogroupWith(c, returns, func(_ string, refund float64, a balance) balance {
		a.Returns++
		a.Net -= int64(refund * 100)
		return a
	})
	kstream.AggregateCogrouped(c, func() balance { return balance{} }, serde.JSON[balance](), kstream.Named("balances")).
		ToStream().To("balances", serde.String, serde.JSON[balance]())
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	d := kstest.NewDriver(nil, topo)
	defer d.Close()
	kstest.Input(d, "orders", serde.String, serde.Int64).Pipe("ann", 2500)
	kstest.Input(d, "returns", serde.String, serde.Float64).Pipe("ann", 5.5)
	kstest.Input(d, "orders", serde.String, serde.Int64).Pipe("bob", 900)
	for _, r := range kstest.Output(d, "balances", serde.String, serde.JSON[balance]()).Records() {
		fmt.Printf("%s: %+v\n", r.Key, r.Value)
	}
	// Output:
	// ann: {Orders:1 Returns:0 Net:2500}
	// ann: {Orders:1 Returns:1 Net:1950}
	// bob: {Orders:1 Returns:0 Net:900}
}
