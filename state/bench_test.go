package state

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/VictoriaMetrics/fastcache"
)

// Benchmarks on a real directory:
//
//	go test -run='^$' -bench=. -benchtime=2s ./state        (1M keys)
//	go test -run='^$' -bench=. -short ./state               (100k keys)
//	go test -run='^$' -bench=MemoryBudgetRSS ./state        (peak RSS)
//
// Keys are 16 bytes, values 100 bytes.

const benchValueSize = 100

func benchKeys() int {
	if testing.Short() {
		return 100_000
	}
	return 1_000_000
}

// benchKey writes the 16-byte key of i into dst: "k" and 15 decimal digits.
// (fmt.Appendf would cost a fifth of a cached Get.)
func benchKey(dst []byte, i int) []byte {
	dst = append(dst[:0], "k000000000000000"...)
	for j := 15; j > 0 && i > 0; j-- {
		dst[j] = byte('0' + i%10)
		i /= 10
	}
	return dst
}

var (
	benchDirOnce sync.Once
	benchDir     string
	benchDirErr  error
	benchDirRoot string
)

// loadedDir returns a state directory holding benchKeys() keys in store
// "bench" partition 0, written once per test binary run.
func loadedDir(b *testing.B) string {
	benchDirOnce.Do(func() {
		root, err := os.MkdirTemp("", "kstream-state-bench-")
		if err != nil {
			benchDirErr = err
			return
		}
		benchDirRoot = root
		benchDir = filepath.Join(root, "db")
		db, err := Open(benchDir)
		if err != nil {
			benchDirErr = err
			return
		}
		s := db.Store("bench", 0)
		batch := db.NewBatch()
		bs := batch.Store(s)
		val := bytes.Repeat([]byte{'v'}, benchValueSize)
		var key []byte
		for i := range benchKeys() {
			key = benchKey(key, i)
			if err := bs.Put(key, val); err != nil {
				benchDirErr = err
				return
			}
			if i%1000 == 999 {
				if err := batch.Commit(); err != nil {
					benchDirErr = err
					return
				}
			}
		}
		benchDirErr = batch.Commit()
		batch.Close()
		if err := db.Close(); benchDirErr == nil {
			benchDirErr = err
		}
	})
	if benchDirErr != nil {
		b.Fatal(benchDirErr)
	}
	return benchDir
}

// openLoaded opens the loaded directory (one DB at a time).
func openLoaded(b *testing.B, opts ...Option) *DB {
	db, err := Open(loadedDir(b), opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := db.Close(); err != nil {
			b.Error(err)
		}
	})
	return db
}

// stride visits the keys in a scattered order without a random number
// generator in the loop: i*stride mod n for a stride prime to n.
const stride = 7919

// getter reads one key of a store: Get, or GetAppend with a reused buffer.
type getter func(key []byte) ([]byte, bool, error)

func plainGet(s Store) getter { return s.Get }

func appendGet(s Store) getter {
	ag := s.(AppendGetter)
	var buf []byte
	return func(key []byte) ([]byte, bool, error) {
		v, ok, err := ag.GetAppend(buf[:0], key)
		buf = v
		return v, ok, err
	}
}

// warmCache reads every key of the loaded store once, filling the cache.
func warmCache(b *testing.B, s Store) {
	var key []byte
	for i := range benchKeys() {
		key = benchKey(key, i)
		if _, ok, err := s.Get(key); !ok || err != nil {
			b.Fatalf("warm-up Get(%s): %v, %v", key, ok, err)
		}
	}
}

// reportGets reports gets/s and gets/s/core (gets/s over the goroutines
// reading, at most GOMAXPROCS).
func reportGets(b *testing.B, goroutines int) {
	perSec := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(perSec, "gets/s")
	b.ReportMetric(perSec/float64(min(goroutines, runtime.GOMAXPROCS(0))), "gets/s/core")
}

func benchGets(b *testing.B, db *DB, s Store, warm bool, get func(Store) getter) {
	n := benchKeys()
	if warm {
		warmCache(b, s)
	}
	g := get(s)
	var key []byte
	before := db.Stats()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU()
	i := 0
	for b.Loop() {
		i = (i + stride) % n
		key = benchKey(key, i)
		v, ok, err := g(key)
		if !ok || err != nil || len(v) != benchValueSize {
			b.Fatalf("Get(%s): %d bytes, %v, %v", key, len(v), ok, err)
		}
	}
	cpu.report(b)
	reportGets(b, 1)
	after := db.Stats()
	if gets := after.CacheGets - before.CacheGets; gets > 0 {
		hits := gets - (after.CacheMisses - before.CacheMisses)
		b.ReportMetric(100*float64(hits)/float64(gets), "hit%")
	}
}

// hitBudget is the memory budget of the cache-hit benchmarks: its 256 MiB
// fastcache holds the 1M keys with their 100-byte values (121 MiB of
// entries).
const hitBudget = 2 << 30

// BenchmarkGet reads random keys of the loaded store on one goroutine.
//   - cache-hit: every key is in the fastcache (MemoryBudget(2 GiB)), read
//     with Get, which returns a new slice;
//   - cache-hit-append: the same with AppendGetter.GetAppend into a reused
//     buffer;
//   - batch-cache-hit-append: the same through a Batch's view, as a task
//     reads (the batch is empty: no key is written);
//   - fastcache-only, fastcache-only-append: the floor, fastcache alone with
//     the same entries, HasGet into a new slice or a reused buffer;
//   - nocache: WithoutCache, every Get is a Pebble point read (bloom
//     filters, block cache of 192 MiB);
//   - small-cache: MemoryBudget(256 MiB), whose 32 MiB fastcache holds a
//     fraction of the 1M-key working set: mostly misses that fill the cache.
func BenchmarkGet(b *testing.B) {
	view := func(db *DB) Store { return db.Store("bench", 0) }
	b.Run("cache-hit", func(b *testing.B) {
		db := openLoaded(b, MemoryBudget(hitBudget))
		benchGets(b, db, view(db), true, plainGet)
	})
	b.Run("cache-hit-append", func(b *testing.B) {
		db := openLoaded(b, MemoryBudget(hitBudget))
		benchGets(b, db, view(db), true, appendGet)
	})
	b.Run("batch-cache-hit-append", func(b *testing.B) {
		db := openLoaded(b, MemoryBudget(hitBudget))
		batch := db.NewBatch()
		defer batch.Close()
		benchGets(b, db, batch.Store(view(db)), true, appendGet)
	})
	fastcacheOnly := func(b *testing.B, reuse bool) {
		c := fastcache.New(int(splitBudget(hitBudget, false).fastcache))
		defer c.Reset()
		n := benchKeys()
		val := bytes.Repeat([]byte{'v'}, benchValueSize)
		var key, buf []byte
		for i := range n {
			key = benchKey(key, i)
			c.Set(key, val)
		}
		b.ReportAllocs()
		cpu := startCPU()
		i := 0
		for b.Loop() {
			i = (i + stride) % n
			key = benchKey(key, i)
			var v []byte
			var ok bool
			if reuse {
				v, ok = c.HasGet(buf[:0], key)
				buf = v
			} else {
				v, ok = c.HasGet(nil, key)
			}
			if !ok || len(v) != benchValueSize {
				b.Fatalf("HasGet(%s): %d bytes, %v", key, len(v), ok)
			}
		}
		cpu.report(b)
		reportGets(b, 1)
	}
	b.Run("fastcache-only", func(b *testing.B) { fastcacheOnly(b, false) })
	b.Run("fastcache-only-append", func(b *testing.B) { fastcacheOnly(b, true) })
	b.Run("nocache", func(b *testing.B) {
		db := openLoaded(b, WithoutCache())
		benchGets(b, db, view(db), true, plainGet)
	})
	b.Run("small-cache", func(b *testing.B) {
		db := openLoaded(b, MemoryBudget(256<<20))
		benchGets(b, db, view(db), true, plainGet)
	})
}

// BenchmarkGetParallel is BenchmarkGet/cache-hit on GOMAXPROCS goroutines,
// with Get and with GetAppend into a buffer per goroutine.
func BenchmarkGetParallel(b *testing.B) {
	db := openLoaded(b, MemoryBudget(hitBudget))
	s := db.Store("bench", 0)
	warmCache(b, s)
	n := benchKeys()
	for _, mode := range []struct {
		name string
		get  func(Store) getter
	}{{"get", plainGet}, {"append", appendGet}} {
		b.Run(mode.name, func(b *testing.B) {
			b.ReportAllocs()
			var seq sync.Mutex
			next := 0
			cpu := startCPU()
			b.RunParallel(func(pb *testing.PB) {
				seq.Lock()
				i := next * 104729
				next++
				seq.Unlock()
				g := mode.get(s)
				var key []byte
				for pb.Next() {
					i = (i + stride) % n
					key = benchKey(key, i)
					if _, ok, err := g(key); !ok || err != nil {
						b.Errorf("Get(%s): %v, %v", key, ok, err)
						return
					}
				}
			})
			cpu.report(b)
			reportGets(b, runtime.GOMAXPROCS(0))
		})
	}
}

// BenchmarkPut writes 16-byte keys with 100-byte values, overwriting keys of
// a 1M-key space in scattered order.
//   - batched: through a Batch committed every 1000 writes, as a task does
//     (default budget: 16 MiB memtables; the commit puts the values into the
//     fastcache);
//   - batched-nocache: the same WithoutCache;
//   - batched-64MiB: MemoryBudget(64 MiB): 4 MiB memtables, no fastcache;
//   - unbatched: Store.Put, one Pebble commit per write.
func BenchmarkPut(b *testing.B) {
	val := bytes.Repeat([]byte{'w'}, benchValueSize)
	n := benchKeys()
	batched := func(b *testing.B, opts ...Option) {
		db := openDB(b, b.TempDir(), opts...)
		batch := db.NewBatch()
		defer batch.Close()
		s := batch.Store(db.Store("bench", 0))
		var key []byte
		b.ReportAllocs()
		cpu := startCPU()
		i := 0
		for b.Loop() {
			i++
			key = benchKey(key, (i*stride)%n)
			if err := s.Put(key, val); err != nil {
				b.Fatal(err)
			}
			if i%1000 == 0 {
				if err := batch.Commit(); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := batch.Commit(); err != nil {
			b.Fatal(err)
		}
		cpu.report(b)
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
	}
	b.Run("batched", func(b *testing.B) { batched(b) })
	b.Run("batched-nocache", func(b *testing.B) { batched(b, WithoutCache()) })
	b.Run("batched-64MiB", func(b *testing.B) { batched(b, MemoryBudget(64<<20)) })
	b.Run("unbatched", func(b *testing.B) {
		db := openDB(b, b.TempDir())
		s := db.Store("bench", 0)
		var key []byte
		b.ReportAllocs()
		cpu := startCPU()
		i := 0
		for b.Loop() {
			i++
			key = benchKey(key, (i*stride)%n)
			if err := s.Put(key, val); err != nil {
				b.Fatal(err)
			}
		}
		cpu.report(b)
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
	})
}

// cpuClock measures the CPU time of the process (all threads, user and
// system), which on a shared machine is steadier than wall time.
type cpuClock struct{ start time.Duration }

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuClock { return cpuClock{processCPU()} }

// report reports the CPU time per operation and the operations per CPU
// second.
func (c cpuClock) report(b *testing.B) {
	d := processCPU() - c.start
	if d <= 0 {
		return
	}
	b.ReportMetric(float64(d.Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(b.N)/d.Seconds(), "ops/cpu-s")
}

// rssChildEnv, when set, makes the test binary run rssChild instead of the
// tests (see TestMain): a fresh process, so that its peak RSS is the
// workload's alone. Its value is the directory to use.
const rssChildEnv = "KSTREAM_STATE_RSS_CHILD"

// rssBudgetEnv is the child's memory budget in MiB.
const rssBudgetEnv = "KSTREAM_STATE_RSS_BUDGET_MIB"

const (
	rssKeys  = 2_000_000
	rssReads = 200_000
)

// BenchmarkBatchUpdate is a count aggregation's store traffic: each
// operation reads an 8-byte count through a Batch's view, adds one and
// writes it back; the batch commits every 1000 operations, as a task
// commits. Keys cycle over a key space of:
//   - keys=100: every key is written again within a commit, so most reads
//     find the key in the batch;
//   - keys=100000: most keys are new to each commit (read from the cache).
func BenchmarkBatchUpdate(b *testing.B) {
	for _, n := range []int{100, 100_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			db := openDB(b, b.TempDir())
			batch := db.NewBatch()
			defer batch.Close()
			s := batch.Store(db.Store("bench", 0))
			var key, val []byte
			b.ReportAllocs()
			cpu := startCPU()
			i := 0
			for b.Loop() {
				i++
				key = benchKey(key, (i*stride)%n)
				v, found, err := GetAppend(s, val[:0], key)
				if err != nil {
					b.Fatal(err)
				}
				var c uint64
				if found {
					c = binary.BigEndian.Uint64(v)
				}
				val = binary.BigEndian.AppendUint64(v[:0], c+1)
				if err := s.Put(key, val); err != nil {
					b.Fatal(err)
				}
				if i%1000 == 0 {
					if err := batch.Commit(); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := batch.Commit(); err != nil {
				b.Fatal(err)
			}
			cpu.report(b)
		})
	}
}

// BenchmarkMemoryBudgetRSS writes 2M distinct 16-byte keys with 8-byte
// values in a child process, through batches of 10,000, then reads 200k of
// them, and reports the child's peak RSS (VmHWM). It reports; it asserts
// nothing. The sub-benchmarks vary the budget (64 MiB has no fastcache, 256
// MiB has one) and glibc's MALLOC_ARENA_MAX: Pebble allocates its caches
// with C malloc, and the default per-thread arenas fragment.
func BenchmarkMemoryBudgetRSS(b *testing.B) {
	for _, budget := range []int{64, 256} {
		for _, arenas := range []string{"", "2"} {
			name := fmt.Sprintf("budget=%dMiB", budget)
			if arenas != "" {
				name += ",MALLOC_ARENA_MAX=" + arenas
			}
			b.Run(name, func(b *testing.B) {
				for b.Loop() {
					cmd := exec.Command(os.Args[0], "-test.run=^$")
					cmd.Env = append(os.Environ(), rssChildEnv+"="+b.TempDir(), fmt.Sprintf("%s=%d", rssBudgetEnv, budget))
					if arenas != "" {
						cmd.Env = append(cmd.Env, "MALLOC_ARENA_MAX="+arenas)
					}
					out, err := cmd.CombinedOutput()
					if err != nil {
						b.Fatalf("child: %v\n%s", err, out)
					}
					sc := bufio.NewScanner(bytes.NewReader(out))
					for sc.Scan() {
						line := sc.Text()
						if v, ok := strings.CutPrefix(line, "VmHWM-KiB "); ok {
							kib, _ := strconv.ParseFloat(v, 64)
							b.ReportMetric(kib/1024, "peak-RSS-MiB")
						} else if line != "" {
							b.Log(line)
						}
					}
				}
			})
		}
	}
}

// rssChild is the child process of BenchmarkMemoryBudgetRSS.
func rssChild() int {
	dir := os.Getenv(rssChildEnv)
	fail := func(err error) int {
		fmt.Println("error:", err)
		return 1
	}
	budget, err := strconv.ParseInt(os.Getenv(rssBudgetEnv), 10, 64)
	if err != nil {
		return fail(err)
	}
	db, err := Open(filepath.Join(dir, "db"), MemoryBudget(budget<<20))
	if err != nil {
		return fail(err)
	}
	s := db.Store("rss", 0)
	batch := db.NewBatch()
	bs := batch.Store(s)
	key := make([]byte, 16)
	val := make([]byte, 8)
	setKey := func(i int) {
		binary.BigEndian.PutUint64(key, uint64(i)*0x9E3779B97F4A7C15) // scattered
		binary.BigEndian.PutUint64(key[8:], uint64(i))                // distinct
	}
	start := time.Now()
	for i := range rssKeys {
		setKey(i)
		binary.BigEndian.PutUint64(val, uint64(i))
		if err := bs.Put(key, val); err != nil {
			return fail(err)
		}
		if i%10_000 == 9_999 {
			if err := batch.Commit(); err != nil {
				return fail(err)
			}
		}
	}
	if err := batch.Commit(); err != nil {
		return fail(err)
	}
	afterWrites := vmHWM()
	writeTime := time.Since(start)
	start = time.Now()
	for i := range rssReads {
		setKey(i * (rssKeys / rssReads))
		if _, ok, err := s.Get(key); !ok || err != nil {
			return fail(fmt.Errorf("key %d: %v, %v", i, ok, err))
		}
	}
	readTime := time.Since(start)
	st := db.Stats()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("%d writes in %v, %d reads in %v\n", rssKeys, writeTime.Round(time.Millisecond),
		rssReads, readTime.Round(time.Millisecond))
	fmt.Printf("VmHWM after writes %d MiB; fastcache %d MiB of %d, block cache %d MiB, memtables %d MiB, disk %d MiB; Go heap in use %d MiB, Go sys %d MiB\n",
		afterWrites>>10, st.CacheBytes>>20, st.CacheMaxBytes>>20, st.BlockCacheBytes>>20, st.MemTableBytes>>20,
		st.DiskBytes>>20, ms.HeapInuse>>20, ms.Sys>>20)
	batch.Close()
	if err := db.Close(); err != nil {
		return fail(err)
	}
	fmt.Printf("VmHWM-KiB %d\n", vmHWM())
	return 0
}

// vmHWM returns the process's peak resident set size in KiB, from
// /proc/self/status, or -1.
func vmHWM() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

func TestBenchKey(t *testing.T) {
	for _, i := range []int{0, 7, 1234567, 999_999_999_999_999} {
		if got, want := string(benchKey(nil, i)), fmt.Sprintf("k%015d", i); got != want {
			t.Errorf("benchKey(%d) = %q, want %q", i, got, want)
		}
	}
}

// loadKeys writes benchKeys() distinct keys with 100-byte values in a
// scattered order (as a compacted changelog holds them) into store "bench"
// partition 0 of db through put, calling commit whenever full reports true
// and once at the end.
func loadKeys(b *testing.B, put func(key, value []byte) error, full func(i int) bool, commit func() error) {
	val := bytes.Repeat([]byte{'r'}, benchValueSize)
	n := benchKeys()
	var key []byte
	for i := range n {
		key = benchKey(key, (i*stride)%n)
		if err := put(key, val); err != nil {
			b.Fatal(err)
		}
		if full(i) {
			if err := commit(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := commit(); err != nil {
		b.Fatal(err)
	}
}

// benchLoad measures one restore of benchKeys() records per iteration into
// a fresh DB in a real directory (default budget): from the first write to
// the return of the last commit, not waiting for Pebble's flushes and
// compactions beyond what the commits wait for. Opening and closing the DB
// are not measured.
func benchLoad(b *testing.B, load func(b *testing.B, db *DB)) {
	n := benchKeys()
	b.ReportAllocs()
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		db, err := Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		c := startCPU()
		b.StartTimer()
		load(b, db)
		b.StopTimer()
		cpu += processCPU() - c.start
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		os.RemoveAll(dir)
		b.StartTimer()
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*n), "cpu-ns/record")
}

// BenchmarkLoader restores 1M records (16-byte keys in scattered order,
// 100-byte values) into a fresh DB and reports records/s:
//   - loader: a Loader committed every LoaderCommitBytes;
//   - loader-commit=N: committed every N bytes instead, to choose
//     LoaderCommitBytes;
//   - batch: the same writes through Batch.Store and Batch.Commit every
//     4096 records, as a task's restore without a Loader.
func BenchmarkLoader(b *testing.B) {
	loader := func(commitBytes int, async bool) func(b *testing.B, db *DB) {
		return func(b *testing.B, db *DB) {
			l := db.NewLoader()
			defer l.Close()
			s := db.Store("bench", 0)
			commit := l.Commit
			if async {
				commit = l.CommitAsync
			}
			loadKeys(b, func(k, v []byte) error { return l.Put(s, k, v) },
				func(int) bool { return l.Size() >= commitBytes }, commit)
			if err := l.Commit(); err != nil { // waits for the last CommitAsync
				b.Fatal(err)
			}
		}
	}
	b.Run("loader", func(b *testing.B) { benchLoad(b, loader(LoaderCommitBytes, false)) })
	b.Run("loader-async", func(b *testing.B) { benchLoad(b, loader(LoaderCommitBytes, true)) })
	if !testing.Short() {
		for _, mib := range []int{2, 4, 16, 32} {
			b.Run(fmt.Sprintf("loader-async-commit=%dMiB", mib), func(b *testing.B) { benchLoad(b, loader(mib<<20, true)) })
		}
	}
	b.Run("batch", func(b *testing.B) {
		benchLoad(b, func(b *testing.B, db *DB) {
			batch := db.NewBatch()
			defer batch.Close()
			s := batch.Store(db.Store("bench", 0))
			loadKeys(b, s.Put, func(i int) bool { return i%4096 == 4095 }, batch.Commit)
		})
	})
}

// BenchmarkMemoryPut restores benchKeys() distinct 16-byte keys with
// 100-byte values, in scattered order, into a fresh Memory per iteration
// (then overwrites them all once: "overwrite"), and reports ns per Put.
func BenchmarkMemoryPut(b *testing.B) {
	val := bytes.Repeat([]byte{'m'}, benchValueSize)
	n := benchKeys()
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = benchKey(nil, (i*stride)%n)
	}
	for _, overwrite := range []bool{false, true} {
		name := "new-keys"
		if overwrite {
			name = "overwrite"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				m := NewMemory()
				if overwrite {
					for _, k := range keys {
						m.Put(k, val)
					}
				}
				runtime.GC()
				b.StartTimer()
				for _, k := range keys {
					if err := m.Put(k, val); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/put")
		})
	}
}

// BenchmarkMemoryApply restores benchKeys() distinct 16-byte keys with
// 8-byte values (a count's changelog), in scattered order, into a fresh
// Memory per iteration, reserved for them, with Apply in chunks of 4096 as
// the runtime's restore does, and reports ns per key.
func BenchmarkMemoryApply(b *testing.B) {
	n := benchKeys()
	keys := make([][]byte, n)
	vals := make([][]byte, n)
	for i := range keys {
		keys[i] = benchKey(nil, (i*stride)%n)
		vals[i] = binary.BigEndian.AppendUint64(nil, uint64(i))
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		m := NewMemory()
		runtime.GC()
		b.StartTimer()
		m.Reserve(n)
		for i := 0; i < n; i += 4096 {
			e := min(i+4096, n)
			if err := m.Apply(keys[i:e], vals[i:e]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/key")
}
