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

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreamgo/kstream/examples/internal/exampleio"
	"github.com/kstreamgo/kstream/kafkaio"
	"github.com/kstreamgo/kstream/serde"
)

// Start is the sample's first minute.
var Start = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// Sample returns page views over three minutes (a few out of order, one late
// past the grace period), then a view far ahead that closes every window.
func Sample() []exampleio.Record {
	at := func(d time.Duration, user, page string) exampleio.Record {
		return exampleio.Record{Key: []byte(user), Value: []byte(page), Timestamp: Start.Add(d).UnixMilli()}
	}
	return []exampleio.Record{
		at(5*time.Second, "ada", "/"),
		at(20*time.Second, "bob", "/docs"),
		at(40*time.Second, "ada", "/docs"),
		at(65*time.Second, "ada", "/blog"),
		at(55*time.Second, "bob", "/"),       // out of order, within grace
		at(75*time.Second, "bob", "/blog"),   // closes minute 0 (60 s + 10 s grace)
		at(30*time.Second, "ada", "/late"),   // late: minute 0 has closed; dropped
		at(130*time.Second, "ada", "/"),      // minute 2
		at(10*time.Minute, "zed", "/closer"), // moves stream time: minutes 1 and 2 close
	}
}

func main() {
	brokers := flag.String("brokers", "", "Kafka brokers (host:port,...); default: an embedded in-process cluster")
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := run(ctx, *brokers); err != nil {
		fmt.Fprintln(os.Stderr, "windowed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, brokers string) error {
	seeds, stop, err := exampleio.Cluster(ctx, brokers)
	if err != nil {
		return err
	}
	defer stop()
	// One partition: the sample's stream time is then the same for every user.
	if err := kafkaio.CreateTopics(ctx, seeds, 1, []string{InputTopic, OutputTopic}); err != nil {
		return err
	}
	if err := exampleio.Produce(ctx, seeds, InputTopic, Sample()); err != nil {
		return err
	}
	topo, err := Topology()
	if err != nil {
		return err
	}
	app, err := kafkaio.NewApp(topo, kafkaio.AppID("windowed"), kafkaio.Brokers(seeds...), kafkaio.CommitInterval(100*time.Millisecond))
	if err != nil {
		return err
	}
	if err := exampleio.RunUntilDone(ctx, app); err != nil {
		return err
	}
	var lines []string
	err = exampleio.ReadAll(ctx, seeds, OutputTopic, func(r *kgo.Record) {
		n, err := serde.Int64.Decode(r.Value)
		if err != nil {
			return
		}
		user, window, _ := strings.Cut(string(r.Key), "@")
		lines = append(lines, fmt.Sprintf("%s\t%s\t%d", user, window, n))
	})
	if err != nil {
		return err
	}
	slices.Sort(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	return nil
}
