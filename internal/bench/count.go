package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/bits"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/internal/graph"
	krt "github.com/kstreamgo/kstream/internal/runtime"
	"github.com/kstreamgo/kstream/serde"
	"github.com/kstreamgo/kstream/state"
)

// The count scenario: a count aggregation over many distinct keys, run by
// the real tasks on a state.DB without Kafka, in a child process whose peak
// resident set size is compared with the DB's memory budget.

const (
	scenarioCount = "count"

	// countChildArg, as the first argument, makes the bench binary run the
	// count workload (countChild) instead of the harness.
	countChildArg = "-count-child"

	// countRSSSlack is how far above the memory budget the peak RSS may go:
	// the Go heap, Pebble's metadata and buffers, the binary.
	countRSSSlack = 128 << 20

	// countBatch is how many input records are generated, routed to their
	// partitions and processed at a time.
	countBatch = 10_000

	// countCommitEvery is how many input records are processed between
	// commits. A commit commits every task, as the runtime does at the end
	// of a commit interval; at about 500k records/s this is a commit every
	// 200 ms.
	countCommitEvery = 100_000

	// countSample is how many keys the workload reads back at the end.
	countSample = 1000

	// countArenaEnv limits glibc's malloc arenas in the child, as
	// state.MemoryBudget recommends (unless the harness's environment sets
	// it): Pebble's C allocations from many threads otherwise fragment. The
	// child also gets GOMEMLIMIT=state.GoMemoryLimit unless the environment
	// sets GOMEMLIMIT ("off": none).
	countArenaEnv = "MALLOC_ARENA_MAX"
	countArenas   = "2"

	countAppID = "count-bench"
	countStore = "counts"
)

// countParams is the workload of a count run.
type countParams struct {
	Keys       int   `json:"keys"`
	Partitions int   `json:"partitions"`
	Budget     int64 `json:"budget_bytes"`
	Dir        string
}

// countRecords is the number of input records for keys distinct keys: every
// key once, then every tenth key a second time, so that the final counts are
// 1 and 2 and a tenth of the updates read a committed count back.
func countRecords(keys int) int { return keys + (keys+9)/10 }

// countKey returns the key of input record i: the keys come in a scattered
// order, the same in both passes.
func countKey(dst []byte, i, keys int) ([]byte, int) {
	k := i
	if i >= keys {
		k = (i - keys) * 10
	}
	k = int((uint64(k) * 2654435761) % uint64(keys)) // a permutation: 2654435761 is a prime above keys
	dst = append(dst[:0], "key-"...)
	return strconv.AppendInt(dst, int64(k), 10), k
}

// countWant is the count the workload ends with for key number k: 2 if the
// first-pass record that has it, i with i*2654435761 = k (mod keys), is
// repeated in the second pass (i is a multiple of 10), else 1.
func countWant(k, keys int) int64 {
	m := uint64(keys)
	inv := modInverse(2654435761%m, m)
	hi, lo := bits.Mul64(uint64(k), inv)
	if bits.Rem64(hi, lo, m)%10 == 0 {
		return 2
	}
	return 1
}

// modInverse returns x with a*x = 1 (mod m), for a prime to m.
func modInverse(a, m uint64) uint64 {
	if m == 1 {
		return 0
	}
	t, newT := int64(0), int64(1)
	r, newR := int64(m), int64(a)
	for newR != 0 {
		q := r / newR
		t, newT = newT, t-q*newT
		r, newR = newR, r-q*newR
	}
	if t < 0 {
		t += int64(m)
	}
	return uint64(t)
}

// countResult is what the child reports.
type countResult struct {
	countParams
	Records    int64   `json:"records"`
	Seconds    float64 `json:"seconds"`
	CPUSeconds float64 `json:"cpu_seconds"`
	Commits    int     `json:"commits"`
	Checked    int     `json:"checked"`
	// PeakRSS is the child's VmHWM (0 where /proc is missing).
	PeakRSS int64 `json:"peak_rss_bytes"`
	// MallocArenas and GoMemLimit are the child's MALLOC_ARENA_MAX and
	// GOMEMLIMIT ("" if unset).
	MallocArenas string `json:"malloc_arena_max"`
	GoMemLimit   string `json:"gomemlimit"`
	// PeakGoBytes is the largest memory held by the Go runtime seen
	// (mapped and not returned to the OS, sampled every 100 ms); it
	// excludes Pebble's C allocations and the fastcache's mmap'ed chunks.
	PeakGoBytes int64 `json:"peak_go_bytes"`
	// The DB's sizes at the end of the run, before Close.
	CacheBytes      uint64 `json:"cache_bytes"`
	BlockCacheBytes int64  `json:"block_cache_bytes"`
	MemTableBytes   uint64 `json:"memtable_bytes"`
	DiskBytes       uint64 `json:"disk_bytes"`
}

// runCount runs the count workload in a child process (the bench binary
// again, with countChildArg) and reports it as a row.
func runCount(ctx context.Context, cfg *config, prog *progress, logw io.Writer) (row, error) {
	p := countParams{Keys: cfg.countKeys, Partitions: cfg.countPartitions, Budget: cfg.countBudget}
	r := row{Scenario: scenarioCount, Mode: "-", Impl: implKstream,
		Variant: fmt.Sprintf("keys=%d partitions=%d budget=%dMiB", p.Keys, p.Partitions, p.Budget>>20)}
	dir, err := os.MkdirTemp("", "kstream-bench-count-")
	if err != nil {
		return r, fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(dir)
	p.Dir = dir
	exe, err := os.Executable()
	if err != nil {
		return r, fmt.Errorf("bench: %w", err)
	}
	var done atomic.Int64
	prog.set("count", done.Load)
	res, err := runCountChild(ctx, exe, p, &done, logw)
	prog.set("count: done", nil)
	if err != nil {
		return r, err
	}
	fillCountRow(&r, res)
	return r, nil
}

// fillCountRow puts a child's result into a row: the rates, and the peak RSS
// against the budget in the note.
func fillCountRow(r *row, res *countResult) {
	r.Records = res.Records
	r.Seconds = res.Seconds
	if res.Seconds > 0 {
		r.RecordsPerSec = float64(res.Records) / res.Seconds
	}
	r.CPUSeconds = res.CPUSeconds
	if res.Records > 0 {
		r.CPUSecPerMRec = res.CPUSeconds / (float64(res.Records) / 1e6)
	}
	within := "unknown (no /proc/self/status)"
	if res.PeakRSS > 0 {
		within = "no"
		if res.PeakRSS <= res.Budget+countRSSSlack {
			within = "yes"
		}
	}
	unset := func(v string) string {
		if v == "" {
			return "unset"
		}
		return v
	}
	r.Note = fmt.Sprintf("peak RSS %d MiB, budget %d MiB, within budget+128MiB: %s; Go peak %d MiB, cache %d MiB, block cache %d MiB, memtables %d MiB at end; MALLOC_ARENA_MAX %s, GOMEMLIMIT %s; %d keys checked",
		res.PeakRSS>>20, res.Budget>>20, within, res.PeakGoBytes>>20, res.CacheBytes>>20, res.BlockCacheBytes>>20,
		res.MemTableBytes>>20, unset(res.MallocArenas), unset(res.GoMemLimit), res.Checked)
}

// runCountChild runs exe with countChildArg and p, counting the records it
// reports on stderr into done, and returns its result.
func runCountChild(ctx context.Context, exe string, p countParams, done *atomic.Int64, logw io.Writer) (*countResult, error) {
	cmd := exec.CommandContext(ctx, exe, countChildArg,
		"-keys", strconv.Itoa(p.Keys), "-partitions", strconv.Itoa(p.Partitions),
		"-budget", strconv.FormatInt(p.Budget, 10), "-dir", p.Dir)
	// The child's peak RSS is what it measures: freed heap must leave it
	// (MADV_DONTNEED), not stay counted until the kernel wants it back
	// (MADV_FREE, which this process runs with: reexecMadvFree).
	cmd.Env = godebugSet(os.Environ(), "madvdontneed", "1")
	if _, ok := os.LookupEnv(countArenaEnv); !ok {
		cmd.Env = append(cmd.Env, countArenaEnv+"="+countArenas)
	}
	if _, ok := os.LookupEnv("GOMEMLIMIT"); !ok {
		limit := state.GoMemoryLimit(state.MemoryBudget(p.Budget))
		cmd.Env = append(cmd.Env, fmt.Sprintf("GOMEMLIMIT=%dMiB", limit>>20))
	}
	var stdout strings.Builder
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("bench: count: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: count: %w", err)
	}
	var errLines []string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := sc.Text()
		if n, ok := strings.CutPrefix(line, "progress "); ok {
			v, _ := strconv.ParseInt(n, 10, 64)
			done.Store(v)
			continue
		}
		errLines = append(errLines, line)
		fmt.Fprintln(logw, line)
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("bench: count child: %w: %s", err, strings.Join(errLines, "; "))
	}
	var res countResult
	if err := json.Unmarshal([]byte(stdout.String()), &res); err != nil {
		return nil, fmt.Errorf("bench: count child result %q: %w", stdout.String(), err)
	}
	return &res, nil
}

// countChild is the child process: it runs the workload and writes its
// result as JSON to stdout, and progress lines to stderr. It returns the
// exit code.
func countChild(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("count-child", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var p countParams
	fs.IntVar(&p.Keys, "keys", 0, "distinct keys")
	fs.IntVar(&p.Partitions, "partitions", 0, "partitions")
	fs.Int64Var(&p.Budget, "budget", 0, "memory budget in bytes")
	fs.StringVar(&p.Dir, "dir", "", "state directory")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	last := time.Now()
	res, err := countWorkload(p, func(n int64) {
		if time.Since(last) >= 200*time.Millisecond {
			last = time.Now()
			fmt.Fprintf(stderr, "progress %d\n", n)
		}
	})
	if err != nil {
		fmt.Fprintln(stderr, "count child:", err)
		return 1
	}
	res.PeakRSS = peakRSS()
	res.MallocArenas, res.GoMemLimit = os.Getenv(countArenaEnv), os.Getenv("GOMEMLIMIT")
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		fmt.Fprintln(stderr, "count child:", err)
		return 1
	}
	return 0
}

// countTopology is Source(in) -> GroupByKey -> Count(counts) -> To(out).
func countTopology() (*kstream.Topology, error) {
	b := kstream.NewBuilder()
	in := kstream.Source(b, "in", serde.String, serde.Int64)
	in.GroupByKey().Count(kstream.Named(countStore)).ToStream().To("out", serde.String, serde.Int64)
	return b.Build()
}

// countWorkload counts countRecords(p.Keys) records over p.Keys keys in
// p.Partitions tasks on a DB in p.Dir with budget p.Budget, then checks the
// counts of a sample of keys through the tasks' stores. progress is called
// after every batch with the records processed so far.
func countWorkload(p countParams, progress func(int64)) (res *countResult, err error) {
	if p.Keys <= 0 || p.Partitions <= 0 || p.Dir == "" {
		return nil, fmt.Errorf("bench: count: bad parameters %+v", p)
	}
	topo, err := countTopology()
	if err != nil {
		return nil, err
	}
	db, err := state.Open(filepath.Join(p.Dir, "db"), state.MemoryBudget(p.Budget))
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	cfg := &krt.Config{AppID: countAppID, DB: db}
	tasks := make([]*krt.Task, p.Partitions)
	for i := range tasks {
		t, err := krt.NewTask(topo, cfg, 0, int32(i))
		if err != nil {
			return nil, err
		}
		defer t.Close()
		tasks[i] = t
	}
	stopSampler := sampleGoMemory()

	res = &countResult{countParams: p}
	n := countRecords(p.Keys)
	parts := make([][]graph.RawRecord, p.Partitions)
	offsets := make([]int64, p.Partitions)
	one, _ := serde.Int64.Append(nil, 1)
	var arena, key []byte
	commit := func() error {
		for i, t := range tasks {
			if err := t.Commit(map[string]int64{"in/" + strconv.Itoa(i): offsets[i]}); err != nil {
				return err
			}
		}
		res.Commits++
		return nil
	}
	cpu0, t0 := cpuSeconds(), time.Now()
	sinceCommit := 0
	for start := 0; start < n; start += countBatch {
		end := min(start+countBatch, n)
		arena = arena[:0]
		for i := range parts {
			parts[i] = parts[i][:0]
		}
		// Keys live in one arena per batch: reserve it so that appends do
		// not move the keys already taken.
		if need := (end - start) * 24; cap(arena) < need {
			arena = make([]byte, 0, need)
		}
		for i := start; i < end; i++ {
			key, _ = countKey(key, i, p.Keys)
			ks := len(arena)
			arena = append(arena, key...)
			k := arena[ks:len(arena):len(arena)]
			pt := krt.PartitionForKey(k, int32(p.Partitions))
			parts[pt] = append(parts[pt], graph.RawRecord{Key: k, Value: one, Timestamp: int64(i), Offset: offsets[pt]})
			offsets[pt]++
		}
		for i, t := range tasks {
			if len(parts[i]) == 0 {
				continue
			}
			if err := t.Process("in", parts[i]); err != nil {
				return nil, err
			}
			t.Output().Reset() // the records for "out" and the changelog: discarded
		}
		sinceCommit += end - start
		if sinceCommit >= countCommitEvery {
			if err := commit(); err != nil {
				return nil, err
			}
			sinceCommit = 0
		}
		progress(int64(end))
	}
	if err := commit(); err != nil {
		return nil, err
	}
	res.Seconds = time.Since(t0).Seconds()
	res.CPUSeconds = cpuSeconds() - cpu0
	res.Records = int64(n)
	st := db.Stats()
	res.CacheBytes, res.BlockCacheBytes, res.MemTableBytes, res.DiskBytes = st.CacheBytes, st.BlockCacheBytes, st.MemTableBytes, st.DiskBytes

	checked, err := countCheck(tasks, p)
	if err != nil {
		return nil, err
	}
	res.Checked = checked
	res.PeakGoBytes = stopSampler()
	return res, nil
}

// countCheck reads the counts of countSample keys, spread over the key
// space, from their tasks' stores: a timestamp (8 bytes) and the count.
func countCheck(tasks []*krt.Task, p countParams) (int, error) {
	step := max(1, p.Keys/countSample)
	checked := 0
	var key []byte
	for k := 0; k < p.Keys; k += step {
		key = strconv.AppendInt(append(key[:0], "key-"...), int64(k), 10)
		t := tasks[krt.PartitionForKey(key, int32(p.Partitions))]
		v, ok, err := t.Store(countStore).Get(key)
		if err != nil {
			return checked, err
		}
		want := countWant(k, p.Keys)
		if !ok || len(v) != 16 {
			return checked, fmt.Errorf("bench: count of %s: %d bytes, found %v; want %d", key, len(v), ok, want)
		}
		if got := int64(binary.BigEndian.Uint64(v[8:])); got != want {
			return checked, fmt.Errorf("bench: count of %s is %d, want %d", key, got, want)
		}
		checked++
	}
	if checked == 0 {
		return 0, errors.New("bench: count: no key checked")
	}
	return checked, nil
}

// sampleGoMemory samples the memory mapped by the Go runtime and not
// returned to the OS every 100 ms until the returned function is called,
// which returns the largest sample.
func sampleGoMemory() func() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	var peak atomic.Int64
	read := func() {
		metrics.Read(s)
		if v := int64(s[0].Value.Uint64() - s[1].Value.Uint64()); v > peak.Load() {
			peak.Store(v)
		}
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				read()
			}
		}
	}()
	return func() int64 {
		close(stop)
		<-stopped
		read()
		return peak.Load()
	}
}

// peakRSS returns the process's peak resident set size in bytes (VmHWM in
// /proc/self/status), or 0.
func peakRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				return kib << 10
			}
		}
	}
	return 0
}
