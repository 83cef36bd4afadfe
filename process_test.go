package kstream_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/internal/graph"
	rt "github.com/kstreamgo/kstream/internal/runtime"
	"github.com/kstreamgo/kstream/kstest"
	"github.com/kstreamgo/kstream/serde"
	"github.com/kstreamgo/kstream/state"
)

// fnProcessor is a Processor made of functions; nil ones do nothing.
type fnProcessor[K, V, KR, VR any] struct {
	ctx     *kstream.ProcessorContext[KR, VR]
	init    func(ctx *kstream.ProcessorContext[KR, VR]) error
	process func(ctx *kstream.ProcessorContext[KR, VR], r kstream.Record[K, V]) error
	close   func() error
}

func (p *fnProcessor[K, V, KR, VR]) Init(ctx *kstream.ProcessorContext[KR, VR]) error {
	p.ctx = ctx
	if p.init != nil {
		return p.init(ctx)
	}
	return nil
}

func (p *fnProcessor[K, V, KR, VR]) Process(r kstream.Record[K, V]) error {
	if p.process != nil {
		return p.process(p.ctx, r)
	}
	return nil
}

func (p *fnProcessor[K, V, KR, VR]) Close() error {
	if p.close != nil {
		return p.close()
	}
	return nil
}

// newCounter counts records per key in the store "seen" and forwards the
// count.
func newCounter() kstream.Processor[string, string, string, int64] {
	var kv *state.KV[string, int64]
	return &fnProcessor[string, string, string, int64]{
		init: func(ctx *kstream.ProcessorContext[string, int64]) error {
			st, err := ctx.Store("seen")
			if err != nil {
				return err
			}
			kv = state.NewKV(st, serde.String, serde.Int64)
			return nil
		},
		process: func(ctx *kstream.ProcessorContext[string, int64], r kstream.Record[string, string]) error {
			n, _, err := kv.Get(r.Key)
			if err != nil {
				return err
			}
			n++
			if err := kv.Put(r.Key, n); err != nil {
				return err
			}
			ctx.Forward(kstream.Record[string, int64]{Key: r.Key, Value: n, Timestamp: r.Timestamp})
			return nil
		},
	}
}

func TestProcessForward(t *testing.T) {
	var seen []string
	supplier := func() kstream.Processor[string, string, string, string] {
		return &fnProcessor[string, string, string, string]{
			process: func(ctx *kstream.ProcessorContext[string, string], r kstream.Record[string, string]) error {
				seen = append(seen, fmt.Sprintf("%s %s/%d@%d", fmtRecord(r), ctx.Topic(), ctx.Partition(), ctx.Offset()))
				if r.Tombstone {
					// Pass the tombstone on, and emit a delete for a derived key.
					ctx.Forward(r)
					ctx.Forward(kstream.Record[string, string]{Key: r.Key + "-copy", Timestamp: r.Timestamp, Tombstone: true})
					return nil
				}
				for i, part := range strings.Split(r.Value, ",") {
					if part == "" {
						continue
					}
					ctx.Forward(kstream.Record[string, string]{
						Key:       fmt.Sprintf("%s-%d", r.Key, i),
						Value:     part,
						Timestamp: r.Timestamp + int64(i), // the forwarded timestamp is kept
						Headers:   append(r.Headers, hdr("part", fmt.Sprint(i))),
					})
				}
				return nil
			},
		}
	}
	b := kstream.NewBuilder()
	s := kstream.Source(b, "in", serde.String, serde.String)
	kstream.Process(s, supplier, kstream.Named("splitter")).To("out", serde.String, serde.String)
	d := kstest.NewDriver(t, mustBuild(t, b))
	pipeAll(t, d, serde.String, serde.String, []pipe[string, string]{
		in(rec(10, "a", "x,y,z", hdr("h", "1"))),
		in(tomb[string, string](20, "b", hdr("h", "2"))),
		in(rec(30, "c", "")),
		in(rec(40, "d", ",w")),
	})
	checkRecords(t, "out", kstest.Output(d, "out", serde.String, serde.String).Records(), []strRec{
		rec(10, "a-0", "x", hdr("h", "1"), hdr("part", "0")),
		rec(11, "a-1", "y", hdr("h", "1"), hdr("part", "1")),
		rec(12, "a-2", "z", hdr("h", "1"), hdr("part", "2")),
		tomb[string, string](20, "b", hdr("h", "2")),
		tomb[string, string](20, "b-copy"),
		rec(41, "d-1", "w", hdr("part", "1")),
	})
	checkEqual(t, "records seen by Process", seen, []string{
		`@10 "a" => "x,y,z" [h="1"] in/0@0`,
		`@20 "b" => <tombstone> [h="2"] in/0@1`,
		`@30 "c" => "" in/0@2`,
		`@40 "d" => ",w" in/0@3`,
	})
}

func TestProcessStore(t *testing.T) {
	b := kstream.NewBuilder()
	s := kstream.Source(b, "in", serde.String, serde.String)
	kstream.Process(s, newCounter, kstream.Named("counter"), kstream.WithStores("seen")).
		To("out", serde.String, serde.Int64)
	topo := mustBuild(t, b)
	checkEqual(t, "internal topics", topo.InternalTopics("app"), []string{"app-seen-changelog"})
	d := kstest.NewDriver(t, topo, kstest.Partitions(3))
	in := kstest.Input(d, "in", serde.String, serde.String)
	for i, k := range []string{"a", "b", "a", "c", "a"} {
		in.PipeAt(int64(i), k, "")
	}
	checkRecords(t, "out", kstest.Output(d, "out", serde.String, serde.Int64).Records(), []i64Rec{
		i64(0, "a", 1), i64(1, "b", 1), i64(2, "a", 2), i64(3, "c", 1), i64(4, "a", 3),
	})
	checkStore(t, d, "seen", serde.Int64, map[string]int64{"a": 3, "b": 1, "c": 1}, "d")
	// Every write is in the changelog, stamped with the task's stream time.
	checkEqual(t, "changelog", kstest.LatestByKey(kstest.Output(d, "kstest-seen-changelog", serde.String, serde.Int64)),
		map[string]int64{"a": 3, "b": 1, "c": 1})
}

// Two Process nodes naming one store share it.
func TestProcessSharedStore(t *testing.T) {
	writer := func() kstream.Processor[string, string, string, string] {
		var kv *state.KV[string, string]
		return &fnProcessor[string, string, string, string]{
			init: func(ctx *kstream.ProcessorContext[string, string]) error {
				st, err := ctx.Store("shared")
				kv = state.NewKV(st, serde.String, serde.String)
				return err
			},
			process: func(_ *kstream.ProcessorContext[string, string], r kstream.Record[string, string]) error {
				return kv.Put(r.Key, r.Value)
			},
		}
	}
	reader := func() kstream.Processor[string, string, string, string] {
		var kv *state.KV[string, string]
		return &fnProcessor[string, string, string, string]{
			init: func(ctx *kstream.ProcessorContext[string, string]) error {
				st, err := ctx.Store("shared")
				kv = state.NewKV(st, serde.String, serde.String)
				return err
			},
			process: func(ctx *kstream.ProcessorContext[string, string], r kstream.Record[string, string]) error {
				v, ok, err := kv.Get(r.Key)
				if !ok {
					v = "<none>"
				}
				ctx.Forward(kstream.Record[string, string]{Key: r.Key, Value: v, Timestamp: r.Timestamp})
				return err
			},
		}
	}
	b := kstream.NewBuilder()
	kstream.Process(kstream.Source(b, "writes", serde.String, serde.String), writer, kstream.Named("writer"), kstream.WithStores("shared"))
	kstream.Process(kstream.Source(b, "reads", serde.String, serde.String), reader, kstream.Named("reader"), kstream.WithStores("shared")).
		To("out", serde.String, serde.String)
	topo := mustBuild(t, b)
	if n := strings.Count(topo.Describe(), "Sub-topology:"); n != 1 {
		t.Errorf("a shared store should put both nodes in one sub-topology; got %d:\n%s", n, topo.Describe())
	}
	d := kstest.NewDriver(t, topo, kstest.Partitions(2))
	kstest.Input(d, "reads", serde.String, serde.String).PipeAt(1, "k", "")
	kstest.Input(d, "writes", serde.String, serde.String).PipeAt(2, "k", "v")
	kstest.Input(d, "reads", serde.String, serde.String).PipeAt(3, "k", "")
	checkRecords(t, "out", kstest.Output(d, "out", serde.String, serde.String).Records(), []strRec{
		rec(1, "k", "<none>"), rec(3, "k", "v"),
	})
}

// Empty values are values: the changelog must not turn them into deletes.
func TestProcessStoreEmptyValue(t *testing.T) {
	supplier := func() kstream.Processor[string, string, string, string] {
		var kv *state.KV[string, string]
		return &fnProcessor[string, string, string, string]{
			init: func(ctx *kstream.ProcessorContext[string, string]) error {
				st, err := ctx.Store("vals")
				kv = state.NewKV(st, serde.String, serde.String)
				return err
			},
			process: func(_ *kstream.ProcessorContext[string, string], r kstream.Record[string, string]) error {
				return kv.Put(r.Key, r.Value)
			},
		}
	}
	b := kstream.NewBuilder()
	kstream.Process(kstream.Source(b, "in", serde.String, serde.String), supplier, kstream.Named("p"), kstream.WithStores("vals"))
	d := kstest.NewDriver(t, mustBuild(t, b))
	in := kstest.Input(d, "in", serde.String, serde.String)
	in.PipeAt(1, "", "")
	in.PipeAt(2, "k", "")
	want := map[string]string{"": "", "k": ""}
	checkStore(t, d, "vals", serde.String, want)
	checkRecords(t, "changelog", kstest.Output(d, "kstest-vals-changelog", serde.String, serde.String).Records(), []strRec{
		rec(1, "", ""), rec(2, "k", ""),
	})
	d.Restart()
	checkStore(t, d, "vals", serde.String, want)
}

func TestProcessStoreNotConnected(t *testing.T) {
	var got error
	supplier := func() kstream.Processor[string, string, string, string] {
		return &fnProcessor[string, string, string, string]{
			init: func(ctx *kstream.ProcessorContext[string, string]) error {
				_, got = ctx.Store("other")
				return nil
			},
		}
	}
	b := kstream.NewBuilder()
	kstream.Process(kstream.Source(b, "in", serde.String, serde.String), supplier, kstream.Named("p"), kstream.WithStores("mine"))
	kstest.NewDriver(t, mustBuild(t, b))
	const want = `kstream: node p: store "other" is not connected (add kstream.WithStores("other"))`
	if got == nil || got.Error() != want {
		t.Errorf("Store(\"other\") error = %v, want %q", got, want)
	}
}

// ticker forwards each record, and schedules a punctuation in Init that
// records the time it receives and forwards ("tick", "") at that time.
func ticker(interval time.Duration, typ kstream.PunctuationType, ticks *[]int64, streamTimes *[]int64) func() kstream.Processor[string, string, string, string] {
	return func() kstream.Processor[string, string, string, string] {
		return &fnProcessor[string, string, string, string]{
			init: func(ctx *kstream.ProcessorContext[string, string]) error {
				ctx.Schedule(interval, typ, func(ts int64) error {
					*ticks = append(*ticks, ts)
					if streamTimes != nil {
						*streamTimes = append(*streamTimes, ctx.StreamTime())
					}
					if ctx.Topic() != "" || ctx.Offset() != -1 {
						return fmt.Errorf("in a punctuation, Topic() = %q and Offset() = %d", ctx.Topic(), ctx.Offset())
					}
					ctx.Forward(kstream.Record[string, string]{Key: "tick", Timestamp: ts})
					return nil
				})
				return nil
			},
			process: func(ctx *kstream.ProcessorContext[string, string], r kstream.Record[string, string]) error {
				ctx.Forward(r)
				return nil
			},
		}
	}
}

func TestPunctuateStreamTime(t *testing.T) {
	var ticks, streamTimes []int64
	b := kstream.NewBuilder()
	s := kstream.Source(b, "in", serde.String, serde.String)
	kstream.Process(s, ticker(10*time.Millisecond, kstream.StreamTime, &ticks, &streamTimes), kstream.Named("p")).
		To("out", serde.String, serde.String)
	d := kstest.NewDriver(t, mustBuild(t, b))
	d.AdvanceWallClock(time.Hour) // wall-clock time does not drive it
	if len(ticks) != 0 {
		t.Fatalf("punctuated %v before any record", ticks)
	}
	in := kstest.Input(d, "in", serde.String, serde.String)
	var want []strRec
	for _, ts := range []int64{0, 5, 12, 55, 58, 60, 30, 79, 80, 89} {
		in.PipeAt(ts, "k", fmt.Sprint(ts))
		want = append(want, rec(ts, "k", fmt.Sprint(ts)))
		switch ts {
		case 0, 12, 55, 60, 79, 80: // after the record that makes the punctuation due
			want = append(want, rec(ts, "tick", ""))
		}
	}
	// 0: the first record; 12: past 10; 55 is past 20, 30, 40 and 50 but
	// fires once, and the next is due at 60; 30 does not move stream time.
	checkEqual(t, "punctuation times", ticks, []int64{0, 12, 55, 60, 79, 80})
	checkEqual(t, "stream times in the punctuations", streamTimes, []int64{0, 12, 55, 60, 79, 80})
	checkRecords(t, "out", kstest.Output(d, "out", serde.String, serde.String).Records(), want)
}

// Each task has its own stream time.
func TestPunctuateStreamTimePerTask(t *testing.T) {
	var ticks []int64
	b := kstream.NewBuilder()
	kstream.Process(kstream.Source(b, "in", serde.String, serde.String),
		ticker(100*time.Millisecond, kstream.StreamTime, &ticks, nil), kstream.Named("p"))
	d := kstest.NewDriver(t, mustBuild(t, b), kstest.Partitions(4))
	in := kstest.Input(d, "in", serde.String, serde.String)
	// Keys "a" and "c" are on different partitions of 4.
	if partitionOf("a", 4) == partitionOf("c", 4) {
		t.Fatal("pick keys on different partitions")
	}
	in.PipeAt(150, "a", "")
	in.PipeAt(50, "c", "")  // the task of "c" has not seen 150
	in.PipeAt(120, "c", "") // 100 is due in c's task
	in.PipeAt(180, "a", "") // 100 was passed already in a's task; 200 is not due
	checkEqual(t, "punctuation times", ticks, []int64{150, 50, 120})
}

func TestPunctuateWallClock(t *testing.T) {
	for _, start := range []int64{0, 1_000_000} {
		t.Run(fmt.Sprintf("start=%d", start), func(t *testing.T) {
			var ticks []int64
			b := kstream.NewBuilder()
			kstream.Process(kstream.Source(b, "in", serde.String, serde.String),
				ticker(time.Second, kstream.WallClockTime, &ticks, nil), kstream.Named("p")).
				To("out", serde.String, serde.String)
			d := kstest.NewDriver(t, mustBuild(t, b), kstest.StartTime(time.UnixMilli(start)))
			kstest.Input(d, "in", serde.String, serde.String).PipeAt(1e9, "k", "v") // stream time does not drive it
			steps := []struct {
				dt   time.Duration
				want []int64
			}{
				{500 * time.Millisecond, nil},
				{500 * time.Millisecond, []int64{start + 1000}},
				{999 * time.Millisecond, []int64{start + 1000}},
				{1 * time.Millisecond, []int64{start + 1000, start + 2000}},
				// 2, 3 and 4 seconds were missed: one punctuation, then the next at 5 s.
				{2500 * time.Millisecond, []int64{start + 1000, start + 2000, start + 4500}},
				{499 * time.Millisecond, []int64{start + 1000, start + 2000, start + 4500}},
				{1 * time.Millisecond, []int64{start + 1000, start + 2000, start + 4500, start + 5000}},
			}
			for i, st := range steps {
				d.AdvanceWallClock(st.dt)
				checkEqual(t, fmt.Sprintf("step %d: punctuations at %v", i, d.Now().UnixMilli()), ticks, st.want)
			}
			out := kstest.Output(d, "out", serde.String, serde.String).Records()
			checkRecords(t, "out", out, []strRec{
				rec(1e9, "k", "v"),
				rec(start+1000, "tick", ""), rec(start+2000, "tick", ""), rec(start+4500, "tick", ""), rec(start+5000, "tick", ""),
			})
		})
	}
}

func TestPunctuationCancel(t *testing.T) {
	var log []string
	supplier := func() kstream.Processor[string, string, string, string] {
		var wall kstream.Cancellable
		return &fnProcessor[string, string, string, string]{
			init: func(ctx *kstream.ProcessorContext[string, string]) error {
				n := 0
				var stream kstream.Cancellable
				stream = ctx.Schedule(10*time.Millisecond, kstream.StreamTime, func(ts int64) error {
					log = append(log, fmt.Sprint("stream ", ts))
					if n++; n == 2 {
						stream.Cancel() // from inside the punctuation
					}
					return nil
				})
				wall = ctx.Schedule(time.Second, kstream.WallClockTime, func(ts int64) error {
					log = append(log, fmt.Sprint("wall ", ts))
					return nil
				})
				return nil
			},
			process: func(_ *kstream.ProcessorContext[string, string], r kstream.Record[string, string]) error {
				if r.Value == "cancel" {
					wall.Cancel()
					wall.Cancel() // twice is harmless
				}
				return nil
			},
		}
	}
	b := kstream.NewBuilder()
	kstream.Process(kstream.Source(b, "in", serde.String, serde.String), supplier, kstream.Named("p"))
	d := kstest.NewDriver(t, mustBuild(t, b))
	in := kstest.Input(d, "in", serde.String, serde.String)
	in.PipeAt(0, "k", "")
	d.AdvanceWallClock(time.Second)
	in.PipeAt(10, "k", "")
	in.PipeAt(20, "k", "cancel")
	in.PipeAt(30, "k", "")
	d.AdvanceWallClock(5 * time.Second)
	checkEqual(t, "punctuations", log, []string{"stream 0", "wall 1000", "stream 10"})
}

// TestProcessPanicInClose: a processor whose Close panics fails the task's
// Close with an error naming the node (a revoke must not end the process),
// and the task's other processors are still closed; kstest's Close fails
// the test.
func TestProcessPanicInClose(t *testing.T) {
	closed := 0
	b := kstream.NewBuilder()
	s := kstream.Source(b, "in", serde.String, serde.String)
	kstream.Process(s, func() kstream.Processor[string, string, string, string] {
		return &fnProcessor[string, string, string, string]{close: func() error { closed++; return nil }}
	}, kstream.Named("calm"))
	kstream.Process(s, func() kstream.Processor[string, string, string, string] {
		return &fnProcessor[string, string, string, string]{close: func() error { panic("close boom") }}
	}, kstream.Named("nervous"))
	topo := mustBuild(t, b)
	task, err := rt.NewTask(topo, &rt.Config{AppID: "app"}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	err = task.Close()
	var pe *kstream.PanicError
	if !errors.As(err, &pe) || pe.Value != "close boom" || !strings.Contains(err.Error(), "node nervous: close: panic: close boom [in ") {
		t.Errorf("Close: %v, want a PanicError of node nervous", err)
	}
	checkEqual(t, "processors closed", closed, 1)

	// kstest fails the test.
	ft := &fatalRecorder{TB: t}
	d := kstest.NewDriver(ft, topo)
	func() {
		defer func() {
			if r := recover(); r != errFatal {
				t.Errorf("Close: recovered %v, want a call to Fatal", r)
			}
		}()
		d.Close()
	}()
	if !strings.Contains(ft.msg, "kstest: closing task 0_0: kstream: node nervous: close: panic: close boom [in ") {
		t.Errorf("Fatal message %q", ft.msg)
	}
	checkEqual(t, "processors closed", closed, 2)
}

func TestProcessClose(t *testing.T) {
	closed := 0
	supplier := func() kstream.Processor[string, string, string, string] {
		return &fnProcessor[string, string, string, string]{close: func() error { closed++; return nil }}
	}
	b := kstream.NewBuilder()
	kstream.Process(kstream.Source(b, "in", serde.String, serde.String), supplier, kstream.Named("p"))
	topo := mustBuild(t, b)
	d := kstest.NewDriver(t, topo, kstest.Partitions(3))
	d.Restart() // closes the three tasks and opens three new ones
	checkEqual(t, "Close calls after a restart", closed, 3)
	d.Close()
	checkEqual(t, "Close calls after Close", closed, 6)
}

// recordError returns err as a *graph.RecordError, failing the test if it is not one.
func recordError(t *testing.T, err error) *graph.RecordError {
	t.Helper()
	var re *graph.RecordError
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T) is not a *graph.RecordError", err, err)
	}
	return re
}

var errBad = errors.New("bad record")

func TestProcessErrors(t *testing.T) {
	const parts = 3
	supplier := func() kstream.Processor[string, string, string, string] {
		return &fnProcessor[string, string, string, string]{
			process: func(ctx *kstream.ProcessorContext[string, string], r kstream.Record[string, string]) error {
				if r.Value == "bad" {
					return fmt.Errorf("checking %q: %w", r.Key, errBad)
				}
				ctx.Forward(r)
				return nil
			},
		}
	}
	b := kstream.NewBuilder()
	kstream.Process(kstream.Source(b, "in", serde.String, serde.String), supplier, kstream.Named("checker")).
		To("out", serde.String, serde.String)
	d := kstest.NewDriver(t, mustBuild(t, b), kstest.Partitions(parts))
	in := kstest.Input(d, "in", serde.String, serde.String)
	// Three good records on the key's partition, then a bad one at offset 3.
	const key = "k1"
	p := partitionOf(key, parts)
	for i := range 3 {
		in.PipeAt(int64(i), key, "good")
	}
	err := in.TryPipeRecord(rec(int64(3), key, "bad"))
	if err == nil {
		t.Fatal("TryPipeRecord of a bad record returned nil")
	}
	re := recordError(t, err)
	checkEqual(t, "RecordError", *re, graph.RecordError{
		Topic: "in", Partition: int32(p), Offset: 3, Node: "checker", Err: re.Err,
	})
	if !errors.Is(err, errBad) {
		t.Errorf("errors.Is(%v, errBad) = false", err)
	}
	want := fmt.Sprintf(`kstream: processing record in/%d@3 in node checker: checking "k1": bad record`, p)
	checkEqual(t, "error text", err.Error(), want)
	// The driver goes on with the next records.
	in.PipeAt(4, key, "good again")
	out := kstest.Output(d, "out", serde.String, serde.String).Records()
	checkRecords(t, "out", out, []strRec{
		rec(0, key, "good"), rec(1, key, "good"), rec(2, key, "good"), rec(4, key, "good again"),
	})
}

// A failure behind a repartition names the internal topic, its partition and
// offset.
func TestProcessErrorAfterRepartition(t *testing.T) {
	supplier := func() kstream.Processor[string, string, string, string] {
		return &fnProcessor[string, string, string, string]{
			process: func(_ *kstream.ProcessorContext[string, string], r kstream.Record[string, string]) error {
				if r.Timestamp == 3 {
					return errBad
				}
				return nil
			},
		}
	}
	b := kstream.NewBuilder()
	s := kstream.SelectKey(kstream.Source(b, "in", serde.String, serde.String), func(_, v string) string { return v })
	kstream.Process(s.Repartition(kstream.Named("rk")), supplier, kstream.Named("late-check"))
	d := kstest.NewDriver(t, mustBuild(t, b), kstest.AppID("myapp"), kstest.Partitions(2))
	in := kstest.Input(d, "in", serde.String, serde.String)
	in.PipeAt(1, "a", "bad")
	in.PipeAt(2, "b", "ok")
	err := in.TryPipeRecord(rec(int64(3), "c", "bad"))
	re := recordError(t, err)
	p := partitionOf("bad", 2)
	checkEqual(t, "RecordError", *re, graph.RecordError{
		Topic: "myapp-rk-repartition", Partition: int32(p), Offset: 1, Node: "late-check", Err: errBad,
	})
	checkEqual(t, "error text", err.Error(),
		fmt.Sprintf("kstream: processing record myapp-rk-repartition/%d@1 in node late-check: bad record", p))
}

func TestPanicsInUserFunctions(t *testing.T) {
	var callerLine int // the line before the panic's
	boom := func(v string) {
		if v == "boom" {
			_, _, callerLine, _ = runtime.Caller(0)
			panic("boom: " + v)
		}
	}
	tests := []struct {
		name  string
		build func(s kstream.Stream[string, string])
		node  string
	}{
		{"Filter", func(s kstream.Stream[string, string]) {
			s.Filter(func(_, v string) bool { boom(v); return true }, kstream.Named("the-filter")).To("out", nil, nil)
		}, "the-filter"},
		{"Map", func(s kstream.Stream[string, string]) {
			kstream.Map(s, func(k, v string) (string, string) { boom(v); return k, v }, kstream.Named("the-map")).To("out", nil, nil)
		}, "the-map"},
		// A Filter, Peek or Foreach that is a Map's or MapValues' only
		// child runs in its parent's frame: a panic still names its node.
		{"MapBeforeFilter", func(s kstream.Stream[string, string]) {
			kstream.Map(s, func(k, v string) (string, string) { boom(v); return k, v }, kstream.Named("the-map")).
				Filter(func(string, string) bool { return true }, kstream.Named("the-filter")).To("out", nil, nil)
		}, "the-map"},
		{"FilterAfterMap", func(s kstream.Stream[string, string]) {
			kstream.Map(s, func(k, v string) (string, string) { return k, v }, kstream.Named("the-map")).
				Filter(func(_, v string) bool { boom(v); return true }, kstream.Named("the-filter")).To("out", nil, nil)
		}, "the-filter"},
		{"PeekAfterMap", func(s kstream.Stream[string, string]) {
			kstream.Map(s, func(k, v string) (string, string) { return k, v }, kstream.Named("the-map")).
				Peek(func(_, v string) { boom(v) }, kstream.Named("the-peek")).To("out", nil, nil)
		}, "the-peek"},
		{"ForeachAfterMap", func(s kstream.Stream[string, string]) {
			s.To("out", nil, nil)
			kstream.Map(s, func(k, v string) (string, string) { return k, v }, kstream.Named("the-map")).
				Foreach(func(_, v string) { boom(v) }, kstream.Named("the-foreach"))
		}, "the-foreach"},
		{"FilterAfterMapValues", func(s kstream.Stream[string, string]) {
			kstream.MapValues(s, func(v string) string { return v }, kstream.Named("the-map-values")).
				FilterNot(func(_, v string) bool { boom(v); return false }, kstream.Named("the-filter")).To("out", nil, nil)
		}, "the-filter"},
		{"PeekAfterMapValues", func(s kstream.Stream[string, string]) {
			kstream.MapValues(s, func(v string) string { return v }, kstream.Named("the-map-values")).
				Peek(func(_, v string) { boom(v) }, kstream.Named("the-peek")).To("out", nil, nil)
		}, "the-peek"},
		{"MapValuesBeforeForeach", func(s kstream.Stream[string, string]) {
			s.To("out", nil, nil)
			kstream.MapValues(s, func(v string) string { boom(v); return v }, kstream.Named("the-map-values")).
				Foreach(func(string, string) {}, kstream.Named("the-foreach"))
		}, "the-map-values"},
		{"ForeachAfterMapValues", func(s kstream.Stream[string, string]) {
			s.To("out", nil, nil)
			kstream.MapValues(s, func(v string) string { return v }, kstream.Named("the-map-values")).
				Foreach(func(_, v string) { boom(v) }, kstream.Named("the-foreach"))
		}, "the-foreach"},
		{"MapValuesAfterFlatMap", func(s kstream.Stream[string, string]) {
			fm := kstream.FlatMap(s, func(k, v string, emit func(string, string)) { emit(k, v) }, kstream.Named("the-flat-map"))
			kstream.MapValues(fm, func(v string) string { boom(v); return v }, kstream.Named("the-map-values")).To("out", nil, nil)
		}, "the-map-values"},
		{"FlatMapAfterEmit", func(s kstream.Stream[string, string]) {
			kstream.FlatMap(s, func(k, v string, emit func(string, string)) {
				emit(k, v+"!")
				boom(v)
			}, kstream.Named("the-flat-map")).
				Peek(func(string, string) {}, kstream.Named("the-peek")).To("out", nil, nil)
		}, "the-flat-map"},
		{"Branch", func(s kstream.Stream[string, string]) {
			s.Branch(func(_, v string) bool { boom(v); return true })[0].To("out", nil, nil)
		}, "BRANCH-0000000001"},
		{"Foreach", func(s kstream.Stream[string, string]) {
			s.To("out", nil, nil)
			s.Foreach(func(_, v string) { boom(v) }, kstream.Named("the-foreach"))
		}, "the-foreach"},
		{"Reduce", func(s kstream.Stream[string, string]) {
			s.GroupByKey().Reduce(func(a, v string) string { boom(v); return v }, kstream.Named("the-reduce")).
				ToStream().To("out", nil, nil)
		}, "the-reduce"},
		{"TableFilter", func(s kstream.Stream[string, string]) {
			s.ToTable(kstream.Named("tbl")).Filter(func(_, v string) bool { boom(v); return true }, kstream.Named("the-table-filter")).
				ToStream().To("out", nil, nil)
		}, "the-table-filter"},
		{"Process", func(s kstream.Stream[string, string]) {
			kstream.Process(s, func() kstream.Processor[string, string, string, string] {
				return &fnProcessor[string, string, string, string]{
					process: func(ctx *kstream.ProcessorContext[string, string], r kstream.Record[string, string]) error {
						ctx.Forward(r)
						boom(r.Value)
						return nil
					},
				}
			}, kstream.Named("the-process")).To("out", nil, nil)
		}, "the-process"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := kstream.NewBuilder()
			tt.build(kstream.Source(b, "in", serde.String, serde.String))
			d := kstest.NewDriver(t, mustBuild(t, b))
			in := kstest.Input(d, "in", serde.String, serde.String)
			in.PipeAt(1, "k", "fine")
			err := in.TryPipeRecord(rec(int64(2), "k", "boom"))
			re := recordError(t, err)
			checkEqual(t, "node", re.Node, tt.node)
			// The cause is a PanicError locating the panic in boom.
			var pe *kstream.PanicError
			if !errors.As(err, &pe) {
				t.Fatalf("errors.As(%v, *kstream.PanicError) = false", err)
			}
			checkEqual(t, "panic value", pe.Value, any("boom: boom"))
			checkEqual(t, "panicking function", pe.Func, "github.com/kstreamgo/kstream_test.TestPanicsInUserFunctions.func1")
			checkEqual(t, "panic site", fmt.Sprintf("%s:%d", filepath.Base(pe.File), pe.Line), fmt.Sprintf("process_test.go:%d", callerLine+1))
			// The stack starts at the panic: no frames of the recovery.
			if lines := strings.SplitN(string(pe.Stack), "\n", 3); len(lines) < 3 || !strings.HasPrefix(lines[0], "goroutine ") ||
				!strings.HasPrefix(lines[1], "panic(") || !strings.Contains(lines[2], "process_test.go") || strings.Contains(lines[2], "Recovered") {
				t.Errorf("panic stack:\n%s", pe.Stack)
			}
			want := fmt.Sprintf("kstream: processing record in/0@1 in node %s: panic: boom: boom [in kstream_test.TestPanicsInUserFunctions.func1 at process_test.go:%d]", tt.node, callerLine+1)
			checkEqual(t, "error text", err.Error(), want)
			// Records after the panic are processed.
			in.PipeAt(3, "k2", "fine again")
			out := kstest.Output(d, "out", serde.String, serde.String).Records()
			if len(out) == 0 || out[len(out)-1].Key != "k2" || out[len(out)-1].Timestamp != 3 {
				t.Errorf("after the panic, out = %v", out)
			}
		})
	}
}

// boomSerde is serde.String, except that it panics encoding "boom", and
// decoding "boom" or "stored boom", as a serde with a bug would.
type boomSerde struct{}

func (boomSerde) Append(dst []byte, v string) ([]byte, error) {
	if v == "boom" {
		panic("encoding boom")
	}
	return serde.String.Append(dst, v)
}

func (boomSerde) Decode(b []byte) (string, error) {
	if string(b) == "boom" || string(b) == "stored boom" {
		panic("decoding boom")
	}
	return serde.String.Decode(b)
}

// TestPanicsInSerdes: a serde that panics fails the record in the node that
// called it, not in the last node that ran user code (the previous record's
// sink), and a panic while a source decodes the record is a deserialization
// failure, for the deserialization policy.
func TestPanicsInSerdes(t *testing.T) {
	pass := func(string, string) bool { return true }
	tests := []struct {
		name   string
		build  func(b *kstream.Builder)
		first  string // the value of key k before
		k, v   string
		node   string
		decode bool
	}{
		{"SourceKey", func(b *kstream.Builder) {
			kstream.Source(b, "in", serde.Serde[string](boomSerde{}), serde.String, kstream.Named("the-source")).
				Filter(pass, kstream.Named("the-filter")).To("out", serde.String, serde.String)
		}, "fine", "boom", "v", "the-source", true},
		{"SourceValue", func(b *kstream.Builder) {
			kstream.Source(b, "in", serde.String, serde.Serde[string](boomSerde{}), kstream.Named("the-source")).
				Filter(pass, kstream.Named("the-filter")).To("out", serde.String, serde.String)
		}, "fine", "k", "boom", "the-source", true},
		{"Sink", func(b *kstream.Builder) {
			kstream.Source(b, "in", serde.String, serde.String).
				Filter(pass, kstream.Named("the-filter")).To("out", serde.String, boomSerde{}, kstream.Named("the-sink"))
		}, "fine", "k", "boom", "the-sink", false},
		{"AggregateStore", func(b *kstream.Builder) {
			kstream.Aggregate(kstream.Source(b, "in", serde.String, serde.String).Filter(pass, kstream.Named("the-filter")).GroupByKey(),
				func() string { return "" }, func(_, v, _ string) string { return v }, boomSerde{}, kstream.Named("the-agg")).
				ToStream().To("out", serde.String, serde.String)
		}, "stored boom", "k", "fine", "the-agg", false}, // reading the stored aggregate panics
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := kstream.NewBuilder()
			tt.build(b)
			d := kstest.NewDriver(t, mustBuild(t, b))
			in := kstest.Input(d, "in", serde.String, serde.String)
			in.PipeAt(1, "k", tt.first) // the last node to run is the sink
			err := in.TryPipeRecord(rec(int64(2), tt.k, tt.v))
			re := recordError(t, err)
			checkEqual(t, "node", re.Node, tt.node)
			checkEqual(t, "deserialization failure", re.Deserialization, tt.decode)
			var pe *kstream.PanicError
			if !errors.As(err, &pe) || !strings.HasPrefix(pe.Func, "github.com/kstreamgo/kstream_test.boomSerde.") {
				t.Errorf("error %v: want a PanicError raised in boomSerde, got %#v", err, pe)
			}
			in.PipeAt(3, "k2", "fine again")
			out := kstest.Output(d, "out", serde.String, serde.String).Records()
			if len(out) == 0 || out[len(out)-1].Key != "k2" {
				t.Errorf("after the panic, out = %v", out)
			}
		})
	}
}

// TestPanicRuntimeError: a runtime error (here an index out of range) is
// located in the user function, not in the Go runtime that raised it, and
// the PanicError unwraps to it.
func TestPanicRuntimeError(t *testing.T) {
	b := kstream.NewBuilder()
	kstream.MapValues(kstream.Source(b, "in", serde.String, serde.String), func(v string) string {
		return string(v[len(v)+1])
	}, kstream.Named("the-map-values")).To("out", nil, nil)
	d := kstest.NewDriver(t, mustBuild(t, b))
	err := kstest.Input(d, "in", serde.String, serde.String).TryPipeRecord(rec(int64(1), "k", "v"))
	var rte runtime.Error
	if !errors.As(err, &rte) || !strings.Contains(rte.Error(), "index out of range") {
		t.Fatalf("errors.As(%v, runtime.Error) = false", err)
	}
	var pe *kstream.PanicError
	if !errors.As(err, &pe) {
		t.Fatalf("errors.As(%v, *kstream.PanicError) = false", err)
	}
	checkEqual(t, "panicking function", pe.Func, "github.com/kstreamgo/kstream_test.TestPanicRuntimeError.func1")
	checkEqual(t, "file", filepath.Base(pe.File), "process_test.go")
	checkEqual(t, "node", recordError(t, err).Node, "the-map-values")
}

// TestSourceTableRestoreAfterPanics: a source table's records are restored
// through its serdes and timestamp extractor; one that panicked when
// processed (and failed) panics again there, and stays out of the store, as
// a record that did not decode does, instead of ending the restore.
func TestSourceTableRestoreAfterPanics(t *testing.T) {
	b := kstream.NewBuilder()
	kstream.SourceTable(b, "tin", serde.String, serde.Serde[string](boomSerde{}), kstream.Named("tbl"),
		kstream.TimestampFrom(func(_, v string, ts int64) int64 {
			if v == "tick-boom" {
				panic("extracting boom")
			}
			return ts
		})).ToStream().To("out", nil, nil)
	d := kstest.NewDriver(t, mustBuild(t, b))
	in := kstest.Input(d, "tin", serde.String, serde.String)
	in.PipeAt(1, "k1", "one")
	in.PipeAt(1, "k2", "two")
	for _, r := range []kstream.Record[string, string]{rec(int64(2), "k1", "boom"), rec(int64(2), "k2", "tick-boom")} {
		var pe *kstream.PanicError
		if err := in.TryPipeRecord(r); !errors.As(err, &pe) {
			t.Fatalf("piping %v: %v, want a PanicError", r, err)
		}
	}
	in.PipeAt(3, "k3", "three")
	d.Restart()
	tbl := kstest.Store(d, "tbl", serde.String, serde.String)
	for k, want := range map[string]string{"k1": "one", "k2": "two", "k3": "three"} {
		got, ok := tbl.Get(k)
		checkEqual(t, "restored "+k, fmt.Sprint(got, ok), fmt.Sprint(want, true))
	}
}

func TestPunctuationError(t *testing.T) {
	supplier := func() kstream.Processor[string, string, string, string] {
		return &fnProcessor[string, string, string, string]{
			init: func(ctx *kstream.ProcessorContext[string, string]) error {
				ctx.Schedule(10*time.Millisecond, kstream.StreamTime, func(ts int64) error {
					if ts >= 20 {
						return fmt.Errorf("tick at %d: %w", ts, errBad)
					}
					return nil
				})
				ctx.Schedule(time.Second, kstream.WallClockTime, func(ts int64) error {
					panic(fmt.Sprint("wall tick at ", ts))
				})
				return nil
			},
		}
	}
	b := kstream.NewBuilder()
	kstream.Process(kstream.Source(b, "in", serde.String, serde.String), supplier, kstream.Named("p"))
	d := kstest.NewDriver(t, mustBuild(t, b))
	in := kstest.Input(d, "in", serde.String, serde.String)
	in.PipeAt(10, "k", "")
	err := in.TryPipeRecord(rec(int64(25), "k", ""))
	re := recordError(t, err)
	checkEqual(t, "RecordError", *re, graph.RecordError{Topic: "", Partition: 0, Offset: -1, Node: "p", Err: re.Err})
	if !errors.Is(err, errBad) {
		t.Errorf("errors.Is(%v, errBad) = false", err)
	}
	checkEqual(t, "error text", err.Error(), "kstream: processing in node p (task partition 0, punctuation): tick at 25: bad record")

	// A wall-clock punctuation that panics fails AdvanceWallClock: run it
	// under a recorder of Fatal.
	ft := &fatalRecorder{TB: t}
	d2 := kstest.NewDriver(ft, mustBuild(t, rebuild(supplier)))
	func() {
		defer func() {
			if r := recover(); r != errFatal {
				t.Errorf("AdvanceWallClock: recovered %v, want a call to Fatal", r)
			}
		}()
		d2.AdvanceWallClock(time.Second)
	}()
	if want := "kstream: processing in node p (task partition 0, punctuation): panic: wall tick at 1000 [in kstream_test.TestPunctuationError."; !strings.HasPrefix(ft.msg, want) || !strings.Contains(ft.msg, " at process_test.go:") {
		t.Errorf("Fatal message %q, want %q... at process_test.go:<line>]", ft.msg, want)
	}
}

func rebuild(supplier func() kstream.Processor[string, string, string, string]) *kstream.Builder {
	b := kstream.NewBuilder()
	kstream.Process(kstream.Source(b, "in", serde.String, serde.String), supplier, kstream.Named("p"))
	return b
}

var errFatal = errors.New("fatal called")

// fatalRecorder is a testing.TB whose Fatal records the message and stops
// the caller with a panic of errFatal.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	panic(errFatal)
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(errFatal)
}

func TestProcessorInitFails(t *testing.T) {
	errInit := errors.New("no connection")
	tests := []struct {
		name string
		init func() error
		want string
	}{
		{"error", func() error { return errInit },
			"runtime: task 0_0: kstream: node starter: init: no connection"},
		{"panic", func() error { panic("init exploded") },
			"runtime: creating task 0_0: node starter: panic: init exploded [in kstream_test.TestProcessorInitFails.func2 at process_test.go:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			closed := 0
			supplier := func() kstream.Processor[string, string, string, string] {
				return &fnProcessor[string, string, string, string]{
					init:  func(*kstream.ProcessorContext[string, string]) error { return tt.init() },
					close: func() error { closed++; return nil },
				}
			}
			b := kstream.NewBuilder()
			kstream.Process(kstream.Source(b, "in", serde.String, serde.String), supplier, kstream.Named("starter"))
			topo := mustBuild(t, b)

			// Through testing.TB: NewDriver calls Fatal.
			ft := &fatalRecorder{TB: t}
			func() {
				defer func() {
					if r := recover(); r != errFatal {
						t.Errorf("NewDriver: recovered %v, want a call to Fatal", r)
					}
				}()
				kstest.NewDriver(ft, topo)
			}()
			if !strings.HasPrefix(ft.msg, tt.want) {
				t.Errorf("Fatal message %q, want %q...", ft.msg, tt.want)
			}

			// Without a testing.TB, NewDriver panics with the error.
			func() {
				defer func() {
					r := recover()
					err, ok := r.(error)
					if !ok {
						t.Fatalf("NewDriver(nil, ...) recovered %v, want an error", r)
					}
					if !strings.HasPrefix(err.Error(), tt.want) {
						t.Errorf("panic %q, want %q...", err, tt.want)
					}
					if tt.name == "error" && !errors.Is(err, errInit) {
						t.Errorf("errors.Is(%v, errInit) = false", err)
					}
				}()
				kstest.NewDriver(nil, topo)
			}()
			// A processor whose Init failed is not closed (it was never opened).
			checkEqual(t, "Close calls", closed, 0)
		})
	}
}
