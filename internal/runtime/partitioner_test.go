package runtime_test

import (
	"testing"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/internal/runtime"
	"github.com/kstreamgo/kstream/serde"
)

// partitionByValue is a partitioner placing records by their value.
func partitionByValue(_ string, _ string, v int64, n int32) int32 { return int32(v % int64(n)) }

// partitionedSinkTask builds Source -> MapValues -> sink with a partitioner
// (To, or ToFunc alternating between two topics), on topics of 8
// partitions, and returns the typed executor of MapValues.
func partitionedSinkTask(tb testing.TB, toFunc bool) (*runtime.Task, func(string, int64, *graph.Meta)) {
	tb.Helper()
	b := kstream.NewBuilder()
	s := kstream.MapValues(kstream.Source(b, "in", serde.String, serde.Int64), mapValuesFn, kstream.Named("mv"))
	part := kstream.PartitionWith(partitionByValue)
	if toFunc {
		s.ToFunc(func(r kstream.Record[string, int64]) string {
			if r.Value%2 == 0 {
				return "even"
			}
			return "odd"
		}, serde.String, serde.Int64, part)
	} else {
		s.To("out", serde.String, serde.Int64, part)
	}
	topo, err := b.Build()
	if err != nil {
		tb.Fatal(err)
	}
	cfg := &runtime.Config{AppID: "bench", Partitions: func(string) (int32, error) { return 8, nil }}
	task, err := runtime.NewTask(topo, cfg, 0, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = task.Close() })
	return task, task.Executor("mv").(func(string, int64, *graph.Meta))
}

func runSink(task *runtime.Task, fn func(string, int64, *graph.Meta), batch []kv, m *graph.Meta) {
	task.Output().Reset()
	for i := range batch {
		m.Timestamp = int64(i)
		fn(batch[i].k, batch[i].v, m)
	}
}

func TestPartitionedSinkAllocatesNothing(t *testing.T) {
	for _, toFunc := range []bool{false, true} {
		task, fn := partitionedSinkTask(t, toFunc)
		batch := typedBatch()
		var m graph.Meta
		runSink(task, fn, batch, &m) // grows the output buffer once
		allocs := testing.AllocsPerRun(100, func() { runSink(task, fn, batch, &m) })
		if allocs != 0 {
			t.Errorf("sink with a partitioner (ToFunc %v): %v allocations per %d-record batch, want 0", toFunc, allocs, batchSize)
		}
		out := task.Output()
		if out.Len() != batchSize {
			t.Fatalf("%d records out, want %d", out.Len(), batchSize)
		}
		for i := range out.Len() {
			v := mapValuesFn(batch[i].v)
			if got, want := out.At(i).Partition, int32(v%8); got != want {
				t.Fatalf("record %d (value %d) in partition %d, want %d", i, v, got, want)
			}
		}
	}
}

// BenchmarkPartitionedSink measures a sink with a partitioner, To and
// ToFunc, against To partitioned by key.
func BenchmarkPartitionedSink(b *testing.B) {
	batch := typedBatch()
	for _, toFunc := range []bool{false, true} {
		name := "to"
		if toFunc {
			name = "to-func"
		}
		b.Run(name, func(b *testing.B) {
			task, fn := partitionedSinkTask(b, toFunc)
			var m graph.Meta
			b.ReportAllocs()
			for b.Loop() {
				runSink(task, fn, batch, &m)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batchSize), "ns/record")
		})
	}
}
