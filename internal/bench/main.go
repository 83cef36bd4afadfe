package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"
)

// config is what a harness run does, from the command line.
type config struct {
	brokers    []string // empty: a fresh embedded cluster per run
	records    int      // passthrough input records
	scenarios  []string
	modes      []string
	out        string
	valueSize  int
	partitions int32
	quick      bool

	// latency scenario
	duration time.Duration // measured producing time per run
	warmup   time.Duration // producing time before it, not measured
	rate     int           // offered records/s
	batches  []int         // records per poll (kafkaio.MaxBatch)

	// stateful scenarios
	wordCountLines  int
	windowedRecords int
	joinRecords     int // stream records (the table has one per user)

	// restore scenario
	restoreRecords int

	// count scenario
	countKeys       int
	countPartitions int
	countBudget     int64 // bytes

	repeat     int           // passthrough and restore runs per implementation (median reported)
	commit     time.Duration // commit interval of both implementations; 0: kstream's defaults
	stateDB    bool          // the stateful scenarios run kstream on a state DB (kafkaio.StateDir)
	cpuProfile string        // CPU profile path of the measured runs (suffixed per run)
	timeout    time.Duration

	// Kafka Streams in the passthrough, latency and (-brokers) stateful scenarios
	streamsMode    string   // streamsAuto, streamsOn, streamsOff
	streamsThreads int      // num.stream.threads
	streams        *javaRef // set by resolveStreams; nil: not run
	streamsSkipped string   // why Kafka Streams does not run (auto)

	closed *closedClusters // the embedded clusters of earlier runs, until collected
}

// settleTimeout bounds the wait for the clusters of earlier runs to be
// collected before a measurement (closedClusters.settle): 10 s, which a
// closed cluster's timers (5 s at most, seen) fit in; none with -quick,
// whose clusters are small and whose figures are a smoke test's.
func (c *config) settleTimeout() time.Duration {
	if c.quick {
		return 0
	}
	return 10 * time.Second
}

const (
	scenarioPassthrough = "passthrough"
	scenarioLatency     = "latency"
	modeALOS            = "alos"
	modeEOS             = "eos"
	implKstream         = "kstream"
	implHand            = "hand"
	implFloor           = "floor" // latency: producer to consumer, no processing
	floorVariant        = "no processing"
)

func parseConfig(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", "", "bootstrap brokers host:port,...; default: a fresh embedded cluster (kafkaio.StartEmbedded) per run")
	records := fs.Int("records", 2_000_000, "passthrough input records (-quick: 200,000)")
	scenarios := fs.String("scenarios", "passthrough,latency,wordcount,windowed,join", "scenarios to run: passthrough, latency, wordcount, windowed, join, restore, global, count (opt-in)")
	wordCountLines := fs.Int("wordcount-lines", 300_000, "wordcount scenario: input lines of 8 words (-quick: 20,000)")
	windowedRecords := fs.Int("windowed-records", 1_000_000, "windowed scenario: input records (-quick: 100,000)")
	joinRecords := fs.Int("join-records", 1_000_000, "join scenario: stream records, joined with a table of 10,000 users (-quick: 100,000)")
	modes := fs.String("modes", "alos,eos", "processing guarantees: alos (at-least-once), eos (exactly-once)")
	out := fs.String("out", "bench-results", "directory for results.json and results.svg")
	valueSize := fs.Int("value-size", 100, "value size in bytes")
	quick := fs.Bool("quick", false, "smoke run for CI: 200,000 records, 3 s latency runs")
	duration := fs.Duration("duration", 10*time.Second, "measured producing time of a latency run (-quick: 3s)")
	warmup := fs.Duration("warmup", time.Second, "unmeasured producing time before a latency run (-quick: 500ms)")
	rate := fs.Int("rate", 10_000, "records/s offered in the latency scenario")
	batches := fs.String("batches", "1,100", "records per poll (kafkaio.MaxBatch) in the latency scenario")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of every passthrough, latency, wordcount, windowed, join and restore run's measured window (and of the global scenario's first bootstrap) to this path, suffixed -<mode>-<impl> (passthrough), -<mode>-latency-<impl>-batch<n>, -<mode>-<scenario>-<impl> (stateful scenarios), -<backend>-restore-<impl> (restore), -<backend>-global-kstream (global)")
	commit := fs.Duration("commit-interval", 0, "commit interval of kstream and the hand-written loop; 0: kstream's defaults (30s at-least-once, 100ms exactly-once or with batches of 1)")
	stateStores := fs.String("state", "memory", "kstream's stores in the wordcount, windowed and join scenarios: memory, or db (a state DB in a temporary kafkaio.StateDir, as Kafka Streams keeps its stores in RocksDB)")
	repeat := fs.Int("repeat", 1, "passthrough runs per mode and implementation, and restore runs (raw consume and kstream) per backend, alternating the order; the medians are reported")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up on a single run after this long")
	restoreRecords := fs.Int("restore-records", 1_000_000, "restore and global scenarios: changelog (global table topic) records (-quick: 200,000)")
	countKeys := fs.Int("count-keys", 10_000_000, "count scenario: distinct keys")
	countPartitions := fs.Int("count-partitions", 64, "count scenario: partitions (tasks)")
	countBudget := fs.Int("count-budget", 256, "count scenario: state.MemoryBudget in MiB")
	streams := fs.String("kafka-streams", streamsAuto, "run Kafka Streams (internal/javaref, in a child JVM) in the passthrough, latency, wordcount, windowed, join, restore and global scenarios too: auto (when java, and the built reference programs or mvn, are present), on, off")
	streamsThreads := fs.Int("streams-threads", 1, "Kafka Streams' num.stream.threads")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *stateStores != "memory" && *stateStores != "db" {
		return nil, fmt.Errorf("-state %q: want memory or db", *stateStores)
	}
	c := &config{
		closed:  &closedClusters{},
		stateDB: *stateStores == "db",
		records: *records, out: *out, valueSize: *valueSize, partitions: 6, quick: *quick,
		duration: *duration, warmup: *warmup, rate: *rate, cpuProfile: *cpuProfile, timeout: *timeout, repeat: *repeat, commit: *commit,
		restoreRecords: *restoreRecords, countKeys: *countKeys, countPartitions: *countPartitions, countBudget: int64(*countBudget) << 20,
		streamsMode: *streams, streamsThreads: *streamsThreads,
		wordCountLines: *wordCountLines, windowedRecords: *windowedRecords, joinRecords: *joinRecords,
	}
	if *quick {
		if !set["records"] {
			c.records = 200_000
		}
		if !set["wordcount-lines"] {
			c.wordCountLines = 20_000
		}
		if !set["windowed-records"] {
			c.windowedRecords = 100_000
		}
		if !set["join-records"] {
			c.joinRecords = 100_000
		}
		if !set["restore-records"] {
			c.restoreRecords = 200_000
		}
		if !set["duration"] {
			c.duration = 3 * time.Second
		}
		if !set["warmup"] {
			c.warmup = 500 * time.Millisecond
		}
	}
	if *brokers != "" {
		c.brokers = splitList(*brokers)
	}
	c.scenarios = splitList(*scenarios)
	c.modes = splitList(*modes)
	for _, s := range c.scenarios {
		if s != scenarioPassthrough && s != scenarioLatency && findStateful(s) == nil && s != scenarioRestore && s != scenarioGlobal && s != scenarioCount {
			return nil, fmt.Errorf("unknown scenario %q (want passthrough, latency, wordcount, windowed, join, restore, count)", s)
		}
	}
	for _, m := range c.modes {
		if m != modeALOS && m != modeEOS {
			return nil, fmt.Errorf("unknown mode %q (want alos, eos)", m)
		}
	}
	for _, b := range splitList(*batches) {
		var n int
		if _, err := fmt.Sscan(b, &n); err != nil || n <= 0 {
			return nil, fmt.Errorf("bad -batches entry %q", b)
		}
		c.batches = append(c.batches, n)
	}
	switch {
	case c.repeat <= 0:
		return nil, errors.New("-repeat must be positive")
	case c.records <= 0:
		return nil, errors.New("-records must be positive")
	case c.valueSize < 16:
		return nil, errors.New("-value-size must be at least 16 (the latency scenario stores the send time in the value)")
	case c.rate <= 0 || c.duration <= 0:
		return nil, errors.New("-rate and -duration must be positive")
	case c.wordCountLines <= 0 || c.windowedRecords <= 0 || c.joinRecords <= 0:
		return nil, errors.New("-wordcount-lines, -windowed-records and -join-records must be positive")
	case c.restoreRecords <= 0:
		return nil, errors.New("-restore-records must be positive")
	case c.countKeys <= 0 || c.countPartitions <= 0 || c.countBudget <= 0:
		return nil, errors.New("-count-keys, -count-partitions and -count-budget must be positive")
	case c.streamsMode != streamsAuto && c.streamsMode != streamsOn && c.streamsMode != streamsOff:
		return nil, fmt.Errorf("bad -kafka-streams %q (want auto, on, off)", c.streamsMode)
	case c.streamsThreads <= 0:
		return nil, errors.New("-streams-threads must be positive")
	case len(c.scenarios) == 0 || len(c.modes) == 0:
		return nil, errors.New("no scenario or no mode to run")
	case slices.Contains(c.scenarios, scenarioLatency) && len(c.batches) == 0:
		return nil, errors.New("-batches is empty")
	}
	return c, nil
}

// resolveStreams finds Kafka Streams (building internal/javaref if needed)
// when a scenario that runs it is on. It fails only with -kafka-streams on.
func resolveStreams(cfg *config, logw io.Writer) error {
	if cfg.streamsMode == streamsOff || !slices.ContainsFunc(cfg.scenarios, func(s string) bool {
		return s == scenarioPassthrough || s == scenarioLatency || s == scenarioRestore || s == scenarioGlobal || findStateful(s) != nil
	}) {
		return nil
	}
	ref, why := findJavaRef(logw)
	if ref == nil {
		if cfg.streamsMode == streamsOn {
			return fmt.Errorf("-kafka-streams on: %s", why)
		}
		cfg.streamsSkipped = why
		return nil
	}
	ref.threads = cfg.streamsThreads
	cfg.streams = ref
	return nil
}

func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == countChildArg {
		os.Exit(countChild(os.Args[2:], os.Stdout, os.Stderr))
	}
	reexecMadvFree()
	cfg, err := parseConfig(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if _, err := run(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
