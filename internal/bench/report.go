package main

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// row is one measured run.
type row struct {
	Scenario string `json:"scenario"`
	Mode     string `json:"mode"`
	Impl     string `json:"impl"`
	Variant  string `json:"variant"`
	Batch    int    `json:"batch"`
	Linger   string `json:"linger"`
	// CommitMs is the commit interval of both implementations.
	CommitMs float64 `json:"commit_ms"`

	Records       int64   `json:"records"`
	Seconds       float64 `json:"seconds"`
	RecordsPerSec float64 `json:"records_per_sec"`
	// StartupMs is the time from the start of the implementation to its
	// first processed record, and SteadyRecordsPerSec the rate after it
	// (passthrough).
	StartupMs           float64 `json:"startup_ms,omitempty"`
	SteadyRecordsPerSec float64 `json:"steady_records_per_sec,omitempty"`
	CPUSeconds          float64 `json:"cpu_seconds"`
	CPUSecPerMRec       float64 `json:"cpu_seconds_per_million_records"`
	// PageFaults counts this process's page faults during the run
	// (throughput scenarios): fresh memory touched, which on the embedded
	// cluster costs more CPU than anything else that varies between runs.
	PageFaults int64 `json:"page_faults,omitempty"`

	// Latency scenario: end-to-end latency from the send time in the
	// value (ns precision); P99TimestampMs from the record timestamps
	// (ms precision, so up to 1 ms more).
	OfferedPerSec  int     `json:"offered_per_sec,omitempty"`
	P50Ms          float64 `json:"p50_ms,omitempty"`
	P99Ms          float64 `json:"p99_ms,omitempty"`
	MaxMs          float64 `json:"max_ms,omitempty"`
	P99TimestampMs float64 `json:"p99_timestamp_ms,omitempty"`

	// Ratio compares kstream with the hand-written loop of the same
	// scenario, mode and variant: records/s kstream/hand in passthrough
	// (higher is better), p99 kstream/hand in latency (lower is better).
	Ratio   float64 `json:"ratio_vs_hand,omitempty"`
	RatioOf string  `json:"ratio_of,omitempty"`
	// CPURatio is hand CPU s/M over kstream CPU s/M (passthrough): the
	// throughput ratio to expect when the CPU is the limit, and steadier
	// than the wall-clock ratio on a busy machine.
	CPURatio float64 `json:"cpu_ratio_vs_hand,omitempty"`

	// RatioStreams compares kstream with Kafka Streams running the same
	// scenario and mode: records/s kstream/Kafka Streams in passthrough and
	// the stateful scenarios (same variant; higher is better), p99
	// kstream/Kafka Streams in latency (same linger; lower is better).
	RatioStreams float64 `json:"ratio_vs_kafka_streams,omitempty"`

	// RunSeconds is the whole run: cluster, topics, prefill, stop.
	RunSeconds float64 `json:"run_seconds"`

	Note  string `json:"note,omitempty"`
	Error string `json:"error,omitempty"`
}

// results is what results.json holds.
type results struct {
	Started    time.Time `json:"started"`
	GoVersion  string    `json:"go_version"`
	GOOS       string    `json:"goos"`
	GOARCH     string    `json:"goarch"`
	GOMAXPROCS int       `json:"gomaxprocs"`
	NumCPU     int       `json:"num_cpu"`
	Cluster    string    `json:"cluster"`
	Brokers    []string  `json:"brokers,omitempty"`
	// CPUIncludesBroker is true on the embedded cluster, which runs in
	// this process.
	CPUIncludesBroker bool    `json:"cpu_includes_broker"`
	Partitions        int32   `json:"partitions"`
	ValueSize         int     `json:"value_size"`
	LatencySeconds    float64 `json:"latency_seconds"`
	LoadAvgStart      string  `json:"loadavg_start,omitempty"` // /proc/loadavg: other work on the machine skews the numbers
	GoDebug           string  `json:"godebug,omitempty"`       // GODEBUG: madvdontneed=0 unless set otherwise (reexecMadvFree)
	LoadAvgEnd        string  `json:"loadavg_end,omitempty"`
	// KafkaStreams says how Kafka Streams ran (version, stream threads),
	// or why it did not.
	KafkaStreams string `json:"kafka_streams"`
	Rows         []row  `json:"rows"`
	// Runs holds every passthrough run when -repeat > 1 (Rows has the medians).
	Runs []row `json:"runs,omitempty"`
}

func newResults(cfg *config) *results {
	r := &results{Started: time.Now().UTC().Truncate(time.Second), GoVersion: runtime.Version(), GOOS: runtime.GOOS,
		GOARCH: runtime.GOARCH, GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(),
		Partitions: cfg.partitions, ValueSize: cfg.valueSize, LatencySeconds: cfg.duration.Seconds(), LoadAvgStart: loadAvg(), GoDebug: os.Getenv("GODEBUG")}
	switch {
	case cfg.streams != nil:
		r.KafkaStreams = fmt.Sprintf("Kafka Streams %s in a child JVM, num.stream.threads=%d", cfg.streams.version, cfg.streams.threads)
	case cfg.streamsSkipped != "":
		r.KafkaStreams = "not run: " + cfg.streamsSkipped
	default:
		r.KafkaStreams = "not run (-kafka-streams off)"
	}
	if len(cfg.brokers) == 0 {
		r.Cluster = "embedded (kfake, in-process, fresh cluster per run)"
		r.CPUIncludesBroker = true
	} else {
		r.Cluster = "external"
		r.Brokers = cfg.brokers
	}
	return r
}

// computeRatios sets each kstream row's ratio to the hand row of the same
// scenario, mode and variant, and to the Kafka Streams row.
func (res *results) computeRatios() {
	for i := range res.Rows {
		k := &res.Rows[i]
		if k.Impl != implKstream || k.Error != "" {
			continue
		}
		for _, j := range res.Rows {
			if j.Impl != implStreams || j.Error != "" || j.Scenario != k.Scenario || j.Mode != k.Mode {
				continue
			}
			switch {
			case (throughputScenario(k.Scenario) || k.Scenario == scenarioRestore || k.Scenario == scenarioGlobal) && j.Variant == k.Variant && j.RecordsPerSec > 0:
				k.RatioStreams = k.RecordsPerSec / j.RecordsPerSec
			case k.Scenario == scenarioLatency && j.Linger == k.Linger && j.P99Ms > 0:
				k.RatioStreams = k.P99Ms / j.P99Ms
			}
		}
		for _, h := range res.Rows {
			if h.Impl != implHand || h.Error != "" || h.Scenario != k.Scenario || h.Mode != k.Mode || h.Variant != k.Variant {
				continue
			}
			switch {
			case k.Scenario == scenarioPassthrough && h.RecordsPerSec > 0:
				k.Ratio, k.RatioOf = k.RecordsPerSec/h.RecordsPerSec, "records/s"
				if k.CPUSecPerMRec > 0 {
					k.CPURatio = h.CPUSecPerMRec / k.CPUSecPerMRec
				}
			case (k.Scenario == scenarioRestore || k.Scenario == scenarioGlobal) && h.RecordsPerSec > 0:
				k.Ratio, k.RatioOf = k.RecordsPerSec/h.RecordsPerSec, "records/s"
				if k.CPUSecPerMRec > 0 {
					k.CPURatio = h.CPUSecPerMRec / k.CPUSecPerMRec
				}
			case k.Scenario == scenarioLatency && h.P99Ms > 0:
				k.Ratio, k.RatioOf = k.P99Ms/h.P99Ms, "p99"
			}
		}
	}
}

func (res *results) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.svg"), []byte(res.svg()), 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// printTable writes the header and the table.
func (res *results) printTable(w io.Writer) {
	fmt.Fprintf(w, "kstream bench  %s %s/%s  GOMAXPROCS=%d  NumCPU=%d  partitions=%d  value=%d B\n",
		res.GoVersion, res.GOOS, res.GOARCH, res.GOMAXPROCS, res.NumCPU, res.Partitions, res.ValueSize)
	if res.CPUIncludesBroker {
		fmt.Fprintf(w, "cluster: %s; CPU includes the broker\n", res.Cluster)
	} else {
		fmt.Fprintf(w, "cluster: %s %s; CPU is this process only (the broker's is not counted)\n", res.Cluster, strings.Join(res.Brokers, ","))
	}
	if res.LoadAvgStart != "" {
		fmt.Fprintf(w, "load average (1/5/15 min): %s at start, %s at end\n", res.LoadAvgStart, res.LoadAvgEnd)
	}
	fmt.Fprintln(w, "ratio: passthrough = kstream/hand records/s (higher is better); latency = kstream/hand p99 (lower is better);")
	fmt.Fprintln(w, "       restore = kstream restore/raw consume records/s of the same changelog (higher is better);")
	fmt.Fprintln(w, "       vs KS = kstream/Kafka Streams: records/s in passthrough, wordcount, windowed, join, restore and global (higher is better), p99 in latency (lower is better)")
	fmt.Fprintf(w, "kafka-streams: %s; its CPU is counted with this process's\n", res.KafkaStreams)
	fmt.Fprintln(w, "latency: receive time - send time, ns precision; p99 ts = from record timestamps (ms precision)")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tmode\timpl\tvariant\trecords\trecords/s\tCPU s/M rec\tstart ms\tp50 ms\tp99 ms\tmax ms\tp99 ts ms\tratio\tvs KS\tnote\t")
	f := func(v float64, format string) string {
		if v == 0 {
			return "-"
		}
		return fmt.Sprintf(format, v)
	}
	for _, r := range res.Rows {
		note := r.Note
		if r.Error != "" {
			note = "ERROR: " + r.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			r.Scenario, r.Mode, r.Impl, r.Variant, r.Records, f(r.RecordsPerSec, "%.0f"), f(r.CPUSecPerMRec, "%.2f"),
			f(r.StartupMs, "%.0f"), f(r.P50Ms, "%.2f"), f(r.P99Ms, "%.2f"), f(r.MaxMs, "%.1f"), f(r.P99TimestampMs, "%.0f"),
			f(r.Ratio, "%.2fx"), f(r.RatioStreams, "%.2fx"), note)
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, l := range res.summary() {
		fmt.Fprintln(w, l)
	}
}

// throughputScenario reports whether kstream is compared with Kafka Streams
// by records/s in scenario: the passthrough and the stateful scenarios.
func throughputScenario(scenario string) bool {
	return scenario == scenarioPassthrough || findStateful(scenario) != nil
}

// ratioTarget is the passthrough throughput kstream should reach, relative to
// the hand-written loop.
const ratioTarget = 0.8

// summary says how kstream compares with the targets: 0.8x the hand-written
// loop's throughput, and 5 ms p99 latency.
func (res *results) summary() []string {
	var out []string
	for _, r := range res.Rows {
		if r.Scenario == scenarioPassthrough && r.Impl == implKstream && r.Ratio > 0 {
			verdict := "meets"
			if r.Ratio < ratioTarget {
				verdict = "misses"
			}
			out = append(out, fmt.Sprintf("passthrough %s: kstream runs at %.2fx the hand-written loop: %s the %.1fx target (CPU per record: %.2fx the loop's efficiency)",
				r.Mode, r.Ratio, verdict, ratioTarget, r.CPURatio))
		}
	}
	for _, r := range res.Rows {
		if throughputScenario(r.Scenario) && r.Impl == implKstream && r.RatioStreams > 0 {
			out = append(out, fmt.Sprintf("%s %s: kstream runs at %.2fx Kafka Streams' records/s", r.Scenario, r.Mode, r.RatioStreams))
		}
	}
	for _, r := range res.Rows {
		if r.Scenario == scenarioRestore && r.Impl == implKstream && r.Ratio > 0 {
			verdict := "meets"
			if r.Ratio < restoreTarget {
				verdict = "misses"
			}
			out = append(out, fmt.Sprintf("restore %s: kstream restores at %.2fx a raw consume of the changelog: %s the %.1fx target",
				r.Mode, r.Ratio, verdict, restoreTarget))
		}
	}
	var met, missed []string
	for _, r := range res.Rows {
		if r.Scenario != scenarioLatency || r.Impl != implKstream || r.Error != "" {
			continue
		}
		s := fmt.Sprintf("%s %s (%.1f ms)", r.Mode, r.Variant, r.P99Ms)
		if r.P99Ms <= latencyTargetMs {
			met = append(met, s)
		} else {
			missed = append(missed, s)
		}
	}
	if len(met)+len(missed) > 0 {
		if len(met) == 0 {
			met = []string{"none"}
		}
		out = append(out, fmt.Sprintf("latency: kstream p99 <= %d ms with: %s", latencyTargetMs, strings.Join(met, ", ")))
		if len(missed) > 0 {
			out = append(out, fmt.Sprintf("latency: kstream p99 > %d ms with: %s", latencyTargetMs, strings.Join(missed, ", ")))
		}
	}
	return out
}

// svg draws records/s as horizontal bars, one panel per scenario with its
// own scale, plus the p99 latency of the latency scenario against the 5 ms
// target.
func (res *results) svg() string {
	const (
		width    = 960
		labelW   = 360
		barMaxW  = 500
		barH     = 18
		gap      = 6
		panelGap = 40
	)
	type panel struct {
		title  string
		rows   []row
		value  func(row) float64
		format func(float64) string
		target float64 // a dashed line at this value, 0: none
	}
	var panels []panel
	var scenarios []string
	for _, r := range res.Rows {
		if !slices.Contains(scenarios, r.Scenario) {
			scenarios = append(scenarios, r.Scenario)
		}
	}
	for _, sc := range scenarios {
		var rows []row
		for _, r := range res.Rows {
			if r.Scenario == sc {
				rows = append(rows, r)
			}
		}
		panels = append(panels, panel{title: sc + ": records/s", rows: rows,
			value: func(r row) float64 { return r.RecordsPerSec }, format: human})
		if sc == scenarioLatency {
			panels = append(panels, panel{title: sc + ": p99 end-to-end latency, ms (dashed: 5 ms target)", rows: rows,
				value: func(r row) float64 { return r.P99Ms }, format: func(v float64) string { return fmt.Sprintf("%.1f ms", v) },
				target: latencyTargetMs})
		}
	}
	var body strings.Builder
	y := 56
	for _, p := range panels {
		maxV := p.target
		for _, r := range p.rows {
			maxV = max(maxV, p.value(r))
		}
		fmt.Fprintf(&body, `<text x="10" y="%d" font-size="15" font-weight="bold">%s</text>`+"\n", y, html.EscapeString(p.title))
		y += 12
		top := y
		for _, r := range p.rows {
			v := p.value(r)
			w := 0.0
			if maxV > 0 {
				w = v / maxV * barMaxW
			}
			color := "#4e79a7"
			switch r.Impl {
			case implHand:
				color = "#9c9c9c"
			case implFloor:
				color = "#59a14f"
			case implStreams:
				color = "#f28e2b"
			}
			label := fmt.Sprintf("%s %s %s", r.Mode, r.Impl, r.Variant)
			val := p.format(v)
			if r.Error != "" {
				val = "error"
			}
			fmt.Fprintf(&body, `<text x="%d" y="%d" font-size="12" text-anchor="end">%s</text>`+"\n", labelW-8, y+barH-5, html.EscapeString(label))
			fmt.Fprintf(&body, `<rect class="bar" x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", labelW, y, w, barH, color)
			fmt.Fprintf(&body, `<text x="%.1f" y="%d" font-size="12">%s</text>`+"\n", float64(labelW)+w+6, y+barH-5, html.EscapeString(val))
			y += barH + gap
		}
		if p.target > 0 && maxV > 0 {
			x := float64(labelW) + p.target/maxV*barMaxW
			fmt.Fprintf(&body, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e15759" stroke-dasharray="4 3"/>`+"\n", x, top-4, x, y)
		}
		y += panelGap
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif">`+"\n", width, y, width, y)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	title := fmt.Sprintf("kstream (blue), hand-written franz-go loop (grey), Kafka Streams (orange), floor = no processing (green): %s, GOMAXPROCS=%d, %s", res.GoVersion, res.GOMAXPROCS, res.Cluster)
	fmt.Fprintf(&b, `<text x="10" y="24" font-size="13">%s</text>`+"\n", html.EscapeString(title))
	b.WriteString(body.String())
	b.WriteString("</svg>\n")
	return b.String()
}

// latencyTargetMs is the p99 end-to-end latency target of the latency
// scenario.
const latencyTargetMs = 5

// loadAvg returns the 1, 5 and 15 minute load averages, or "" where
// /proc/loadavg does not exist.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
