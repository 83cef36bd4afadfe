package kstest_test

import (
	"fmt"
	"math"
	"time"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/kstest"
	"github.com/kstreamgo/kstream/serde"
)

// A count per user and minute that keeps each window for an hour: after the
// record at 2:05 closed the first minutes, their counts are still in the
// store.
func ExampleWindowStore() {
	b := kstream.NewBuilder()
	clicks := kstream.Source(b, "clicks", serde.String, serde.String)
	kstream.WindowedBy(clicks.GroupByKey(), kstream.Tumbling(time.Minute)).
		Count(kstream.Named("per-minute"), kstream.Retention(time.Hour))
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	d := kstest.NewDriver(nil, topo, kstest.Partitions(2))
	defer d.Close()
	in := kstest.Input(d, "clicks", serde.String, serde.String)
	const minute = int64(time.Minute / time.Millisecond)
	for _, ts := range []int64{5_000, 20_000, 70_000, 125_000} { // 0:05, 0:20, 1:10, 2:05
		in.PipeAt(ts, "alice", "/home")
	}
	ws := kstest.WindowStore(d, "per-minute", serde.String, serde.Int64)
	for _, r := range ws.Fetch("alice", 0, math.MaxInt64) {
		fmt.Printf("%s [%d, %d): %d clicks, last at %d\n", r.Key.Key, r.Key.Start/minute, r.Key.End/minute, r.Value, r.Timestamp)
	}
	fmt.Println(len(ws.Fetch("alice", minute, minute)), "window starting at minute 1")
	// Output:
	// alice [0, 1): 2 clicks, last at 20000
	// alice [1, 2): 1 clicks, last at 70000
	// alice [2, 3): 1 clicks, last at 125000
	// 1 window starting at minute 1
}

// How many records each step of a pipeline saw: the filter kept two of the
// three orders, so the step after it received two.
func ExampleDriver_Received() {
	b := kstream.NewBuilder()
	orders := kstream.Source(b, "orders", serde.String, serde.Int64, kstream.Named("orders"))
	large := orders.Filter(func(_ string, cents int64) bool { return cents >= 10_000 }, kstream.Named("large"))
	kstream.MapValues(large, func(cents int64) float64 { return float64(cents) / 100 }, kstream.Named("to-euros")).
		To("large-orders", serde.String, serde.Float64)
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	d := kstest.NewDriver(nil, topo)
	defer d.Close()
	in := kstest.Input(d, "orders", serde.String, serde.Int64)
	in.Pipe("o1", 25_000)
	in.Pipe("o2", 900)
	in.Pipe("o3", 12_000)
	for _, node := range []string{"orders", "large", "to-euros"} {
		fmt.Println(node, d.Received(node))
	}
	// Output:
	// orders 3
	// large 3
	// to-euros 2
}

// Malformed input goes to a dead-letter topic instead of stopping the
// application, as kafkaio.OnDeserializationError(kstream.PolicyDeadLetter)
// would have it: the test reads the raw record and the headers that say
// why.
func ExampleDeadLetterTopic() {
	b := kstream.NewBuilder()
	kstream.Source(b, "prices", serde.String, serde.Int64, kstream.Named("prices")).
		To("valid-prices", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	d := kstest.NewDriver(nil, topo, kstest.DeadLetterTopic("bad-prices"),
		kstest.OnDeserializationError(kstream.PolicyDeadLetter))
	defer d.Close()
	in := kstest.Input(d, "prices", serde.String, serde.Bytes)
	in.Pipe("apple", []byte{0, 0, 0, 0, 0, 0, 0, 42}) // an Int64
	in.Pipe("pear", []byte("42"))                     // not one
	fmt.Println(kstest.LatestByKey(kstest.Output(d, "valid-prices", serde.String, serde.Int64)))
	for _, r := range kstest.Output(d, "bad-prices", serde.String, serde.String).Records() {
		for _, h := range r.Headers {
			if h.Key == "kstream.error.kind" || h.Key == "kstream.node" {
				fmt.Printf("%s=%q: %s=%s\n", r.Key, r.Value, h.Key, h.Value)
			}
		}
	}
	fmt.Println(d.Skipped(), "skipped")
	// Output:
	// map[apple:42]
	// pear="42": kstream.error.kind=deserialization
	// pear="42": kstream.node=prices
	// 1 skipped
}
