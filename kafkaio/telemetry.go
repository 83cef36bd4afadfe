package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/internal/runtime"
)

// instrumentation is the name of the tracer and meter of kafkaio.
const instrumentation = "github.com/kstreamgo/kstream/kafkaio"

// maxLinks bounds the links of a batch span to the trace contexts of its
// input records, found in its first maxLinkScan records.
const (
	maxLinks    = 32
	maxLinkScan = 1024
)

// telemetry is an app's OpenTelemetry instruments. Spans and measurements
// are per task batch and per commit, never per record: with no SDK
// installed they cost a few hundred nanoseconds per batch.
type telemetry struct {
	tracer trace.Tracer
	prop   propagation.TraceContext

	processed, produced, dropped, skipped metric.Int64Counter
	nodeRecords, enforced                 metric.Int64Counter
	processTime, commitTime, e2e          metric.Float64Histogram
	reg                                   metric.Registration
}

func newTelemetry(a *App) (*telemetry, error) {
	tp, mp := a.cfg.tracerProvider, a.cfg.meterProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(instrumentation)
	tel := &telemetry{tracer: tp.Tracer(instrumentation)}
	var errs []error
	counter := func(name, desc, unit string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithDescription(desc), metric.WithUnit(unit))
		errs = append(errs, err)
		return c
	}
	histogram := func(name, desc, unit string) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithDescription(desc), metric.WithUnit(unit))
		errs = append(errs, err)
		return h
	}
	tel.processed = counter("kstream.records.processed", "Input records processed, by task and source topic.", "{record}")
	tel.produced = counter("kstream.records.produced", "Records produced to output, repartition and changelog topics, by task and topic.", "{record}")
	tel.dropped = counter("kstream.records.dropped", "Records dropped by design (late records, null keys, unusable tombstones), by node.", "{record}")
	tel.nodeRecords = counter("kstream.node.records", "Records each node received, by task and node (with kafkaio.NodeMetrics only).", "{record}")
	tel.enforced = counter("kstream.task.enforced_processing", "Task batches processed without waiting any more for an input that had no record buffered (Kafka Streams' enforced-processing-total), by task.", "{batch}")
	tel.skipped = counter("kstream.records.skipped", "Records skipped or dead-lettered by an error policy, by task.", "{record}")
	tel.processTime = histogram("kstream.process.duration", "Time to process one task's batch of a poll.", "s")
	tel.commitTime = histogram("kstream.commit.duration", "Time of a commit: flush and offset commit, or transaction end.", "s")
	tel.e2e = histogram("kstream.record.e2e_latency", "End-to-end latency of the oldest record of each task batch: processing end minus record timestamp.", "ms")

	lag, err := m.Int64ObservableGauge("kstream.consumer.lag", metric.WithDescription("Records of a task's input partitions after its last processed offset, as of its last fetch."), metric.WithUnit("{record}"))
	errs = append(errs, err)
	remaining, err := m.Int64ObservableGauge("kstream.restore.remaining", metric.WithDescription("Changelog records a store partition still has to restore."), metric.WithUnit("{record}"))
	errs = append(errs, err)
	restored, err := m.Int64ObservableCounter("kstream.records.restored", metric.WithDescription("Changelog records applied to stores by restores."), metric.WithUnit("{record}"))
	errs = append(errs, err)
	gets, err := m.Int64ObservableCounter("kstream.state.cache.gets", metric.WithDescription("Lookups of the state read cache."), metric.WithUnit("{get}"))
	errs = append(errs, err)
	misses, err := m.Int64ObservableCounter("kstream.state.cache.misses", metric.WithDescription("Lookups of the state read cache that missed."), metric.WithUnit("{get}"))
	errs = append(errs, err)
	ratio, err := m.Float64ObservableGauge("kstream.state.cache.hit_ratio", metric.WithDescription("Share of state read cache lookups that hit, since the start."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("kafkaio: creating metrics: %w", err)
	}
	tel.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		a.mu.Lock()
		for _, t := range a.tasks {
			var n int64
			for _, l := range t.lag {
				n += l
			}
			o.ObserveInt64(lag, n, t.attrs)
		}
		a.mu.Unlock()
		// One observation per task and store: the global tables'
		// bootstrap has an entry per partition.
		type taskStore struct{ task, store string }
		left := map[taskStore]int64{}
		for _, p := range a.RestoreProgress() {
			if !p.Done {
				left[taskStore{p.Task, p.Store}] += p.Remaining
			}
		}
		for k, n := range left {
			o.ObserveInt64(remaining, n, metric.WithAttributes(attribute.String("kstream.task", k.task), attribute.String("kstream.store", k.store)))
		}
		o.ObserveInt64(restored, a.restored.Load())
		if a.db != nil {
			s := a.db.Stats()
			o.ObserveInt64(gets, int64(s.CacheGets))
			o.ObserveInt64(misses, int64(s.CacheMisses))
			if s.CacheGets > 0 {
				o.ObserveFloat64(ratio, 1-float64(s.CacheMisses)/float64(s.CacheGets))
			}
		}
		return nil
	}, lag, remaining, restored, gets, misses, ratio)
	if err != nil {
		return nil, fmt.Errorf("kafkaio: registering metric callbacks: %w", err)
	}
	return tel, nil
}

// batchSpan starts the span of a task's batch: linked to the trace contexts
// found in its first records' headers (W3C traceparent), when it records.
func (tel *telemetry) batchSpan(t *task) trace.Span {
	_, span := tel.tracer.Start(context.Background(), "kstream.process", trace.WithSpanKind(trace.SpanKindConsumer))
	if !span.IsRecording() {
		return span
	}
	span.SetAttributes(attribute.String("kstream.task", t.rt.ID.String()), attribute.Int("kstream.records", len(t.raw)))
	links := 0
	for i := range min(len(t.raw), maxLinkScan) {
		if links == maxLinks {
			break
		}
		if len(t.raw[i].Headers) == 0 {
			continue
		}
		sc := trace.SpanContextFromContext(tel.prop.Extract(context.Background(), headerCarrier{h: &t.raw[i].Headers}))
		if sc.IsValid() {
			span.AddLink(trace.Link{SpanContext: sc})
			links++
		}
	}
	return span
}

// traceparent returns the W3C traceparent header value of a recording span,
// for the records its batch produces, or nil.
func (tel *telemetry) traceparent(span trace.Span) []byte {
	if !span.IsRecording() {
		return nil
	}
	var h []graph.Header
	tel.prop.Inject(trace.ContextWithSpan(context.Background(), span), headerCarrier{h: &h})
	for _, x := range h {
		if x.Key == traceparentHeader {
			return x.Value
		}
	}
	return nil
}

// topicAttrs returns the metric attributes of a task and one of its topics,
// made once per pair.
func (t *task) topicAttrs(topic string) metric.MeasurementOption {
	o, ok := t.byTopic[topic]
	if !ok {
		if t.byTopic == nil {
			t.byTopic = map[string]metric.MeasurementOption{}
		}
		o = metric.WithAttributeSet(attribute.NewSet(attribute.String("kstream.task", t.rt.ID.String()),
			attribute.String("messaging.destination.name", topic)))
		t.byTopic[topic] = o
	}
	return o
}

// batchDone records a task batch's measurements: the records of its
// batches processed (up to the first that failed) in took, the oldest with
// timestamp oldest (ms).
func (tel *telemetry) batchDone(t *task, batches []batch, took time.Duration, oldest int64, now time.Time) {
	ctx := context.Background()
	for i := range batches {
		if b := &batches[i]; b.next > b.reported {
			tel.processed.Add(ctx, int64(b.next-b.reported), t.topicAttrs(b.topic))
			b.reported = b.next
		}
	}
	tel.processTime.Record(ctx, took.Seconds(), t.attrs)
	tel.e2e.Record(ctx, float64(now.UnixMilli()-oldest), t.attrs)
	tel.failures(ctx, t.rt, &t.seen, t.attrs)
	tel.nodesDone(ctx, t)
}

// failuresSeen is the records of a task already reported skipped and
// dropped (by node).
type failuresSeen struct {
	skipped int64
	dropped map[string]int64
}

// failures reports the records task rt skipped (error policies) and dropped
// (late records, null keys) since the last report (seen).
func (tel *telemetry) failures(ctx context.Context, rt *runtime.Task, seen *failuresSeen, attrs metric.AddOption) {
	if s := rt.Skipped.Load(); s != seen.skipped {
		tel.skipped.Add(ctx, s-seen.skipped, attrs)
		seen.skipped = s
	}
	for node, d := range rt.Context().Dropped {
		if was := seen.dropped[node]; d != was {
			if seen.dropped == nil {
				seen.dropped = map[string]int64{}
			}
			tel.dropped.Add(ctx, d-was, metric.WithAttributes(attribute.String("kstream.node", node)))
			seen.dropped[node] = d
		}
	}
}

// nodesDone reports the records each node of a task received since the
// last report (NodeMetrics).
func (tel *telemetry) nodesDone(ctx context.Context, t *task) {
	counts := t.rt.NodeCounts()
	if counts == nil {
		return
	}
	if t.nodeSeen == nil {
		t.nodeSeen = make([]int64, len(counts))
		t.nodeAttrs = make([]metric.MeasurementOption, len(counts))
	}
	for id, n := range counts {
		if seen := t.nodeSeen[id]; n != seen {
			if t.nodeAttrs[id] == nil {
				t.nodeAttrs[id] = metric.WithAttributeSet(attribute.NewSet(attribute.String("kstream.task", t.rt.ID.String()),
					attribute.String("kstream.node", t.rt.Context().Names[id])))
			}
			tel.nodeRecords.Add(ctx, n-seen, t.nodeAttrs[id])
			t.nodeSeen[id] = n
		}
	}
}

const traceparentHeader = "traceparent"

// headerCarrier is a propagation.TextMapCarrier over record headers.
type headerCarrier struct{ h *[]graph.Header }

func (c headerCarrier) Get(key string) string {
	for _, x := range *c.h {
		if x.Key == key {
			return string(x.Value)
		}
	}
	return ""
}

func (c headerCarrier) Set(key, value string) {
	for i, x := range *c.h {
		if x.Key == key {
			(*c.h)[i].Value = []byte(value)
			return
		}
	}
	*c.h = append(*c.h, graph.Header{Key: key, Value: []byte(value)})
}

func (c headerCarrier) Keys() []string {
	keys := make([]string, len(*c.h))
	for i, x := range *c.h {
		keys[i] = x.Key
	}
	return keys
}
