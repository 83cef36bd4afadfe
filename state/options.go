package state

// Option configures Open.
type Option func(*config)

type config struct {
	budget   int64
	inMemory bool
	noCache  bool
}

const (
	// DefaultMemoryBudget is the memory budget of a DB opened without the
	// MemoryBudget option: 256 MiB.
	DefaultMemoryBudget int64 = 256 << 20

	// MinMemoryBudget is the smallest memory budget: 64 MiB.
	MinMemoryBudget int64 = 64 << 20

	// MinCacheBudget is the smallest memory budget with a fastcache: 128
	// MiB, because a fastcache holds at least 32 MiB of entries (512 buckets
	// of one 64 KiB chunk) plus their index, and gets a quarter of the
	// budget for the entries.
	MinCacheBudget int64 = 128 << 20

	// memTableCount is Pebble's MemTableStopWritesThreshold: the memtable
	// share of the budget is split into this many memtables, one being
	// written while the others flush.
	memTableCount = 4
)

// MemoryBudget bounds the memory of the whole DB, for all its stores and
// partitions together. The default is DefaultMemoryBudget (256 MiB); values
// below MinMemoryBudget (64 MiB) are raised to it.
//
// The budget is split in quarters: Pebble's memtables (4 memtables of
// budget/16, MemTableStopWritesThreshold 4); Pebble's block cache; the
// entries of the fastcache in front of Pebble; and the fastcache's index,
// which fastcache keeps on the Go heap (a map with about 40 bytes per entry,
// as much as the entries themselves when they are small). Budgets below
// MinCacheBudget (128 MiB), and WithoutCache, have no fastcache: the block
// cache gets three quarters.
//
// Outside the budget: the Go heap of write batches (the per-task write
// buffers) and iterators, Pebble's table metadata and compaction buffers,
// Go's garbage-collection headroom (see GOGC and GOMEMLIMIT), and malloc
// fragmentation: Pebble allocates its block cache and memtables with C
// malloc, whose per-thread arenas can hold twice the budget's Pebble share
// in a busy process; MALLOC_ARENA_MAX=2 in the process environment avoids
// that.
func MemoryBudget(bytes int64) Option {
	return func(c *config) { c.budget = bytes }
}

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
// memtables.
type split struct {
	fastcache, blockCache, memTables int64
}

// splitBudget divides budget as documented on MemoryBudget. The quarter for
// the fastcache's index is not allocated here: it is what the index costs.
func splitBudget(budget int64, noCache bool) split {
	if budget <= 0 {
		budget = DefaultMemoryBudget
	}
	budget = max(budget, MinMemoryBudget)
	s := split{memTables: budget / 4}
	if !noCache && budget >= MinCacheBudget {
		s.fastcache = budget / 4
		s.blockCache = budget / 4
	} else {
		s.blockCache = budget - s.memTables
	}
	return s
}
