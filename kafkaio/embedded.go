package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// Embedded is an in-process Kafka cluster (franz-go's kfake) for examples,
// quick starts and fast tests. It speaks the Kafka protocol on loopback
// ports, with groups, transactions and compaction; it is not a timing model
// of a real broker.
type Embedded struct {
	c *kfake.Cluster
}

// StartEmbedded starts an in-process cluster: 3 brokers, no automatic topic
// creation, a 100 ms minimum group session timeout so that tests fail over
// quickly, and the API versions of Apache Kafka 4.4 (kversion.Stable) with
// two changes that let Java clients, Kafka Streams included, use it too:
// no DescribeTopicPartitions (Java's admin client then describes topics
// with Metadata: kfake's answer lacks the eligible leader replicas it
// expects) and CreateTopics up to v4 (kfake's v5+ answers list the topic's
// configs with an invalid source, which Java's admin client rejects). opts
// (kfake options) come after these defaults.
func StartEmbedded(ctx context.Context, opts ...kfake.Opt) (*Embedded, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	versions := kversion.Stable()
	versions.SetMaxKeyVersion(kmsg.DescribeTopicPartitions.Int16(), -1) // removes it
	versions.SetMaxKeyVersion(kmsg.CreateTopics.Int16(), 4)
	all := append([]kfake.Opt{kfake.NumBrokers(3), kfake.GroupMinSessionTimeout(100 * time.Millisecond),
		kfake.MaxVersions(versions)}, opts...)
	c, err := kfake.NewCluster(all...)
	if err != nil {
		return nil, fmt.Errorf("kafkaio: starting embedded cluster: %w", err)
	}
	return &Embedded{c: c}, nil
}

// Seeds returns the brokers' addresses.
func (e *Embedded) Seeds() []string { return e.c.ListenAddrs() }

// Cluster returns the underlying kfake cluster, for fault injection.
func (e *Embedded) Cluster() *kfake.Cluster { return e.c }

// Close stops the cluster.
func (e *Embedded) Close() { e.c.Close() }

// CreateTopics creates topics with the given partition count on the cluster
// at brokers (replication: the broker default). Topics that exist already are
// not an error. extra passes franz-go options (SASL, TLS...).
func CreateTopics(ctx context.Context, brokers []string, partitions int32, topics []string, extra ...kgo.Opt) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, extra...)...)
	if err != nil {
		return fmt.Errorf("kafkaio: %w", err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, -1, nil, topics...)
	if err != nil {
		return fmt.Errorf("kafkaio: creating topics: %w", err)
	}
	var errs []error
	for _, r := range resp {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("kafkaio: creating topic %s: %w", r.Topic, r.Err))
		}
	}
	return errors.Join(errs...)
}
