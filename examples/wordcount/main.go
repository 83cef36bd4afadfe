package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreamgo/kstream/examples/internal/exampleio"
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

func run(ctx context.Context, brokers string, eos bool) error {
	seeds, stop, err := exampleio.Cluster(ctx, brokers)
	if err != nil {
		return err
	}
	defer stop()
	if err := kafkaio.CreateTopics(ctx, seeds, 3, []string{InputTopic, OutputTopic}); err != nil {
		return err
	}
	var recs []exampleio.Record
	for i, line := range Sample {
		recs = append(recs, exampleio.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(line)})
	}
	if err := exampleio.Produce(ctx, seeds, InputTopic, recs); err != nil {
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
	if err := exampleio.RunUntilDone(ctx, app); err != nil {
		return err
	}
	counts := map[string]int64{}
	err = exampleio.ReadAll(ctx, seeds, OutputTopic, func(r *kgo.Record) {
		if n, err := serde.Int64.Decode(r.Value); err == nil {
			counts[string(r.Key)] = n
		}
	})
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
