package kafkaio_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/kafkaio"
	"github.com/kstreamgo/kstream/serde"
)

// TestProductionErrorPolicies sends one record that the output topic refuses
// (larger than its max.message.bytes), under each policy (at-least-once;
// under exactly-once a production error aborts the transaction and fails).
func TestProductionErrorPolicies(t *testing.T) {
	// Random bytes: compression must not shrink the record under the limit.
	r := rand.New(rand.NewPCG(3, 4))
	raw := make([]byte, 5000)
	for i := range raw {
		raw[i] = byte(r.IntN(256))
	}
	big := string(raw)
	forEachCluster(t, func(t *testing.T, c cluster) {
		for _, policy := range []kafkaio.Policy{kafkaio.PolicyFail, kafkaio.PolicySkip, kafkaio.PolicyDeadLetter} {
			t.Run([]string{"fail", "skip", "dead-letter"}[policy], func(t *testing.T) {
				in, out, app, dlq := unique("in"), unique("small"), unique("produce"), unique("dlq")
				mustCreate(t, c, 1, in)
				cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...))
				if err != nil {
					t.Fatal(err)
				}
				defer cl.Close()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if _, err := kadm.NewClient(cl).CreateTopics(ctx, 1, -1,
					map[string]*string{"max.message.bytes": kadm.StringPtr("2000")}, out); err != nil {
					t.Fatal(err)
				}
				produce(t, c, in, []rec{{key: []byte("a"), value: []byte("1")}, {key: []byte("big"), value: []byte("5000")},
					{key: []byte("b"), value: []byte("2")}})
				b := kstream.NewBuilder()
				s := kstream.Source(b, in, serde.String, serde.String)
				kstream.MapValues(s, func(v string) string {
					if v == "5000" {
						return big
					}
					return v
				}).To(out, serde.String, serde.String)
				topo, err := b.Build()
				if err != nil {
					t.Fatal(err)
				}
				a, err := kafkaio.NewApp(topo, appOpts(c, app, false, kafkaio.OnProductionError(policy), kafkaio.DeadLetterTopic(dlq),
					kafkaio.ClientOpts(kgo.RecordRetries(2)))...)
				if err != nil {
					t.Fatal(err)
				}
				if policy == kafkaio.PolicyFail {
					err := a.Run(ctx)
					if err == nil || !strings.Contains(err.Error(), "producing to "+out) {
						t.Fatalf("Run returned %v, want a production error naming %s", err, out)
					}
					return
				}
				stop := runApp(t, a)
				waitFor(t, time.Minute, "the good records", func() bool { return len(consumeAll(t, c, out, false)) == 2 })
				waitCaughtUp(t, a, time.Minute)
				if err := stop(); err != nil {
					t.Fatal(err)
				}
				if s := a.Stats(); s.Skipped != 1 {
					t.Errorf("skipped %d, want 1", s.Skipped)
				}
				if policy == kafkaio.PolicyDeadLetter {
					dl := consumeAll(t, c, dlq, false)
					if len(dl) != 1 || string(dl[0].Key) != "big" || !bytes.Equal(dl[0].Value, []byte(big)) {
						t.Fatalf("dead letters: %d records", len(dl))
					}
					if header(dl[0], "kstream.error.kind") != "production" || header(dl[0], "kstream.target.topic") != out {
						t.Errorf("dead letter headers: %v", dl[0].Headers)
					}
				}
			})
		}
	})
}
