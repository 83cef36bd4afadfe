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

// partitionedSinkTask builds Source -> MapValues -> sink with the
// partitioner option part (To, or ToFunc alternating between two topics),
// on topics of 8 partitions, and returns the typed executor of MapValues.
func partitionedSinkTask(tb testing.TB, toFunc bool, part kstream.Opt) (*runtime.Task, func(string, int64, *graph.Meta)) {
	tb.Helper()
	b := kstream.NewBuilder()
	s := kstream.MapValues(kstream.Source(b, "in", serde.String, serde.Int64), mapValuesFn, kstream.Named("mv"))
	if toFunc {
		s.ToFunc(func(r kstream.Record[string, int64]) string {
			if r.Value%2 == 0 {
				return "even"
			}
			return "odd"
		}, serde.String, serde.Int64, part, kstream.Named("sink"))
	} else {
		s.To("out", serde.String, serde.Int64, part, kstream.Named("sink"))
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

// sinkAllocations returns the allocations per run of batch through the
// sink of task with the partitioner option part, the output of one run
// left in the task's buffer and the drop counts of that run alone.
func sinkAllocations(t *testing.T, toFunc bool, part kstream.Opt, batch []kv) (*runtime.Task, float64) {
	task, fn := partitionedSinkTask(t, toFunc, part)
	var m graph.Meta
	runSink(task, fn, batch, &m) // grows the output buffer once
	allocs := testing.AllocsPerRun(100, func() { runSink(task, fn, batch, &m) })
	clear(task.Context().Dropped)
	runSink(task, fn, batch, &m)
	return task, allocs
}

func TestPartitionedSinkAllocatesNothing(t *testing.T) {
	for _, toFunc := range []bool{false, true} {
		batch := typedBatch()
		task, allocs := sinkAllocations(t, toFunc, kstream.PartitionWith(partitionByValue), batch)
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
// ToFunc, with PartitionWith and with PartitionsWith (multicastByValue: a
// record in 2.75 partitions on average).
func BenchmarkPartitionedSink(b *testing.B) {
	batch := typedBatch()
	for _, bc := range []struct {
		name   string
		toFunc bool
		part   kstream.Opt
	}{
		{"to", false, kstream.PartitionWith(partitionByValue)},
		{"to-func", true, kstream.PartitionWith(partitionByValue)},
		{"to-multicast", false, kstream.PartitionsWith(multicastByValue)},
		{"to-func-multicast", true, kstream.PartitionsWith(multicastByValue)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			task, fn := partitionedSinkTask(b, bc.toFunc, bc.part)
			var m graph.Meta
			b.ReportAllocs()
			for b.Loop() {
				runSink(task, fn, batch, &m)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batchSize), "ns/record")
		})
	}
}

// multicastByValue is a PartitionsWith function: by the value modulo 4,
// every partition (0), none (1: dropped), two partitions with duplicates
// (2), or by key (3).
func multicastByValue(dst []int32, _ string, _ string, v int64, n int32) []int32 {
	switch v % 4 {
	case 0:
		for p := range n {
			dst = append(dst, p)
		}
	case 2:
		p := int32(v % int64(n))
		dst = append(dst, p, (p+1)%n, p, (p+1)%n)
	case 3:
		dst = append(dst, -1)
	}
	return dst
}

// TestMulticastSinkAllocatesNothing: a sink with PartitionsWith allocates
// nothing per record, whether it broadcasts a record, drops it, removes
// duplicates or partitions it by key, and it encodes each record once: the
// copies of a record refer to the same bytes.
func TestMulticastSinkAllocatesNothing(t *testing.T) {
	for _, toFunc := range []bool{false, true} {
		batch := typedBatch()
		task, allocs := sinkAllocations(t, toFunc, kstream.PartitionsWith(multicastByValue), batch)
		if allocs != 0 {
			t.Errorf("sink with PartitionsWith (ToFunc %v): %v allocations per %d-record batch, want 0", toFunc, allocs, batchSize)
		}
		out := task.Output()
		i, written, dropped := 0, 0, 0
		for _, r := range batch {
			v := mapValuesFn(r.v)
			var want []int32
			switch v % 4 {
			case 0:
				want = []int32{0, 1, 2, 3, 4, 5, 6, 7}
			case 1:
				dropped++
				continue
			case 2:
				want = []int32{int32(v % 8), int32(v%8+1) % 8}
			case 3:
				want = []int32{-1}
			}
			written++
			first := out.Value(out.At(i))
			for _, p := range want {
				if i >= out.Len() {
					t.Fatalf("%d records out, fewer than the partitions of the first %d records", out.Len(), written)
				}
				rec := out.At(i)
				if rec.Partition != p {
					t.Fatalf("record %s=%d: output record %d in partition %d, want %d", r.k, v, i, rec.Partition, p)
				}
				if val := out.Value(rec); &val[0] != &first[0] {
					t.Fatalf("record %s=%d: the copy for partition %d has its own bytes: encoded again", r.k, v, p)
				}
				i++
			}
		}
		if i != out.Len() {
			t.Fatalf("%d records out, want %d", out.Len(), i)
		}
		if written == 0 || dropped == 0 {
			t.Fatalf("the batch wrote %d records and dropped %d: it should do both", written, dropped)
		}
		if got := task.Context().Dropped["sink"]; got != int64(dropped) {
			t.Errorf("the sink dropped %d records, want %d", got, dropped)
		}
	}
}
