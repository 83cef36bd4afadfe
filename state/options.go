package state

import "time"

// Option configures Open.
type Option func(*config)

type config struct {
	budget   int64
	inMemory bool
	noCache  bool
	flush    time.Duration
}

// DefaultFlushInterval is the FlushInterval of a DB opened without the
// option: 30 s, Kafka Streams' default commit interval, at which it flushes
// its RocksDB stores.
const DefaultFlushInterval = 30 * time.Second

// FlushInterval sets how often, at most, a commit starts a flush of Pebble's
// memtables to sstables (default DefaultFlushInterval). The DB runs Pebble
// without a write-ahead log (see Open): what is not flushed is lost in a
// crash, and the restart replays it from the changelogs. A shorter interval
// shortens that replay and makes more, smaller sstables.
func FlushInterval(d time.Duration) Option {
	return func(c *config) { c.flush = d }
}

func (c *config) flushInterval() time.Duration {
	if c.flush <= 0 {
		return DefaultFlushInterval
	}
	return c.flush
}

const (
	// DefaultMemoryBudget is the memory budget of a DB opened without the
	// MemoryBudget option: 256 MiB.
	DefaultMemoryBudget int64 = 256 << 20

	// MinMemoryBudget is the smallest memory budget: 64 MiB.
	MinMemoryBudget int64 = 64 << 20

	// MinCacheBudget is the smallest memory budget with a fastcache: 256
	// MiB, because a fastcache holds at least 32 MiB of entries (512 buckets
	// of one 64 KiB chunk), gets an eighth of the budget for them, and costs
	// twice as much again in Go heap (see MemoryBudget).
	MinCacheBudget int64 = 256 << 20

	// memTableCount is Pebble's MemTableStopWritesThreshold: the memtable
	// share of the budget is split into this many memtables, one being
	// written while the others flush.
	memTableCount = 4
)

// MemoryBudget bounds the memory of the whole DB, for all its stores and
// partitions together. The default is DefaultMemoryBudget (256 MiB); values
// below MinMemoryBudget (64 MiB) are raised to it.
//
// The budget is split in eighths: a quarter for Pebble's block cache, which
// Pebble's memtables (4 of budget/16, MemTableStopWritesThreshold 4) are
// part of, since Pebble charges its memtables, and a restore's large
// batches until they are flushed, to its cache: cached blocks get what the
// memtables leave; an eighth for the entries of the fastcache in front of
// Pebble; a quarter for the fastcache's index, which fastcache keeps on the
// Go heap; and three eighths that the DB does not allocate, headroom for
// part of what lies outside the budget (below). The fastcache index is a
// map of 16 bytes per entry plus the map's slack, and for small entries (a count's
// key and value take about 30 bytes) it holds up to two generations of
// entries, since fastcache drops the stale ones only when a bucket wraps
// around: about as many bytes as the entries. The garbage collector then
// lets the heap grow to twice what is live (GOGC=100), hence a quarter.
// Budgets below MinCacheBudget (256 MiB), and WithoutCache, have no
// fastcache: the block cache (memtables included) gets three quarters.
//
// A quarter for the cached blocks beside the memtables' quarter made the
// 10M-key count below 25% faster (162k records/s against 130k, on 2 cores),
// but its peak RSS 431 MiB against 308, past the budget plus 128 MiB; an
// eighth beside them, 143k records/s and 382 MiB.
//
// Outside the budget: the Go heap of the tasks' write batches, output
// buffers and iterators, with its garbage-collection headroom, Pebble's
// table metadata and compaction buffers, and malloc fragmentation: Pebble
// allocates its block cache and memtables with C malloc, whose per-thread
// arenas can hold twice the budget's Pebble share in a busy process. For a
// process to stay within the budget plus 128 MiB, run it with
// MALLOC_ARENA_MAX=2 in its environment and a Go memory limit (GOMEMLIMIT,
// or debug.SetMemoryLimit) of GoMemoryLimit plus the application's own
// heap. Measured with a count aggregation over 10M distinct keys in 64
// tasks at the default budget (go run ./internal/bench -scenarios count),
// the peak RSS was 313 MiB with both settings. It was 435 MiB without the
// Go memory limit (and with three eighths of the budget for the block
// cache), and 628 MiB with neither setting and the previous split (a
// quarter each for the memtables, the block cache, the fastcache's entries
// and its index).
func MemoryBudget(bytes int64) Option {
	return func(c *config) { c.budget = bytes }
}

// GoMemoryLimit returns the Go memory limit (GOMEMLIMIT) for the Go heap of
// a DB opened with opts (MemoryBudget, WithoutCache) and of its tasks: the
// fastcache index's share of the budget (none without a fastcache) plus 96
// MiB for the tasks' write batches, iterators and output buffers, Pebble's
// Go allocations, and garbage. A process that holds more on the Go heap
// adds its own.
func GoMemoryLimit(opts ...Option) int64 {
	var c config
	for _, o := range opts {
		o(&c)
	}
	return 2*splitBudget(c.budget, c.noCache).fastcache + goHeapAllowance
}

// goHeapAllowance is the part of GoMemoryLimit that is not the fastcache
// index.
const goHeapAllowance = 96 << 20

// InMemory keeps the Pebble files in memory (vfs.NewMem) instead of in the
// directory passed to Open, which then only names the database. The data is
// lost on Close. For tests.
func InMemory() Option {
	return func(c *config) { c.inMemory = true }
}

// WithoutCache disables the fastcache in front of Pebble: every Get reads
// Pebble, whose block cache gets the cache's share of the memory budget. For
// benchmarks and for processes whose stores are scanned rather than read by
// key.
func WithoutCache() Option {
	return func(c *config) { c.noCache = true }
}

// split is the division of a memory budget between the caches and the
// memtables. blockCache is the capacity of Pebble's cache, which Pebble
// charges its memtables (memTables at most) to.
type split struct {
	fastcache, blockCache, memTables int64
}

// splitBudget divides budget as documented on MemoryBudget. The quarter for
// the fastcache's index and the eighth for Pebble's other allocations are
// not allocated here: they are what those cost.
func splitBudget(budget int64, noCache bool) split {
	if budget <= 0 {
		budget = DefaultMemoryBudget
	}
	budget = max(budget, MinMemoryBudget)
	s := split{memTables: budget / 4}
	if !noCache && budget >= MinCacheBudget {
		s.fastcache = budget / 8
		s.blockCache = budget / 4
	} else {
		s.blockCache = budget - s.memTables
	}
	return s
}
