package kafkaio_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/kafkaio"
	"github.com/kstreamgo/kstream/serde"
)

// TestTelemetry runs a pipeline with an OpenTelemetry SDK and checks the
// spans (one per task batch, linked to the input records' trace contexts,
// whose context the output records carry; commits), and the metrics
// (records processed and produced, durations, end-to-end latency, lag).
func TestTelemetry(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c cluster) {
		in, out, app := unique("in"), unique("out"), unique("telemetry")
		mustCreate(t, c, 2, in, out)
		const n = 200
		const inputTrace = "0af7651916cd43dd8448eb211c80319c"
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...))
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			r := &kgo.Record{Topic: in, Key: []byte(fmt.Sprint(i)), Value: []byte("v")}
			if i%2 == 0 {
				r.Headers = []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-" + inputTrace + "-b7ad6b7169203331-01")},
					{Key: "other", Value: []byte("kept")}}
			}
			cl.Produce(context.Background(), r, nil)
		}
		if err := cl.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		cl.Close()

		spans := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		b := kstream.NewBuilder()
		kstream.MapValues(kstream.Source(b, in, serde.String, serde.String), strings.ToUpper).To(out, serde.String, serde.String)
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		a, err := kafkaio.NewApp(topo, appOpts(c, app, false, kafkaio.TracerProvider(tp), kafkaio.MeterProvider(mp))...)
		if err != nil {
			t.Fatal(err)
		}
		stop := runApp(t, a)
		waitCaughtUp(t, a, time.Minute)
		recs := consumeAll(t, c, out, false)
		if len(recs) != n {
			t.Fatalf("%d output records, want %d", len(recs), n)
		}

		// Metrics, while the app runs (the lag gauge is per running task).
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		got := map[string]metricdata.Aggregation{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				got[m.Name] = m.Data
			}
		}
		sum := func(name string) int64 {
			var s int64
			switch d := got[name].(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					s += p.Value
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					s += p.Value
				}
			default:
				t.Errorf("metric %s: %T, want an int64 sum or gauge", name, got[name])
			}
			return s
		}
		count := func(name string) uint64 {
			d, ok := got[name].(metricdata.Histogram[float64])
			if !ok {
				t.Errorf("metric %s: %T, want a float64 histogram", name, got[name])
				return 0
			}
			var c uint64
			for _, p := range d.DataPoints {
				c += p.Count
			}
			return c
		}
		if s := sum("kstream.records.processed"); s != n {
			t.Errorf("kstream.records.processed = %d, want %d", s, n)
		}
		for _, name := range []string{"kstream.records.processed", "kstream.records.produced"} {
			want := map[string]string{"kstream.records.processed": in, "kstream.records.produced": out}[name]
			for _, p := range got[name].(metricdata.Sum[int64]).DataPoints {
				if v, ok := p.Attributes.Value("messaging.destination.name"); !ok || v.AsString() != want {
					t.Errorf("%s data point with topic %v, want %s", name, v.AsString(), want)
				}
			}
		}
		if s := sum("kstream.records.produced"); s != n {
			t.Errorf("kstream.records.produced = %d, want %d", s, n)
		}
		if d, ok := got["kstream.node.records"].(metricdata.Sum[int64]); ok && len(d.DataPoints) > 0 {
			t.Errorf("kstream.node.records has %d data points without kafkaio.NodeMetrics", len(d.DataPoints))
		}
		if st := a.Stats(); st.EnforcedProcessing != 0 || st.PausedPartitions != 0 {
			t.Errorf("a task reading one topic: %d enforced processings, %d paused partitions; want none", st.EnforcedProcessing, st.PausedPartitions)
		}
		if s := sum("kstream.consumer.lag"); s != 0 {
			t.Errorf("kstream.consumer.lag = %d, want 0 once caught up", s)
		}
		for _, h := range []string{"kstream.process.duration", "kstream.record.e2e_latency", "kstream.commit.duration"} {
			if count(h) == 0 {
				t.Errorf("histogram %s recorded nothing", h)
			}
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}

		// Spans: batches linked to the input trace; outputs carry a batch's
		// context, not the input's, and keep their other headers.
		batches := map[string]bool{}
		linked, commits := 0, 0
		for _, s := range spans.Ended() {
			switch s.Name() {
			case "kstream.process":
				batches[s.SpanContext().TraceID().String()] = true
				for _, l := range s.Links() {
					if l.SpanContext.TraceID().String() == inputTrace {
						linked++
					}
				}
			case "kstream.commit":
				commits++
			}
		}
		if len(batches) == 0 || linked == 0 || commits == 0 {
			t.Fatalf("%d batch spans, %d links to the input trace, %d commit spans: want some of each", len(batches), linked, commits)
		}
		for _, r := range recs {
			var tp, other string
			for _, h := range r.Headers {
				switch h.Key {
				case "traceparent":
					tp = string(h.Value)
				case "other":
					other = string(h.Value)
				}
			}
			parts := strings.Split(tp, "-")
			if len(parts) != 4 || !batches[parts[1]] {
				t.Fatalf("output %s: traceparent %q is not the context of a batch span", r.Key, tp)
			}
			var i int
			fmt.Sscan(string(r.Key), &i)
			if want := map[bool]string{true: "kept"}[i%2 == 0]; other != want {
				t.Errorf("output %s: header other = %q, want %q", r.Key, other, want)
			}
		}
	})
}

// TestNodeMetrics counts the records each node receives with
// kafkaio.NodeMetrics, per task and node.
func TestNodeMetrics(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c cluster) {
		in, out, app := unique("in"), unique("out"), unique("node-metrics")
		const parts, n = 2, 100
		mustCreate(t, c, parts, in, out)
		recs := make([]rec, n)
		for i := range recs {
			recs[i] = rec{key: []byte(fmt.Sprint(i)), value: []byte("v")}
		}
		produce(t, c, in, recs)

		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		b := kstream.NewBuilder()
		even := kstream.Source(b, in, serde.String, serde.String, kstream.Named("src")).
			Filter(func(k, _ string) bool { return (k[len(k)-1]-'0')%2 == 0 }, kstream.Named("even"))
		kstream.MapValues(even, strings.ToUpper, kstream.Named("upper")).To(out, serde.String, serde.String, kstream.Named("sink"))
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		runToEnd(t, topo, appOpts(c, app, false, kafkaio.MeterProvider(mp), kafkaio.NodeMetrics())...)
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		tasks := map[string]bool{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name != "kstream.node.records" {
					continue
				}
				for _, p := range m.Data.(metricdata.Sum[int64]).DataPoints {
					node, _ := p.Attributes.Value("kstream.node")
					task, _ := p.Attributes.Value("kstream.task")
					got[node.AsString()] += p.Value
					tasks[task.AsString()] = true
				}
			}
		}
		want := map[string]int64{"src": n, "even": n, "upper": n / 2, "sink": n / 2}
		if len(got) != len(want) {
			t.Errorf("nodes counted: %v, want %v", got, want)
		}
		for node, w := range want {
			if got[node] != w {
				t.Errorf("node %s received %d records, want %d", node, got[node], w)
			}
		}
		if len(tasks) != parts {
			t.Errorf("counted in tasks %v, want %d tasks", tasks, parts)
		}
	})
}
