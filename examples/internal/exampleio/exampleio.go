// Package exampleio holds what the example programs share: a cluster (the
// embedded one, or the brokers given), producing sample records, and
// reading a topic to its end.
package exampleio

import (
	"context"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreamgo/kstream/kafkaio"
)

// Cluster returns the seeds of the brokers in list (comma-separated), or of
// a new embedded cluster when list is empty, and a function to stop it.
func Cluster(ctx context.Context, list string) ([]string, func(), error) {
	if list != "" {
		return strings.Split(list, ","), func() {}, nil
	}
	e, err := kafkaio.StartEmbedded(ctx)
	if err != nil {
		return nil, nil, err
	}
	return e.Seeds(), e.Close, nil
}

// Record is a record to produce; a zero Timestamp means now.
type Record struct {
	Key, Value []byte
	Timestamp  int64
}

// Produce writes records to topic, keyed ones partitioned as Kafka's Java
// producer does.
func Produce(ctx context.Context, seeds []string, topic string, recs []Record) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		return err
	}
	defer cl.Close()
	for _, r := range recs {
		kr := &kgo.Record{Key: r.Key, Value: r.Value}
		if r.Timestamp != 0 {
			kr.Timestamp = time.UnixMilli(r.Timestamp)
		}
		if err := cl.ProduceSync(ctx, kr).FirstErr(); err != nil {
			return err
		}
	}
	return nil
}

// ReadAll reads topic from its start to its current last stable offset,
// skipping aborted records, and calls fn for each record in offset order per
// partition.
func ReadAll(ctx context.Context, seeds []string, topic string, fn func(*kgo.Record)) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic), kgo.KeepControlRecords(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, topic)
	if err != nil {
		return err
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := left[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if r.Offset+1 >= end {
				delete(left, r.Partition)
			}
			if !r.Attrs.IsControl() {
				fn(r)
			}
		})
	}
	return nil
}

// RunUntilDone runs app until its group has committed every record of its
// source topics, then stops it.
func RunUntilDone(ctx context.Context, app *kafkaio.App) error {
	runErr := make(chan error, 1)
	go func() { runErr <- app.Run(ctx) }()
	for {
		select {
		case err := <-runErr:
			return err
		case <-time.After(100 * time.Millisecond):
		}
		if lag, err := app.Lag(ctx); err == nil && lag == 0 && app.Stats().Processed > 0 {
			break
		}
	}
	app.Close()
	return <-runErr
}
