package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/kafkaio"
	"github.com/kstreamgo/kstream/serde"
)

// The global scenario: a global table's topic of cfg.restoreRecords
// distinct keys over globalPartitions partitions, read by a raw franz-go
// consumer and bootstrapped into a kstream app's global store, in the same
// run, then bootstrapped again by a restarted app. Modes are the state
// backends: in memory the restart reads the topic again; in the state DB
// (pebble) only what came after its checkpoint, nothing here.
const (
	scenarioGlobal   = "global"
	globalPartitions = 4
	variantRestart   = "restart"
)

// runGlobal fills the topic, consumes it raw (row raw), and bootstraps a
// global table from it twice: on a fresh instance (row first) and on a
// restarted one (row again); err concerns those. When cfg.streams is set,
// Kafka Streams bootstraps its global table from the topic too (row
// streams, with its own Error; nil otherwise): in memory, or in RocksDB for
// the pebble backend.
func runGlobal(ctx context.Context, cfg *config, prog *progress, backend string, logw io.Writer) (raw, first, again row, streams *row, err error) {
	n := cfg.restoreRecords
	raw = row{Scenario: scenarioGlobal, Mode: backend, Impl: implHand, Variant: implRaw}
	first = row{Scenario: scenarioGlobal, Mode: backend, Impl: implKstream, Variant: implRaw}
	again = row{Scenario: scenarioGlobal, Mode: backend, Impl: implKstream, Variant: variantRestart}
	ctx, c, err := openCluster(ctx, cfg)
	if err != nil {
		return raw, first, again, nil, err
	}
	defer c.close()
	app, table, in := c.name("global"), c.name("table"), c.name("in")
	if err := c.createTopics(ctx, globalPartitions, table, in); err != nil {
		return raw, first, again, nil, err
	}
	var filled atomic.Int64
	prog.set(fmt.Sprintf("global %s: fill the topic", backend), filled.Load)
	if err := fillChangelog(ctx, c.brokers, table, n, &filled); err != nil {
		return raw, first, again, nil, err
	}
	if err := rawConsume(ctx, c.brokers, table, globalPartitions, n, prog, fmt.Sprintf("global %s: raw consume", backend), &raw); err != nil {
		return raw, first, again, nil, err
	}

	b := kstream.NewBuilder()
	kstream.SourceGlobalTable(b, table, serde.String, serde.Int64, kstream.Named("table"))
	kstream.Source(b, in, serde.String, serde.Int64).Foreach(func(string, int64) {})
	topo, err := b.Build()
	if err != nil {
		return raw, first, again, nil, err
	}
	opts := []kafkaio.Opt{kafkaio.AppID(app), kafkaio.Brokers(c.brokers...),
		kafkaio.Logger(slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn})))}
	if backend == backendPebble {
		dir, err := os.MkdirTemp("", "kstream-bench-global-")
		if err != nil {
			return raw, first, again, nil, err
		}
		defer os.RemoveAll(dir)
		opts = append(opts, kafkaio.StateDir(dir))
	}
	stopProfile, err := startProfile(cfg.cpuProfile, backend, "global-kstream")
	if err != nil {
		return raw, first, again, nil, err
	}
	err = bootstrapGlobal(ctx, topo, opts, prog, fmt.Sprintf("global %s: kstream", backend), int64(n), &first)
	stopProfile()
	if err != nil {
		return raw, first, again, nil, err
	}
	want := int64(n) // in memory, everything again
	if backend == backendPebble {
		want = 0
	}
	if err := bootstrapGlobal(ctx, topo, opts, prog, fmt.Sprintf("global %s: kstream restarted", backend), want, &again); err != nil {
		return raw, first, again, nil, err
	}
	if cfg.streams != nil {
		streams = &row{Scenario: scenarioGlobal, Mode: backend, Impl: implStreams, Variant: implRaw}
		// The program needs an output topic; the global scenario writes none.
		err := restoreInStreams(ctx, cfg, prog, c.brokers, scenarioGlobal, c.name("global-streams"), in, in, backend, streams,
			"-table", table, "-store", "table")
		if err != nil {
			streams.Error = err.Error()
		}
		streams.StartupMs = streams.Seconds * 1000
	}
	return raw, first, again, streams, nil
}

// bootstrapGlobal runs an app until its global tables are bootstrapped
// (want records read) and times the bootstrap from the app's start into r.
func bootstrapGlobal(ctx context.Context, topo *kstream.Topology, opts []kafkaio.Opt, prog *progress, what string, want int64, r *row) (err error) {
	a, err := kafkaio.NewApp(topo, opts...)
	if err != nil {
		return err
	}
	prog.set(what, func() int64 { return a.Stats().GlobalApplied })
	cpu0, t0 := cpuSeconds(), time.Now()
	stop := runApp(ctx, a)
	defer func() {
		if rerr := stop(); err == nil && rerr != nil {
			err = rerr
		}
	}()
	// Run bootstraps the global tables before it connects its group
	// client, which Lag waits for (then lists offsets: a few ms).
	if _, err := a.Lag(ctx); err != nil {
		return fmt.Errorf("bench: waiting for the global bootstrap: %w", err)
	}
	took := time.Since(t0)
	r.Seconds, r.StartupMs = took.Seconds(), ms(took)
	r.CPUSeconds = cpuSeconds() - cpu0
	// The rate counts from the bootstrap's start, as Kafka Streams' row
	// does: from the first global partition's restore to the last one's end.
	var first, last time.Time
	for _, p := range a.RestoreProgress() {
		if p.Task != "global" || !p.Done {
			continue
		}
		if first.IsZero() || p.Started.Before(first) {
			first = p.Started
		}
		if end := p.Started.Add(p.Took); end.After(last) {
			last = end
		}
	}
	if !first.IsZero() {
		r.Seconds = last.Sub(first).Seconds()
	}
	if got := a.Stats().GlobalApplied; got != want {
		return fmt.Errorf("bench: the global bootstrap read %d records, want %d", got, want)
	}
	if want > 0 {
		fill(r, want)
	}
	r.Note = "start ms: from the app's start to the end of its global bootstrap; records/s from the bootstrap's start"
	return nil
}
