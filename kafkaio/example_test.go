package kafkaio_test

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/kafkaio"
	"github.com/kstreamgo/kstream/serde"
)

// ExampleStore counts words on the embedded cluster and reads the counts
// with an interactive query.
func ExampleStore() {
	ctx := context.Background()
	cluster, err := kafkaio.StartEmbedded(ctx)
	if err != nil {
		panic(err)
	}
	defer cluster.Close()
	if err := kafkaio.CreateTopics(ctx, cluster.Seeds(), 2, []string{"words"}); err != nil {
		panic(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.Seeds()...))
	if err != nil {
		panic(err)
	}
	for _, w := range []string{"kafka", "go", "kafka"} {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "words", Key: []byte(w), Value: []byte(w)}).FirstErr(); err != nil {
			panic(err)
		}
	}
	cl.Close()

	b := kstream.NewBuilder()
	kstream.Source(b, "words", serde.String, serde.String).GroupByKey().Count(kstream.Named("word-counts"))
	topo, err := b.Build()
	if err != nil {
		panic(err)
	}
	app, err := kafkaio.NewApp(topo, kafkaio.AppID("example-store"), kafkaio.Brokers(cluster.Seeds()...))
	if err != nil {
		panic(err)
	}
	counts, err := kafkaio.Store(app, "word-counts", serde.String, serde.Int64)
	if err != nil {
		panic(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(runCtx) }()
	defer func() { stop(); <-done }()

	// Reads fail with ErrNotRunning until the app runs, and find nothing
	// until the records are processed.
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if n, ok, _ := counts.Get("kafka"); ok && n == 2 {
			break
		}
	}
	for _, w := range []string{"go", "kafka", "rust"} {
		n, ok, err := counts.Get(w)
		fmt.Println(w, n, ok, err)
	}
	// Output:
	// go 1 true <nil>
	// kafka 2 true <nil>
	// rust 0 false <nil>
}

// ExampleOnStateChange follows an app's state from its start to its stop,
// as a readiness probe would read App.State.
func ExampleOnStateChange() {
	ctx := context.Background()
	cluster, err := kafkaio.StartEmbedded(ctx)
	if err != nil {
		panic(err)
	}
	defer cluster.Close()
	if err := kafkaio.CreateTopics(ctx, cluster.Seeds(), 1, []string{"events"}); err != nil {
		panic(err)
	}
	b := kstream.NewBuilder()
	kstream.Source(b, "events", serde.String, serde.String).Foreach(func(string, string) {})
	topo, err := b.Build()
	if err != nil {
		panic(err)
	}
	app, err := kafkaio.NewApp(topo, kafkaio.AppID("example-states"), kafkaio.Brokers(cluster.Seeds()...),
		kafkaio.OnStateChange(func(from, to kafkaio.State) { fmt.Println(from, "->", to) }))
	if err != nil {
		panic(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(runCtx) }()
	for deadline := time.Now().Add(time.Minute); app.State() != kafkaio.StateRunning && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	fmt.Println(<-done, app.State())
	// Output:
	// CREATED -> REBALANCING
	// REBALANCING -> RUNNING
	// RUNNING -> PENDING_SHUTDOWN
	// PENDING_SHUTDOWN -> NOT_RUNNING
	// <nil> NOT_RUNNING
}
