package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHarness runs every scenario, mode and implementation with tiny sizes
// on the embedded cluster and checks that results.json has every row with
// non-zero rates. It tests the harness, not the performance.
func TestHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs the whole harness on embedded clusters (about 20 s)")
	}
	dir := t.TempDir()
	cfg, err := parseConfig([]string{"-quick", "-records", "5000", "-wordcount-lines", "2000", "-duration", "500ms", "-warmup", "100ms",
		"-rate", "1000", "-kafka-streams", "off", "-out", dir}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var table strings.Builder
	if _, err := run(ctx, cfg, &table, io.Discard); err != nil {
		t.Fatalf("run: %v\n%s", err, table.String())
	}

	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res results
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	type key struct{ scenario, mode, impl, variant string }
	want := map[key]bool{}
	for _, mode := range []string{modeALOS, modeEOS} {
		want[key{scenarioLatency, mode, implFloor, floorVariant}] = true
		want[key{scenarioWordCount, mode, implKstream, "batch=10000 linger=default(10ms)"}] = true
		for _, impl := range []string{implKstream, implHand} {
			want[key{scenarioPassthrough, mode, impl, "batch=10000 linger=default(10ms)"}] = true
			for _, v := range []string{"batch=1 linger=default(10ms)", "batch=1 linger=0s", "batch=100 linger=default(10ms)", "batch=100 linger=0s"} {
				want[key{scenarioLatency, mode, impl, v}] = true
			}
		}
	}
	for _, r := range res.Rows {
		k := key{r.Scenario, r.Mode, r.Impl, r.Variant}
		t.Logf("%v: run %.2f s, measured %.2f s", k, r.RunSeconds, r.Seconds)
		if !want[k] {
			t.Errorf("unexpected or repeated row %+v", k)
		}
		delete(want, k)
		if r.Error != "" || r.Records <= 0 || r.RecordsPerSec <= 0 || r.CPUSecPerMRec <= 0 {
			t.Errorf("row %+v: error %q, %d records, %.0f records/s, %.2f CPU s/M", k, r.Error, r.Records, r.RecordsPerSec, r.CPUSecPerMRec)
		}
		if r.Scenario == scenarioPassthrough && r.Records != 5000 {
			t.Errorf("row %+v: %d records, want 5000", k, r.Records)
		}
		if r.Scenario == scenarioWordCount && r.Records != 2000 {
			t.Errorf("row %+v: %d lines, want 2000", k, r.Records)
		}
		if r.Scenario == scenarioLatency && (r.P50Ms <= 0 || r.P99Ms < r.P50Ms || r.MaxMs < r.P99Ms) {
			t.Errorf("row %+v: latency p50 %.2f p99 %.2f max %.2f", k, r.P50Ms, r.P99Ms, r.MaxMs)
		}
		if r.Impl == implKstream && r.Scenario != scenarioWordCount && r.Ratio <= 0 {
			t.Errorf("row %+v: no ratio to the hand-written loop", k)
		}
	}
	for k := range want {
		t.Errorf("missing row %+v", k)
	}
	if !res.CPUIncludesBroker || res.GOMAXPROCS <= 0 {
		t.Errorf("machine facts: %+v", res)
	}
	svg, err := os.ReadFile(filepath.Join(dir, "results.svg"))
	if err != nil {
		t.Fatal(err)
	}
	bars := len(res.Rows)
	for _, r := range res.Rows {
		if r.Scenario == scenarioLatency {
			bars++ // and its p99
		}
	}
	if !strings.HasPrefix(string(svg), "<svg") || strings.Count(string(svg), `class="bar"`) != bars {
		t.Errorf("results.svg does not have a bar per row:\n%s", svg)
	}
	if !strings.Contains(table.String(), "CPU includes the broker") {
		t.Errorf("the table does not say that the CPU includes the broker:\n%s", table.String())
	}
}

// TestHarnessKafkaStreams runs the passthrough and latency scenarios with
// Kafka Streams in a child JVM (building internal/javaref with mvn if
// needed) and checks its rows and kstream's ratios to them.
func TestHarnessKafkaStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts JVMs (about 20 s)")
	}
	if _, err := exec.LookPath("java"); err != nil {
		t.Skip("java is not installed: Kafka Streams cannot run")
	}
	dir := t.TempDir()
	cfg, err := parseConfig([]string{"-quick", "-records", "5000", "-wordcount-lines", "2000", "-duration", "500ms", "-warmup", "500ms",
		"-rate", "1000", "-modes", "alos", "-batches", "100", "-kafka-streams", "on", "-out", dir}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var table strings.Builder
	res, err := run(ctx, cfg, &table, io.Discard)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, table.String())
	}
	rows := map[string]row{}
	for _, r := range res.Rows {
		rows[r.Scenario+" "+r.Impl+" "+r.Variant] = r
	}
	ks := rows["passthrough kafka-streams batch=10000 linger=default(10ms)"]
	if ks.Error != "" || ks.Records != 5000 || ks.RecordsPerSec <= 0 || ks.CPUSecPerMRec <= 0 {
		t.Errorf("passthrough Kafka Streams row: %+v\n%s", ks, table.String())
	}
	if k := rows["passthrough kstream batch=10000 linger=default(10ms)"]; k.RatioStreams <= 0 {
		t.Errorf("passthrough kstream row has no ratio to Kafka Streams: %+v", k)
	}
	for _, linger := range []string{"default(10ms)", "0s"} {
		l := rows["latency kafka-streams linger="+linger]
		if l.Error != "" || l.Records <= 0 || l.P99Ms < l.P50Ms || l.P50Ms <= 0 {
			t.Errorf("latency Kafka Streams row, linger %s: %+v\n%s", linger, l, table.String())
		}
		if k := rows["latency kstream batch=100 linger="+linger]; k.RatioStreams <= 0 {
			t.Errorf("latency kstream row, linger %s, has no ratio to Kafka Streams: %+v", linger, k)
		}
	}
	// On the embedded cluster, the word count runs kstream only, and says why.
	if _, ok := rows["wordcount kstream batch=10000 linger=default(10ms)"]; !ok {
		t.Errorf("no kstream word count row:\n%s", table.String())
	}
	if _, ok := rows["wordcount kafka-streams batch=10000 linger=default(10ms)"]; ok || !strings.Contains(table.String(), "wordcount: Kafka Streams runs only with -brokers") {
		t.Errorf("the word count ran Kafka Streams on the embedded cluster, or the table does not say why not:\n%s", table.String())
	}
	if !strings.HasPrefix(res.KafkaStreams, "Kafka Streams 4.") || !strings.Contains(table.String(), "vs KS") {
		t.Errorf("results say %q; table:\n%s", res.KafkaStreams, table.String())
	}
}

func TestParseConfig(t *testing.T) {
	cfg, err := parseConfig([]string{"-quick"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.records != 200_000 || cfg.duration != 3*time.Second || len(cfg.scenarios) != 3 || cfg.wordCountLines != 20_000 || len(cfg.modes) != 2 || cfg.brokers != nil {
		t.Errorf("-quick: %+v", cfg)
	}
	cfg, err = parseConfig([]string{"-quick", "-records", "5", "-brokers", "a:1, b:2", "-modes", "eos"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.records != 5 || len(cfg.brokers) != 2 || cfg.brokers[1] != "b:2" || len(cfg.modes) != 1 {
		t.Errorf("explicit flags: %+v", cfg)
	}
	for _, bad := range [][]string{{"-scenarios", "joins"}, {"-wordcount-lines", "0"}, {"-modes", "exactly"}, {"-records", "0"}, {"-batches", "x"}, {"extra"}, {"-kafka-streams", "maybe"}, {"-streams-threads", "0"}} {
		if _, err := parseConfig(bad, io.Discard); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct{ q, want float64 }{{0.5, 50}, {0.99, 99}, {1, 100}, {0.001, 1}} {
		if got := percentile(ds, c.q); got != c.want {
			t.Errorf("percentile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile of nothing = %v", got)
	}
}

func TestWorkload(t *testing.T) {
	var dropped int
	for i := range 10 * dropEvery {
		if !keep(appendKey(nil, i)) {
			dropped++
		}
	}
	if dropped != 10 || kept(10*dropEvery) != int64(10*dropEvery-10) || kept(dropEvery-1) != dropEvery-1 {
		t.Errorf("dropped %d of %d, kept() disagrees", dropped, 10*dropEvery)
	}
	v := make([]byte, 100)
	now := time.Now()
	stampValue(v, now, true)
	if sent, warm, ok := readStamp(v); !ok || !warm || sent != now.UnixNano() {
		t.Errorf("readStamp = %d %v %v", sent, warm, ok)
	}
}
