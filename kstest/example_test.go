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
