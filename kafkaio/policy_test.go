package kafkaio_test

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/kafkaio"
	"github.com/kstreamgo/kstream/serde"
)

type order struct {
	ID     int    `json:"id"`
	Amount int    `json:"amount"`
	Note   string `json:"note,omitempty"`
}

// policyTopology decodes int32 keys and JSON orders, and panics in user code
// on a negative amount.
func policyTopology(t testing.TB, in, out string) *kstream.Topology {
	t.Helper()
	b := kstream.NewBuilder()
	s := kstream.Source(b, in, serde.Int32, serde.JSON[order](), kstream.Named("orders"))
	kstream.MapValues(s, func(o order) order {
		if o.Amount < 0 {
			panic("negative amount")
		}
		o.Note = "ok"
		return o
	}, kstream.Named("check-amount")).To(out, serde.Int32, serde.JSON[order]())
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func int32Key(v int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }

// malformed is the input: offsets 1, 2 and 3 are bad in three ways.
var malformed = []struct {
	key, value []byte
	badKind    string // "" for a good record
	badNode    string
}{
	{int32Key(1), []byte(`{"id":1,"amount":5}`), "", ""},
	{int32Key(2), []byte(`{"id":2,"amount":`), "deserialization", "orders"},
	{[]byte{0, 3}, []byte(`{"id":3,"amount":1}`), "deserialization", "orders"},
	{int32Key(4), []byte(`{"id":4,"amount":-1}`), "processing", "check-amount"},
	{int32Key(5), []byte(`{"id":5,"amount":7}`), "", ""},
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func TestErrorPolicies(t *testing.T) {
	for _, eos := range []bool{false, true} {
		t.Run(mode(eos), func(t *testing.T) {
			forEachCluster(t, func(t *testing.T, c cluster) {
				setup := func(t *testing.T) (in, out, app string) {
					in, out, app = unique("orders"), unique("checked"), unique("policy")
					mustCreate(t, c, 1, in, out)
					var recs []rec
					for _, m := range malformed {
						recs = append(recs, rec{key: m.key, value: m.value})
					}
					produce(t, c, in, recs)
					return in, out, app
				}
				t.Run("fail", func(t *testing.T) {
					in, out, app := setup(t)
					a, err := kafkaio.NewApp(policyTopology(t, in, out), appOpts(c, app, eos)...)
					if err != nil {
						t.Fatal(err)
					}
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					err = a.Run(ctx)
					var re *graph.RecordError
					if !errors.As(err, &re) {
						t.Fatalf("Run returned %v, want a record error", err)
					}
					if re.Topic != in || re.Partition != 0 || re.Offset != 1 || re.Node != "orders" || !re.Deserialization {
						t.Fatalf("error %+v, want topic %s partition 0 offset 1 node orders (deserialization)", re, in)
					}
					for _, want := range []string{in + "/0@1", "node orders"} {
						if !strings.Contains(err.Error(), want) {
							t.Errorf("error %q does not mention %q", err, want)
						}
					}
				})
				t.Run("skip", func(t *testing.T) {
					in, out, app := setup(t)
					a, err := kafkaio.NewApp(policyTopology(t, in, out), appOpts(c, app, eos,
						kafkaio.OnDeserializationError(kafkaio.PolicySkip), kafkaio.OnProcessingError(kafkaio.PolicySkip))...)
					if err != nil {
						t.Fatal(err)
					}
					stop := runApp(t, a)
					waitFor(t, time.Minute, "tasks", func() bool { return a.Stats().Tasks > 0 })
					waitCaughtUp(t, a, time.Minute)
					skipped := a.Stats().Skipped
					if err := stop(); err != nil {
						t.Fatal(err)
					}
					if skipped != 3 {
						t.Errorf("skipped %d records, want 3", skipped)
					}
					checkGood(t, consumeAll(t, c, out, eos))
				})
				t.Run("dead-letter", func(t *testing.T) {
					in, out, app := setup(t)
					dlq := unique("dlq")
					a, err := kafkaio.NewApp(policyTopology(t, in, out), appOpts(c, app, eos, kafkaio.DeadLetterTopic(dlq),
						kafkaio.OnDeserializationError(kafkaio.PolicyDeadLetter), kafkaio.OnProcessingError(kafkaio.PolicyDeadLetter))...)
					if err != nil {
						t.Fatal(err)
					}
					stop := runApp(t, a)
					waitFor(t, time.Minute, "tasks", func() bool { return a.Stats().Tasks > 0 })
					waitCaughtUp(t, a, time.Minute)
					if err := stop(); err != nil {
						t.Fatal(err)
					}
					checkGood(t, consumeAll(t, c, out, eos))
					got := consumeAll(t, c, dlq, eos)
					var want []int
					for i, m := range malformed {
						if m.badKind != "" {
							want = append(want, i)
						}
					}
					if len(got) != len(want) {
						t.Fatalf("dead-letter topic has %d records, want %d", len(got), len(want))
					}
					for j, i := range want {
						r, m := got[j], malformed[i]
						if string(r.Key) != string(m.key) || string(r.Value) != string(m.value) {
							t.Errorf("dead letter %d: key %x value %q, want the raw record %x %q", j, r.Key, r.Value, m.key, m.value)
						}
						checks := map[string]string{
							"kstream.error.kind":       m.badKind,
							"kstream.source.topic":     in,
							"kstream.source.partition": "0",
							"kstream.source.offset":    string(rune('0' + i)),
							"kstream.node":             m.badNode,
						}
						for k, v := range checks {
							if got := header(r, k); got != v {
								t.Errorf("dead letter %d: header %s = %q, want %q", j, k, got, v)
							}
						}
						if header(r, "kstream.error") == "" {
							t.Errorf("dead letter %d: no kstream.error header", j)
						}
						// A panic's dead letter carries the stack at the
						// panic, which shows where in user code it was.
						stack := header(r, "kstream.error.stack")
						if panicked := m.badKind == "processing"; panicked != strings.Contains(stack, "policy_test.go") {
							t.Errorf("dead letter %d (%s): kstream.error.stack = %q", j, m.badKind, stack)
						}
					}
				})
			})
		})
	}
}

// checkGood asserts that exactly the good records came out, in order.
func checkGood(t *testing.T, got []*kgo.Record) {
	t.Helper()
	var ids []int
	for _, r := range got {
		o, err := serde.JSON[order]().Decode(r.Value)
		if err != nil || o.Note != "ok" {
			t.Fatalf("output %q: %v", r.Value, err)
		}
		ids = append(ids, o.ID)
	}
	if len(ids) != 2 || ids[0] != 1 || ids[1] != 5 {
		t.Fatalf("output ids %v, want [1 5]", ids)
	}
}
