package kstream_test

import (
	"fmt"
	"reflect"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/internal/runtime"
	"github.com/kstreamgo/kstream/kstest"
	"github.com/kstreamgo/kstream/serde"
)

// Helpers shared by the test files of package kstream_test.

// rec returns an expected (or input) record.
func rec[K, V any](ts int64, k K, v V, hs ...kstream.Header) kstream.Record[K, V] {
	return kstream.Record[K, V]{Key: k, Value: v, Timestamp: ts, Headers: hs}
}

// tomb returns a tombstone record.
func tomb[K, V any](ts int64, k K, hs ...kstream.Header) kstream.Record[K, V] {
	return kstream.Record[K, V]{Key: k, Timestamp: ts, Headers: hs, Tombstone: true}
}

func hdr(k, v string) kstream.Header { return kstream.Header{Key: k, Value: []byte(v)} }

func fmtRecord[K, V any](r kstream.Record[K, V]) string {
	var b strings.Builder
	fmt.Fprintf(&b, "@%d %#v => ", r.Timestamp, r.Key)
	if r.Tombstone {
		b.WriteString("<tombstone>")
		if !reflect.ValueOf(&r.Value).Elem().IsZero() {
			fmt.Fprintf(&b, " (value %#v)", r.Value)
		}
	} else {
		fmt.Fprintf(&b, "%#v", r.Value)
	}
	for _, h := range r.Headers {
		fmt.Fprintf(&b, " [%s=%q]", h.Key, h.Value)
	}
	return b.String()
}

// checkRecords compares records exactly (keys, values, timestamps, headers,
// tombstones) and prints both lists, marking the lines that differ.
func checkRecords[K, V any](t testing.TB, what string, got, want []kstream.Record[K, V]) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if reflect.DeepEqual(got, want) {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: got %d records, want %d:\n", what, len(got), len(want))
	for i := range max(len(got), len(want)) {
		g, w := "-", "-"
		if i < len(got) {
			g = fmtRecord(got[i])
		}
		if i < len(want) {
			w = fmtRecord(want[i])
		}
		mark := "  "
		if i >= len(got) || i >= len(want) || !reflect.DeepEqual(got[i], want[i]) {
			mark = "! "
		}
		fmt.Fprintf(&b, "%s%2d got  %s\n%s   want %s\n", mark, i, g, mark, w)
	}
	t.Error(b.String())
}

func checkEqual[T any](t testing.TB, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got  %#v\n want %#v", what, got, want)
	}
}

// pipe is one input record of a table-driven test: a record for Topic
// (default "in"), or a record with a null key.
type pipe[K, V any] struct {
	kstream.Record[K, V]
	Topic   string
	NullKey bool
}

func in[K, V any](r kstream.Record[K, V]) pipe[K, V] { return pipe[K, V]{Record: r} }

func inTo[K, V any](topic string, r kstream.Record[K, V]) pipe[K, V] {
	return pipe[K, V]{Record: r, Topic: topic}
}

func nullKey[K, V any](ts int64, v V) pipe[K, V] {
	return pipe[K, V]{Record: kstream.Record[K, V]{Timestamp: ts, Value: v}, NullKey: true}
}

func pipeAll[K, V any](t testing.TB, d *kstest.Driver, ks serde.Serde[K], vs serde.Serde[V], steps []pipe[K, V]) {
	t.Helper()
	for _, p := range steps {
		topic := p.Topic
		if topic == "" {
			topic = "in"
		}
		it := kstest.Input(d, topic, ks, vs)
		if p.NullKey {
			it.PipeNullKeyAt(p.Timestamp, p.Value)
			continue
		}
		if err := it.TryPipeRecord(p.Record); err != nil {
			t.Fatalf("piping %s to %s: %v", fmtRecord(p.Record), topic, err)
		}
	}
}

func mustBuild(t testing.TB, b *kstream.Builder) *kstream.Topology {
	t.Helper()
	topo, err := b.Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return topo
}

// benchTask builds the topology of bld and makes its task of partition 0
// of sub-topology 0, closed when the benchmark ends: benchmarks call its
// executors directly.
func benchTask(b *testing.B, bld *kstream.Builder) *runtime.Task {
	b.Helper()
	task, err := runtime.NewTask(mustBuild(b, bld), &runtime.Config{AppID: "bench"}, 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = task.Close() })
	return task
}

var partitionCounts = []int{1, 3}

func TestStatelessOperators(t *testing.T) {
	type S = kstream.Stream[string, string]
	type R = kstream.Record[string, string]
	h1, h2 := hdr("trace", "t-1"), hdr("src", "x")
	tests := []struct {
		name  string
		build func(b *kstream.Builder, s S, log func(string))
		in    []pipe[string, string]
		// want maps each output topic to its records.
		want    map[string][]R
		calls   []string
		dropped map[string]int64
		// received maps nodes to the records they received (Driver.Received).
		received map[string]int64
	}{
		{
			name: "Filter",
			build: func(_ *kstream.Builder, s S, log func(string)) {
				s.Filter(func(k, v string) bool {
					log(k + "=" + v)
					return strings.HasPrefix(v, "+")
				}, kstream.Named("f")).To("out", serde.String, serde.String)
			},
			in: []pipe[string, string]{
				in(rec(10, "k1", "+x", h1)),
				in(rec(11, "k2", "-y")),
				in(tomb[string, string](12, "k3", h2)),
				in(rec(13, "k1", "+z", h1, h2)),
				in(rec(9, "k4", "+old")),
			},
			want: map[string][]R{"out": {
				rec(10, "k1", "+x", h1),
				tomb[string, string](12, "k3", h2),
				rec(13, "k1", "+z", h1, h2),
				rec(9, "k4", "+old"),
			}},
			calls: []string{"k1=+x", "k2=-y", "k1=+z", "k4=+old"},
		},
		{
			name: "FilterNot",
			build: func(_ *kstream.Builder, s S, log func(string)) {
				s.FilterNot(func(k, v string) bool {
					log(k + "=" + v)
					return strings.HasPrefix(v, "+")
				}).To("out", serde.String, serde.String)
			},
			in: []pipe[string, string]{
				in(rec(10, "k1", "+x", h1)),
				in(rec(11, "k2", "-y", h1)),
				in(tomb[string, string](12, "k3")),
				in(rec(13, "k1", "", h2)),
			},
			want: map[string][]R{"out": {
				rec(11, "k2", "-y", h1),
				tomb[string, string](12, "k3"),
				rec(13, "k1", "", h2),
			}},
			calls: []string{"k1=+x", "k2=-y", "k1="},
		},
		{
			name: "Peek",
			build: func(_ *kstream.Builder, s S, log func(string)) {
				s.Peek(func(k, v string) { log(k + "=" + v) }).To("out", serde.String, serde.String)
			},
			in: []pipe[string, string]{
				in(rec(1, "a", "1", h1)),
				in(tomb[string, string](2, "b", h2)),
				in(rec(3, "c", "3")),
			},
			want: map[string][]R{"out": {
				rec(1, "a", "1", h1),
				tomb[string, string](2, "b", h2),
				rec(3, "c", "3"),
			}},
			calls: []string{"a=1", "c=3"},
		},
		{
			name: "Foreach",
			build: func(_ *kstream.Builder, s S, log func(string)) {
				s.Foreach(func(k, v string) { log(k + "=" + v) })
				s.Foreach(func(k, v string) { log("second " + k + "=" + v) })
			},
			in: []pipe[string, string]{
				in(rec(1, "a", "1")),
				in(tomb[string, string](2, "b")),
				in(rec(3, "c", "3")),
			},
			want:  map[string][]R{},
			calls: []string{"a=1", "second a=1", "c=3", "second c=3"},
		},
		{
			// A Filter (or Peek, Foreach...) that is the only child of a Map
			// or MapValues runs in its parent's frame: the same results,
			// tombstones and null keys included.
			name: "MapThenFilter",
			build: func(_ *kstream.Builder, s S, log func(string)) {
				m := kstream.Map(s, func(k, v string) (string, string) {
					log("map " + k + "=" + v)
					return strings.ToUpper(k), v + "!"
				}, kstream.Named("m"))
				m.Filter(func(k, v string) bool {
					log("filter " + k + "=" + v)
					return strings.HasPrefix(v, "+")
				}, kstream.Named("f")).To("out", serde.String, serde.String)
			},
			in: []pipe[string, string]{
				in(rec(1, "a", "+1", h1)),
				in(rec(2, "b", "-2")),
				in(tomb[string, string](3, "c")),
				nullKey[string](4, "+null key"),
				in(rec(5, "d", "+5", h2)),
			},
			want: map[string][]R{"out": {
				rec(1, "A", "+1!", h1), rec(4, "", "+null key!"), rec(5, "D", "+5!", h2),
			}},
			calls: []string{"map a=+1", "filter A=+1!", "map b=-2", "filter B=-2!",
				"map =+null key", "filter =+null key!", "map d=+5", "filter D=+5!"},
			dropped:  map[string]int64{"m": 1},
			received: map[string]int64{"m": 5, "f": 4},
		},
		{
			name: "MapThenFilterNot",
			build: func(_ *kstream.Builder, s S, _ func(string)) {
				kstream.Map(s, func(k, v string) (string, string) { return v, k }, kstream.Named("m")).
					FilterNot(func(k, _ string) bool { return k == "drop" }, kstream.Named("f")).
					To("out", serde.String, serde.String)
			},
			in: []pipe[string, string]{
				in(rec(1, "a", "keep", h1)),
				in(rec(2, "b", "drop")),
				in(rec(3, "c", "also")),
			},
			want:     map[string][]R{"out": {rec(1, "keep", "a", h1), rec(3, "also", "c")}},
			received: map[string]int64{"m": 3, "f": 3},
		},
		{
			name: "MapThenPeek",
			build: func(_ *kstream.Builder, s S, log func(string)) {
				kstream.Map(s, func(k, v string) (string, string) { return v, k }, kstream.Named("m")).
					Peek(func(k, v string) { log("peek " + k + "=" + v) }, kstream.Named("p")).
					To("out", serde.String, serde.String)
			},
			in: []pipe[string, string]{
				in(rec(1, "a", "1", h1)),
				in(tomb[string, string](2, "b")),
				in(rec(3, "c", "3")),
			},
			want:     map[string][]R{"out": {rec(1, "1", "a", h1), rec(3, "3", "c")}},
			calls:    []string{"peek 1=a", "peek 3=c"},
			dropped:  map[string]int64{"m": 1},
			received: map[string]int64{"m": 3, "p": 2},
		},
		{
			name: "MapThenForeach",
			build: func(_ *kstream.Builder, s S, log func(string)) {
				kstream.Map(s, func(k, v string) (string, string) { return v, k }, kstream.Named("m")).
					Foreach(func(k, v string) { log("each " + k + "=" + v) }, kstream.Named("e"))
			},
			in: []pipe[string, string]{
				in(rec(1, "a", "1")),
				in(tomb[string, string](2, "b")),
				nullKey[string](3, "3"),
			},
			want:     map[string][]R{},
			calls:    []string{"each 1=a", "each 3="},
			received: map[string]int64{"m": 3, "e": 2},
		},
		{
			name: "MapValuesThenFilterNotThenPeek",
			build: func(_ *kstream.Builder, s S, log func(string)) {
				mv := kstream.MapValues(s, func(v string) int64 {
					log("map-values " + v)
					return int64(len(v))
				}, kstream.Named("mv"))
				kept := mv.FilterNot(func(k string, v int64) bool {
					log("filter-not " + k + "=" + strconv.FormatInt(v, 10))
					return v > 2
				}, kstream.Named("f")).
					Peek(func(k string, v int64) { log("peek " + k + "=" + strconv.FormatInt(v, 10)) }, kstream.Named("p"))
				kstream.MapValues(kept, func(v int64) string { return strconv.FormatInt(v, 10) }).
					To("out", serde.String, serde.String)
			},
			in: []pipe[string, string]{
				in(rec(1, "a", "xy", h1)),
				in(rec(2, "b", "long")),
				in(tomb[string, string](3, "c", h2)),
				nullKey[string](4, "n"),
			},
			want: map[string][]R{"out": {
				rec(1, "a", "2", h1), tomb[string, string](3, "c", h2), rec(4, "", "1"),
			}},
			calls: []string{"map-values xy", "filter-not a=2", "peek a=2", "map-values long", "filter-not b=4",
				"map-values n", "filter-not =1", "peek =1"},
			received: map[string]int64{"mv": 4, "f": 4, "p": 3},
		},
		{
			name: "MapValuesThenForeach",
			build: func(_ *kstream.Builder, s S, log func(string)) {
				kstream.MapValues(s, strings.ToUpper, kstream.Named("mv")).
					Foreach(func(k, v string) { log("each " + k + "=" + v) }, kstream.Named("e"))
			},
			in: []pipe[string, string]{
				in(rec(1, "a", "x")),
				in(tomb[string, string](2, "b")),
				nullKey[string](3, "y"),
			},
			want:     map[string][]R{},
			calls:    []string{"each a=X", "each =Y"},
			received: map[string]int64{"mv": 3, "e": 3},
		},
		{
			name: "Merge",
			build: func(b *kstream.Builder, s S, _ func(string)) {
				s2 := kstream.Source(b, "in2", serde.String, serde.String)
				s3 := kstream.Source(b, "in3", serde.String, serde.String)
				s.Merge(s2, s3).To("out", serde.String, serde.String)
			},
			in: []pipe[string, string]{
				in(rec(5, "a", "from-in", h1)),
				inTo("in2", rec(3, "b", "from-in2", h2)),
				inTo("in3", tomb[string, string](4, "c")),
				inTo("in2", tomb[string, string](6, "a", h1)),
				in(rec(7, "b", "again")),
			},
			want: map[string][]R{"out": {
				rec(5, "a", "from-in", h1),
				rec(3, "b", "from-in2", h2),
				tomb[string, string](4, "c"),
				tomb[string, string](6, "a", h1),
				rec(7, "b", "again"),
			}},
		},
		{
			name: "MergeWithItself",
			build: func(_ *kstream.Builder, s S, _ func(string)) {
				s.Merge(s.Filter(func(_, v string) bool { return v == "twice" })).To("out", serde.String, serde.String)
			},
			in: []pipe[string, string]{
				in(rec(1, "a", "once")),
				in(rec(2, "b", "twice", h1)),
			},
			want: map[string][]R{"out": {
				rec(1, "a", "once"),
				rec(2, "b", "twice", h1),
				rec(2, "b", "twice", h1),
			}},
		},
		{
			name: "Branch",
			build: func(_ *kstream.Builder, s S, log func(string)) {
				bs := s.Branch(
					func(k, v string) bool { log("p0 " + v); return strings.HasPrefix(v, "a") },
					func(k, v string) bool { log("p1 " + v); return strings.Contains(v, "a") },
				)
				if len(bs) != 3 {
					panic(fmt.Sprintf("Branch with 2 predicates returned %d streams, want 3", len(bs)))
				}
				for i, br := range bs {
					br.To("out-"+strconv.Itoa(i), serde.String, serde.String)
				}
			},
			in: []pipe[string, string]{
				in(rec(1, "k1", "ab", h1)), // both match: the first wins
				in(rec(2, "k2", "ba")),
				in(rec(3, "k3", "cc", h2)), // none matches
				in(tomb[string, string](4, "k4", h1)),
				in(rec(5, "k5", "a")),
			},
			want: map[string][]R{
				"out-0": {rec(1, "k1", "ab", h1), tomb[string, string](4, "k4", h1), rec(5, "k5", "a")},
				"out-1": {rec(2, "k2", "ba"), tomb[string, string](4, "k4", h1)},
				"out-2": {rec(3, "k3", "cc", h2), tomb[string, string](4, "k4", h1)},
			},
			calls: []string{"p0 ab", "p0 ba", "p1 ba", "p0 cc", "p1 cc", "p0 a"},
		},
		{
			name: "BranchNoPredicates",
			build: func(_ *kstream.Builder, s S, _ func(string)) {
				bs := s.Branch()
				if len(bs) != 1 {
					panic(fmt.Sprintf("Branch() returned %d streams, want 1", len(bs)))
				}
				bs[0].To("out", serde.String, serde.String)
			},
			in:   []pipe[string, string]{in(rec(1, "k", "v")), in(tomb[string, string](2, "k"))},
			want: map[string][]R{"out": {rec(1, "k", "v"), tomb[string, string](2, "k")}},
		},
		{
			name: "To",
			build: func(_ *kstream.Builder, s S, _ func(string)) {
				s.To("out", nil, nil) // the source's serdes
				s.To("out-explicit", serde.String, serde.String)
			},
			in: []pipe[string, string]{
				in(rec(1, "a", "1", h1, h2)),
				in(tomb[string, string](2, "b")),
				in(rec(3, "", "empty key")),
				nullKey[string](4, "null key"),
				in(rec(5, "c", "")),
			},
			want: map[string][]R{
				"out": {
					rec(1, "a", "1", h1, h2), tomb[string, string](2, "b"), rec(3, "", "empty key"),
					rec(4, "", "null key"), rec(5, "c", ""),
				},
				"out-explicit": {
					rec(1, "a", "1", h1, h2), tomb[string, string](2, "b"), rec(3, "", "empty key"),
					rec(4, "", "null key"), rec(5, "c", ""),
				},
			},
		},
		{
			// The first output of a task has empty key and value: neither
			// is null.
			name: "EmptyKeyAndValue",
			build: func(_ *kstream.Builder, s S, _ func(string)) {
				s.To("out", nil, nil)
				s.Repartition(kstream.Named("rp")).To("out2", nil, nil)
			},
			in: []pipe[string, string]{
				in(rec(1, "", "")),
				in(rec(2, "", "")),
			},
			want: map[string][]R{
				"out":                   {rec(1, "", ""), rec(2, "", "")},
				"out2":                  {rec(1, "", ""), rec(2, "", "")},
				"kstest-rp-repartition": {rec(1, "", ""), rec(2, "", "")},
			},
		},
		{
			name: "Repartition",
			build: func(_ *kstream.Builder, s S, _ func(string)) {
				s.Repartition(kstream.Named("rp")).To("out", serde.String, serde.String)
			},
			in: []pipe[string, string]{
				in(rec(1, "a", "1", h1)),
				in(tomb[string, string](2, "b", h2)),
				nullKey[string](3, "n"),
				in(rec(4, "c", "4")),
			},
			want: map[string][]R{
				"out":                   {rec(1, "a", "1", h1), tomb[string, string](2, "b", h2), rec(3, "", "n"), rec(4, "c", "4")},
				"kstest-rp-repartition": {rec(1, "a", "1", h1), tomb[string, string](2, "b", h2), rec(3, "", "n"), rec(4, "c", "4")},
			},
		},
		{
			name: "Map",
			build: func(_ *kstream.Builder, s S, log func(string)) {
				kstream.Map(s, func(k, v string) (string, string) {
					log(k + "=" + v)
					return v, k
				}, kstream.Named("swap")).To("out", nil, nil)
			},
			in: []pipe[string, string]{
				in(rec(1, "a", "x", h1)),
				in(tomb[string, string](2, "b", h1)),
				nullKey[string](3, "y"),
				in(rec(0, "c", "z")),
			},
			want: map[string][]R{"out": {
				rec(1, "x", "a", h1),
				rec(3, "y", ""),
				rec(0, "z", "c"),
			}},
			calls:   []string{"a=x", "=y", "c=z"},
			dropped: map[string]int64{"swap": 1},
		},
		{
			name: "MapValues",
			build: func(_ *kstream.Builder, s S, log func(string)) {
				kstream.MapValues(s, func(v string) string {
					log(v)
					return strings.ToUpper(v)
				}).To("out", serde.String, serde.String)
			},
			in: []pipe[string, string]{
				in(rec(1, "a", "x", h1)),
				in(tomb[string, string](2, "b", h2)),
				nullKey[string](3, "y"),
			},
			want: map[string][]R{"out": {
				rec(1, "a", "X", h1),
				tomb[string, string](2, "b", h2),
				rec(3, "", "Y"),
			}},
			calls: []string{"x", "y"},
		},
		{
			name: "SelectKey",
			build: func(_ *kstream.Builder, s S, log func(string)) {
				kstream.SelectKey(s, func(k, v string) string {
					log(k + "=" + v)
					return k + "/" + v
				}, kstream.Named("sk")).To("out", nil, serde.String)
			},
			in: []pipe[string, string]{
				in(rec(1, "a", "x", h1)),
				in(tomb[string, string](2, "b")),
				in(tomb[string, string](3, "c")),
				in(rec(4, "d", "y")),
			},
			want: map[string][]R{"out": {
				rec(1, "a/x", "x", h1),
				rec(4, "d/y", "y"),
			}},
			calls:   []string{"a=x", "d=y"},
			dropped: map[string]int64{"sk": 2},
		},
		{
			name: "FlatMap",
			build: func(_ *kstream.Builder, s S, log func(string)) {
				kstream.FlatMap(s, func(k, v string, emit func(string, string)) {
					log(k + "=" + v)
					for _, w := range strings.Fields(v) {
						emit(w, k)
					}
				}, kstream.Named("fm")).To("out", nil, nil)
			},
			in: []pipe[string, string]{
				in(rec(1, "a", "x y z", h1)),
				in(tomb[string, string](2, "b", h1)),
				in(rec(3, "c", "")),
				in(rec(4, "d", "w", h2)),
			},
			want: map[string][]R{"out": {
				rec(1, "x", "a", h1),
				rec(1, "y", "a", h1),
				rec(1, "z", "a", h1),
				rec(4, "w", "d", h2),
			}},
			calls:   []string{"a=x y z", "c=", "d=w"},
			dropped: map[string]int64{"fm": 1},
		},
		{
			name: "FlatMapValues",
			build: func(_ *kstream.Builder, s S, log func(string)) {
				kstream.FlatMapValues(s, func(v string, emit func(string)) {
					log(v)
					for _, w := range strings.Fields(v) {
						emit(w)
					}
				}).To("out", serde.String, serde.String)
			},
			in: []pipe[string, string]{
				in(rec(1, "a", "x y", h1)),
				in(tomb[string, string](2, "b", h2)),
				in(rec(3, "c", "")),
				in(rec(4, "d", "w")),
			},
			want: map[string][]R{"out": {
				rec(1, "a", "x", h1),
				rec(1, "a", "y", h1),
				tomb[string, string](2, "b", h2),
				rec(4, "d", "w"),
			}},
			calls: []string{"x y", "", "w"},
		},
		{
			name: "Chain",
			build: func(_ *kstream.Builder, s S, _ func(string)) {
				up := kstream.MapValues(s.Filter(func(_, v string) bool { return v != "drop" }), strings.ToUpper)
				words := kstream.FlatMapValues(up, func(v string, emit func(string)) {
					for _, w := range strings.Split(v, ",") {
						emit(w)
					}
				})
				kstream.SelectKey(words, func(k, v string) string { return k + ":" + v }).
					FilterNot(func(k, _ string) bool { return strings.HasSuffix(k, ":B") }).
					To("out", nil, nil)
			},
			in: []pipe[string, string]{
				in(rec(1, "k", "a,b,c", h1)),
				in(rec(2, "k", "drop")),
				in(tomb[string, string](3, "k")),
			},
			want: map[string][]R{"out": {
				rec(1, "k:A", "A", h1),
				rec(1, "k:C", "C", h1),
			}},
			dropped: map[string]int64{"SELECT-KEY-0000000004": 1},
		},
	}
	for _, tt := range tests {
		for _, parts := range partitionCounts {
			t.Run(fmt.Sprintf("%s/partitions=%d", tt.name, parts), func(t *testing.T) {
				var calls []string
				b := kstream.NewBuilder()
				s := kstream.Source(b, "in", serde.String, serde.String)
				tt.build(b, s, func(c string) { calls = append(calls, c) })
				d := kstest.NewDriver(t, mustBuild(t, b), kstest.Partitions(parts))
				pipeAll(t, d, serde.String, serde.String, tt.in)
				for topic, want := range tt.want {
					checkRecords(t, topic, kstest.Output(d, topic, serde.String, serde.String).Records(), want)
				}
				// No other topic was written.
				var topics []string
				for _, topic := range d.Topics() {
					if _, ok := tt.want[topic]; !ok && !strings.HasPrefix(topic, "in") {
						topics = append(topics, topic)
					}
				}
				if len(topics) > 0 {
					t.Errorf("unexpected output topics %q", topics)
				}
				checkEqual(t, "user function calls", calls, tt.calls)
				for node, want := range tt.dropped {
					if got := d.Dropped(node); got != want {
						t.Errorf("Dropped(%q) = %d, want %d", node, got, want)
					}
				}
				for node, want := range tt.received {
					if got := d.Received(node); got != want {
						t.Errorf("Received(%q) = %d, want %d", node, got, want)
					}
				}
			})
		}
	}
}

// Operators that change the value type.
func TestMapValuesNewType(t *testing.T) {
	b := kstream.NewBuilder()
	s := kstream.Source(b, "in", serde.String, serde.String)
	lens := kstream.MapValues(s, func(v string) int64 { return int64(len(v)) })
	lens.To("lens", serde.String, serde.Int64)
	kstream.FlatMapValues(lens, func(n int64, emit func(bool)) {
		for i := range n {
			emit(i%2 == 0)
		}
	}).To("bools", nil, serde.Bool)
	kstream.Map(s, func(k, v string) (int32, float64) {
		n, _ := strconv.Atoi(k)
		return int32(n), float64(len(v)) / 2
	}).To("halves", serde.Int32, serde.Float64)
	d := kstest.NewDriver(t, mustBuild(t, b))
	inp := kstest.Input(d, "in", serde.String, serde.String)
	inp.PipeAt(100, "7", "abc")
	inp.PipeTombstoneAt(101, "8")
	inp.PipeAt(102, "9", "")

	checkRecords(t, "lens", kstest.Output(d, "lens", serde.String, serde.Int64).Records(), []kstream.Record[string, int64]{
		rec[string, int64](100, "7", 3), tomb[string, int64](101, "8"), rec[string, int64](102, "9", 0),
	})
	checkRecords(t, "bools", kstest.Output(d, "bools", serde.String, serde.Bool).Records(), []kstream.Record[string, bool]{
		rec(100, "7", true), rec(100, "7", false), rec(100, "7", true), tomb[string, bool](101, "8"),
	})
	checkRecords(t, "halves", kstest.Output(d, "halves", serde.Int32, serde.Float64).Records(), []kstream.Record[int32, float64]{
		rec[int32, float64](100, 7, 1.5), rec[int32, float64](102, 9, 0),
	})
}

// partitionTagger forwards each record with the task's partition appended to
// its value: "value|p<partition>".
type partitionTagger struct {
	ctx *kstream.ProcessorContext[string, string]
}

func (p *partitionTagger) Init(ctx *kstream.ProcessorContext[string, string]) error {
	p.ctx = ctx
	return nil
}

func (p *partitionTagger) Process(r kstream.Record[string, string]) error {
	r.Value += "|p" + strconv.Itoa(int(p.ctx.Partition()))
	p.ctx.Forward(r)
	return nil
}

func (p *partitionTagger) Close() error { return nil }

func newPartitionTagger() kstream.Processor[string, string, string, string] {
	return &partitionTagger{}
}

func partitionOf(key string, n int) int {
	return int(runtime.PartitionForKey([]byte(key), int32(n)))
}

func TestRepartitionMovesRecords(t *testing.T) {
	const parts = 4
	b := kstream.NewBuilder()
	s := kstream.Source(b, "in", serde.String, serde.String)
	before := kstream.Process(s, newPartitionTagger, kstream.Named("before"))
	// The new key is the value's first field, so records change partition.
	rekeyed := kstream.SelectKey(before, func(_, v string) string { return strings.SplitN(v, "|", 2)[0] })
	kstream.Process(rekeyed.Repartition(kstream.Named("rekey")), newPartitionTagger, kstream.Named("after")).
		To("out", serde.String, serde.String)
	d := kstest.NewDriver(t, mustBuild(t, b), kstest.Partitions(parts))
	inp := kstest.Input(d, "in", serde.String, serde.String)
	var want []kstream.Record[string, string]
	moved := 0
	for i := range 40 {
		oldKey, newKey := "user-"+strconv.Itoa(i), "page-"+strconv.Itoa(i*7%13)
		inp.PipeAt(int64(i), oldKey, newKey)
		pb, pa := partitionOf(oldKey, parts), partitionOf(newKey, parts)
		if pb != pa {
			moved++
		}
		want = append(want, rec(int64(i), newKey, fmt.Sprintf("%s|p%d|p%d", newKey, pb, pa)))
	}
	if moved < 10 {
		t.Fatalf("only %d of 40 records change partition: pick other keys", moved)
	}
	checkRecords(t, "out", kstest.Output(d, "out", serde.String, serde.String).Records(), want)
	if !slices.Contains(d.Topics(), "kstest-rekey-repartition") {
		t.Errorf("topics %q lack kstest-rekey-repartition", d.Topics())
	}
	// Every partition received records, before and after.
	seen := map[string]bool{}
	for _, r := range want {
		parts := strings.Split(r.Value, "|")
		seen["before "+parts[1]] = true
		seen["after "+parts[2]] = true
	}
	if len(seen) != 2*parts {
		t.Errorf("partitions seen: %v, want all %d before and after", seen, parts)
	}
}

type point struct {
	X, Y int
}

func TestWithSerdesStructThroughRepartition(t *testing.T) {
	pointSerde := serde.JSON[point]()
	b := kstream.NewBuilder()
	s := kstream.Source(b, "in", serde.String, serde.String)
	pts := kstream.Map(s, func(k, v string) (point, point) {
		x, _ := strconv.Atoi(k)
		y, _ := strconv.Atoi(v)
		return point{X: x}, point{X: x, Y: y}
	}).WithSerdes(pointSerde, pointSerde)
	moved := pts.Repartition(kstream.Named("points"))
	kstream.MapValues(moved, func(p point) string { return fmt.Sprintf("(%d,%d)", p.X, p.Y) }).
		To("out", nil, serde.String) // the key serde comes from WithSerdes
	d := kstest.NewDriver(t, mustBuild(t, b), kstest.Partitions(3))
	inp := kstest.Input(d, "in", serde.String, serde.String)
	if err := inp.TryPipeRecord(rec(5, "1", "2", hdr("h", "v"))); err != nil {
		t.Fatal(err)
	}
	inp.PipeAt(6, "3", "4")
	inp.PipeTombstoneAt(7, "5") // dropped by Map

	checkRecords(t, "repartition topic", kstest.Output(d, "kstest-points-repartition", pointSerde, pointSerde).Records(),
		[]kstream.Record[point, point]{
			rec(5, point{X: 1}, point{X: 1, Y: 2}, hdr("h", "v")),
			rec(6, point{X: 3}, point{X: 3, Y: 4}),
		})
	checkRecords(t, "out", kstest.Output(d, "out", pointSerde, serde.String).Records(),
		[]kstream.Record[point, string]{
			rec(5, point{X: 1}, "(1,2)", hdr("h", "v")),
			rec(6, point{X: 3}, "(3,4)"),
		})
	// The repartition topic holds JSON.
	raw := kstest.Output(d, "kstest-points-repartition", serde.String, serde.String).Records()
	if len(raw) != 2 || raw[0].Key != `{"X":1,"Y":0}` || raw[0].Value != `{"X":1,"Y":2}` {
		t.Errorf("repartition topic bytes: %v", raw)
	}
}

// TestToFunc routes records to the topic a function names for each, by key
// and value, tombstones included, and fails a record whose topic name is
// empty at the sink node.
func TestToFunc(t *testing.T) {
	b := kstream.NewBuilder()
	kstream.Source(b, "events", serde.String, serde.String).ToFunc(func(r kstream.Record[string, string]) string {
		switch {
		case r.Tombstone:
			return "deletes"
		case r.Value == "drop":
			return ""
		case r.Timestamp >= 100:
			return "late"
		}
		return "events-" + r.Key
	}, nil, nil, kstream.Named("route"))
	topo := mustBuild(t, b)
	if d := topo.Describe(); !strings.Contains(d, "Processor: route (sink-func)") {
		t.Errorf("Describe does not show the node:\n%s", d)
	}
	d := kstest.NewDriver(t, topo, kstest.Partitions(3))
	in := kstest.Input(d, "events", serde.String, serde.String)
	in.PipeAt(1, "a", "x")
	in.PipeAt(2, "b", "y")
	in.PipeAt(3, "a", "z")
	in.PipeTombstoneAt(4, "b")
	in.PipeAt(100, "a", "")
	err := in.TryPipeRecord(rec(int64(5), "c", "drop"))
	re := recordError(t, err)
	if re.Node != "route" || !strings.Contains(err.Error(), "empty topic name") {
		t.Errorf("empty topic name: error %v, want one naming node route", err)
	}
	out := func(topic string) []kstream.Record[string, string] {
		return kstest.Output(d, topic, serde.String, serde.String).Records()
	}
	checkRecords(t, "events-a", out("events-a"), []strRec{rec(1, "a", "x"), rec(3, "a", "z")})
	checkRecords(t, "events-b", out("events-b"), []strRec{rec(2, "b", "y")})
	checkRecords(t, "deletes", out("deletes"), []strRec{tomb[string, string](4, "b")})
	checkRecords(t, "late", out("late"), []strRec{rec(100, "a", "")})
	if got := out("events-c"); len(got) != 0 {
		t.Errorf("events-c: %v, want nothing", got)
	}
}

// TestMapThenFilterRekeysNullKeys checks that a record with a null key gets
// the key a Map gives it when a Filter runs in the Map's frame: the count
// downstream counts it (aggregations drop null keys).
func TestMapThenFilterRekeysNullKeys(t *testing.T) {
	b := kstream.NewBuilder()
	m := kstream.Map(kstream.Source(b, "in", serde.String, serde.String),
		func(_, v string) (string, string) { return v, v })
	m.Filter(func(string, string) bool { return true }).GroupByKey().Count(kstream.Named("c")).
		ToStream().To("out", serde.String, serde.Int64)
	d := kstest.NewDriver(t, mustBuild(t, b))
	in := kstest.Input(d, "in", serde.String, serde.String)
	in.PipeNullKeyAt(1, "x")
	in.PipeAt(2, "k", "x")
	got := kstest.LatestByKey(kstest.Output(d, "out", serde.String, serde.Int64))
	checkEqual(t, "counts", got, map[string]int64{"x": 2})
}

// userFunctionCaller returns the name of the function that called the user
// function calling it.
func userFunctionCaller() string {
	pc := make([]uintptr, 1)
	goruntime.Callers(3, pc) // Callers, userFunctionCaller, the user function
	f, _ := goruntime.CallersFrames(pc).Next()
	return f.Function
}

// TestStepsRunInTheirParentsFrame checks that a Peek that is a source's only
// child, a Filter that is a Map's, and a Foreach that is a MapValues', are
// called from their parent's frame, a call and a frame less per record: from
// the function that called the parent's user function. It runs a task that
// does not count the records each node receives, as an app does by default
// (with counts, a step's function counts its calls in a frame of its own).
func TestStepsRunInTheirParentsFrame(t *testing.T) {
	callers := map[string]string{}
	b := kstream.NewBuilder()
	src := kstream.Source(b, "in", serde.String, serde.String,
		kstream.TimestampFrom(func(_, _ string, ts int64) int64 {
			callers["source"] = userFunctionCaller()
			return ts
		}))
	peeked := src.Peek(func(string, string) { callers["peek"] = userFunctionCaller() })
	m := kstream.Map(peeked, func(k, v string) (string, string) {
		callers["map"] = userFunctionCaller()
		return k, v
	})
	f := m.Filter(func(string, string) bool {
		callers["filter"] = userFunctionCaller()
		return true
	})
	mv := kstream.MapValues(f, func(v string) string {
		callers["map-values"] = userFunctionCaller()
		return v
	})
	mv.Foreach(func(string, string) { callers["foreach"] = userFunctionCaller() })
	task, err := runtime.NewTask(mustBuild(t, b), &runtime.Config{AppID: "frames"}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer task.Close()
	if err := task.Process("in", []graph.RawRecord{{Key: []byte("k"), Value: []byte("v"), Timestamp: 1}}); err != nil {
		t.Fatal(err)
	}
	if callers["peek"] != callers["source"] {
		t.Errorf("the Peek was called by %s, the source's timestamp extractor by %s: want the same frame", callers["peek"], callers["source"])
	}
	if callers["filter"] != callers["map"] {
		t.Errorf("the Filter was called by %s, the Map's function by %s: want the same frame", callers["filter"], callers["map"])
	}
	if callers["foreach"] != callers["map-values"] {
		t.Errorf("the Foreach was called by %s, the MapValues' function by %s: want the same frame", callers["foreach"], callers["map-values"])
	}
	if callers["map"] == callers["map-values"] || callers["map"] == "" {
		t.Errorf("the Map's and the MapValues' functions were both called by %q: want two frames", callers["map"])
	}
}
