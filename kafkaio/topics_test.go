package kafkaio_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreamgo/kstream/kafkaio"
)

// TestInternalTopicOptions creates an app's repartition topic, changelog
// and dead-letter topic with InternalTopicReplication and
// InternalTopicConfig: each gets the replication factor and the configs,
// which override kstream's own except cleanup.policy.
func TestInternalTopicOptions(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c cluster) {
		in, out, appID := unique("in"), unique("out"), unique("topic-opts")
		mustCreate(t, c, 2, in, out)
		recs, _ := groupInput(100, 5)
		produce(t, c, in, recs)
		rf := int16(3) // the embedded cluster's brokers; scripts/kafka.sh runs one
		if c.name != "embedded" {
			rf = 1
		}
		runToEnd(t, groupCount(t, in, out), appOpts(c, appID, false,
			kafkaio.OnDeserializationError(kafkaio.PolicyDeadLetter), kafkaio.InternalTopicReplication(rf),
			kafkaio.InternalTopicConfig("max.message.bytes", "2000000"),
			kafkaio.InternalTopicConfig("segment.bytes", "10485760"))...)

		cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		adm := kadm.NewClient(cl)
		repartition, changelog, dlq := appID+"-group-counts-repartition", appID+"-group-counts-changelog", appID+"-dlq"
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		details, err := adm.ListTopics(ctx, repartition, changelog, dlq)
		if err != nil {
			t.Fatal(err)
		}
		for _, topic := range []string{repartition, changelog, dlq} {
			d, ok := details[topic]
			if !ok || d.Err != nil || len(d.Partitions) == 0 {
				t.Fatalf("topic %s: %+v", topic, d)
			}
			for _, p := range d.Partitions {
				if len(p.Replicas) != int(rf) {
					t.Errorf("%s/%d has %d replicas, want %d", topic, p.Partition, len(p.Replicas), rf)
				}
			}
			got := topicConfigs(t, adm, topic)
			if got["max.message.bytes"] != "2000000" || got["segment.bytes"] != "10485760" {
				t.Errorf("%s: max.message.bytes %q, segment.bytes %q; want 2000000, 10485760", topic, got["max.message.bytes"], got["segment.bytes"])
			}
			want := map[string]string{repartition: "delete", changelog: "compact", dlq: "delete"}[topic]
			if got["cleanup.policy"] != want {
				t.Errorf("%s: cleanup.policy %q, want %q", topic, got["cleanup.policy"], want)
			}
			if topic == repartition && got["retention.ms"] != "-1" {
				t.Errorf("%s: retention.ms %q, want -1", topic, got["retention.ms"])
			}
		}
	})
}

// TestInternalTopicOptionsRefused: a cleanup.policy or a negative
// replication factor other than -1 is a NewApp error.
func TestInternalTopicOptionsRefused(t *testing.T) {
	topo := groupCount(t, "in", "out")
	for _, o := range []kafkaio.Opt{kafkaio.InternalTopicConfig("cleanup.policy", "delete"), kafkaio.InternalTopicReplication(-2)} {
		_, err := kafkaio.NewApp(topo, kafkaio.AppID("refused"), kafkaio.Brokers("127.0.0.1:1"), o)
		if err == nil || !strings.Contains(err.Error(), "InternalTopic") {
			t.Errorf("NewApp: %v, want an error naming the option", err)
		}
	}
	if _, err := kafkaio.NewApp(topo, kafkaio.AppID("default"), kafkaio.Brokers("127.0.0.1:1"), kafkaio.InternalTopicReplication(-1)); err != nil {
		t.Errorf("InternalTopicReplication(-1), the broker's default: %v", err)
	}
}
