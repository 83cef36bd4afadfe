package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/kafkaio"
	"github.com/kstreamgo/kstream/serde"
)

// The restore scenario: a count store's changelog of cfg.restoreRecords
// distinct keys (one partition), read by a raw franz-go consumer and restored
// by a kstream app, in the same run. Modes are the state backends.
const (
	scenarioRestore = "restore"
	backendMemory   = "memory"
	backendPebble   = "pebble"
	implRaw         = "raw consume"
	// restoreTarget is the restore rate kstream should reach, relative to
	// the raw consume of the same changelog.
	restoreTarget = 0.7
)

// runRestore fills a changelog, consumes it raw (row raw), restores it into
// a kstream app's store (row ks, which err concerns) and, when cfg.streams is
// set, into a Kafka Streams application's (row streams, nil otherwise, with
// its own Error): an in-memory store, or RocksDB for the pebble backend.
func runRestore(ctx context.Context, cfg *config, prog *progress, backend string, logw io.Writer) (raw, ks row, streams *row, err error) {
	n := cfg.restoreRecords
	raw = row{Scenario: scenarioRestore, Mode: backend, Impl: implHand, Variant: implRaw}
	ks = row{Scenario: scenarioRestore, Mode: backend, Impl: implKstream, Variant: implRaw}
	ctx, c, err := openCluster(ctx, cfg)
	if err != nil {
		return raw, ks, nil, err
	}
	defer c.close()
	app, in, out := c.name("restore"), c.name("in"), c.name("out")
	changelog := app + "-" + restoreStore + "-changelog"
	if err := c.createTopics(ctx, 1, in, out, changelog); err != nil {
		return raw, ks, nil, err
	}
	var filled atomic.Int64
	prog.set(fmt.Sprintf("restore %s: fill the changelog", backend), filled.Load)
	if err := fillChangelog(ctx, c.brokers, changelog, n, &filled); err != nil {
		return raw, ks, nil, err
	}

	// Raw: a consumer of the partition, from its creation to the last
	// record; then kstream's restore. With -repeat, both again, in
	// alternating order, and the medians (the profiles are of the last
	// runs).
	var raws, kss []row
	for rep := range cfg.repeat {
		for i := range 2 {
			var r row
			if i == rep%2 {
				r = row{Scenario: scenarioRestore, Mode: backend, Impl: implHand, Variant: implRaw}
				cfg.closed.settle(cfg.settleTimeout())
				stopProfile, err := startProfile(cfg.cpuProfile, backend, "restore-hand")
				if err != nil {
					return raw, ks, nil, err
				}
				err = rawConsume(ctx, c.brokers, changelog, 1, n, prog, fmt.Sprintf("restore %s: raw consume", backend), &r)
				stopProfile()
				if err != nil {
					return raw, ks, nil, err
				}
				raws = append(raws, r)
			} else {
				r = row{Scenario: scenarioRestore, Mode: backend, Impl: implKstream, Variant: implRaw}
				if err := restoreKstream(ctx, cfg, prog, c.brokers, app, in, out, backend, logw, &r); err != nil {
					return raw, ks, nil, err
				}
				kss = append(kss, r)
			}
			runtime.GC()
		}
	}
	if raw, err = median(raws); err != nil {
		return raw, ks, nil, err
	}
	if ks, err = median(kss); err != nil {
		return raw, ks, nil, err
	}
	if cfg.streams != nil {
		// The same application ID: Kafka Streams' store "counts" restores
		// from the same changelog, once kstream's instance has left.
		streams = &row{Scenario: scenarioRestore, Mode: backend, Impl: implStreams, Variant: implRaw}
		if err := restoreInStreams(ctx, cfg, prog, c.brokers, scenarioRestore, app, in, out, backend, streams, "-store", restoreStore); err != nil {
			streams.Error = err.Error()
		}
	}
	return raw, ks, streams, nil
}

// restoreStore is the name of the restore scenario's store, whose changelog
// is "<app>-counts-changelog" in kstream and in Kafka Streams alike.
const restoreStore = "counts"

// restoreKstream runs a kstream app whose count store restores from the
// filled changelog, timed as its restore progress reports, into ks.
func restoreKstream(ctx context.Context, cfg *config, prog *progress, brokers []string, app, in, out, backend string, logw io.Writer, ks *row) (err error) {
	n := cfg.restoreRecords
	b := kstream.NewBuilder()
	kstream.Source(b, in, serde.String, serde.Int64).GroupByKey().Count(kstream.Named(restoreStore)).ToStream().To(out, serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		return err
	}
	opts := []kafkaio.Opt{kafkaio.AppID(app), kafkaio.Brokers(brokers...),
		kafkaio.Logger(slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn})))}
	if backend == backendPebble {
		dir, err := os.MkdirTemp("", "kstream-bench-restore-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		opts = append(opts, kafkaio.StateDir(dir))
	}
	a, err := kafkaio.NewApp(topo, opts...)
	if err != nil {
		return err
	}
	prog.set(fmt.Sprintf("restore %s: kstream", backend), func() int64 { return a.Stats().Restored })
	cfg.closed.settle(cfg.settleTimeout())
	stopProfile, err := startProfile(cfg.cpuProfile, backend, "restore-kstream")
	if err != nil {
		return err
	}
	defer stopProfile()
	cpu0, faults0 := usage()
	stop := runApp(ctx, a)
	defer func() {
		if rerr := stop(); err == nil && rerr != nil {
			err = rerr
		}
	}()
	for {
		p := a.RestoreProgress()
		if len(p) == 1 && p[0].Done {
			ks.Seconds = p[0].Took.Seconds()
			cpu1, faults1 := usage()
			ks.CPUSeconds = cpu1 - cpu0 // includes the app's start
			ks.PageFaults = faults1 - faults0
			stopProfile()
			if p[0].Restored != int64(n) {
				return fmt.Errorf("bench: restored %d records, want %d", p[0].Restored, n)
			}
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bench: waiting for the restore (%d of %d): %w", a.Stats().Restored, n, ctx.Err())
		case <-a.Done():
			return fmt.Errorf("bench: the app stopped during its restore")
		case <-time.After(2 * time.Millisecond):
		}
	}
	fill(ks, int64(n))
	ks.Note = "timed from the store's restore start (RestoreProgress); CPU from the app's start"
	return nil
}

// restoreInStreams runs Kafka Streams on scenario (restore or global, with
// Bench.java's flags extra) until its stores have restored the
// cfg.restoreRecords records filled, in memory or (for the pebble backend) in
// RocksDB, timed by its restore listener, into r.
func restoreInStreams(ctx context.Context, cfg *config, prog *progress, brokers []string, scenario, app, in, out, backend string, r *row, extra ...string) error {
	n := int64(cfg.restoreRecords)
	if backend == backendPebble {
		extra = append(extra, "-persistent")
	}
	cfg.closed.settle(cfg.settleTimeout())
	s, err := startStreams(cfg.streams, scenario, brokers, app, in, out, params{linger: defaultLinger, partitions: 1}, false, extra...)
	if err != nil {
		return err
	}
	defer s.stop()
	prog.set(fmt.Sprintf("%s %s: kafka-streams", scenario, backend), s.processed)
	seconds, cpu, err := s.restored(ctx, n)
	if err != nil {
		return err
	}
	r.Seconds, r.CPUSeconds = seconds, cpu
	fill(r, n)
	r.Note = "timed by its restore listener, from the first restore's start; CPU of the JVM in that span"
	return s.stop()
}

// runApp runs a until stop, which returns Run's error.
func runApp(ctx context.Context, a *kafkaio.App) (stop func() error) {
	ctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx) }()
	return func() error {
		cancel()
		return <-errc
	}
}

// rawConsume reads the first n records of topic's partitions 0..parts-1
// with a plain franz-go consumer, timed from its creation to the last
// record, into r.
func rawConsume(ctx context.Context, brokers []string, topic string, parts int32, n int, prog *progress, what string, r *row) error {
	var got atomic.Int64
	prog.set(what, got.Load)
	cpu0, faults0 := usage()
	t0 := time.Now()
	offsets := map[int32]kgo.Offset{}
	for p := range parts {
		offsets[p] = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))
	if err != nil {
		return fmt.Errorf("bench: raw consumer: %w", err)
	}
	defer cl.Close()
	for got.Load() < int64(n) {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("bench: raw consume: %w", err)
		}
		got.Add(int64(fs.NumRecords()))
	}
	r.Seconds = time.Since(t0).Seconds()
	cpu1, faults1 := usage()
	r.CPUSeconds, r.PageFaults = cpu1-cpu0, faults1-faults0
	fill(r, int64(n))
	return nil
}

func fill(r *row, n int64) {
	r.Records = n
	if r.Seconds > 0 {
		r.RecordsPerSec = float64(n) / r.Seconds
	}
	r.CPUSecPerMRec = r.CPUSeconds / (float64(n) / 1e6)
}

// fillChangelog writes n count-store changelog records: distinct string
// keys, Int64 values.
func fillChangelog(ctx context.Context, brokers []string, topic string, n int, done *atomic.Int64) error {
	return produceN(ctx, brokers, topic, n, done, nil, func(buf []byte, i int) ([]byte, int, []byte) {
		start := len(buf)
		buf = appendKey(buf, i)
		klen := len(buf) - start
		buf = binary.BigEndian.AppendUint64(buf, uint64(i+1))
		return buf, klen, buf[len(buf)-8 : len(buf) : len(buf)]
	})
}
