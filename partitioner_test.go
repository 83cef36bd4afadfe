package kstream_test

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/internal/runtime"
	"github.com/kstreamgo/kstream/kstest"
	"github.com/kstreamgo/kstream/serde"
)

// byValue partitions records by their value, a number: a negative one asks
// for key partitioning.
func byValue(_ string, _ string, v string, n int32) int32 {
	i, err := strconv.Atoi(v)
	if err != nil {
		return -1
	}
	if i < 0 {
		return int32(i)
	}
	return int32(i) % n
}

// keyPartition is where Kafka's default partitioner puts a string key.
func keyPartition(k string, n int32) int32 { return runtime.PartitionForKey([]byte(k), n) }

func TestPartitionWithTo(t *testing.T) {
	type call struct {
		topic string
		k, v  string
		n     int32
	}
	var calls []call
	b := kstream.NewBuilder()
	kstream.Source(b, "in", serde.String, serde.String).
		To("out", serde.String, serde.String, kstream.PartitionWith(func(topic, k, v string, n int32) int32 {
			calls = append(calls, call{topic, k, v, n})
			return byValue(topic, k, v, n)
		}))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := kstest.NewDriver(t, topo, kstest.Partitions(4))
	in := kstest.Input(d, "in", serde.String, serde.String)
	out := kstest.Output(d, "out", serde.String, serde.String)
	type placed struct {
		k, v string
		p    int32
	}
	inputs := []struct{ k, v string }{{"a", "0"}, {"a", "1"}, {"a", "2"}, {"b", "3"}, {"b", "7"}, {"c", "-1"}, {"d", "-5"}, {"e", "x"}}
	var want []placed
	for _, r := range inputs {
		in.PipeAt(1, r.k, r.v)
		p := byValue("out", r.k, r.v, 4)
		if p < 0 {
			p = keyPartition(r.k, 4)
		}
		want = append(want, placed{r.k, r.v, p})
	}
	in.PipeTombstoneAt(2, "f") // fn sees V's zero value, "": key partitioning
	want = append(want, placed{"f", "", keyPartition("f", 4)})
	var got []placed
	perPartition := map[int32]int64{}
	for _, r := range out.PartitionedRecords() {
		got = append(got, placed{r.Key, r.Value, r.Partition})
		if r.Offset != perPartition[r.Partition] {
			t.Errorf("record %s=%s: offset %d in partition %d, want %d", r.Key, r.Value, r.Offset, r.Partition, perPartition[r.Partition])
		}
		perPartition[r.Partition]++
	}
	if !slices.Equal(got, want) {
		t.Fatalf("records and partitions:\n got %v\nwant %v", got, want)
	}
	// Key a went to partitions 0, 1 and 2: key partitioning would have put
	// it in one.
	if got[0].p == got[1].p || got[1].p == got[2].p {
		t.Fatalf("key a in partitions %d, %d, %d: the partitioner did not place it", got[0].p, got[1].p, got[2].p)
	}
	if len(calls) != len(want) {
		t.Fatalf("fn called %d times, want %d", len(calls), len(want))
	}
	for _, c := range calls {
		if c.topic != "out" || c.n != 4 {
			t.Errorf("fn called with topic %q and %d partitions, want out and 4", c.topic, c.n)
		}
	}
	if last := calls[len(calls)-1]; last.k != "f" || last.v != "" {
		t.Errorf("fn called for the tombstone with %q=%q, want f and the zero value", last.k, last.v)
	}
}

// TestPartitionWithRepartition sends records through a repartition topic
// placed by value: the downstream tasks get exactly the records fn routed to
// them, and a count downstream counts per task.
func TestPartitionWithRepartition(t *testing.T) {
	type seen struct {
		task int32
		k, v string
	}
	var got []seen
	var topics []string
	b := kstream.NewBuilder()
	src := kstream.Source(b, "in", serde.String, serde.String)
	moved := src.Repartition(kstream.Named("by-value"), kstream.PartitionWith(func(topic, k, v string, n int32) int32 {
		topics = append(topics, topic)
		return byValue(topic, k, v, n)
	}))
	kstream.Process(moved, func() kstream.Processor[string, string, string, string] {
		return &partitionRecorder{seen: func(p int32, k, v string) { got = append(got, seen{p, k, v}) }}
	})
	moved.GroupByKey().Count(kstream.Named("counts")).ToStream().To("counts", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := kstest.NewDriver(t, topo, kstest.Partitions(4))
	in := kstest.Input(d, "in", serde.String, serde.String)
	inputs := []struct{ k, v string }{{"a", "0"}, {"a", "1"}, {"a", "2"}, {"a", "3"}, {"a", "5"}, {"b", "-1"}, {"b", "-1"}}
	var want []seen
	for _, r := range inputs {
		in.PipeAt(1, r.k, r.v)
		p := byValue("", r.k, r.v, 4)
		if p < 0 {
			p = keyPartition(r.k, 4)
		}
		want = append(want, seen{p, r.k, r.v})
	}
	if !slices.Equal(got, want) {
		t.Fatalf("records seen downstream, with their task's partition:\n got %v\nwant %v", got, want)
	}
	for _, topic := range topics {
		if topic != "kstest-by-value-repartition" {
			t.Fatalf("fn got topic %q, want the repartition topic's full name", topic)
		}
	}
	// Key a was counted in four tasks: twice in partition 1, once in each
	// of 0, 2 and 3 (partitioned by key, the counts would go 1 to 5).
	var counts []int64
	for _, r := range kstest.Output(d, "counts", serde.String, serde.Int64).Records() {
		if r.Key == "a" {
			counts = append(counts, r.Value)
		}
	}
	if want := []int64{1, 1, 1, 1, 2}; !slices.Equal(counts, want) {
		t.Errorf("counts of a: %v, want %v", counts, want)
	}
}

// partitionRecorder reports each record with its task's partition and
// forwards it.
type partitionRecorder struct {
	ctx  *kstream.ProcessorContext[string, string]
	seen func(p int32, k, v string)
}

func (p *partitionRecorder) Init(ctx *kstream.ProcessorContext[string, string]) error {
	p.ctx = ctx
	return nil
}

func (p *partitionRecorder) Process(r kstream.Record[string, string]) error {
	p.seen(p.ctx.Partition(), r.Key, r.Value)
	p.ctx.Forward(r)
	return nil
}

func (p *partitionRecorder) Close() error { return nil }

func TestPartitionWithToFunc(t *testing.T) {
	b := kstream.NewBuilder()
	kstream.Source(b, "in", serde.String, serde.String).ToFunc(func(r kstream.Record[string, string]) string {
		return "out-" + r.Key
	}, serde.String, serde.String, kstream.PartitionWith(func(topic, _, v string, n int32) int32 {
		if topic == "out-a" {
			return 0
		}
		return n - 1
	}))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := kstest.NewDriver(t, topo, kstest.Partitions(3))
	in := kstest.Input(d, "in", serde.String, serde.String)
	for _, k := range []string{"a", "b", "a", "b"} {
		in.PipeAt(1, k, "v")
	}
	for topic, want := range map[string]int32{"out-a": 0, "out-b": 2} {
		recs := kstest.Output(d, topic, serde.String, serde.String).PartitionedRecords()
		if len(recs) != 2 {
			t.Fatalf("%s: %d records, want 2", topic, len(recs))
		}
		for _, r := range recs {
			if r.Partition != want {
				t.Errorf("%s: record in partition %d, want %d", topic, r.Partition, want)
			}
		}
	}
}

// TestPartitionWithOutOfRange: a partition the topic does not have is a
// production error naming topic, node and partition; the records before it
// are produced, and no record is produced for it.
func TestPartitionWithOutOfRange(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(s kstream.Stream[string, string], fn func(string, string, string, int32) int32)
		topic string
		node  string
	}{
		{"to", func(s kstream.Stream[string, string], fn func(string, string, string, int32) int32) {
			s.To("out", serde.String, serde.String, kstream.PartitionWith(fn), kstream.Named("write-out"))
		}, "out", "write-out"},
		{"to-func", func(s kstream.Stream[string, string], fn func(string, string, string, int32) int32) {
			s.ToFunc(func(kstream.Record[string, string]) string { return "out" }, serde.String, serde.String,
				kstream.PartitionWith(fn), kstream.Named("write-out"))
		}, "out", "write-out"},
		{"repartition", func(s kstream.Stream[string, string], fn func(string, string, string, int32) int32) {
			s.Repartition(kstream.PartitionWith(fn), kstream.Named("moved")).To("out", serde.String, serde.String)
		}, "kstest-moved-repartition", "moved-repartition-sink"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := kstream.NewBuilder()
			tc.build(kstream.Source(b, "in", serde.String, serde.String), func(_, _, v string, _ int32) int32 {
				i, _ := strconv.Atoi(v)
				return int32(i)
			})
			topo, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			d := kstest.NewDriver(t, topo, kstest.Partitions(4))
			in := kstest.Input(d, "in", serde.String, serde.String)
			in.PipeAt(1, "a", "3")
			err = in.TryPipeRecord(kstream.Record[string, string]{Key: "a", Value: "4", Timestamp: 2})
			var re *kstream.RecordError
			if !errors.As(err, &re) {
				t.Fatalf("TryPipeRecord returned %v, want a *kstream.RecordError", err)
			}
			if !re.Production || re.Deserialization || re.Node != tc.node || re.Topic != "in" || re.Offset != 1 {
				t.Errorf("error %+v: want a production error of node %s for in@1", re, tc.node)
			}
			for _, s := range []string{"topic " + tc.topic, "partition 4", "4 partitions", tc.node} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			recs := kstest.Output(d, "out", serde.String, serde.String).PartitionedRecords()
			if len(recs) != 1 || recs[0].Value != "3" || (tc.topic == "out" && recs[0].Partition != 3) {
				t.Errorf("output %v, want only the first record (in partition 3 when fn placed it there)", recs)
			}
		})
	}
}

// TestPartitionWithPanic: a panic in fn is a processing error of the sink.
func TestPartitionWithPanic(t *testing.T) {
	b := kstream.NewBuilder()
	kstream.Source(b, "in", serde.String, serde.String).To("out", serde.String, serde.String,
		kstream.Named("sink"), kstream.PartitionWith(func(string, string, string, int32) int32 { panic("boom") }))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := kstest.NewDriver(t, topo, kstest.Partitions(2))
	err = kstest.Input(d, "in", serde.String, serde.String).TryPipeRecord(kstream.Record[string, string]{Key: "a", Value: "1"})
	var re *kstream.RecordError
	if !errors.As(err, &re) || re.Node != "sink" || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("TryPipeRecord returned %v, want the panic as an error of node sink", err)
	}
}

func TestPartitionWithBuildErrors(t *testing.T) {
	wrong := kstream.PartitionWith(func(string, string, int64, int32) int32 { return 0 })
	right := kstream.PartitionWith(byValue)
	for _, tc := range []struct {
		name  string
		build func(b *kstream.Builder)
		want  []string
	}{
		{"to with other types", func(b *kstream.Builder) {
			kstream.Source(b, "in", serde.String, serde.String).To("out", nil, nil, wrong, kstream.Named("w"))
		}, []string{"node w (sink)", "PartitionWith takes a func(string, string, string, int32) int32", "func(string, string, int64, int32) int32"}},
		{"to-func with other types", func(b *kstream.Builder) {
			kstream.Source(b, "in", serde.String, serde.String).ToFunc(func(kstream.Record[string, string]) string { return "x" }, nil, nil,
				wrong, kstream.Named("w"))
		}, []string{"node w (sink-func)", "PartitionWith takes"}},
		{"repartition with other types", func(b *kstream.Builder) {
			kstream.Source(b, "in", serde.String, serde.String).Repartition(kstream.Named("r"), wrong)
		}, []string{"node r-repartition-sink (repartition-sink)", "PartitionWith takes"}},
		{"nil function", func(b *kstream.Builder) {
			kstream.Source(b, "in", serde.String, serde.String).To("out", nil, nil, kstream.Named("w"),
				kstream.PartitionWith[string, string](nil))
		}, []string{"node w (sink)", "nil function"}},
		{"filter", func(b *kstream.Builder) {
			kstream.Source(b, "in", serde.String, serde.String).Filter(func(string, string) bool { return true }, right, kstream.Named("f"))
		}, []string{"node f (filter)", "PartitionWith applies to To, ToFunc and Repartition only"}},
		{"source", func(b *kstream.Builder) {
			kstream.Source(b, "in", serde.String, serde.String, right, kstream.Named("s"))
		}, []string{"source s (topic in)", "PartitionWith applies to"}},
		{"source table", func(b *kstream.Builder) {
			kstream.SourceTable(b, "in", serde.String, serde.String, right, kstream.Named("st"))
		}, []string{"source", "topic in", "PartitionWith applies to"}},
		{"source global table", func(b *kstream.Builder) {
			kstream.SourceGlobalTable(b, "in", serde.String, serde.String, right, kstream.Named("gt"))
		}, []string{"source", "topic in", "PartitionWith applies to"}},
		{"group by key", func(b *kstream.Builder) {
			kstream.Source(b, "in", serde.String, serde.String).GroupByKey(right).Count(kstream.Named("c"))
		}, []string{"GroupByKey", "PartitionWith applies to"}},
		{"to-table", func(b *kstream.Builder) {
			kstream.Source(b, "in", serde.String, serde.String).ToTable(kstream.Named("t"), right)
		}, []string{"to-table", "PartitionWith applies to"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := kstream.NewBuilder()
			tc.build(b)
			_, err := b.Build()
			if err == nil {
				t.Fatal("Build succeeded")
			}
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Build error %q does not say %q", err, s)
				}
			}
		})
	}
}

// The partition of each record of a topic written with a partitioner: a
// region's records go to its partition, others by key.
func ExamplePartitionWith() {
	regions := map[string]int32{"eu": 0, "us": 1, "asia": 2}
	b := kstream.NewBuilder()
	orders := kstream.Source(b, "orders", serde.String, serde.String) // key: order ID, value: region
	orders.To("orders-by-region", serde.String, serde.String,
		kstream.PartitionWith(func(topic, id, region string, partitions int32) int32 {
			if p, ok := regions[region]; ok && p < partitions {
				return p
			}
			return -1 // by key
		}))
	topo, err := b.Build()
	if err != nil {
		panic(err)
	}
	d := kstest.NewDriver(nil, topo, kstest.Partitions(3))
	defer d.Close()
	in := kstest.Input(d, "orders", serde.String, serde.String)
	in.Pipe("o1", "us")
	in.Pipe("o2", "asia")
	in.Pipe("o3", "eu")
	in.Pipe("o4", "us")
	for _, r := range kstest.Output(d, "orders-by-region", serde.String, serde.String).PartitionedRecords() {
		fmt.Printf("%s %s -> partition %d\n", r.Key, r.Value, r.Partition)
	}
	// Output:
	// o1 us -> partition 1
	// o2 asia -> partition 2
	// o3 eu -> partition 0
	// o4 us -> partition 1
}
