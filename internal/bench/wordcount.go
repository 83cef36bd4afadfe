package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/serde"
)

// The word-count scenario's input: lines of wordsPerLine words drawn from a
// vocabulary of vocabulary words.
const (
	scenarioWordCount = "wordcount"
	wordsPerLine      = 8
	vocabulary        = 10_000
	// wordCountStore names the count store, hence its changelog and the
	// repartition topic "<appID>-counts-repartition", in kstream and in
	// Kafka Streams alike.
	wordCountStore = "counts"
)

// appendLine appends line i: wordsPerLine words "w<n>", spread over the
// vocabulary by a multiplicative hash so that the keys of every partition
// repartition everywhere.
func appendLine(dst []byte, i int) []byte {
	for j := range wordsPerLine {
		if j > 0 {
			dst = append(dst, ' ')
		}
		n := uint64(i*wordsPerLine+j) * 0x9E3779B97F4A7C15 >> 40 % vocabulary
		dst = append(dst, 'w')
		dst = strconv.AppendUint(dst, n, 10)
	}
	return dst
}

// wordCountTopology is lines -> words (FlatMap, keyed by word) ->
// GroupByKey -> Count -> ToStream -> To, with every count update forwarded
// (no record cache), as Kafka Streams' program runs it
// (statestore.cache.max.bytes=0).
func wordCountTopology(in, out string) (*kstream.Topology, error) {
	b := kstream.NewBuilder()
	lines := kstream.Source(b, in, serde.Bytes, serde.String)
	words := kstream.FlatMap(lines, func(_ []byte, line string, emit func(string, string)) {
		for w := range strings.FieldsSeq(line) {
			emit(w, w)
		}
	})
	words.GroupByKey(kstream.Named(wordCountStore)).Count(kstream.Named(wordCountStore)).ToStream().To(out, serde.String, serde.Int64)
	return b.Build()
}

// runWordCount pre-fills an input topic with cfg.wordCountLines lines and
// measures how long impl (kstream or Kafka Streams, each with in-memory
// stores and changelogs) takes to produce every count update: one output
// record per word. Under exactly-once the output must also be committed and
// the input and repartition topics consumed.
func runWordCount(ctx context.Context, cfg *config, prog *progress, mode, impl string, logw io.Writer) (r row, err error) {
	p := params{eos: mode == modeEOS, batch: 10000, linger: defaultLinger, partitions: cfg.partitions, commit: cfg.commit}
	r = row{Scenario: scenarioWordCount, Mode: mode, Impl: impl, Batch: p.batch, Linger: lingerLabel(p.linger),
		Variant: p.variant(), CommitMs: ms(p.commitInterval())}
	label := fmt.Sprintf("%s %s %s", scenarioWordCount, mode, impl)
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()

	c, err := openCluster(ctx, cfg)
	if err != nil {
		return r, err
	}
	defer c.close()
	in, out := c.name("lines"), c.name("word-counts")
	if err := c.createTopics(ctx, cfg.partitions, in, out); err != nil {
		return r, err
	}
	// Kafka Streams starts before the clock, on the empty input: it
	// restores its (empty) stores only when not paused, so it pauses once
	// it runs all its tasks, and resumes with the clock.
	group := c.name(impl)
	c.groups = append(c.groups, group)
	var streams *streamsPipeline
	if impl == implStreams {
		prog.set(label+": starting the JVM", nil)
		if streams, err = startStreams(cfg.streams, scenarioWordCount, c.brokers, group, in, out, p, false); err != nil {
			return r, err
		}
		defer streams.stop()
		if err := waitReady(ctx, streams); err != nil {
			return r, err
		}
		if err := streams.pause(); err != nil {
			return r, err
		}
	}
	var filled atomic.Int64
	prog.set(label+": prefill", filled.Load)
	n := cfg.wordCountLines
	if err := produceN(ctx, c.brokers, in, n, &filled, func(buf []byte, i int) ([]byte, int, []byte) {
		start := len(buf)
		buf = appendKey(buf, i)
		klen := len(buf) - start
		buf = appendLine(buf, i)
		return buf, klen, buf[start+klen:]
	}); err != nil {
		return r, err
	}
	expected := int64(n * wordsPerLine)

	runtime.GC()

	stopProfile, err := startProfile(cfg.cpuProfile, mode, "wordcount-"+impl)
	if err != nil {
		return r, err
	}
	defer stopProfile()
	var pl pipeline
	var childCPU0, childCPU1 float64
	cpu0, t0 := cpuSeconds(), time.Now()
	if streams != nil {
		pl = streams
		childCPU0, err = streams.resume()
	} else {
		pl, err = startWordCount(ctx, c.brokers, group, in, out, p, logw)
	}
	if err != nil {
		return r, err
	}
	defer pl.stop()
	prog.set(label, pl.processed)
	first, done, werr := waitOutput(ctx, c, pl, p.eos, []string{in, group + "-" + wordCountStore + "-repartition"}, out, int64(n), expected)
	cpu1 := cpuSeconds()
	if streams != nil && werr == nil {
		childCPU1, werr = streams.cpu()
	}
	prog.set(label+": stopping", nil)
	serr := pl.stop()
	if werr != nil {
		return r, werr
	}
	if serr != nil {
		return r, serr
	}
	r.Records = int64(n)
	r.Seconds = done.Sub(t0).Seconds()
	r.RecordsPerSec = float64(r.Records) / r.Seconds
	r.StartupMs = ms(first.Sub(t0))
	if d := done.Sub(first).Seconds(); d > 0 {
		r.SteadyRecordsPerSec = float64(r.Records) / d
	}
	r.CPUSeconds = cpu1 - cpu0 + childCPU1 - childCPU0
	r.CPUSecPerMRec = r.CPUSeconds / (float64(r.Records) / 1e6)
	r.Note = fmt.Sprintf("%d lines, %d words", n, expected)
	return r, nil
}

// startWordCount runs the word count on kafkaio with in-memory stores.
func startWordCount(ctx context.Context, brokers []string, group, in, out string, p params, logw io.Writer) (*kstreamPipeline, error) {
	topo, err := wordCountTopology(in, out)
	if err != nil {
		return nil, err
	}
	return startApp(ctx, topo, brokers, group, p, logw)
}
