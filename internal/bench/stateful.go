package main

import (
	"context"
	"io"
	"os"
	"slices"
	"sync/atomic"

	kstream "github.com/kstreamgo/kstream"
)

// statefulScenario is a scenario with state stores (wordcount, windowed,
// join). kstream and Kafka Streams run it, each with in-memory stores and
// changelogs: there is no hand-written loop for a stateful scenario.
type statefulScenario struct {
	name string
	// inputs are the input topics (suffixes of the run's names, created
	// with -partitions partitions as the output): Kafka Streams reads the
	// last one with -in, the others with the flags of streamsArgs.
	inputs []string
	output string
	// internal are the topics the application reads besides its inputs,
	// after "<group>-" (repartition topics): under exactly-once the group
	// must have consumed them too.
	internal []string
	// subTopologies is how many tasks Kafka Streams runs per input
	// partition.
	subTopologies int32
	// fill pre-fills the input topics (in, named as inputs), counting the
	// records in filled, and returns the input records (what records/s
	// counts), the output records to wait for, and the row's note.
	fill func(ctx context.Context, cfg *config, brokers, in []string, filled *atomic.Int64) (input, expected int64, note string, err error)
	// topology is kstream's topology.
	topology func(in []string, out string) (*kstream.Topology, error)
	// streamsArgs are Bench.java's flags for the inputs before the last.
	streamsArgs func(in []string) []string
}

// statefulScenarios are the stateful scenarios, in the order of the docs.
var statefulScenarios = []*statefulScenario{wordCountScenario, windowedScenario, joinScenario}

// findStateful returns the stateful scenario named name, or nil.
func findStateful(name string) *statefulScenario {
	i := slices.IndexFunc(statefulScenarios, func(s *statefulScenario) bool { return s.name == name })
	if i < 0 {
		return nil
	}
	return statefulScenarios[i]
}

// runStateful pre-fills the input topics of sc and measures how long impl
// (kstream or Kafka Streams) takes to produce the whole expected output.
// Under exactly-once the output must also be committed and the inputs and
// internal topics consumed.
func runStateful(ctx context.Context, cfg *config, prog *progress, sc *statefulScenario, mode, impl string, logw io.Writer) (r row, err error) {
	ctx, c, p, r, err := throughputRun(ctx, cfg, sc.name, mode, impl)
	if err != nil {
		return r, err
	}
	defer c.close()
	in := make([]string, len(sc.inputs))
	for i, t := range sc.inputs {
		in[i] = c.name(t)
	}
	out := c.name(sc.output)
	if err := c.createTopics(ctx, cfg.partitions, append(slices.Clone(in), out)...); err != nil {
		return r, err
	}
	group := c.name(impl)
	c.groups = append(c.groups, group)
	reads := slices.Clone(in)
	for _, t := range sc.internal {
		reads = append(reads, group+"-"+t)
	}
	var streams *streamsPipeline
	if impl == implStreams {
		prog.set(r.label()+": starting the JVM", nil)
		if streams, err = startStreamsPaused(ctx, cfg, sc, c.brokers, group, in, out, p); err != nil {
			return r, err
		}
		defer streams.stop()
	}
	var filled atomic.Int64
	prog.set(r.label()+": prefill", filled.Load)
	input, expected, note, err := sc.fill(ctx, cfg, c.brokers, in, &filled)
	if err != nil {
		return r, err
	}
	if cfg.stateDB && impl == implKstream {
		dir, err := os.MkdirTemp("", "kstream-bench-state-")
		if err != nil {
			return r, err
		}
		defer os.RemoveAll(dir)
		p.stateDir = dir
		r.Variant = p.variant()
	}
	start := func() (pipeline, error) {
		topo, err := sc.topology(in, out)
		if err != nil {
			return nil, err
		}
		return startApp(ctx, topo, c.brokers, group, p, logw)
	}
	r.Note = note
	err = measure(ctx, cfg, prog, c, &r, sc.name+"-"+impl, streams, start, reads, out, input, expected)
	return r, err
}

// startStreamsPaused starts Kafka Streams on sc before the clock, on the
// empty input topics: it restores its (empty) stores only when not paused, so
// it runs until it holds all its tasks, then pauses until measure resumes it.
func startStreamsPaused(ctx context.Context, cfg *config, sc *statefulScenario, brokers []string, group string, in []string, out string, p params) (*streamsPipeline, error) {
	var extra []string
	if sc.streamsArgs != nil {
		extra = sc.streamsArgs(in)
	}
	s, err := startStreams(cfg.streams, sc.name, brokers, group, in[len(in)-1], out, p, false, extra...)
	if err != nil {
		return nil, err
	}
	if err := waitReady(ctx, s); err != nil {
		s.stop()
		return nil, err
	}
	if err := s.pause(); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}
