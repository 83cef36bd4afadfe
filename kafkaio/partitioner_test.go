package kafkaio_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

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

type partRecorder struct {
	ctx  *kstream.ProcessorContext[string, string]
	seen *taskSeen
}

func (p *partRecorder) Init(ctx *kstream.ProcessorContext[string, string]) error {
	p.ctx = ctx
	return nil
}

func (p *partRecorder) Process(r kstream.Record[string, string]) error {
	p.seen.mu.Lock()
	p.seen.seen[r.Value] = p.ctx.Partition()
	p.seen.mu.Unlock()
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
					return &partRecorder{seen: seen}
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
