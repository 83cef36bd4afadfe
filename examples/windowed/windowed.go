// Command windowed counts page views per user per one-minute tumbling window
// and emits only final results, once each window has closed.
//
// It reads "page-views" (key: user, value: page) and writes
// "views-per-minute" (key: "user@<window start, RFC 3339>", value: count).
// main starts an embedded Kafka cluster (or uses -brokers), produces three
// minutes of sample views, runs the application until it has processed
// them, and prints "user<TAB>window<TAB>views" lines.
package main

import (
	"time"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/serde"
)

// Topic names of the example.
const (
	InputTopic  = "page-views"
	OutputTopic = "views-per-minute"
)

// Topology counts views per user per minute, with 10 s of grace for late
// views, and emits each window's count once, when it closes.
func Topology() (*kstream.Topology, error) {
	b := kstream.NewBuilder()
	views := kstream.Source(b, InputTopic, serde.String, serde.String)
	counts := kstream.WindowedBy(views.GroupByKey(), kstream.Tumbling(time.Minute).Grace(10*time.Second)).
		Count(kstream.Named("views-per-minute"), kstream.EmitOnWindowClose())
	kstream.Map(counts.ToStream(), func(w kstream.Windowed[string], n int64) (string, int64) {
		return w.Key + "@" + time.UnixMilli(w.Start).UTC().Format(time.RFC3339), n
	}).To(OutputTopic, serde.String, serde.Int64)
	return b.Build()
}
