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

// buildErrorCase is a topology that Build rejects, with what its error says.
type buildErrorCase struct {
	name  string
	build func(b *kstream.Builder)
	want  []string
}

// checkBuildErrors runs each case as a subtest: Build must fail, saying
// each of the case's strings.
func checkBuildErrors(t *testing.T, cases []buildErrorCase) {
	for _, tc := range cases {
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

// notSinkCases are the operators that are not sinks given opt, the option
// named name: Build errors.
func notSinkCases(opt kstream.Opt, name string) []buildErrorCase {
	return []buildErrorCase{
		{"filter", func(b *kstream.Builder) {
			kstream.Source(b, "in", serde.String, serde.String).Filter(func(string, string) bool { return true }, opt, kstream.Named("f"))
		}, []string{"node f (filter)", name + " applies to To, ToFunc and Repartition only"}},
		{"source", func(b *kstream.Builder) {
			kstream.Source(b, "in", serde.String, serde.String, opt, kstream.Named("s"))
		}, []string{"source s (topic in)", name + " applies to"}},
		{"source table", func(b *kstream.Builder) {
			kstream.SourceTable(b, "in", serde.String, serde.String, opt, kstream.Named("st"))
		}, []string{"source", "topic in", name + " applies to"}},
		{"source global table", func(b *kstream.Builder) {
			kstream.SourceGlobalTable(b, "in", serde.String, serde.String, opt, kstream.Named("gt"))
		}, []string{"source", "topic in", name + " applies to"}},
		{"group by key", func(b *kstream.Builder) {
			kstream.Source(b, "in", serde.String, serde.String).GroupByKey(opt).Count(kstream.Named("c"))
		}, []string{"GroupByKey", name + " applies to"}},
		{"to-table", func(b *kstream.Builder) {
			kstream.Source(b, "in", serde.String, serde.String).ToTable(kstream.Named("t"), opt)
		}, []string{"to-table", name + " applies to"}},
	}
}

func TestPartitionWithBuildErrors(t *testing.T) {
	wrong := kstream.PartitionWith(func(string, string, int64, int32) int32 { return 0 })
	checkBuildErrors(t, append([]buildErrorCase{
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
	}, notSinkCases(kstream.PartitionWith(byValue), "PartitionWith")...))
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

// allPartitions is a PartitionsWith function broadcasting every record to
// every partition.
func allPartitions(dst []int32, _ string, _, _ string, n int32) []int32 {
	for p := range n {
		dst = append(dst, p)
	}
	return dst
}

// TestPartitionsWithBroadcast: each record, tombstones and null keys
// included, is written once to every partition, with its offsets in order,
// and fn is called once per record with an empty dst that has room for
// every partition.
func TestPartitionsWithBroadcast(t *testing.T) {
	calls := 0
	b := kstream.NewBuilder()
	kstream.Source(b, "in", serde.String, serde.String).
		To("out", serde.String, serde.String, kstream.Named("sink"), kstream.PartitionsWith(func(dst []int32, topic, k, v string, n int32) []int32 {
			calls++
			if len(dst) != 0 || cap(dst) < int(n) || topic != "out" || n != 4 {
				t.Errorf("fn got dst of length %d and capacity %d, topic %q, %d partitions; want an empty dst with room for 4, out, 4", len(dst), cap(dst), topic, n)
			}
			return allPartitions(dst, topic, k, v, n)
		}))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := kstest.NewDriver(t, topo, kstest.Partitions(4))
	in := kstest.Input(d, "in", serde.String, serde.String)
	in.PipeAt(1, "a", "1")
	in.PipeAt(2, "b", "2")
	in.PipeTombstoneAt(3, "a")
	in.PipeNullKeyAt(4, "null key")
	type copyOf struct {
		v string
		p int32
	}
	count := map[copyOf]int{}
	perPartition := map[int32]int64{}
	recs := kstest.Output(d, "out", serde.String, serde.String).PartitionedRecords()
	for _, r := range recs {
		v := r.Value
		if r.Tombstone {
			v = "tombstone"
		}
		count[copyOf{v, r.Partition}]++
		if r.Offset != perPartition[r.Partition] {
			t.Errorf("%s in partition %d at offset %d, want %d", v, r.Partition, r.Offset, perPartition[r.Partition])
		}
		perPartition[r.Partition]++
	}
	if len(recs) != 16 {
		t.Errorf("%d records written, want 16 (4 records in 4 partitions)", len(recs))
	}
	for _, v := range []string{"1", "2", "tombstone", "null key"} {
		for p := range int32(4) {
			if n := count[copyOf{v, p}]; n != 1 {
				t.Errorf("%s: %d copies in partition %d, want 1", v, n, p)
			}
		}
	}
	if calls != 4 {
		t.Errorf("fn called %d times, want 4", calls)
	}
	if n := d.Dropped("sink"); n != 0 {
		t.Errorf("Dropped(sink) = %d, want 0", n)
	}
}

// TestPartitionsWithResults: what each kind of result writes, with To and
// ToFunc: duplicates once each in the order of first appearance, an empty
// result nothing (counted as dropped by the sink), negative partitions alone
// one record by key, and a slice of fn's own, which the sink leaves as it
// is.
func TestPartitionsWithResults(t *testing.T) {
	own := []int32{3, 1, 3}
	// fn reads the partitions from the value: "2,0,2" or "" (none), or
	// returns own for "own".
	fn := func(dst []int32, _, _, v string, _ int32) []int32 {
		if v == "own" {
			return own
		}
		for _, f := range strings.Split(v, ",") {
			if f == "" {
				continue
			}
			i, err := strconv.Atoi(f)
			if err != nil {
				panic(err)
			}
			dst = append(dst, int32(i))
		}
		return dst
	}
	for _, toFunc := range []bool{false, true} {
		t.Run(map[bool]string{false: "to", true: "to-func"}[toFunc], func(t *testing.T) {
			b := kstream.NewBuilder()
			s := kstream.Source(b, "in", serde.String, serde.String)
			if toFunc {
				s.ToFunc(func(kstream.Record[string, string]) string { return "out" }, serde.String, serde.String,
					kstream.Named("sink"), kstream.PartitionsWith(fn))
			} else {
				s.To("out", serde.String, serde.String, kstream.Named("sink"), kstream.PartitionsWith(fn))
			}
			topo, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			d := kstest.NewDriver(t, topo, kstest.Partitions(4))
			in := kstest.Input(d, "in", serde.String, serde.String)
			out := kstest.Output(d, "out", serde.String, serde.String)
			for _, tc := range []struct {
				k, v    string
				want    []int32
				dropped int64
			}{
				{"a", "2,0,2,0,3", []int32{2, 0, 3}, 0},
				{"a", "1,1", []int32{1}, 0},
				{"a", "", nil, 1},
				{"b", "", nil, 2},
				{"a", "-1", []int32{keyPartition("a", 4)}, 2},
				{"b", "-3,-1", []int32{keyPartition("b", 4)}, 2},
				{"c", "own", []int32{3, 1}, 2},
				{"c", "own", []int32{3, 1}, 2},
				{"d", "0,1,2,3,3,2,1,0", []int32{0, 1, 2, 3}, 2},
			} {
				in.PipeAt(1, tc.k, tc.v)
				var got []int32
				for _, r := range out.PartitionedRecords() {
					if r.Key != tc.k || r.Value != tc.v {
						t.Errorf("%s=%q: wrote %s=%q", tc.k, tc.v, r.Key, r.Value)
					}
					got = append(got, r.Partition)
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("%s=%q: written to partitions %v, want %v", tc.k, tc.v, got, tc.want)
				}
				if n := d.Dropped("sink"); n != tc.dropped {
					t.Errorf("%s=%q: Dropped(sink) = %d, want %d", tc.k, tc.v, n, tc.dropped)
				}
			}
			if !slices.Equal(own, []int32{3, 1, 3}) {
				t.Errorf("fn's own slice became %v", own)
			}
		})
	}
}

// TestPartitionsWithErrors: a partition the topic does not have, or a
// negative partition with others, is a production error naming topic, node
// and partition, with To, ToFunc and Repartition; nothing of the record is
// written, the records before it are.
func TestPartitionsWithErrors(t *testing.T) {
	fn := func(dst []int32, _, _, v string, _ int32) []int32 {
		for _, f := range strings.Split(v, ",") {
			i, _ := strconv.Atoi(f)
			dst = append(dst, int32(i))
		}
		return dst
	}
	for _, tc := range []struct {
		name  string
		build func(s kstream.Stream[string, string])
		topic string
		node  string
	}{
		{"to", func(s kstream.Stream[string, string]) {
			s.To("out", serde.String, serde.String, kstream.PartitionsWith(fn), kstream.Named("write-out"))
		}, "out", "write-out"},
		{"to-func", func(s kstream.Stream[string, string]) {
			s.ToFunc(func(kstream.Record[string, string]) string { return "out" }, serde.String, serde.String,
				kstream.PartitionsWith(fn), kstream.Named("write-out"))
		}, "out", "write-out"},
		{"repartition", func(s kstream.Stream[string, string]) {
			s.Repartition(kstream.PartitionsWith(fn), kstream.Named("moved")).To("out", serde.String, serde.String)
		}, "kstest-moved-repartition", "moved-repartition-sink"},
	} {
		for _, bad := range []struct {
			v    string
			says []string
		}{
			{"0,2,4,1", []string{"partition 4", "4 partitions", "PartitionsWith"}},
			{"3,-1", []string{"partitions [3 -1]", "negative", "PartitionsWith"}},
		} {
			t.Run(tc.name+"/"+bad.v, func(t *testing.T) {
				b := kstream.NewBuilder()
				tc.build(kstream.Source(b, "in", serde.String, serde.String))
				topo, err := b.Build()
				if err != nil {
					t.Fatal(err)
				}
				d := kstest.NewDriver(t, topo, kstest.Partitions(4))
				in := kstest.Input(d, "in", serde.String, serde.String)
				in.PipeAt(1, "a", "3,1")
				err = in.TryPipeRecord(kstream.Record[string, string]{Key: "a", Value: bad.v, Timestamp: 2})
				var re *kstream.RecordError
				if !errors.As(err, &re) {
					t.Fatalf("TryPipeRecord returned %v, want a *kstream.RecordError", err)
				}
				if !re.Production || re.Deserialization || re.Node != tc.node || re.Topic != "in" || re.Offset != 1 {
					t.Errorf("error %+v: want a production error of node %s for in@1", re, tc.node)
				}
				for _, s := range append([]string{"topic " + tc.topic, tc.node}, bad.says...) {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %q", err, s)
					}
				}
				recs := kstest.Output(d, "out", serde.String, serde.String).PartitionedRecords()
				if len(recs) != 2 || recs[0].Value != "3,1" || recs[1].Value != "3,1" {
					t.Errorf("output %v, want only the two copies of the first record", recs)
				}
			})
		}
	}
}

// TestPartitionsWithRepartition broadcasts through a repartition topic:
// every downstream task (one per partition) processes each record once, and
// a count downstream counts each key once per task.
func TestPartitionsWithRepartition(t *testing.T) {
	type seen struct {
		task int32
		k, v string
	}
	count := map[seen]int{}
	b := kstream.NewBuilder()
	moved := kstream.Source(b, "in", serde.String, serde.String).
		Repartition(kstream.Named("everywhere"), kstream.PartitionsWith(allPartitions))
	kstream.Process(moved, func() kstream.Processor[string, string, string, string] {
		return &partitionRecorder{seen: func(p int32, k, v string) { count[seen{p, k, v}]++ }}
	})
	moved.GroupByKey().Count(kstream.Named("counts")).ToStream().To("counts", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := kstest.NewDriver(t, topo, kstest.Partitions(4))
	in := kstest.Input(d, "in", serde.String, serde.String)
	inputs := []struct{ k, v string }{{"a", "1"}, {"b", "2"}, {"a", "3"}}
	for _, r := range inputs {
		in.PipeAt(1, r.k, r.v)
	}
	if len(count) != 12 {
		t.Errorf("%d (task, record) pairs seen downstream, want 12: %v", len(count), count)
	}
	for _, r := range inputs {
		for p := range int32(4) {
			if n := count[seen{p, r.k, r.v}]; n != 1 {
				t.Errorf("%s=%s processed %d times by the task of partition %d, want once", r.k, r.v, n, p)
			}
		}
	}
	// Each task counted a twice and b once.
	perKey := map[string][]int64{}
	for _, r := range kstest.Output(d, "counts", serde.String, serde.Int64).Records() {
		perKey[r.Key] = append(perKey[r.Key], r.Value)
	}
	if want := []int64{1, 1, 1, 1, 2, 2, 2, 2}; !slices.Equal(perKey["a"], want) {
		t.Errorf("counts of a: %v, want %v", perKey["a"], want)
	}
	if want := []int64{1, 1, 1, 1}; !slices.Equal(perKey["b"], want) {
		t.Errorf("counts of b: %v, want %v", perKey["b"], want)
	}
}

// TestPartitionsWithPanic: a panic in fn is a processing error of the sink.
func TestPartitionsWithPanic(t *testing.T) {
	b := kstream.NewBuilder()
	kstream.Source(b, "in", serde.String, serde.String).To("out", serde.String, serde.String,
		kstream.Named("sink"), kstream.PartitionsWith(func([]int32, string, string, string, int32) []int32 { panic("boom") }))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := kstest.NewDriver(t, topo, kstest.Partitions(2))
	err = kstest.Input(d, "in", serde.String, serde.String).TryPipeRecord(kstream.Record[string, string]{Key: "a", Value: "1"})
	var re *kstream.RecordError
	if !errors.As(err, &re) || re.Node != "sink" || re.Production || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("TryPipeRecord returned %v, want the panic as a processing error of node sink", err)
	}
}

func TestPartitionsWithBuildErrors(t *testing.T) {
	wrong := kstream.PartitionsWith(func([]int32, string, string, int64, int32) []int32 { return nil })
	right := kstream.PartitionsWith(allPartitions)
	single := kstream.PartitionWith(byValue)
	toFunc := func(kstream.Record[string, string]) string { return "x" }
	checkBuildErrors(t, append([]buildErrorCase{
		{"to with other types", func(b *kstream.Builder) {
			kstream.Source(b, "in", serde.String, serde.String).To("out", nil, nil, wrong, kstream.Named("w"))
		}, []string{"node w (sink)", "PartitionsWith takes a func([]int32, string, string, string, int32) []int32", "func([]int32, string, string, int64, int32) []int32"}},
		{"to-func with other types", func(b *kstream.Builder) {
			kstream.Source(b, "in", serde.String, serde.String).ToFunc(toFunc, nil, nil, wrong, kstream.Named("w"))
		}, []string{"node w (sink-func)", "PartitionsWith takes"}},
		{"repartition with other types", func(b *kstream.Builder) {
			kstream.Source(b, "in", serde.String, serde.String).Repartition(kstream.Named("r"), wrong)
		}, []string{"node r-repartition-sink (repartition-sink)", "PartitionsWith takes"}},
		{"nil function", func(b *kstream.Builder) {
			kstream.Source(b, "in", serde.String, serde.String).To("out", nil, nil, kstream.Named("w"),
				kstream.PartitionsWith[string, string](nil))
		}, []string{"node w (sink)", "PartitionsWith was given a nil function"}},
		{"to with both", func(b *kstream.Builder) {
			kstream.Source(b, "in", serde.String, serde.String).To("out", nil, nil, right, single, kstream.Named("w"))
		}, []string{"node w (sink)", "PartitionWith and PartitionsWith both given"}},
		{"to-func with both", func(b *kstream.Builder) {
			kstream.Source(b, "in", serde.String, serde.String).ToFunc(toFunc, nil, nil, single, right, kstream.Named("w"))
		}, []string{"node w (sink-func)", "PartitionWith and PartitionsWith both given"}},
		{"repartition with both, and another PartitionsWith", func(b *kstream.Builder) {
			kstream.Source(b, "in", serde.String, serde.String).Repartition(kstream.Named("r"), single, right, right)
		}, []string{"node r-repartition-sink (repartition-sink)", "PartitionWith and PartitionsWith both given"}},
	}, notSinkCases(right, "PartitionsWith")...))
}

// A control record sent to every partition of a topic, so that every task
// reading it sees it; data records go by key, and records of no one are
// dropped.
func ExamplePartitionsWith() {
	b := kstream.NewBuilder()
	events := kstream.Source(b, "events", serde.String, serde.String)
	events.To("routed", serde.String, serde.String, kstream.Named("route"),
		kstream.PartitionsWith(func(dst []int32, topic, k, v string, partitions int32) []int32 {
			switch {
			case k == "control": // to every partition
				for p := range partitions {
					dst = append(dst, p)
				}
			case v != "": // by key
				dst = append(dst, -1)
			} // an empty value: nowhere, dropped
			return dst
		}))
	topo, err := b.Build()
	if err != nil {
		panic(err)
	}
	d := kstest.NewDriver(nil, topo, kstest.Partitions(3))
	defer d.Close()
	in := kstest.Input(d, "events", serde.String, serde.String)
	in.Pipe("control", "flush")
	in.Pipe("user-1", "login")
	in.Pipe("user-2", "")
	for _, r := range kstest.Output(d, "routed", serde.String, serde.String).PartitionedRecords() {
		fmt.Printf("%s %s -> partition %d\n", r.Key, r.Value, r.Partition)
	}
	fmt.Println("dropped:", d.Dropped("route"))
	// Output:
	// control flush -> partition 0
	// control flush -> partition 1
	// control flush -> partition 2
	// user-1 login -> partition 2
	// dropped: 1
}
