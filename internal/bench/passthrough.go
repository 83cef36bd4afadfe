package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// startPipeline starts impl on the cluster, reading in and writing out.
// Kafka Streams starts paused when paused is set: it joins the group and
// takes its tasks, and processes once resumed.
func startPipeline(ctx context.Context, cfg *config, c *cluster, impl, in, out string, p params, paused bool, logw io.Writer) (pipeline, error) {
	group := c.name(impl)
	c.groups = append(c.groups, group)
	switch impl {
	case implKstream:
		return startKstream(ctx, c.brokers, group, in, out, p, logw)
	case implStreams:
		return startStreams(cfg.streams, scenarioPassthrough, c.brokers, group, in, out, p, paused)
	}
	return startHand(ctx, c.brokers, group, in, out, p)
}

// runPassthrough pre-fills a fresh input topic and measures how long impl
// takes to turn it into the expected output.
func runPassthrough(ctx context.Context, cfg *config, prog *progress, mode, impl string, logw io.Writer) (r row, err error) {
	ctx, c, p, r, err := throughputRun(ctx, cfg, scenarioPassthrough, mode, impl)
	if err != nil {
		return r, err
	}
	defer c.close()
	in, out := c.name("in"), c.name("out")
	if err := c.createTopics(ctx, cfg.partitions, in, out); err != nil {
		return r, err
	}
	var filled atomic.Int64
	prog.set(r.label()+": prefill", filled.Load)
	expected, err := prefill(ctx, c.brokers, in, cfg.records, cfg.valueSize, &filled)
	if err != nil {
		return r, err
	}
	// Kafka Streams starts before the clock, paused: the JVM's start and
	// the group join are not measured (kstream's and the hand loop's are,
	// a few hundred ms). Its JIT's warm-up is.
	var streams *streamsPipeline
	if impl == implStreams {
		prog.set(r.label()+": starting the JVM", nil)
		pl, err := startPipeline(ctx, cfg, c, impl, in, out, p, true, logw)
		if err != nil {
			return r, err
		}
		streams = pl.(*streamsPipeline)
		defer streams.stop()
		if err := waitReady(ctx, streams); err != nil {
			return r, err
		}
	}
	start := func() (pipeline, error) { return startPipeline(ctx, cfg, c, impl, in, out, p, false, logw) }
	err = measure(ctx, cfg, prog, c, &r, impl, streams, start, []string{in}, out, int64(cfg.records), expected)
	return r, err
}

// throughputRun begins a run of a scenario measured in records/s (the
// passthrough, the stateful scenarios): its settings (batches of 10,000
// records, franz-go's default linger), its row, its cluster and context (see
// openCluster).
func throughputRun(ctx context.Context, cfg *config, scenario, mode, impl string) (context.Context, *cluster, params, row, error) {
	p := params{eos: mode == modeEOS, batch: 10000, linger: defaultLinger, partitions: cfg.partitions, commit: cfg.commit}
	r := row{Scenario: scenario, Mode: mode, Impl: impl, Batch: p.batch, Linger: lingerLabel(p.linger),
		Variant: p.variant(), CommitMs: ms(p.commitInterval())}
	ctx, c, err := openCluster(ctx, cfg)
	return ctx, c, p, r, err
}

// label names r's run in the progress line.
func (r *row) label() string { return fmt.Sprintf("%s %s %s", r.Scenario, r.Mode, r.Impl) }

// measure is the measured part of r's run: from the start of the
// implementation (start, or resuming streams: Kafka Streams, started and
// paused before) until waitOutput sees the expected output records in out,
// having read input records of reads. It sets r's measures: records/s,
// startup, CPU of this process and of Kafka Streams' JVM, and notes an
// at-least-once output of another size than expected (duplicates).
// -cpuprofile profiles it to a file suffixed -<mode>-<profile>.
func measure(ctx context.Context, cfg *config, prog *progress, c *cluster, r *row, profile string,
	streams *streamsPipeline, start func() (pipeline, error), reads []string, out string, input, expected int64) error {
	eos := r.Mode == modeEOS
	cfg.closed.settle(cfg.settleTimeout())
	stopProfile, err := startProfile(cfg.cpuProfile, r.Mode, profile)
	if err != nil {
		return err
	}
	var pl pipeline
	var childCPU0, childCPU1 float64 // Kafka Streams' JVM
	cpu0, faults0 := usage()
	t0 := time.Now()
	if streams != nil {
		pl = streams
		childCPU0, err = streams.resume()
	} else {
		pl, err = start()
	}
	if err != nil {
		stopProfile()
		return err
	}
	prog.set(r.label(), pl.processed)
	first, done, werr := waitOutput(ctx, c, pl, eos, reads, out, input, expected)
	cpu1, faults1 := usage()
	if streams != nil && werr == nil {
		childCPU1, werr = streams.cpu()
	}
	stopProfile()
	prog.set(r.label()+": stopping", nil)
	serr := pl.stop()
	if werr != nil {
		return werr
	}
	if serr != nil {
		return serr
	}
	r.Records = input
	r.Seconds = done.Sub(t0).Seconds()
	r.RecordsPerSec = float64(r.Records) / r.Seconds
	r.StartupMs = ms(first.Sub(t0))
	if d := done.Sub(first).Seconds(); d > 0 {
		r.SteadyRecordsPerSec = float64(r.Records) / d
	}
	r.CPUSeconds = cpu1 - cpu0 + childCPU1 - childCPU0
	r.CPUSecPerMRec = r.CPUSeconds / (float64(r.Records) / 1e6)
	r.PageFaults = faults1 - faults0
	if !eos {
		// No transaction markers at-least-once: the end offsets count the
		// records, and more than expected means duplicates.
		if n, err := c.endOffsets(ctx, out); err == nil && n != expected {
			r.Note = joinNote(r.Note, fmt.Sprintf("output has %d records, expected %d", n, expected))
		}
	}
	return nil
}

// waitOutput waits until the whole expected output is visible: at-least-once
// when the output end offsets reach expected, exactly-once when the last
// stable offsets reach it and the group has committed the whole of the
// topics it reads (the stable offsets also count transaction markers, so
// they alone would stop early). It returns when the first input record was
// processed and when the output was complete. Offsets are only listed once
// the pipeline has processed input records, every 2 ms.
func waitOutput(ctx context.Context, c *cluster, pl pipeline, eos bool, reads []string, out string, input, expected int64) (first, done time.Time, err error) {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return first, done, fmt.Errorf("bench: waiting for the output (processed %d of %d): %w", pl.processed(), input, ctx.Err())
		case <-pl.finished():
			return first, done, stoppedEarly(pl)
		case now := <-t.C:
			n := pl.processed()
			if n > 0 && first.IsZero() {
				first = now
			}
			if n < input {
				continue
			}
			var got int64
			if eos {
				got, err = c.stableOffsets(ctx, out)
			} else {
				got, err = c.endOffsets(ctx, out)
			}
			if err != nil || got < expected {
				continue
			}
			if eos && !c.consumed(ctx, pl.group(), reads) {
				continue
			}
			return first, time.Now(), nil
		}
	}
}

// startProfile starts a CPU profile to path-<mode>-<impl>.prof (path "":
// none) and returns the function that stops it, which may be called more
// than once.
func startProfile(path, mode, impl string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	name := fmt.Sprintf("%s-%s-%s.prof", strings.TrimSuffix(path, ".prof"), mode, impl)
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return nil, fmt.Errorf("bench: cpu profile: %w", err)
	}
	f, err := os.Create(name)
	if err != nil {
		return nil, fmt.Errorf("bench: cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("bench: cpu profile: %w", err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			f.Close()
		})
	}, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func lingerLabel(d time.Duration) string {
	if d < 0 {
		return "default(10ms)"
	}
	return d.String()
}
