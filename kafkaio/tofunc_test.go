package kafkaio_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/kafkaio"
	"github.com/kstreamgo/kstream/serde"
)

// routeTopology writes each record to "<prefix>-<value>".
func routeTopology(t testing.TB, in, prefix string) *kstream.Topology {
	t.Helper()
	b := kstream.NewBuilder()
	kstream.Source(b, in, serde.String, serde.String).
		ToFunc(func(r kstream.Record[string, string]) string { return prefix + "-" + r.Value }, nil, nil, kstream.Named("route"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// TestToFunc routes records to topics chosen per record, partitioned by key
// like Kafka's producer; a record for a missing topic is a production error
// that the policy handles: skipped (at-least-once), or Run fails, at once
// under exactly-once too (a new producer would not help).
func TestToFunc(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c cluster) {
		setup := func(t *testing.T) (in, prefix, app string) {
			in, prefix, app = unique("in"), unique("route"), unique("tofunc")
			mustCreate(t, c, 1, in)
			mustCreate(t, c, 3, prefix+"-red", prefix+"-blue")
			var recs []rec
			for i, v := range []string{"red", "blue", "red", "green", "blue", "red"} {
				recs = append(recs, rec{key: []byte{byte('a' + i)}, value: []byte(v)})
			}
			produce(t, c, in, recs)
			return in, prefix, app
		}
		t.Run("skip", func(t *testing.T) {
			in, prefix, app := setup(t)
			a, err := kafkaio.NewApp(routeTopology(t, in, prefix), appOpts(c, app, false,
				kafkaio.OnProductionError(kafkaio.PolicySkip))...)
			if err != nil {
				t.Fatal(err)
			}
			stop := runApp(t, a)
			waitFor(t, time.Minute, "tasks", func() bool { return a.Stats().Tasks > 0 })
			waitCaughtUp(t, a, time.Minute)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if s := a.Stats().Skipped; s != 1 {
				t.Errorf("skipped %d records, want 1 (the one for the missing topic)", s)
			}
			for color, n := range map[string]int{"red": 3, "blue": 2} {
				recs := consumeAll(t, c, prefix+"-"+color, false)
				if len(recs) != n {
					t.Errorf("%s: %d records, want %d", color, len(recs), n)
				}
				for _, r := range recs {
					if string(r.Value) != color {
						t.Errorf("%s: record %q", color, r.Value)
					}
					if want := int32(kgo.StickyKeyPartitioner(nil).ForTopic(r.Topic).Partition(&kgo.Record{Key: r.Key}, 3)); r.Partition != want {
						t.Errorf("%s: key %q in partition %d, want %d", color, r.Key, r.Partition, want)
					}
				}
			}
		})
		for _, eos := range []bool{false, true} {
			t.Run("fail-"+mode(eos), func(t *testing.T) {
				in, prefix, app := setup(t)
				a, err := kafkaio.NewApp(routeTopology(t, in, prefix), appOpts(c, app, eos)...)
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				err = a.Run(ctx)
				if err == nil || !strings.Contains(err.Error(), prefix+"-green") || errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Run returned %v, want a production error naming topic %s-green", err, prefix)
				}
				if n := a.Stats().Aborts; n != 0 {
					t.Errorf("%d transactions rolled back before failing, want none", n)
				}
			})
		}
	})
}
