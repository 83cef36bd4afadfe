package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreamgo/kstream/kafkaio"
	"github.com/kstreamgo/kstream/serde"
)

// Sample is the text main counts.
var Sample = []string{
	"The quick brown fox jumps over the lazy dog.",
	"The dog sleeps; the fox runs.",
	"A fox, a dog, and the end.",
}

func main() {
	brokers := flag.String("brokers", "", "Kafka brokers (host:port,...); default: an embedded in-process cluster")
	eos := flag.Bool("exactly-once", false, "process exactly once (Kafka transactions)")
	verbose := flag.Bool("v", false, "log what the runtime does")
	flag.Parse()
	if !*verbose {
		slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := run(ctx, *brokers, *eos); err != nil {
		fmt.Fprintln(os.Stderr, "wordcount:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, brokerList string, eos bool) error {
	var seeds []string
	if brokerList == "" {
		e, err := kafkaio.StartEmbedded(ctx)
		if err != nil {
			return err
		}
		defer e.Close()
		seeds = e.Seeds()
	} else {
		seeds = strings.Split(brokerList, ",")
	}
	if err := kafkaio.CreateTopics(ctx, seeds, 3, []string{InputTopic, OutputTopic}); err != nil {
		return err
	}
	if err := produceSample(ctx, seeds); err != nil {
		return err
	}
	topo, err := Topology()
	if err != nil {
		return err
	}
	opts := []kafkaio.Opt{kafkaio.AppID("wordcount"), kafkaio.Brokers(seeds...), kafkaio.CommitInterval(100 * time.Millisecond)}
	if eos {
		opts = append(opts, kafkaio.ExactlyOnce())
	}
	app, err := kafkaio.NewApp(topo, opts...)
	if err != nil {
		return err
	}
	runErr := make(chan error, 1)
	go func() { runErr <- app.Run(ctx) }()
	// Wait until the group has committed every input and repartition record.
	for {
		select {
		case err := <-runErr:
			return fmt.Errorf("app stopped: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
		if lag, err := app.Lag(ctx); err == nil && lag == 0 && app.Stats().Processed > 0 {
			break
		}
	}
	app.Close()
	if err := <-runErr; err != nil {
		return err
	}
	counts, err := readCounts(ctx, seeds)
	if err != nil {
		return err
	}
	words := make([]string, 0, len(counts))
	for w := range counts {
		words = append(words, w)
	}
	slices.Sort(words)
	for _, w := range words {
		fmt.Printf("%s\t%d\n", w, counts[w])
	}
	return nil
}

func produceSample(ctx context.Context, seeds []string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(InputTopic))
	if err != nil {
		return err
	}
	defer cl.Close()
	for i, line := range Sample {
		r := &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(line)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			return err
		}
	}
	return nil
}

// readCounts reads the output topic to its end: the latest count per word.
func readCounts(ctx context.Context, seeds []string) (map[string]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(OutputTopic), kgo.KeepControlRecords(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, OutputTopic)
	if err != nil {
		return nil, err
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	counts := map[string]int64{}
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := left[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if r.Offset+1 >= end {
				delete(left, r.Partition)
			}
			if r.Attrs.IsControl() {
				return
			}
			if n, err := serde.Int64.Decode(r.Value); err == nil {
				counts[string(r.Key)] = n
			}
		})
	}
	return counts, nil
}
