package runtime_test

import (
	"slices"
	"strconv"
	"testing"
	"time"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/internal/runtime"
	"github.com/kstreamgo/kstream/serde"
	"github.com/kstreamgo/kstream/state"
)

const batchSize = 1024

type kv struct {
	k string
	v int64
}

func typedBatch() []kv {
	b := make([]kv, batchSize)
	for i := range b {
		b[i] = kv{k: "key-" + strconv.Itoa(i%97), v: int64(i)}
	}
	return b
}

// The work of the chain, shared by the fused chain and the hand-written loop.
func mapFn(k string, v int64) (string, int64) { return k, v * 3 }
func filterFn(_ string, v int64) bool         { return v%2 == 0 }
func mapValuesFn(v int64) int64               { return v + 1 }

// chainTask builds Source -> Map -> Filter -> MapValues -> Foreach(collect)
// and returns the typed executor of Map, fed past the source, and the
// slice the records are collected into; count sets Config.CountNodes.
func chainTask(tb testing.TB, count bool) (func(string, int64, *graph.Meta), *[]kv) {
	tb.Helper()
	b := kstream.NewBuilder()
	out := &[]kv{}
	src := kstream.Source(b, "in", serde.String, serde.Int64)
	m := kstream.Map(src, mapFn, kstream.Named("map"))
	f := m.Filter(filterFn)
	kstream.MapValues(f, mapValuesFn).Foreach(func(k string, v int64) { *out = append(*out, kv{k, v}) })
	topo, err := b.Build()
	if err != nil {
		tb.Fatal(err)
	}
	task, err := runtime.NewTask(topo, &runtime.Config{AppID: "bench", CountNodes: count}, 0, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = task.Close() })
	return task.Executor("map").(func(string, int64, *graph.Meta)), out
}

func runChain(fn func(string, int64, *graph.Meta), batch []kv, m *graph.Meta, out *[]kv) {
	*out = (*out)[:0]
	for i := range batch {
		m.Timestamp = int64(i)
		fn(batch[i].k, batch[i].v, m)
	}
}

func handLoop(batch []kv, out *[]kv) {
	*out = (*out)[:0]
	for i := range batch {
		k, v := mapFn(batch[i].k, batch[i].v)
		if !filterFn(k, v) {
			continue
		}
		*out = append(*out, kv{k, mapValuesFn(v)})
	}
}

func TestStatelessChainAllocatesNothing(t *testing.T) {
	for _, count := range []bool{false, true} {
		testChainAllocs(t, count)
	}
}

func testChainAllocs(t *testing.T, count bool) {
	fn, out := chainTask(t, count)
	batch := typedBatch()
	var m graph.Meta
	runChain(fn, batch, &m, out) // grows the collector once
	allocs := testing.AllocsPerRun(100, func() { runChain(fn, batch, &m, out) })
	if allocs != 0 {
		t.Fatalf("stateless chain (counting records per node: %v): %v allocations per %d-record batch, want 0", count, allocs, batchSize)
	}
	var want []kv
	handLoop(batch, &want)
	if !slices.Equal(*out, want) || len(want) != batchSize/2 {
		t.Fatalf("chain gave %d records, hand loop %d (want %d); equal: %v", len(*out), len(want), batchSize/2, slices.Equal(*out, want))
	}
}

// The same functions as values, as a library receives them: calls through
// them cannot be inlined.
var (
	mapVal       = mapFn
	filterVal    = filterFn
	mapValuesVal = mapValuesFn
)

func handLoopFuncValues(batch []kv, out *[]kv) {
	*out = (*out)[:0]
	for i := range batch {
		k, v := mapVal(batch[i].k, batch[i].v)
		if !filterVal(k, v) {
			continue
		}
		*out = append(*out, kv{k, mapValuesVal(v)})
	}
}

// BenchmarkStatelessChain compares the fused chain Map -> Filter -> MapValues
// with a hand-written loop doing the same work on the same batch. Each
// kstream variant also runs hand-func-values as many times right after
// itself and reports its speed relative to it (x-hand-func-values: the
// loop's time over the chain's), a ratio less exposed to the machine's
// drift than two sub-benchmarks' figures.
func BenchmarkStatelessChain(b *testing.B) {
	batch := typedBatch()
	for _, count := range []bool{false, true} {
		name := map[bool]string{false: "kstream", true: "kstream-node-counts"}[count]
		b.Run(name, func(b *testing.B) {
			fn, out := chainTask(b, count)
			var m graph.Meta
			b.ReportAllocs()
			for b.Loop() {
				runChain(fn, batch, &m, out)
			}
			chain := b.Elapsed()
			b.ReportMetric(float64(chain.Nanoseconds())/float64(b.N*batchSize), "ns/record")
			var hand []kv
			start := time.Now()
			for range b.N {
				handLoopFuncValues(batch, &hand)
			}
			b.ReportMetric(float64(time.Since(start))/float64(chain), "x-hand-func-values")
		})
	}
	b.Run("hand", func(b *testing.B) {
		var out []kv
		b.ReportAllocs()
		for b.Loop() {
			handLoop(batch, &out)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batchSize), "ns/record")
	})
	b.Run("hand-func-values", func(b *testing.B) {
		var out []kv
		b.ReportAllocs()
		for b.Loop() {
			handLoopFuncValues(batch, &out)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batchSize), "ns/record")
	})
}

// rawBatch encodes the batch as Kafka records.
func rawBatch() []graph.RawRecord {
	recs := make([]graph.RawRecord, batchSize)
	for i, r := range typedBatch() {
		k, _ := serde.String.Append(nil, r.k)
		v, _ := serde.Int64.Append(nil, r.v)
		recs[i] = graph.RawRecord{Key: k, Value: v, Timestamp: int64(i), Offset: int64(i)}
	}
	return recs
}

// BenchmarkBatchBytes runs the whole task path on raw records: decode, Map ->
// Filter -> MapValues, encode into the output buffer; and a hand-written loop
// doing the same decoding and encoding.
func BenchmarkBatchBytes(b *testing.B) {
	recs := rawBatch()
	b.Run("kstream", func(b *testing.B) {
		bld := kstream.NewBuilder()
		src := kstream.Source(bld, "in", serde.String, serde.Int64)
		kstream.MapValues(kstream.Map(src, mapFn).Filter(filterFn), mapValuesFn).To("out", serde.String, serde.Int64)
		topo, err := bld.Build()
		if err != nil {
			b.Fatal(err)
		}
		task, err := runtime.NewTask(topo, &runtime.Config{AppID: "bench"}, 0, 0)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := task.Process("in", recs); err != nil {
				b.Fatal(err)
			}
			task.Output().Reset()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batchSize), "ns/record")
	})
	b.Run("hand", func(b *testing.B) {
		var arena []byte
		type out struct{ ks, ke, vs, ve int }
		outs := make([]out, 0, batchSize)
		b.ReportAllocs()
		for b.Loop() {
			arena, outs = arena[:0], outs[:0]
			for i := range recs {
				k, _ := serde.String.Decode(recs[i].Key)
				v, _ := serde.Int64.Decode(recs[i].Value)
				k, v = mapFn(k, v)
				if !filterFn(k, v) {
					continue
				}
				v = mapValuesFn(v)
				ks := len(arena)
				arena, _ = serde.String.Append(arena, k)
				vs := len(arena)
				arena, _ = serde.Int64.Append(arena, v)
				outs = append(outs, out{ks, vs, vs, len(arena)})
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batchSize), "ns/record")
	})
}

// countTask returns a task of GroupByKey -> Count (to a sink), on the
// in-memory store or on a state DB in a directory, and a batch of raw
// records over 1,000 distinct keys; step processes the batch and commits.
func countTask(tb testing.TB, withDB bool) (step func()) {
	bld := kstream.NewBuilder()
	kstream.Source(bld, "in", serde.String, serde.Int64).GroupByKey().Count(kstream.Named("counts")).
		ToStream().To("out", serde.String, serde.Int64)
	topo, err := bld.Build()
	if err != nil {
		tb.Fatal(err)
	}
	recs := make([]graph.RawRecord, batchSize)
	for i := range recs {
		k, _ := serde.String.Append(nil, "key-"+strconv.Itoa(i%1000))
		v, _ := serde.Int64.Append(nil, int64(i))
		recs[i] = graph.RawRecord{Key: k, Value: v, Timestamp: int64(i), Offset: int64(i)}
	}
	cfg := &runtime.Config{AppID: "bench"}
	if withDB {
		db, err := state.Open(tb.TempDir())
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { db.Close() })
		cfg.DB = db
	}
	task, err := runtime.NewTask(topo, cfg, 0, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { task.Close() })
	return func() {
		if err := task.Process("in", recs); err != nil {
			tb.Fatal(err)
		}
		task.Output().Reset()
		if err := task.Commit(nil); err != nil {
			tb.Fatal(err)
		}
	}
}

// TestCountAllocations holds a count aggregation to one allocation per
// record (the decoded string key) on either store, with a few more per
// commit: on a state DB, a write of a key costs no allocation, whether the
// key is new to the commit or written again, and neither does a read of a
// key written since the last commit.
func TestCountAllocations(t *testing.T) {
	for _, withDB := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "db"}[withDB], func(t *testing.T) {
			step := countTask(t, withDB)
			step()
			if allocs := testing.AllocsPerRun(20, step); allocs > batchSize+16 {
				t.Errorf("%v allocations per batch of %d records and a commit, want at most %d", allocs, batchSize, batchSize+16)
			}
		})
	}
}

// BenchmarkCount runs countTask's batches and commits, changelog records
// included: on the in-memory store ("memory"), and on a state DB in a
// directory ("db").
func BenchmarkCount(b *testing.B) {
	for _, withDB := range []bool{false, true} {
		b.Run(map[bool]string{false: "memory", true: "db"}[withDB], func(b *testing.B) {
			step := countTask(b, withDB)
			b.ReportAllocs()
			for b.Loop() {
				step()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batchSize), "ns/record")
			b.ReportMetric(testing.AllocsPerRun(1, step)/batchSize, "allocs/record")
		})
	}
}
