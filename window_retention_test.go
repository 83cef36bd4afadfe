package kstream_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/internal/runtime"
	"github.com/kstreamgo/kstream/kstest"
	"github.com/kstreamgo/kstream/serde"
	"github.com/kstreamgo/kstream/state"
)

// fetchWindow reads the window w of the count "w" with kstest.WindowStore.
func fetchWindow(t testing.TB, d *kstest.Driver, w wkey) (int64, bool) {
	t.Helper()
	for _, r := range kstest.WindowStore(d, "w", serde.String, serde.Int64).Fetch(w.Key, w.Start, w.Start) {
		if r.Key == w {
			return r.Value, true
		}
	}
	return 0, false
}

// TestWindowRetention follows one window w of key "a" of a count through
// closing and expiry, with the default retention, with Retention set to the
// minimum (the same), and with a longer one, with and without emit-on-close.
// Stream time moves with records of fresh keys, which make windows of their
// own and nothing else. A longer retention keeps w in the store after it
// closed, until its bound, and changes nothing else: a record for w is late
// and dropped, w's count does not change, a restart emits nothing again and
// the output is the same as with the default.
func TestWindowRetention(t *testing.T) {
	cases := []struct {
		name               string
		count              func(g kstream.Grouped[string, string], opts ...kstream.Opt) kstream.Table[wkey, int64]
		minimum, retention time.Duration
		create             []int64 // the timestamps of the records of "a" that make w
		w                  wkey
		n                  int64 // w's count
		// goneAt is the first stream time at which w is closed and deleted
		// with the minimum retention.
		goneAt int64
		late   int64 // a record of "a" late for w at stream time goneAt
		// near is a record of "a", not late, that would merge with w if the
		// aggregation saw closed sessions (0: none).
		near int64
		// expireAt is the first stream time at which w is deleted with
		// retention.
		expireAt int64
	}{
		{
			// [0,10) closes when 10 + 5 <= stream time, and expires when
			// 0 <= stream time - retention.
			name: "tumbling",
			count: func(g kstream.Grouped[string, string], opts ...kstream.Opt) kstream.Table[wkey, int64] {
				return kstream.WindowedBy(g, kstream.Tumbling(10*ms).Grace(5*ms)).Count(opts...)
			},
			minimum: 15 * ms, retention: 30 * ms,
			create: []int64{1, 3}, w: wkey{"a", 0, 10}, n: 2,
			goneAt: 15, late: 4, expireAt: 30,
		},
		{
			// As tumbling: the records at 1 and 3 are only in [0,10), and
			// so is the late record at 4.
			name: "hopping",
			count: func(g kstream.Grouped[string, string], opts ...kstream.Opt) kstream.Table[wkey, int64] {
				return kstream.WindowedBy(g, kstream.Hopping(10*ms, 5*ms).Grace(5*ms)).Count(opts...)
			},
			minimum: 15 * ms, retention: 30 * ms,
			create: []int64{1, 3}, w: wkey{"a", 0, 10}, n: 2,
			goneAt: 15, late: 4, expireAt: 30,
		},
		{
			// [10,20] closes when 20 + 5 < stream time (at 26), and expires
			// once closed and 10 <= store time - retention, the store time
			// being the largest window start, here stream time - 10: at 45
			// with the minimum, 2*10 + 5, and at 60 with 40.
			name: "sliding",
			count: func(g kstream.Grouped[string, string], opts ...kstream.Opt) kstream.Table[wkey, int64] {
				return kstream.WindowedBy(g, kstream.Sliding(10*ms).Grace(5*ms)).Count(opts...)
			},
			minimum: 25 * ms, retention: 40 * ms,
			create: []int64{20}, w: wkey{"a", 10, 20}, n: 1,
			goneAt: 45, late: 15, expireAt: 60,
		},
		{
			// [0,3] closes when 3 + 10 + 5 < stream time, and expires when
			// 3 < stream time - retention.
			name: "session",
			count: func(g kstream.Grouped[string, string], opts ...kstream.Opt) kstream.Table[wkey, int64] {
				return kstream.SessionWindowedBy(g, 10*ms).Grace(5 * ms).Count(opts...)
			},
			minimum: 15 * ms, retention: 30 * ms,
			create: []int64{0, 3}, w: wkey{"a", 0, 3}, n: 2,
			goneAt: 19, late: 2, near: 4, expireAt: 34,
		},
	}
	for _, c := range cases {
		for _, emit := range []bool{false, true} {
			var want []wRec[int64] // the output with the default retention
			for _, variant := range []string{"default", "minimum", "longer"} {
				t.Run(fmt.Sprintf("%s/emit=%v/%s", c.name, emit, variant), func(t *testing.T) {
					opts := []kstream.Opt{kstream.Named("w")}
					if emit {
						opts = append(opts, kstream.EmitOnWindowClose())
					}
					retained := variant == "longer"
					switch variant {
					case "minimum":
						opts = append(opts, kstream.Retention(c.minimum))
					case "longer":
						opts = append(opts, kstream.Retention(c.retention))
					}
					topo := windowTopology(t, func(g kstream.Grouped[string, string]) { toOut(c.count(g, opts...)) })
					d := kstest.NewDriver(t, topo)
					in := kstest.Input(d, "in", serde.String, serde.String)
					advance := func(ts int64) { in.PipeAt(ts, fmt.Sprintf("x%d", ts), "") }
					check := func(when string, present bool) {
						t.Helper()
						n, ok := fetchWindow(t, d, c.w)
						switch {
						case present && (!ok || n != c.n):
							t.Errorf("%s: window %+v = %d, %v; want %d", when, c.w, n, ok, c.n)
						case !present && ok:
							t.Errorf("%s: window %+v = %d, want it deleted", when, c.w, n)
						}
					}

					for _, ts := range c.create {
						in.PipeAt(ts, "a", "")
					}
					advance(c.goneAt - 1)
					check(fmt.Sprintf("at %d, before it closed or expired", c.goneAt-1), true)
					advance(c.goneAt)
					check(fmt.Sprintf("at %d, closed", c.goneAt), retained)

					in.PipeAt(c.late, "a", "")
					checkEqual(t, "dropped late record", d.Dropped("w"), int64(1))
					check("after a late record", retained)
					if c.near != 0 {
						in.PipeAt(c.near, "a", "") // a session of its own
						check("after a record within the gap", retained)
					}

					// A restart: the closed window is restored, and a record
					// for it is still late. Nothing is emitted again.
					d.Restart()
					in.PipeAt(c.late, "a", "")
					checkEqual(t, "dropped late record after restart", d.Dropped("w"), int64(1))
					check("after a restart and a late record", retained)

					advance(c.expireAt - 1)
					check(fmt.Sprintf("at %d", c.expireAt-1), retained)
					advance(c.expireAt)
					check(fmt.Sprintf("at %d", c.expireAt), false)

					got := kstest.Output(d, "out", wSerde, serde.Int64).Records()
					if emit {
						finals := 0
						for _, r := range got {
							if r.Key == c.w {
								finals++
								checkEqual(t, "final result", r.Value, c.n)
							}
						}
						checkEqual(t, "final results of w", finals, 1)
					}
					if variant == "default" {
						want = got
					} else {
						checkRecords(t, "output against the default retention", got, want)
					}
				})
			}
		}
	}
}

// TestWindowRetentionTransparent runs the restart scenario with a retention
// longer than the minimum: the output and the dropped records are those
// without it, with and without a restart after every record, while the
// store holds more windows.
func TestWindowRetentionTransparent(t *testing.T) {
	inputs := outOfOrderInputs(120)
	defaults, retained := reduceCases(), reduceCases(kstream.Retention(60*ms))
	for i, c := range defaults {
		for _, parts := range partitionCounts {
			t.Run(fmt.Sprintf("%s/partitions=%d", c.name, parts), func(t *testing.T) {
				want, d0 := runWindows(t, windowTopology(t, c.build), serde.String, parts, inputs)
				topo := windowTopology(t, retained[i].build)
				got, d := runWindows(t, topo, serde.String, parts, inputs)
				checkRecords(t, "output with retention", got, want)
				checkEqual(t, "dropped with retention", d.Dropped("w"), d0.Dropped("w"))
				got, dropped, dr := runWithRestarts(t, topo, parts, inputs)
				checkRecords(t, "output with retention and restarts", got, want)
				checkEqual(t, "dropped with retention and restarts", dropped, d0.Dropped("w"))

				// The retention keeps windows that the default deleted.
				count := func(d *kstest.Driver) (n int) {
					for _, k := range []string{"a", "b", "c"} {
						n += len(kstest.WindowStore(d, "w", serde.String, serde.String).Fetch(k, 0, 1<<40))
					}
					return n
				}
				n0, n, nr := count(d0), count(d), count(dr)
				if n <= n0 || nr != n {
					t.Errorf("windows in the store: %d with retention (%d with restarts), %d without; want more with", n, nr, n0)
				}
			})
		}
	}
}

func TestWindowRetentionBuildErrors(t *testing.T) {
	cases := []windowBuildError{
		{"tumbling", func(g kstream.Grouped[string, string]) {
			kstream.WindowedBy(g, kstream.Tumbling(10*ms).Grace(5*ms)).Count(kstream.Named("w"), kstream.Retention(14*ms))
		}, "windowed-count w: retention 14ms must be at least the window size plus the grace period (15ms)"},
		{"hopping", func(g kstream.Grouped[string, string]) {
			kstream.WindowedBy(g, kstream.Hopping(10*ms, 5*ms)).Reduce(func(a, v string) string { return a + v }, kstream.Named("w"), kstream.Retention(9*ms))
		}, "windowed-reduce w: retention 9ms must be at least the window size plus the grace period (10ms)"},
		{"sliding", func(g kstream.Grouped[string, string]) {
			kstream.WindowedBy(g, kstream.Sliding(10*ms).Grace(5*ms)).Count(kstream.Named("w"), kstream.Retention(24*ms))
		}, "sliding-windowed-count w: retention 24ms must be at least twice the time difference plus the grace period (25ms)"},
		{"session", func(g kstream.Grouped[string, string]) {
			kstream.AggregateSession(kstream.SessionWindowedBy(g, 10*ms).Grace(5*ms), func() int64 { return 0 },
				func(_, _ string, a int64) int64 { return a + 1 }, func(_ string, a, b int64) int64 { return a + b },
				serde.Int64, kstream.Named("w"), kstream.Retention(14*ms))
		}, "session-windowed-aggregate w: retention 14ms must be at least the inactivity gap plus the grace period (15ms)"},
		{"negative", func(g kstream.Grouped[string, string]) {
			kstream.WindowedBy(g, kstream.Tumbling(10*ms)).Count(kstream.Named("w"), kstream.Retention(-time.Hour))
		}, "windowed-count w: retention -1h0m0s must not be negative"},
		{"zero", func(g kstream.Grouped[string, string]) {
			kstream.SessionWindowedBy(g, 10*ms).Count(kstream.Named("w"), kstream.Retention(0))
		}, "session-windowed-count w: retention 0s must be at least the inactivity gap plus the grace period (10ms)"},
		{"sub-millisecond", func(g kstream.Grouped[string, string]) {
			kstream.WindowedBy(g, kstream.Tumbling(10*ms)).Count(kstream.Named("w"), kstream.Retention(time.Minute+time.Microsecond))
		}, "windowed-count w: retention 1m0.000001s is not a whole number of milliseconds"},
	}
	testWindowBuildErrors(t, cases)
	// The minimum itself is valid. (Other operators refuse Retention:
	// TestMisplacedOptions.)
	b := kstream.NewBuilder()
	g := kstream.Source(b, "in", serde.String, serde.String).GroupByKey()
	kstream.WindowedBy(g, kstream.Tumbling(10*ms).Grace(5*ms)).Count(kstream.Named("t"), kstream.Retention(15*ms))
	kstream.WindowedBy(g, kstream.Sliding(10*ms).Grace(5*ms)).Count(kstream.Named("s"), kstream.Retention(25*ms))
	kstream.SessionWindowedBy(g, 10*ms).Grace(5*ms).Count(kstream.Named("ss"), kstream.Retention(15*ms))
	if _, err := b.Build(); err != nil {
		t.Errorf("Build: %v", err)
	}
}

// TestWindowStoreFetch reads windows of several keys across partitions with
// kstest.WindowStore, in order of start, within [from, to].
func TestWindowStoreFetch(t *testing.T) {
	for _, parts := range partitionCounts {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			topo := windowTopology(t, func(g kstream.Grouped[string, string]) {
				kstream.WindowedBy(g, kstream.Hopping(10*ms, 5*ms).Grace(time.Hour)).Count(kstream.Named("w"))
			})
			d := kstest.NewDriver(t, topo, kstest.Partitions(parts))
			pipeAll(t, d, serde.String, serde.String, []wIn{at(12, "a"), at(3, "a"), at(7, "b"), at(13, "a"), at(27, "c")})
			ws := kstest.WindowStore(d, "w", serde.String, serde.Int64)
			for _, c := range []struct {
				key      string
				from, to int64
				want     []wRec[int64]
			}{
				{"a", 0, 100, []wRec[int64]{
					wrec[int64](3, "a", 0, 10, 1), wrec[int64](13, "a", 5, 15, 2), wrec[int64](13, "a", 10, 20, 2),
				}},
				{"a", 5, 9, []wRec[int64]{wrec[int64](13, "a", 5, 15, 2)}},
				{"b", 0, 5, []wRec[int64]{wrec[int64](7, "b", 0, 10, 1), wrec[int64](7, "b", 5, 15, 1)}},
				{"c", 0, 19, nil},
				{"c", 20, 25, []wRec[int64]{wrec[int64](27, "c", 20, 30, 1), wrec[int64](27, "c", 25, 35, 1)}},
				{"d", 0, 100, nil},
			} {
				checkRecords(t, fmt.Sprintf("Fetch(%s, %d, %d)", c.key, c.from, c.to), ws.Fetch(c.key, c.from, c.to), c.want)
			}
		})
	}
}

// TestWindowedAggregationsAllocateNothing feeds typed records straight to
// windowed counts, on in-memory stores and on a state DB (whose task
// commits every thousand or so changelog records), with the default
// retention and a long one that keeps every window: updating windows and
// expiring them allocates nothing per record once the buffers have grown.
// (Sliding and session windows scan their store on every record.)
func TestWindowedAggregationsAllocateNothing(t *testing.T) {
	kinds := []struct {
		name  string
		count func(g kstream.Grouped[string, int64], opts ...kstream.Opt) kstream.Table[wkey, int64]
	}{
		{"tumbling", func(g kstream.Grouped[string, int64], opts ...kstream.Opt) kstream.Table[wkey, int64] {
			return kstream.WindowedBy(g, kstream.Tumbling(100*ms)).Count(opts...)
		}},
		{"hopping", func(g kstream.Grouped[string, int64], opts ...kstream.Opt) kstream.Table[wkey, int64] {
			return kstream.WindowedBy(g, kstream.Hopping(100*ms, 50*ms)).Count(opts...)
		}},
		{"sliding", func(g kstream.Grouped[string, int64], opts ...kstream.Opt) kstream.Table[wkey, int64] {
			return kstream.WindowedBy(g, kstream.Sliding(100*ms)).Count(opts...)
		}},
		{"session", func(g kstream.Grouped[string, int64], opts ...kstream.Opt) kstream.Table[wkey, int64] {
			return kstream.SessionWindowedBy(g, 5*ms).Count(opts...)
		}},
	}
	for _, k := range kinds {
		for _, c := range []struct {
			retention time.Duration
			db        bool
		}{{0, false}, {time.Hour, false}, {0, true}, {time.Hour, true}} {
			retention := c.retention
			t.Run(fmt.Sprintf("%s/retention=%v/db=%v", k.name, retention, c.db), func(t *testing.T) {
				b := kstream.NewBuilder()
				opts := []kstream.Opt{kstream.Named("w")}
				if retention > 0 {
					opts = append(opts, kstream.Retention(retention))
				}
				var n int64
				k.count(kstream.Source(b, "in", serde.String, serde.Int64).GroupByKey(), opts...).
					ToStream().Foreach(func(wkey, int64) { n++ })
				cfg := &runtime.Config{AppID: "allocs"}
				if c.db {
					db, err := state.Open(t.TempDir())
					if err != nil {
						t.Fatal(err)
					}
					defer db.Close()
					cfg.DB = db
				}
				task, err := runtime.NewTask(mustBuild(t, b), cfg, 0, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer task.Close()
				fn := task.Executor("w").(func(string, int64, *graph.Meta))
				keys := make([]string, 100)
				for i := range keys {
					keys[i] = "key-" + strconv.Itoa(i)
				}
				var m graph.Meta
				i := 0
				step := func() {
					m.Timestamp = int64(i / 10) // each key every 10ms: windows close and expire
					fn(keys[i%len(keys)], 1, &m)
					i++
					if out := task.Output(); out.Len() > 1024 { // the changelog records
						out.Reset()
						if err := task.Commit(nil); err != nil {
							t.Fatal(err)
						}
					}
				}
				// On a state DB, sliding and session windows cost a Pebble
				// iterator per record: fewer records keep the test short.
				warm, runs := 20_000, 5_000
				if c.db {
					warm, runs = 5_000, 1_000
				}
				for range warm {
					step()
				}
				if c.db && raceEnabled {
					for range runs { // the behaviour only: see raceEnabled
						step()
					}
				} else if allocs := testing.AllocsPerRun(runs, step); allocs != 0 {
					t.Errorf("%v allocations per record, want 0", allocs)
				}
				if task.Context().Failed() {
					t.Fatal(task.Context().TakeFailure())
				}
				if n == 0 {
					t.Error("no output")
				}
			})
		}
	}
}
