package main

import (
	"context"
	"encoding/json"
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

// Sample data.
var (
	Customers = map[string]string{"c1": "Ada", "c2": "Bob"}
	Products  = map[string]string{"p1": "pen", "p2": "ink"}
	Orders    = []Order{
		{ID: "o1", Customer: "c1", Product: "p1", Quantity: 2},
		{ID: "o2", Customer: "c2", Product: "p2", Quantity: 1},
		{ID: "o3", Customer: "c9", Product: "p1", Quantity: 5}, // unknown customer
		{ID: "o4", Customer: "c1", Product: "p7", Quantity: 1}, // unknown product
	}
)

func main() {
	brokers := flag.String("brokers", "", "Kafka brokers (host:port,...); default: an embedded in-process cluster")
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := run(ctx, *brokers); err != nil {
		fmt.Fprintln(os.Stderr, "enrich:", err)
		os.Exit(1)
	}
}

func records(m map[string]string) []exampleio.Record {
	var out []exampleio.Record
	for k, v := range m {
		out = append(out, exampleio.Record{Key: []byte(k), Value: []byte(v)})
	}
	return out
}

func run(ctx context.Context, brokers string) error {
	seeds, stop, err := exampleio.Cluster(ctx, brokers)
	if err != nil {
		return err
	}
	defer stop()
	if err := kafkaio.CreateTopics(ctx, seeds, 3, []string{OrdersTopic, CustomersTopic, ProductsTopic, OutputTopic}); err != nil {
		return err
	}
	// The tables first: the runtime does not order records across topics by
	// timestamp, so orders sent before their customer would find none.
	if err := exampleio.Produce(ctx, seeds, CustomersTopic, records(Customers)); err != nil {
		return err
	}
	if err := exampleio.Produce(ctx, seeds, ProductsTopic, records(Products)); err != nil {
		return err
	}
	topo, err := Topology()
	if err != nil {
		return err
	}
	opts := []kafkaio.Opt{kafkaio.AppID("enrich"), kafkaio.Brokers(seeds...), kafkaio.CommitInterval(100 * time.Millisecond)}
	app, err := kafkaio.NewApp(topo, opts...)
	if err != nil {
		return err
	}
	if err := exampleio.RunUntilDone(ctx, app); err != nil { // loads the customers table
		return err
	}
	var recs []exampleio.Record
	for _, o := range Orders {
		v, _ := json.Marshal(o)
		recs = append(recs, exampleio.Record{Key: []byte(o.ID), Value: v})
	}
	if err := exampleio.Produce(ctx, seeds, OrdersTopic, recs); err != nil {
		return err
	}
	if app, err = kafkaio.NewApp(topo, opts...); err != nil {
		return err
	}
	if err := exampleio.RunUntilDone(ctx, app); err != nil {
		return err
	}
	var lines []string
	err = exampleio.ReadAll(ctx, seeds, OutputTopic, func(r *kgo.Record) {
		e, err := serde.JSON[Enriched]().Decode(r.Value)
		if err == nil {
			lines = append(lines, fmt.Sprintf("%s\t%s\t%s\t%d", e.ID, e.CustomerName, e.ProductName, e.Quantity))
		}
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
