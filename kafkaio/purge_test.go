package kafkaio_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreamgo/kstream/kafkaio"
)

// TestRepartitionPurge checks that an app deletes the records of its
// repartition topic once it has committed them, as Kafka Streams does, so
// that the topic does not keep every record for the broker's retention;
// that the topic it creates keeps records however old until then
// (retention.ms -1); and that the counts are right.
func TestRepartitionPurge(t *testing.T) {
	forEachGuarantee(t, func(t *testing.T, c cluster, eos bool) {
		in, out, appID := unique("in"), unique("out"), unique("purge")
		mustCreate(t, c, 3, in, out)
		recs, want := groupInput(3000, 30)
		produce(t, c, in, recs)
		app, err := kafkaio.NewApp(groupCount(t, in, out),
			appOpts(c, appID, eos, kafkaio.RepartitionPurgeInterval(50*time.Millisecond))...)
		if err != nil {
			t.Fatal(err)
		}
		stop := runApp(t, app)
		waitCaughtUp(t, app, time.Minute)

		cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		adm := kadm.NewClient(cl)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		repartition := appID + "-group-counts-repartition"
		var starts, ends kadm.ListedOffsets
		waitFor(t, 30*time.Second, "the repartition topic purged to its end", func() bool {
			if starts, err = adm.ListStartOffsets(ctx, repartition); err != nil {
				t.Fatal(err)
			}
			if ends, err = adm.ListEndOffsets(ctx, repartition); err != nil {
				t.Fatal(err)
			}
			purged := 0
			ends.Each(func(e kadm.ListedOffset) {
				if s, ok := starts.Lookup(e.Topic, e.Partition); ok && e.Offset > 0 && s.Offset == e.Offset {
					purged++
				}
			})
			return purged == 3
		})
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		checkCounts(t, latestCounts(t, c, out, eos), want, true)

		if got := topicConfigs(t, adm, repartition); got["retention.ms"] != "-1" || got["cleanup.policy"] != "delete" {
			t.Errorf("repartition topic configs: retention.ms %q, cleanup.policy %q; want -1, delete", got["retention.ms"], got["cleanup.policy"])
		}
	})
}

// topicConfigs returns the configs of a topic.
func topicConfigs(t testing.TB, adm *kadm.Client, topic string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	configs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := configs.On(topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, cfg := range rc.Configs {
		if cfg.Value != nil {
			got[cfg.Key] = *cfg.Value
		}
	}
	return got
}
