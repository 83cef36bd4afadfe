package kstream_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/kstest"
	"github.com/kstreamgo/kstream/serde"
	"github.com/kstreamgo/kstream/state"
)

// fnFixedKeyProcessor is a FixedKeyProcessor made of functions; nil ones do
// nothing.
type fnFixedKeyProcessor[K, V, VR any] struct {
	ctx     *kstream.FixedKeyContext[K, VR]
	init    func(ctx *kstream.FixedKeyContext[K, VR]) error
	process func(ctx *kstream.FixedKeyContext[K, VR], r kstream.FixedKeyRecord[K, V]) error
	close   func() error
}

func (p *fnFixedKeyProcessor[K, V, VR]) Init(ctx *kstream.FixedKeyContext[K, VR]) error {
	p.ctx = ctx
	if p.init != nil {
		return p.init(ctx)
	}
	return nil
}

func (p *fnFixedKeyProcessor[K, V, VR]) Process(r kstream.FixedKeyRecord[K, V]) error {
	if p.process != nil {
		return p.process(p.ctx, r)
	}
	return nil
}

func (p *fnFixedKeyProcessor[K, V, VR]) Close() error {
	if p.close != nil {
		return p.close()
	}
	return nil
}

// fixedKey returns a supplier of fnFixedKeyProcessors that call process.
func fixedKey[K, V, VR any](process func(ctx *kstream.FixedKeyContext[K, VR], r kstream.FixedKeyRecord[K, V]) error) func() kstream.FixedKeyProcessor[K, V, VR] {
	return func() kstream.FixedKeyProcessor[K, V, VR] {
		return &fnFixedKeyProcessor[K, V, VR]{process: process}
	}
}

// upperValues forwards each record with its value in upper case.
var upperValues = fixedKey(func(ctx *kstream.FixedKeyContext[string, string], r kstream.FixedKeyRecord[string, string]) error {
	r.Value = strings.ToUpper(r.Value)
	ctx.Forward(r)
	return nil
})

// upperProcess is upperValues written with Process.
func upperProcess() kstream.Processor[string, string, string, string] {
	return &fnProcessor[string, string, string, string]{
		process: func(ctx *kstream.ProcessorContext[string, string], r kstream.Record[string, string]) error {
			r.Value = strings.ToUpper(r.Value)
			ctx.Forward(r)
			return nil
		},
	}
}

// A grouping after ProcessValues does not repartition; after Process it does.
func TestProcessValuesNoRepartition(t *testing.T) {
	tests := []struct {
		name       string
		op         func(s kstream.Stream[string, string]) kstream.Stream[string, string]
		describe   string // the node's line in Describe
		internal   []string
		subs       int
		joinTopics []string // internal topics of a JoinTable after op
	}{
		{"ProcessValues", func(s kstream.Stream[string, string]) kstream.Stream[string, string] {
			return kstream.ProcessValues(s, upperValues, kstream.Named("upper"))
		}, "Processor: upper (process-values)", []string{"app-counts-changelog"}, 1, nil},
		{"Process", func(s kstream.Stream[string, string]) kstream.Stream[string, string] {
			return kstream.Process(s, upperProcess, kstream.Named("upper"))
		}, "Processor: upper (process)", []string{"app-counts-changelog", "app-counts-repartition"}, 2,
			[]string{"app-joined-left-repartition"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := kstream.NewBuilder()
			up := tt.op(kstream.Source(b, "in", serde.String, serde.String))
			up.To("upper-out", nil, serde.String)
			up.GroupByKey().Count(kstream.Named("counts")).ToStream().To("counts-out", serde.String, serde.Int64)
			topo := mustBuild(t, b)
			desc := topo.Describe()
			checkEqual(t, "internal topics", topo.InternalTopics("app"), tt.internal)
			if !strings.Contains(desc, tt.describe) {
				t.Errorf("Describe() lacks %q:\n%s", tt.describe, desc)
			}
			if n := strings.Count(desc, "Sub-topology:"); n != tt.subs {
				t.Errorf("%d sub-topologies, want %d:\n%s", n, tt.subs, desc)
			}

			d := kstest.NewDriver(t, topo, kstest.Partitions(3))
			in := kstest.Input(d, "in", serde.String, serde.String)
			keys := []string{"a", "b", "a", "c", "a", "b", "d"}
			for i, k := range keys {
				in.PipeAt(int64(i), k, "v"+k)
			}
			var wantUpper []strRec
			var wantCounts []i64Rec
			n := map[string]int64{}
			for i, k := range keys {
				n[k]++
				wantUpper = append(wantUpper, rec(int64(i), k, "V"+strings.ToUpper(k)))
				wantCounts = append(wantCounts, i64(int64(i), k, n[k]))
			}
			checkRecords(t, "upper-out", kstest.Output(d, "upper-out", serde.String, serde.String).Records(), wantUpper)
			checkRecords(t, "counts-out", kstest.Output(d, "counts-out", serde.String, serde.Int64).Records(), wantCounts)
			checkStore(t, d, "counts", serde.Int64, map[string]int64{"a": 3, "b": 2, "c": 1, "d": 1}, "e")
			hasRepartition := slices.ContainsFunc(d.Topics(), func(s string) bool { return strings.HasSuffix(s, "-repartition") })
			if hasRepartition != (tt.name == "Process") {
				t.Errorf("topics written: %q", d.Topics())
			}

			// A stream-table join after the operator repartitions only after Process.
			b = kstream.NewBuilder()
			tbl := kstream.SourceTable(b, "tbl", serde.String, serde.String, kstream.Named("tbl"))
			s := tt.op(kstream.Source(b, "in", serde.String, serde.String))
			kstream.JoinTable(s, tbl, func(_, v, vt string) string { return v + vt }, kstream.Named("joined")).
				To("joined-out", nil, nil)
			var joinTopics []string
			for _, topic := range mustBuild(t, b).InternalTopics("app") {
				if strings.HasSuffix(topic, "-repartition") {
					joinTopics = append(joinTopics, topic)
				}
			}
			checkEqual(t, "repartition topics of a join", joinTopics, tt.joinTopics)
		})
	}
}

// After a key change, ProcessValues keeps the new keys, and a grouping
// downstream still repartitions.
func TestProcessValuesAfterKeyChange(t *testing.T) {
	var seen []string
	pv := fixedKey(func(ctx *kstream.FixedKeyContext[string, string], r kstream.FixedKeyRecord[string, string]) error {
		seen = append(seen, r.Key()+"="+r.Value)
		ctx.Forward(r)
		return nil
	})
	b := kstream.NewBuilder()
	s := kstream.Source(b, "in", serde.String, serde.String)
	byPage := kstream.SelectKey(s, func(_, page string) string { return page })
	kstream.ProcessValues(byPage, pv, kstream.Named("pv")).
		GroupByKey().Count(kstream.Named("per-page")).ToStream().To("out", serde.String, serde.Int64)
	topo := mustBuild(t, b)
	checkEqual(t, "internal topics", topo.InternalTopics("app"), []string{"app-per-page-changelog", "app-per-page-repartition"})

	d := kstest.NewDriver(t, topo, kstest.Partitions(3))
	in := kstest.Input(d, "in", serde.String, serde.String)
	users := []string{"ann", "bob", "cid", "dan", "eve"}
	pages := []string{"/home", "/cart", "/home", "/about", "/home"}
	for i := range users {
		in.PipeAt(int64(i), users[i], pages[i])
	}
	checkRecords(t, "out", kstest.Output(d, "out", serde.String, serde.Int64).Records(), []i64Rec{
		i64(0, "/home", 1), i64(1, "/cart", 1), i64(2, "/home", 2), i64(3, "/about", 1), i64(4, "/home", 3),
	})
	checkEqual(t, "records seen", seen, []string{"/home=/home", "/cart=/cart", "/home=/home", "/about=/about", "/home=/home"})
	checkStore(t, d, "per-page", serde.Int64, map[string]int64{"/home": 3, "/cart": 1, "/about": 1})
}

// A processor rewrites timestamps and adds a header; the key stays.
func TestProcessValuesTimestampHeaders(t *testing.T) {
	var seen []string
	pv := fixedKey(func(ctx *kstream.FixedKeyContext[string, string], r kstream.FixedKeyRecord[string, string]) error {
		seen = append(seen, fmt.Sprintf("%s@%d(%s) %s/%d@%d", r.Key(), r.Timestamp, r.Time().UTC().Format("05.000"),
			ctx.Topic(), ctx.Partition(), ctx.Offset()))
		r.Timestamp += 1000
		r.Headers = append(slices.Clip(r.Headers), hdr("stamped", fmt.Sprint(ctx.StreamTime())))
		ctx.Forward(r)
		return nil
	})
	b := kstream.NewBuilder()
	s := kstream.Source(b, "in", serde.String, serde.String)
	kstream.ProcessValues(s, pv, kstream.Named("stamp")).To("out", nil, serde.String)
	d := kstest.NewDriver(t, mustBuild(t, b))
	pipeAll(t, d, serde.String, serde.String, []pipe[string, string]{
		in(rec(10, "a", "x", hdr("h", "1"))),
		in(rec(20, "b", "y")),
		in(rec(15, "a", "z", hdr("h", "2"), hdr("h", "3"))),
	})
	checkRecords(t, "out", kstest.Output(d, "out", serde.String, serde.String).Records(), []strRec{
		rec(1010, "a", "x", hdr("h", "1"), hdr("stamped", "10")),
		rec(1020, "b", "y", hdr("stamped", "20")),
		rec(1015, "a", "z", hdr("h", "2"), hdr("h", "3"), hdr("stamped", "20")),
	})
	checkEqual(t, "records seen", seen, []string{"a@10(00.010) in/0@0", "b@20(00.020) in/0@1", "a@15(00.015) in/0@2"})
}

// WithValue changes the value's type and keeps key, timestamp and headers.
func TestProcessValuesWithValue(t *testing.T) {
	lengths := fixedKey(func(ctx *kstream.FixedKeyContext[string, int64], r kstream.FixedKeyRecord[string, string]) error {
		n := int64(len(r.Value))
		if r.Tombstone {
			n = -1 // WithValue makes a tombstone a record with a value
		}
		ctx.Forward(kstream.WithValue(r, n))
		return nil
	})
	b := kstream.NewBuilder()
	s := kstream.Source(b, "in", serde.String, serde.String)
	kstream.ProcessValues(s, lengths, kstream.Named("lengths")).To("out", nil, serde.Int64) // the key serde carries over
	d := kstest.NewDriver(t, mustBuild(t, b))
	pipeAll(t, d, serde.String, serde.String, []pipe[string, string]{
		in(rec(1, "a", "hello", hdr("h", "1"))),
		in(rec(2, "b", "")),
		in(tomb[string, string](3, "c", hdr("h", "3"))),
	})
	checkRecords(t, "out", kstest.Output(d, "out", serde.String, serde.Int64).Records(), []i64Rec{
		i64(1, "a", 5, hdr("h", "1")), i64(2, "b", 0), i64(3, "c", -1, hdr("h", "3")),
	})

	// WithValue on a record as the package sees it.
	r := kstream.WithValue(kstream.FixedKeyRecord[string, string]{Value: "x", Timestamp: 7, Headers: []kstream.Header{hdr("k", "v")}, Tombstone: true}, 3.5)
	checkEqual(t, "WithValue", r, kstream.FixedKeyRecord[string, float64]{Value: 3.5, Timestamp: 7, Headers: []kstream.Header{hdr("k", "v")}})
	checkEqual(t, "Time", r.Time(), time.UnixMilli(7))
}

// The key serde carries over ProcessValues: a struct key needs no WithSerdes
// for a sink or a store.
func TestProcessValuesKeySerde(t *testing.T) {
	pointSerde := serde.JSON[point]()
	pass := fixedKey(func(ctx *kstream.FixedKeyContext[point, string], r kstream.FixedKeyRecord[point, string]) error {
		ctx.Forward(r)
		return nil
	})
	b := kstream.NewBuilder()
	s := kstream.ProcessValues(kstream.Source(b, "in", pointSerde, serde.String), pass, kstream.Named("pass"))
	s.To("out", nil, nil) // string values have a built-in serde
	s.GroupByKey().Count(kstream.Named("per-point"))
	d := kstest.NewDriver(t, mustBuild(t, b), kstest.Partitions(2))
	in := kstest.Input(d, "in", pointSerde, serde.String)
	in.PipeAt(1, point{1, 2}, "a")
	in.PipeAt(2, point{1, 2}, "b")
	checkRecords(t, "out", kstest.Output(d, "out", pointSerde, serde.String).Records(), []kstream.Record[point, string]{
		rec(1, point{1, 2}, "a"), rec(2, point{1, 2}, "b"),
	})
	if n, _ := kstest.Store(d, "per-point", pointSerde, serde.Int64).Get(point{1, 2}); n != 2 {
		t.Errorf("count of (1,2) = %d, want 2", n)
	}
}

// summer sums the values of each key in the store "sums" and keeps the
// latest record of each key, with its sum as value; a stream-time
// punctuation every 10 ms forwards the kept records, in key order, stamped
// with the punctuation time.
func summer() kstream.FixedKeyProcessor[string, int64, int64] {
	var sums *state.KV[string, int64]
	pending := map[string]kstream.FixedKeyRecord[string, int64]{}
	return &fnFixedKeyProcessor[string, int64, int64]{
		init: func(ctx *kstream.FixedKeyContext[string, int64]) error {
			st, err := ctx.Store("sums")
			if err != nil {
				return err
			}
			sums = state.NewKV(st, serde.String, serde.Int64)
			ctx.Schedule(10*time.Millisecond, kstream.StreamTime, func(ts int64) error {
				keys := make([]string, 0, len(pending))
				for k := range pending {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				for _, k := range keys {
					r := pending[k]
					r.Timestamp = ts
					ctx.Forward(r)
				}
				clear(pending)
				return nil
			})
			return nil
		},
		process: func(_ *kstream.FixedKeyContext[string, int64], r kstream.FixedKeyRecord[string, int64]) error {
			sum, _, err := sums.Get(r.Key())
			if err != nil {
				return err
			}
			sum += r.Value
			if err := sums.Put(r.Key(), sum); err != nil {
				return err
			}
			r.Value = sum
			pending[r.Key()] = r
			return nil
		},
	}
}

func TestProcessValuesStorePunctuation(t *testing.T) {
	b := kstream.NewBuilder()
	s := kstream.Source(b, "in", serde.String, serde.Int64)
	kstream.ProcessValues(s, summer, kstream.Named("summer"), kstream.WithStores("sums")).To("out", nil, nil)
	topo := mustBuild(t, b)
	checkEqual(t, "internal topics", topo.InternalTopics("app"), []string{"app-sums-changelog"})
	if want := "Processor: summer (process-values, stores: [sums])"; !strings.Contains(topo.Describe(), want) {
		t.Errorf("Describe() lacks %q:\n%s", want, topo.Describe())
	}
	d := kstest.NewDriver(t, topo)
	pipeAll(t, d, serde.String, serde.Int64, []pipe[string, int64]{
		in64(0, "a", 1),                      // punctuation at 0: a=1
		in64(3, "b", 2, hdr("h", "b")),       // kept
		in64(5, "a", 4),                      // kept
		in64(12, "b", 3),                     // punctuation at 12: a=5, b=5
		in64(15, "c", 7, hdr("h", "c")),      // kept
		in64(20, "a", 1, hdr("h", "last-a")), // punctuation at 20: a=6, c=7
	})
	checkRecords(t, "out", kstest.Output(d, "out", serde.String, serde.Int64).Records(), []i64Rec{
		i64(0, "a", 1),
		i64(12, "a", 5), i64(12, "b", 5),
		i64(20, "a", 6, hdr("h", "last-a")), i64(20, "c", 7, hdr("h", "c")),
	})
	want := map[string]int64{"a": 6, "b": 5, "c": 7}
	checkStore(t, d, "sums", serde.Int64, want)
	d.Restart()
	checkStore(t, d, "sums", serde.Int64, want)
}

func in64(ts int64, k string, v int64, hs ...kstream.Header) pipe[string, int64] {
	return in(i64(ts, k, v, hs...))
}

// Tombstones reach the processor; a forwarded tombstone reaches the sink as a
// null value; null keys stay null.
func TestProcessValuesTombstonesNullKeys(t *testing.T) {
	var seen []string
	pv := fixedKey(func(ctx *kstream.FixedKeyContext[string, string], r kstream.FixedKeyRecord[string, string]) error {
		seen = append(seen, fmt.Sprintf("%q %q %v", r.Key(), r.Value, r.Tombstone))
		switch {
		case r.Tombstone:
		case r.Value == "delete":
			r.Value, r.Tombstone = "", true // the processor turns a record into a delete
		default:
			r.Value += "!"
		}
		ctx.Forward(r)
		return nil
	})
	b := kstream.NewBuilder()
	s := kstream.ProcessValues(kstream.Source(b, "in", serde.String, serde.String), pv, kstream.Named("pv"))
	s.To("out", nil, nil)
	s.GroupByKey().Count(kstream.Named("counts"))
	d := kstest.NewDriver(t, mustBuild(t, b))
	pipeAll(t, d, serde.String, serde.String, []pipe[string, string]{
		in(rec(1, "a", "x")),
		in(tomb[string, string](2, "b", hdr("h", "2"))),
		nullKey[string](3, "y"),
		in(rec(4, "", "empty key")),
		in(rec(5, "c", "delete")),
	})
	checkEqual(t, "records seen", seen, []string{
		`"a" "x" false`, `"b" "" true`, `"" "y" false`, `"" "empty key" false`, `"c" "delete" false`,
	})
	str := func(s string) *string { return &s }
	checkRecords(t, "out", kstest.Output(d, "out", diffNullableString{}, serde.String).Records(), []kstream.Record[*string, string]{
		rec(1, str("a"), "x!"),
		tomb[*string, string](2, str("b"), hdr("h", "2")),
		rec[*string](3, nil, "y!"), // the null key stays null
		rec(4, str(""), "empty key!"),
		tomb[*string, string](5, str("c")),
	})
	// Count drops the null key and the two tombstones, and counts "a" and "".
	checkEqual(t, "dropped by count", d.Dropped("counts"), int64(3))
	checkStore(t, d, "counts", serde.Int64, map[string]int64{"a": 1, "": 1}, "b", "c")
}

func TestProcessValuesErrors(t *testing.T) {
	pv := fixedKey(func(ctx *kstream.FixedKeyContext[string, string], r kstream.FixedKeyRecord[string, string]) error {
		switch r.Value {
		case "bad":
			return fmt.Errorf("checking %q: %w", r.Key(), errBad)
		case "boom":
			panic("boom: " + r.Value)
		case "boom after forward":
			ctx.Forward(r)
			panic("boom: " + r.Value)
		}
		ctx.Forward(r)
		return nil
	})
	b := kstream.NewBuilder()
	// The nodes before and after it set the current node too.
	before := kstream.Source(b, "in", serde.String, serde.String).Filter(func(string, string) bool { return true }, kstream.Named("before"))
	s := kstream.ProcessValues(before, pv, kstream.Named("checker"))
	s.Peek(func(string, string) {}, kstream.Named("after")).To("out", nil, nil)
	d := kstest.NewDriver(t, mustBuild(t, b))
	in := kstest.Input(d, "in", serde.String, serde.String)
	in.PipeAt(0, "k", "good")

	err := in.TryPipeRecord(rec(1, "k", "bad"))
	re := recordError(t, err)
	checkEqual(t, "RecordError", *re, graph.RecordError{Topic: "in", Partition: 0, Offset: 1, Node: "checker", Err: re.Err})
	if !errors.Is(err, errBad) {
		t.Errorf("errors.Is(%v, errBad) = false", err)
	}
	checkEqual(t, "error text", err.Error(), `kstream: processing record in/0@1 in node checker: checking "k": bad record`)
	var kre *kstream.RecordError
	if !errors.As(err, &kre) || kre.Node != "checker" {
		t.Errorf("errors.As(%v, *kstream.RecordError) = %v", err, kre)
	}

	for i, v := range []string{"boom", "boom after forward"} {
		off := 2 + i
		err = in.TryPipeRecord(rec(int64(off), "k", v))
		re = recordError(t, err)
		checkEqual(t, "node", re.Node, "checker")
		if want := fmt.Sprintf("kstream: processing record in/0@%d in node checker: panic: boom: %s [in kstream_test.TestProcessValuesErrors.func1 at processvalues_test.go:", off, v); !strings.HasPrefix(err.Error(), want) {
			t.Errorf("error text %q, want %q<line>]", err, want)
		}
	}

	in.PipeAt(4, "k", "good again")
	checkRecords(t, "out", kstest.Output(d, "out", serde.String, serde.String).Records(), []strRec{
		rec(0, "k", "good"), rec(3, "k", "boom after forward"), rec(4, "k", "good again"),
	})
}

// Init errors, unconnected stores, Close and punctuation errors behave as
// with Process.
func TestProcessValuesLifecycle(t *testing.T) {
	errInit := errors.New("no connection")
	closed := 0
	var storeErr error
	supplier := func() kstream.FixedKeyProcessor[string, string, string] {
		return &fnFixedKeyProcessor[string, string, string]{
			init: func(ctx *kstream.FixedKeyContext[string, string]) error {
				_, storeErr = ctx.Store("other")
				if ctx.AppID() != "myapp" || ctx.StreamTime() != -1 {
					return fmt.Errorf("AppID %q, StreamTime %d", ctx.AppID(), ctx.StreamTime())
				}
				ctx.Schedule(time.Second, kstream.WallClockTime, func(ts int64) error {
					return fmt.Errorf("tick at %d: %w", ts, errBad)
				})
				return nil
			},
			close: func() error { closed++; return nil },
		}
	}
	b := kstream.NewBuilder()
	kstream.ProcessValues(kstream.Source(b, "in", serde.String, serde.String), supplier, kstream.Named("pv"), kstream.WithStores("mine"))
	ft := &fatalRecorder{TB: t}
	d := kstest.NewDriver(ft, mustBuild(t, b), kstest.AppID("myapp"), kstest.Partitions(2))
	checkEqual(t, "Store error", fmt.Sprint(storeErr), `kstream: node pv: store "other" is not connected (add kstream.WithStores("other"))`)
	func() {
		defer func() {
			if r := recover(); r != errFatal {
				t.Errorf("AdvanceWallClock: recovered %v, want a call to Fatal", r)
			}
		}()
		d.AdvanceWallClock(time.Second)
	}()
	checkEqual(t, "Fatal message", ft.msg, "kstream: processing in node pv (task partition 0, punctuation): tick at 1000: bad record")
	d.Close()
	checkEqual(t, "Close calls", closed, 2)

	b = kstream.NewBuilder()
	kstream.ProcessValues(kstream.Source(b, "in", serde.String, serde.String), func() kstream.FixedKeyProcessor[string, string, string] {
		return &fnFixedKeyProcessor[string, string, string]{init: func(*kstream.FixedKeyContext[string, string]) error { return errInit }}
	}, kstream.Named("starter"))
	topo := mustBuild(t, b)
	func() {
		defer func() {
			err, _ := recover().(error)
			checkEqual(t, "panic", fmt.Sprint(err), "runtime: task 0_0: kstream: node starter: init: no connection")
			if !errors.Is(err, errInit) {
				t.Errorf("errors.Is(%v, errInit) = false", err)
			}
		}()
		kstest.NewDriver(nil, topo)
	}()
}
