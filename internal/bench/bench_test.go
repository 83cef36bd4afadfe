package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/kstest"
	"github.com/kstreamgo/kstream/serde"
)

// TestHarness runs every scenario, mode and implementation with tiny sizes
// on the embedded cluster and checks that results.json has every row with
// non-zero rates. It tests the harness, not the performance.
func TestHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs the whole harness on embedded clusters (about 20 s)")
	}
	dir := t.TempDir()
	_, table := runHarness(t, dir, 2*time.Minute, "-quick", "-records", "5000", "-wordcount-lines", "2000", "-windowed-records", "3000", "-join-records", "4000",
		"-duration", "500ms", "-warmup", "100ms", "-rate", "1000", "-kafka-streams", "off")

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
		for _, sc := range []string{scenarioWordCount, scenarioWindowed, scenarioJoin} {
			want[key{sc, mode, implKstream, "batch=10000 linger=default(10ms)"}] = true
		}
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
		// The stateful scenarios' records/s count lines, and windowed and
		// stream records; at-least-once, a note says when the output is
		// not exactly as expected.
		if n := map[string]int64{scenarioWordCount: 2000, scenarioWindowed: 3000, scenarioJoin: 4000}[r.Scenario]; n > 0 && r.Records != n {
			t.Errorf("row %+v: %d input records, want %d", k, r.Records, n)
		}
		if strings.Contains(r.Note, "output has") {
			t.Errorf("row %+v: %s", k, r.Note)
		}
		if r.Scenario == scenarioLatency && (r.P50Ms <= 0 || r.P99Ms < r.P50Ms || r.MaxMs < r.P99Ms) {
			t.Errorf("row %+v: latency p50 %.2f p99 %.2f max %.2f", k, r.P50Ms, r.P99Ms, r.MaxMs)
		}
		if r.Impl == implKstream && findStateful(r.Scenario) == nil && r.Ratio <= 0 {
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
	if !strings.Contains(table, "CPU includes the broker") {
		t.Errorf("the table does not say that the CPU includes the broker:\n%s", table)
	}
}

// TestHarnessStateDB runs the stateful scenarios with -state db, exactly
// once: kstream keeps its stores in a state DB, the rows say so, and the
// outputs are the expected ones.
func TestHarnessStateDB(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs three scenarios on embedded clusters (about 10 s)")
	}
	res, table := runHarness(t, t.TempDir(), 2*time.Minute, "-quick", "-scenarios", "wordcount,windowed,join", "-modes", "eos", "-state", "db",
		"-wordcount-lines", "2000", "-windowed-records", "3000", "-join-records", "4000", "-kafka-streams", "off")
	if len(res.Rows) != 3 {
		t.Fatalf("%d rows, want 3:\n%s", len(res.Rows), table)
	}
	for _, r := range res.Rows {
		n := map[string]int64{scenarioWordCount: 2000, scenarioWindowed: 3000, scenarioJoin: 4000}[r.Scenario]
		if r.Variant != "batch=10000 linger=default(10ms) state=db" || r.Error != "" || r.Records != n || strings.Contains(r.Note, "output has") {
			t.Errorf("row %s %s %q: error %q, %d records (want %d), note %q", r.Scenario, r.Mode, r.Variant, r.Error, r.Records, n, r.Note)
		}
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
	res, table := runHarness(t, t.TempDir(), 4*time.Minute, "-quick", "-records", "5000", "-wordcount-lines", "2000", "-windowed-records", "2000", "-join-records", "2000",
		"-duration", "500ms", "-warmup", "500ms", "-rate", "1000", "-modes", "alos", "-batches", "100", "-kafka-streams", "on",
		"-scenarios", "passthrough,latency,wordcount,windowed,join,restore,global", "-restore-records", "2000")
	rows := map[string]row{}
	for _, r := range res.Rows {
		rows[r.Scenario+" "+r.Impl+" "+r.Variant] = r
	}
	ks := rows["passthrough kafka-streams batch=10000 linger=default(10ms)"]
	if ks.Error != "" || ks.Records != 5000 || ks.RecordsPerSec <= 0 || ks.CPUSecPerMRec <= 0 {
		t.Errorf("passthrough Kafka Streams row: %+v\n%s", ks, table)
	}
	if k := rows["passthrough kstream batch=10000 linger=default(10ms)"]; k.RatioStreams <= 0 {
		t.Errorf("passthrough kstream row has no ratio to Kafka Streams: %+v", k)
	}
	for _, linger := range []string{"default(10ms)", "0s"} {
		l := rows["latency kafka-streams linger="+linger]
		if l.Error != "" || l.Records <= 0 || l.P99Ms < l.P50Ms || l.P50Ms <= 0 {
			t.Errorf("latency Kafka Streams row, linger %s: %+v\n%s", linger, l, table)
		}
		if k := rows["latency kstream batch=100 linger="+linger]; k.RatioStreams <= 0 {
			t.Errorf("latency kstream row, linger %s, has no ratio to Kafka Streams: %+v", linger, k)
		}
	}
	// The stateful scenarios run on the embedded cluster too (kafkaio's
	// embedded cluster hides the kfake answers that break Java's admin
	// client), with exact output counts and ratios.
	for _, sc := range []string{scenarioWordCount, scenarioWindowed, scenarioJoin} {
		k, ok := rows[sc+" kstream batch=10000 linger=default(10ms)"]
		if !ok || k.RatioStreams <= 0 {
			t.Errorf("no kstream %s row with a ratio to Kafka Streams: %+v\n%s", sc, k, table)
		}
		j := rows[sc+" kafka-streams batch=10000 linger=default(10ms)"]
		if j.Error != "" || j.Records != 2000 || j.RecordsPerSec <= 0 || strings.Contains(j.Note, "output has") {
			t.Errorf("%s Kafka Streams row: %+v\n%s", sc, j, table)
		}
	}
	// The restore and global scenarios: Kafka Streams restores the same
	// changelog, and bootstraps a global table from the same topic, into an
	// in-memory store and into RocksDB.
	for _, sc := range []string{scenarioRestore, scenarioGlobal} {
		for _, backend := range []string{backendMemory, backendPebble} {
			var j, k row
			for _, r := range res.Rows {
				if r.Scenario == sc && r.Mode == backend && r.Variant == implRaw {
					switch r.Impl {
					case implStreams:
						j = r
					case implKstream:
						k = r
					}
				}
			}
			if j.Impl != implStreams || j.Error != "" || j.Records != 2000 || j.RecordsPerSec <= 0 || j.CPUSecPerMRec <= 0 {
				t.Errorf("%s %s Kafka Streams row: %+v\n%s", sc, backend, j, table)
			}
			if k.Impl != implKstream || k.RatioStreams <= 0 {
				t.Errorf("%s %s kstream row has no ratio to Kafka Streams: %+v", sc, backend, k)
			}
		}
	}
	if !strings.HasPrefix(res.KafkaStreams, "Kafka Streams 4.") || !strings.Contains(table, "vs KS") {
		t.Errorf("results say %q; table:\n%s", res.KafkaStreams, table)
	}
}

func TestParseConfig(t *testing.T) {
	cfg, err := parseConfig([]string{"-quick"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.records != 200_000 || cfg.duration != 3*time.Second || len(cfg.scenarios) != 5 || cfg.wordCountLines != 20_000 ||
		cfg.windowedRecords != 100_000 || cfg.joinRecords != 100_000 || len(cfg.modes) != 2 || cfg.brokers != nil {
		t.Errorf("-quick: %+v", cfg)
	}
	cfg, err = parseConfig(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.windowedRecords != 1_000_000 || cfg.joinRecords != 1_000_000 || !slices.Equal(cfg.scenarios, []string{"passthrough", "latency", "wordcount", "windowed", "join"}) {
		t.Errorf("defaults: %+v", cfg)
	}
	cfg, err = parseConfig([]string{"-quick", "-records", "5", "-brokers", "a:1, b:2", "-modes", "eos", "-scenarios", "windowed,join",
		"-windowed-records", "7", "-join-records", "9"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.records != 5 || len(cfg.brokers) != 2 || cfg.brokers[1] != "b:2" || len(cfg.modes) != 1 || cfg.windowedRecords != 7 || cfg.joinRecords != 9 ||
		!slices.Equal(cfg.scenarios, []string{scenarioWindowed, scenarioJoin}) {
		t.Errorf("explicit flags: %+v", cfg)
	}
	if cfg.stateDB {
		t.Errorf("the stateful scenarios run on a state DB by default")
	}
	for _, bad := range [][]string{{"-state", "rocksdb"}, {"-scenarios", "joins"}, {"-wordcount-lines", "0"}, {"-windowed-records", "0"}, {"-join-records", "-1"}, {"-modes", "exactly"}, {"-records", "0"}, {"-batches", "x"}, {"extra"}, {"-kafka-streams", "maybe"}, {"-streams-threads", "0"}} {
		if _, err := parseConfig(bad, io.Discard); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestStatefulTopologies runs the windowed and join scenarios' topologies
// in kstest, with their workloads, and checks their output record by
// record: one count update per record, each with the count so far of its
// user in its window (no record is late); one joined record per stream
// record, whether its user was in the table yet or not.
func TestStatefulTopologies(t *testing.T) {
	t.Run("windowed", func(t *testing.T) {
		topo, err := windowedTopology("in", "out")
		if err != nil {
			t.Fatal(err)
		}
		d := kstest.NewDriver(t, topo, kstest.Partitions(6))
		in := kstest.Input(d, "in", serde.String, serde.Bytes)
		const n = 3 * users
		// Starting 10 s before a minute: the records span two windows.
		at := windowedTimes(n, time.UnixMilli(1_800_000_000_000+50_000+n))
		type window struct {
			user  string
			start int64
		}
		want := map[window]int64{}
		for i := range n {
			ts := at(i).UnixMilli()
			user := string(appendUser(nil, i))
			in.PipeAt(ts, user, []byte{byte(i)})
			want[window{user, ts - ts%60_000}]++
		}
		got := map[window]int64{}
		recs := kstest.Output(d, "out", kstream.TimeWindowedSerde(serde.String, windowSize), serde.Int64).Records()
		for _, r := range recs {
			w := window{r.Key.Key, r.Key.Start}
			if got[w]++; r.Value != got[w] {
				t.Fatalf("%+v: count %d, want %d", w, r.Value, got[w])
			}
		}
		if len(recs) != n || len(got) != len(want) || len(want) != 2*users {
			t.Errorf("%d output records, %d windows, want %d and %d", len(recs), len(got), n, len(want))
		}
		for w, c := range want {
			if got[w] != c {
				t.Errorf("%+v: %d updates, want %d", w, got[w], c)
			}
		}
	})
	t.Run("join", func(t *testing.T) {
		topo, err := joinTopology("users", "records", "out")
		if err != nil {
			t.Fatal(err)
		}
		d := kstest.NewDriver(t, topo, kstest.Partitions(6))
		table := kstest.Input(d, "users", serde.String, serde.Bytes)
		stream := kstest.Input(d, "records", serde.String, serde.Bytes)
		const n = 2 * users
		// The first half of the stream before the table: unmatched.
		for i := range n {
			if i == n/2 {
				for u := range users {
					table.Pipe(string(appendUser(nil, u)), []byte{'u'})
				}
			}
			stream.Pipe(string(appendUser(nil, i)), []byte{'v'})
		}
		recs := kstest.Output(d, "out", serde.String, serde.Bytes).Records()
		if len(recs) != n {
			t.Fatalf("%d output records, want %d", len(recs), n)
		}
		for i, r := range recs {
			if want := map[bool]string{false: "v", true: "vu"}[i >= n/2]; string(r.Value) != want {
				t.Fatalf("output %d: %q, want %q", i, r.Value, want)
			}
		}
	})
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

// runHarness runs the harness with args, writing its results to dir, within
// timeout, and returns the results and the table it printed.
func runHarness(t *testing.T, dir string, timeout time.Duration, args ...string) (*results, string) {
	t.Helper()
	cfg, err := parseConfig(append(args, "-out", dir), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var table strings.Builder
	res, err := run(ctx, cfg, &table, io.Discard)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, table.String())
	}
	return res, table.String()
}
