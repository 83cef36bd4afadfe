package kafkaio_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/kafkaio"
	"github.com/kstreamgo/kstream/serde"
)

// valuePartition is a partitioner: the value is the partition; a value that
// is not a number asks for key partitioning.
func valuePartition(_, _, v string, _ int32) int32 {
	i, err := strconv.Atoi(v)
	if err != nil {
		return -1
	}
	return int32(i)
}

// taskSeen records the partition of the task that processed each value.
type taskSeen struct {
	mu   sync.Mutex
	seen map[string]int32
}

// partRecorder passes each value with the partition of its task to seen.
type partRecorder struct {
	ctx  *kstream.ProcessorContext[string, string]
	seen func(p int32, v string)
}

func (p *partRecorder) Init(ctx *kstream.ProcessorContext[string, string]) error {
	p.ctx = ctx
	return nil
}

func (p *partRecorder) Process(r kstream.Record[string, string]) error {
	p.seen(p.ctx.Partition(), r.Value)
	return nil
}

func (p *partRecorder) Close() error { return nil }

// TestPartitionWith writes through a sink with a partitioner and through a
// repartition topic with one: every output record is in the partition the
// partitioner chose (by key when it returned -1), and every record of the
// repartition topic was processed by the task of its partition.
func TestPartitionWith(t *testing.T) {
	for _, eos := range []bool{false, true} {
		t.Run(mode(eos), func(t *testing.T) {
			forEachCluster(t, func(t *testing.T, c cluster) {
				in, out, routed, app := unique("in"), unique("placed"), unique("routed"), unique("partition-with")
				mustCreate(t, c, 4, in, out, routed)
				var recs []rec
				want := map[string]int32{} // value -> partition, in out and in the repartition topic
				for i := range 40 {
					k := "k" + strconv.Itoa(i%5)
					v := strconv.Itoa(i % 4)
					if i%7 == 0 {
						v = "key" // not a number: by key
					}
					v += "/" + strconv.Itoa(i)
					recs = append(recs, rec{key: []byte(k), value: []byte(v)})
					p := int32(kgo.StickyKeyPartitioner(nil).ForTopic(out).Partition(&kgo.Record{Key: []byte(k)}, 4))
					if !strings.HasPrefix(v, "key") {
						p = int32(i % 4)
					}
					want[v] = p
				}
				produce(t, c, in, recs)
				part := kstream.PartitionWith(func(topic, k, v string, n int32) int32 {
					if n != 4 {
						panic(fmt.Sprintf("topic %s has %d partitions, want 4", topic, n))
					}
					return valuePartition(topic, k, strings.Split(v, "/")[0], n)
				})
				seen := &taskSeen{seen: map[string]int32{}}
				b := kstream.NewBuilder()
				s := kstream.Source(b, in, serde.String, serde.String)
				s.To(out, serde.String, serde.String, part, kstream.Named("placed-sink"))
				// A ToFunc topic: its partition count is looked up at run time.
				s.ToFunc(func(kstream.Record[string, string]) string { return routed }, serde.String, serde.String, part)
				kstream.Process(s.Repartition(kstream.Named("moved"), part), func() kstream.Processor[string, string, string, string] {
					return &partRecorder{seen: func(p int32, v string) {
						seen.mu.Lock()
						seen.seen[v] = p
						seen.mu.Unlock()
					}}
				})
				topo, err := b.Build()
				if err != nil {
					t.Fatal(err)
				}
				a, err := kafkaio.NewApp(topo, appOpts(c, app, eos)...)
				if err != nil {
					t.Fatal(err)
				}
				stop := runApp(t, a)
				waitFor(t, time.Minute, "the records", func() bool {
					seen.mu.Lock()
					defer seen.mu.Unlock()
					return len(seen.seen) == len(want)
				})
				waitCaughtUp(t, a, time.Minute)
				if err := stop(); err != nil {
					t.Fatal(err)
				}
				got := consumeAll(t, c, out, eos)
				if len(got) != len(want) {
					t.Fatalf("%d records in %s, want %d", len(got), out, len(want))
				}
				viaFunc := consumeAll(t, c, routed, eos)
				if len(viaFunc) != len(want) {
					t.Fatalf("%d records in %s, want %d", len(viaFunc), routed, len(want))
				}
				got = append(got, viaFunc...)
				byKey := 0
				for _, r := range got {
					if w, ok := want[string(r.Value)]; !ok || r.Partition != w {
						t.Errorf("%s=%s in partition %d, want %d", r.Key, r.Value, r.Partition, w)
					}
					if strings.HasPrefix(string(r.Value), "key") {
						byKey++
					}
				}
				if byKey == 0 {
					t.Error("no record was partitioned by key")
				}
				for v, p := range seen.seen {
					if p != want[v] {
						t.Errorf("repartitioned record %s processed by the task of partition %d, want %d", v, p, want[v])
					}
				}
			})
		})
	}
}

// TestPartitionWithOutOfRange: a partitioner returning a partition the topic
// does not have is a production error: skipped and counted under the skip
// policy, and fails Run naming the topic, the partition and the node by
// default, under either guarantee (the record is rejected before it is
// produced).
func TestPartitionWithOutOfRange(t *testing.T) {
	for _, eos := range []bool{false, true} {
		t.Run(mode(eos), func(t *testing.T) {
			forEachCluster(t, func(t *testing.T, c cluster) {
				for _, policy := range []kafkaio.Policy{kafkaio.PolicyFail, kafkaio.PolicySkip} {
					t.Run([]string{"fail", "skip"}[policy], func(t *testing.T) {
						in, out, app := unique("in"), unique("placed"), unique("out-of-range")
						mustCreate(t, c, 1, in)
						mustCreate(t, c, 4, out)
						produce(t, c, in, []rec{{key: []byte("a"), value: []byte("1")}, {key: []byte("b"), value: []byte("9")},
							{key: []byte("c"), value: []byte("3")}})
						b := kstream.NewBuilder()
						kstream.Source(b, in, serde.String, serde.String).
							To(out, serde.String, serde.String, kstream.PartitionWith(valuePartition), kstream.Named("placed-sink"))
						topo, err := b.Build()
						if err != nil {
							t.Fatal(err)
						}
						a, err := kafkaio.NewApp(topo, appOpts(c, app, eos, kafkaio.OnProductionError(policy))...)
						if err != nil {
							t.Fatal(err)
						}
						if policy == kafkaio.PolicyFail {
							ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
							defer cancel()
							err := a.Run(ctx)
							var re *kstream.RecordError
							if !errors.As(err, &re) || !re.Production || re.Node != "placed-sink" {
								t.Fatalf("Run returned %v, want a production error of node placed-sink", err)
							}
							for _, s := range []string{"topic " + out, "partition 9", "placed-sink"} {
								if !strings.Contains(err.Error(), s) {
									t.Errorf("error %q does not say %q", err, s)
								}
							}
							return
						}
						stop := runApp(t, a)
						waitFor(t, time.Minute, "the good records", func() bool { return len(consumeAll(t, c, out, eos)) == 2 })
						waitCaughtUp(t, a, time.Minute)
						if err := stop(); err != nil {
							t.Fatal(err)
						}
						if s := a.Stats(); s.Skipped != 1 {
							t.Errorf("skipped %d, want 1", s.Skipped)
						}
						for _, r := range consumeAll(t, c, out, eos) {
							if want := valuePartition("", "", string(r.Value), 4); r.Partition != want {
								t.Errorf("%s=%s in partition %d, want %d", r.Key, r.Value, r.Partition, want)
							}
						}
					})
				}
			})
		})
	}
}

// broadcastSeen counts, per value, the tasks (by partition) that processed
// it.
type broadcastSeen struct {
	mu   sync.Mutex
	seen map[string]map[int32]int
}

func (s *broadcastSeen) add(p int32, v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[v] == nil {
		s.seen[v] = map[int32]int{}
	}
	s.seen[v][p]++
}

// TestPartitionsWithBroadcast writes every record to every partition with
// PartitionsWith, through To, ToFunc and a repartition topic, and drops some
// (an empty result): each kept record is in each partition of the output
// topics once, each task downstream of the repartition topic processed it
// once, the dropped ones are nowhere, and the sinks count them as dropped.
func TestPartitionsWithBroadcast(t *testing.T) {
	for _, eos := range []bool{false, true} {
		t.Run(mode(eos), func(t *testing.T) {
			forEachCluster(t, func(t *testing.T, c cluster) {
				in, out, routed, app := unique("in"), unique("broadcast"), unique("routed"), unique("partitions-with")
				mustCreate(t, c, 2, in)
				mustCreate(t, c, 4, out)
				mustCreate(t, c, 3, routed)
				var recs []rec
				var kept []string
				for i := range 30 {
					v := "v/" + strconv.Itoa(i)
					if i%5 == 0 {
						v = "drop/" + strconv.Itoa(i)
					} else {
						kept = append(kept, v)
					}
					recs = append(recs, rec{key: []byte("k" + strconv.Itoa(i%7)), value: []byte(v)})
				}
				recs = append(recs, rec{key: nil, value: []byte("v/null-key")})
				kept = append(kept, "v/null-key")
				dropped := int64(len(recs) - len(kept))
				produce(t, c, in, recs)
				var repartitions atomic.Int32 // the repartition topic's partition count, as fn saw it
				broadcast := kstream.PartitionsWith(func(dst []int32, topic, _, v string, n int32) []int32 {
					if strings.HasPrefix(v, "drop/") {
						return dst
					}
					if strings.HasSuffix(topic, "-everywhere-repartition") {
						repartitions.Store(n)
					}
					for p := range n {
						dst = append(dst, p)
					}
					return dst
				})
				seen := &broadcastSeen{seen: map[string]map[int32]int{}}
				b := kstream.NewBuilder()
				s := kstream.Source(b, in, serde.String, serde.String)
				s.To(out, serde.String, serde.String, broadcast, kstream.Named("broadcast-sink"))
				s.ToFunc(func(kstream.Record[string, string]) string { return routed }, serde.String, serde.String,
					broadcast, kstream.Named("broadcast-func"))
				kstream.Process(s.Repartition(kstream.Named("everywhere"), broadcast), func() kstream.Processor[string, string, string, string] {
					return &partRecorder{seen: seen.add}
				})
				topo, err := b.Build()
				if err != nil {
					t.Fatal(err)
				}
				reader := sdkmetric.NewManualReader()
				mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
				a, err := kafkaio.NewApp(topo, appOpts(c, app, eos, kafkaio.MeterProvider(mp))...)
				if err != nil {
					t.Fatal(err)
				}
				stop := runApp(t, a)
				waitFor(t, time.Minute, "the records", func() bool {
					n := int(repartitions.Load())
					seen.mu.Lock()
					defer seen.mu.Unlock()
					total := 0
					for _, tasks := range seen.seen {
						total += len(tasks)
					}
					return n > 0 && total == n*len(kept)
				})
				waitCaughtUp(t, a, time.Minute)
				var rm metricdata.ResourceMetrics
				if err := reader.Collect(context.Background(), &rm); err != nil {
					t.Fatal(err)
				}
				if err := stop(); err != nil {
					t.Fatal(err)
				}
				for _, tc := range []struct {
					topic      string
					partitions int32
				}{{out, 4}, {routed, 3}} {
					count := map[string]map[int32]int{}
					for _, r := range consumeAll(t, c, tc.topic, eos) {
						if count[string(r.Value)] == nil {
							count[string(r.Value)] = map[int32]int{}
						}
						count[string(r.Value)][r.Partition]++
						if strings.HasPrefix(string(r.Value), "drop/") {
							t.Errorf("%s: dropped record %s=%s in partition %d", tc.topic, r.Key, r.Value, r.Partition)
						}
					}
					for _, v := range kept {
						for p := range tc.partitions {
							if n := count[v][p]; n != 1 {
								t.Errorf("%s: %s in partition %d %d times, want once", tc.topic, v, p, n)
							}
						}
					}
				}
				n := repartitions.Load()
				for _, v := range kept {
					for p := range n {
						if k := seen.seen[v][p]; k != 1 {
							t.Errorf("repartitioned %s processed %d times by the task of partition %d, want once", v, k, p)
						}
					}
				}
				for v := range seen.seen {
					if strings.HasPrefix(v, "drop/") {
						t.Errorf("dropped record %s processed downstream of the repartition topic", v)
					}
				}
				droppedBy := map[string]int64{}
				for _, sm := range rm.ScopeMetrics {
					for _, m := range sm.Metrics {
						if d, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "kstream.records.dropped" {
							for _, p := range d.DataPoints {
								node, _ := p.Attributes.Value("kstream.node")
								droppedBy[node.AsString()] += p.Value
							}
						}
					}
				}
				for _, node := range []string{"broadcast-sink", "broadcast-func", "everywhere-repartition-sink"} {
					if droppedBy[node] != dropped {
						t.Errorf("kstream.records.dropped of node %s = %d, want %d", node, droppedBy[node], dropped)
					}
				}
			})
		})
	}
}
