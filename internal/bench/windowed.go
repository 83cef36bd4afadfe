package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/serde"
)

// The windowed scenario counts the records of each user per minute.
const (
	scenarioWindowed = "windowed"
	// windowedStore names the window store, hence its changelog
	// "<appID>-window-counts-changelog", in kstream and in Kafka Streams.
	windowedStore = "window-counts"
	windowSize    = time.Minute
	// windowedStep is the time between the timestamps of consecutive
	// input records: 1,000,000 records span 1,000 s, 17 windows, in which
	// each user has 6 records.
	windowedStep = time.Millisecond
)

// windowedTopology is Source -> GroupByKey -> WindowedBy(Tumbling(1 min),
// no grace) -> Count (in-memory window store, every update forwarded: no
// record cache, no EmitOnWindowClose) -> ToStream -> To, with the windowed
// keys written as Kafka Streams' TimeWindowedSerializer writes them (the
// key, then the window start), as its program does.
func windowedTopology(in, out string) (*kstream.Topology, error) {
	b := kstream.NewBuilder()
	records := kstream.Source(b, in, serde.String, serde.Bytes)
	kstream.WindowedBy(records.GroupByKey(), kstream.Tumbling(windowSize)).
		Count(kstream.Named(windowedStore)).
		ToStream().To(out, kstream.TimeWindowedSerde(serde.String, windowSize), serde.Int64)
	return b.Build()
}

// windowedScenario: cfg.windowedRecords records in, one count update per
// record out.
//
// The expected output is exact: no record is late. The producer stamps
// record i with base + i*windowedStep, so the timestamps grow with the
// offsets in every partition (one idempotent producer keeps each
// partition's order). A task's stream time is then the timestamp of the
// record it processes, which lies in its window [start, start+1 min): the
// window's end is after stream time, so it is open (it closes when end +
// grace <= stream time, grace 0, in kstream and in Kafka Streams alike),
// and within the store's retention (size + grace: start > stream time - 1
// min). Every record updates its window's count, and every update is
// forwarded.
var windowedScenario = &statefulScenario{
	name: scenarioWindowed, inputs: []string{"records"}, output: "window-counts",
	subTopologies: 1, // the input is keyed by user: no repartition
	fill: func(ctx context.Context, cfg *config, brokers, in []string, filled *atomic.Int64) (int64, int64, string, error) {
		n := cfg.windowedRecords
		at := windowedTimes(n, time.Now())
		err := produceUsers(ctx, brokers, in[0], n, cfg.valueSize, filled, at)
		windows := at(n-1).UnixMilli()/windowSize.Milliseconds() - at(0).UnixMilli()/windowSize.Milliseconds() + 1
		return int64(n), int64(n), fmt.Sprintf("%d users, windows: %d", min(n, users), windows), err
	},
	topology: func(in []string, out string) (*kstream.Topology, error) { return windowedTopology(in[0], out) },
}

// windowedTimes returns the timestamps of the windowed scenario's n records:
// windowedStep apart, the last one at about now.
func windowedTimes(n int, now time.Time) func(i int) time.Time {
	base := now.Add(-time.Duration(n) * windowedStep).Truncate(time.Millisecond)
	return func(i int) time.Time { return base.Add(time.Duration(i) * windowedStep) }
}
