package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// runLatency offers a steady load to impl and measures the end-to-end
// latency of every record on the output topic. impl floor runs no pipeline
// and measures on the input topic: the latency of the cluster and the
// clients alone, the floor of the others.
func runLatency(ctx context.Context, cfg *config, prog *progress, mode, impl string, batch int, linger time.Duration, logw io.Writer) (r row, err error) {
	if impl == implStreams {
		// Kafka Streams processes record by record whatever it polls:
		// max.poll.records=1 would only make it poll for every record (it
		// then keeps up with about 2k records/s here), so it keeps its
		// default, and runs once per linger.
		batch = 0
	}
	p := params{eos: mode == modeEOS, batch: batch, linger: linger, partitions: cfg.partitions, commit: cfg.commit}
	r = row{Scenario: scenarioLatency, Mode: mode, Impl: impl, Batch: batch, Linger: lingerLabel(linger), OfferedPerSec: cfg.rate,
		Variant: p.variant(), CommitMs: ms(p.commitInterval())}
	if impl == implFloor {
		r.Batch, r.Linger, r.Variant, r.CommitMs = 0, "", floorVariant, 0
	}
	label := fmt.Sprintf("%s %s %s %s", scenarioLatency, mode, impl, r.Variant)
	ctx, c, err := openCluster(ctx, cfg)
	if err != nil {
		return r, err
	}
	defer c.close()
	in, out := c.name("in"), c.name("out")
	if err := c.createTopics(ctx, cfg.partitions, in, out); err != nil {
		return r, err
	}
	prog.set(label+": starting", nil)
	var pl pipeline = floorPipeline{}
	if impl == implFloor {
		out = in
	} else if pl, err = startPipeline(ctx, cfg, c, impl, in, out, p, false, logw); err != nil {
		return r, err
	}
	defer pl.stop()

	// The measuring consumer reads the output from the start, so it can
	// start now; read-committed under exactly-once.
	copts := []kgo.Opt{kgo.SeedBrokers(c.brokers...), kgo.ConsumeTopics(out), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
	if p.eos {
		copts = append(copts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	consumer, err := kgo.NewClient(copts...)
	if err != nil {
		return r, fmt.Errorf("bench: latency consumer: %w", err)
	}
	defer consumer.Close()
	m := &latencyMeter{}
	cctx, ccancel := context.WithCancel(ctx)
	var cwg sync.WaitGroup
	cwg.Go(func() { m.consume(cctx, consumer) })
	defer func() { ccancel(); cwg.Wait() }()

	if err := waitReady(ctx, pl); err != nil {
		return r, err
	}

	producer, err := newProducer(c.brokers, kgo.ProducerLinger(0))
	if err != nil {
		return r, err
	}
	defer producer.Close()
	prog.set(label, m.received.Load)
	stopProfile, err := startProfile(cfg.cpuProfile, mode, fmt.Sprintf("latency-%s-batch%d", impl, batch))
	if err != nil {
		return r, err
	}
	defer stopProfile()
	var cpu0 float64
	var t0 time.Time
	// Kafka Streams' JVM: its CPU time is asked for at the start of the
	// measured window without holding the load back.
	sp, _ := pl.(*streamsPipeline)
	var childCPU0 float64
	var childErr error
	var childWG sync.WaitGroup
	load := cfg
	if impl == implStreams && !cfg.quick && cfg.warmup < streamsWarmup {
		// The JVM compiles the hot paths during the first seconds: with
		// the default 1 s warm-up, Kafka Streams' p99 was about 1 s, its
		// JIT's backlog, against 43-54 ms after 6 s (real broker).
		c := *cfg
		c.warmup = streamsWarmup
		load = &c
	}
	sent, err := offer(ctx, producer, in, load, func() {
		cpu0, t0 = cpuSeconds(), time.Now()
		if sp != nil {
			childWG.Go(func() { childCPU0, childErr = sp.cpu() })
		}
	})
	childWG.Wait()
	if err != nil {
		return r, err
	}
	if childErr != nil {
		return r, childErr
	}

	// Drain: wait for every measured record, within a bound.
	prog.set(label+": draining", m.received.Load)
	drain := time.NewTimer(10*time.Second + 2*p.commitInterval())
	defer drain.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
wait:
	for m.received.Load() < sent {
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-pl.finished():
			return r, stoppedEarly(pl)
		case <-drain.C:
			break wait
		case <-tick.C:
		}
	}
	cpu1 := cpuSeconds()
	if sp != nil {
		childCPU1, err := sp.cpu()
		if err != nil {
			return r, err
		}
		cpu1 += childCPU1 - childCPU0
	}
	ccancel()
	cwg.Wait()
	if err := pl.stop(); err != nil {
		return r, err
	}

	lat, tsLat, last, mismatched := m.results()
	r.Records = int64(len(lat))
	if r.Records == 0 {
		return r, errors.New("bench: no record reached the output")
	}
	if r.Records < sent {
		r.Note = fmt.Sprintf("incomplete: %d of %d records within the drain time", r.Records, sent)
	}
	if mismatched > 0 {
		r.Note = joinNote(r.Note, fmt.Sprintf("%d records lost their input timestamp", mismatched))
	}
	r.Seconds = last.Sub(t0).Seconds()
	r.RecordsPerSec = float64(r.Records) / r.Seconds
	r.CPUSeconds = cpu1 - cpu0
	r.CPUSecPerMRec = r.CPUSeconds / (float64(r.Records) / 1e6)
	r.P50Ms, r.P99Ms, r.MaxMs = percentile(lat, 0.50), percentile(lat, 0.99), percentile(lat, 1)
	r.P99TimestampMs = percentile(tsLat, 0.99)
	return r, nil
}

// streamsWarmup is the least warm-up of Kafka Streams' latency runs (except
// with -quick).
const streamsWarmup = 5 * time.Second

// offer produces cfg.rate records/s to topic, in bursts every millisecond,
// for cfg.warmup (flagged, not measured) then cfg.duration; measuring is
// called when the measured part begins. It returns how many measured records
// pass the filter.
func offer(ctx context.Context, cl *kgo.Client, topic string, cfg *config, measuring func()) (int64, error) {
	pool := valuePool(cfg.valueSize)
	var firstErr atomic.Pointer[error]
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			firstErr.CompareAndSwap(nil, &err)
		}
	}
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	start := time.Now()
	measured := false
	var i, kept int
	total := int(float64(cfg.rate) * (cfg.warmup + cfg.duration).Seconds())
	warmN := int(float64(cfg.rate) * cfg.warmup.Seconds())
	for i < total {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-t.C:
		}
		due := min(int(float64(cfg.rate)*time.Since(start).Seconds()), total)
		for ; i < due; i++ {
			warm := i < warmN
			if !warm && !measured {
				measured = true
				measuring()
			}
			key := appendKey(nil, i)
			v := make([]byte, cfg.valueSize)
			off := (i * 4099) % (len(pool) - cfg.valueSize)
			copy(v[9:], pool[off:])
			now := time.Now()
			stampValue(v, now, warm)
			if !warm && keep(key) {
				kept++
			}
			cl.Produce(ctx, &kgo.Record{Topic: topic, Key: key, Value: v, Timestamp: now}, promise)
		}
		if p := firstErr.Load(); p != nil {
			return 0, fmt.Errorf("bench: producing the latency load: %w", *p)
		}
	}
	return int64(kept), nil
}

// latencyMeter collects the latency of the measured records on the output.
type latencyMeter struct {
	received   atomic.Int64 // measured records
	mu         sync.Mutex
	lat, tsLat []time.Duration
	last       time.Time
	mismatched int
}

func (m *latencyMeter) consume(ctx context.Context, cl *kgo.Client) {
	for {
		fs := cl.PollFetches(ctx)
		now := time.Now()
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		m.mu.Lock()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			sent, warm, ok := readStamp(r.Value)
			if !ok || warm || !keep(r.Key) {
				return
			}
			m.lat = append(m.lat, now.Sub(time.Unix(0, sent)))
			m.tsLat = append(m.tsLat, time.Duration(now.UnixMilli()-r.Timestamp.UnixMilli())*time.Millisecond)
			if r.Timestamp.UnixMilli() != sent/int64(time.Millisecond) {
				m.mismatched++
			}
			n++
		})
		if n > 0 {
			m.last = now
		}
		m.mu.Unlock()
		m.received.Add(int64(n))
	}
}

func (m *latencyMeter) results() (lat, tsLat []time.Duration, last time.Time, mismatched int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lat, m.tsLat, m.last, m.mismatched
}

// percentile returns the q-quantile of ds in milliseconds (q = 1: the max),
// sorting ds.
func percentile(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := min(int(q*float64(len(ds))), len(ds)-1)
	if q < 1 && i > 0 && float64(i) == q*float64(len(ds)) {
		i-- // nearest rank: the smallest value with at least q of the values at or below it
	}
	return ms(ds[i])
}

// floorPipeline stands for no pipeline at all.
type floorPipeline struct{}

func (floorPipeline) processed() int64          { return 0 }
func (floorPipeline) ready() bool               { return true }
func (floorPipeline) finished() <-chan struct{} { return nil }
func (floorPipeline) stop() error               { return nil }
func (floorPipeline) group() string             { return implFloor }

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
