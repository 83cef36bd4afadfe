package kafkaio_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreamgo/kstream/kafkaio"
)

// cluster is where a test runs: the embedded cluster, or the real broker of
// KSTREAM_BROKERS.
type cluster struct {
	name    string
	brokers []string
}

// embedded starts an embedded cluster for the test, closed at its end.
func embedded(t testing.TB) cluster {
	t.Helper()
	c, _ := embeddedCluster(t)
	return c
}

// embeddedCluster is embedded, with the cluster itself, for fault
// injection.
func embeddedCluster(t testing.TB) (cluster, *kafkaio.Embedded) {
	t.Helper()
	e, err := kafkaio.StartEmbedded(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return cluster{name: "embedded", brokers: e.Seeds()}, e
}

// clusters returns the embedded cluster, plus the real broker when
// KSTREAM_BROKERS is set; each test runs as a subtest per cluster.
func forEachCluster(t *testing.T, fn func(t *testing.T, c cluster)) {
	t.Run("embedded", func(t *testing.T) { fn(t, embedded(t)) })
	t.Run("kafka", func(t *testing.T) {
		addrs := os.Getenv("KSTREAM_BROKERS")
		if addrs == "" {
			t.Skip("KSTREAM_BROKERS is not set: no real broker (scripts/test.sh starts one)")
		}
		fn(t, cluster{name: "kafka", brokers: strings.Split(addrs, ",")})
	})
}

// forEachGuarantee runs fn under at-least-once and under exactly-once, on
// each cluster.
func forEachGuarantee(t *testing.T, fn func(t *testing.T, c cluster, eos bool)) {
	for _, eos := range []bool{false, true} {
		t.Run(map[bool]string{false: "at-least-once", true: "exactly-once"}[eos], func(t *testing.T) {
			forEachCluster(t, func(t *testing.T, c cluster) { fn(t, c, eos) })
		})
	}
}

// unique returns name with a random suffix, so that runs on a shared broker
// do not see each other's topics and groups.
func unique(name string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return name + "-" + hex.EncodeToString(b)
}

func mustCreate(t testing.TB, c cluster, partitions int32, topics ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafkaio.CreateTopics(ctx, c.brokers, partitions, topics); err != nil {
		t.Fatal(err)
	}
}

type rec struct {
	key, value []byte
	ts         int64
}

// produce writes records, keyed ones partitioned like Kafka's Java producer.
func produce(t testing.TB, c cluster, topic string, recs []rec) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var firstErr error
	for _, r := range recs {
		kr := &kgo.Record{Topic: topic, Key: r.key, Value: r.value}
		if r.ts != 0 {
			kr.Timestamp = time.UnixMilli(r.ts)
		}
		cl.Produce(ctx, kr, func(_ *kgo.Record, err error) {
			if err != nil && firstErr == nil {
				firstErr = err
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if firstErr != nil {
		t.Fatal(firstErr)
	}
}

// consumeAll reads topic from the start to its current end (read committed:
// to the last stable offset, skipping aborted records).
func consumeAll(t testing.TB, c cluster, topic string, readCommitted bool) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opts := []kgo.Opt{kgo.SeedBrokers(c.brokers...), kgo.ConsumeTopics(topic), kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
	if readCommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var ends kadm.ListedOffsets
	if readCommitted {
		ends, err = adm.ListCommittedOffsets(ctx, topic)
	} else {
		ends, err = adm.ListEndOffsets(ctx, topic)
	}
	if err != nil {
		t.Fatal(err)
	}
	remaining := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			remaining[o.Partition] = o.Offset
		}
	})
	var out []*kgo.Record
	for len(remaining) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consuming %s: %v (still waiting for %v)", topic, err, remaining)
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := remaining[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if r.Offset+1 >= end {
				delete(remaining, r.Partition)
			}
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
		})
	}
	return out
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
