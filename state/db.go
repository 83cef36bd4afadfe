package state

import (
	"errors"
	"fmt"
	"hash/maphash"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/fastcache"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/kstreamgo/kstream/serde"
)

// numStripes is the number of locks that order cache fills against writes;
// a key's lock is chosen by a hash of its Pebble key.
const numStripes = 256

// maxCacheEntry bounds the cache key plus value that go into fastcache. A
// fastcache Set of 64 KiB or more (key, value and a 4-byte header) is
// silently dropped and would leave an older entry in place, so larger values
// are never cached: their cache entry is deleted instead, and Get reads them
// from Pebble.
const maxCacheEntry = 64<<10 - 64

// DB is the persistent state of a process: one Pebble database in one state
// directory with one fastcache in front of it, holding every store partition
// of every task, each under its own key prefix (see Store), and the tasks'
// checkpoints. Its memory is bounded by one budget (MemoryBudget) however
// many stores and partitions it holds.
//
// A DB is safe for concurrent use, except Close, which must not run
// concurrently with any other use of the DB, its store views or batches.
type DB struct {
	pdb      *pebble.DB
	cache    *fastcache.Cache // nil with WithoutCache
	ingester *ingester

	// flushEvery is FlushInterval; lastFlush, in Unix nanoseconds, is when
	// a commit last asked Pebble to flush (see committed).
	flushEvery time.Duration
	lastFlush  atomic.Int64
	split      split
	seed       maphash.Seed

	closed    atomic.Bool
	iters     atomic.Int64 // open Pebble iterators, for leak tests
	nextEpoch atomic.Uint64
	ingests   atomic.Uint64 // sstables ingested, which names the next one
	// async counts the loader commits being applied on goroutines of
	// their own (Loader.CommitAsync), which Close waits for.
	async sync.WaitGroup

	// stripes order a cache fill after a Pebble read (Get on a cache miss)
	// against writes of the same key: both hold the key's stripe, so a
	// reader can never put a value it read before a write into the cache
	// after that write updated it.
	stripes [numStripes]sync.Mutex

	mu    sync.Mutex
	parts map[string]*partState // by Pebble prefix

	// gate holds Pebble's compactions back while loaders restore.
	gate *compactionGate
}

// partState is shared by all views of one store partition.
type partState struct {
	prefix []byte
	// epoch names the current incarnation of the store partition in the
	// cache: cache keys are epoch+user key. DropPartition moves it to a new
	// value, unique in the process, which makes every cached entry of the
	// old incarnation unreachable at once (fastcache evicts them in time).
	epoch atomic.Uint64
}

// fullKey returns prefix+key in sc's key buffer, valid until sc goes back
// to the pool.
func (p *partState) fullKey(sc *scratch, key []byte) []byte {
	sc.key = append(append(sc.key[:0], p.prefix...), key...)
	return sc.key
}

// Open opens, creating it if needed, the state database in directory dir.
// A directory holds one DB, and a process should open one DB per state
// directory; Pebble locks the directory against a second Open. The
// directory also holds kstream-ingest, where loaders write the sstables
// that Pebble ingests (see Loader); Open empties it.
//
// The Pebble options are tuned for point reads and bounded memory:
//   - bloom filters (10 bits per key, about 1% false positives) on every
//     level, so a Get touches only the sstables that may hold its key; Pebble
//     has none by default;
//   - a block cache and memtables sized from MemoryBudget (4 memtables of
//     budget/16, MemTableStopWritesThreshold 4, so writes keep going while up
//     to 3 memtables flush; Pebble's defaults are an 8 MiB block cache and
//     two 4 MiB memtables); Pebble charges the memtables to the block cache,
//     so the two together stay within the cache's share of the budget;
//   - L0StopWritesThreshold 24 (default 12), so a bulk restore is slowed by
//     compaction debt before it is stopped; L0CompactionThreshold stays at
//     Pebble's 4: at 2, every flush of a large restore rewrote everything
//     restored before it, and a restore of 4M records ran 20% slower, while
//     the stateful scenarios of internal/bench ran as fast either way;
//   - up to GOMAXPROCS/2 concurrent compactions (default 1) when Pebble falls
//     behind, for restores;
//   - a compaction scheduler of our own (compactionGate) that, unlike
//     Pebble's default, holds compactions back while loaders restore,
//     until L0 holds 16 sublevels: L0 is compacted once after a restore
//     instead of at every fourth of its commits;
//   - an explicit FormatMajorVersion (FormatValueSeparation, the newest of
//     Pebble v2.1), as Pebble recommends, so an upgrade never changes the
//     on-disk format silently;
//   - ingest-time splitting (Experimental.IngestSplit), so that an sstable a
//     Loader ingests into a partition that holds no key goes to the bottom
//     level even where a table there spans the partition;
//   - Pebble's informational log lines are dropped; errors are logged.
//
// Pebble's write-ahead log is off, as Kafka Streams turns off RocksDB's:
// the changelogs are the source of truth, and a task's writes and its
// checkpoint are committed in one atomic batch (Batch), so a crash loses
// whole commits, the last ones, never part of one: local state never gets
// ahead of its checkpoint, and recovery replays the changelog from the
// checkpoint that survived. (A Loader's large commits are the exception:
// their records, ingested as sstables, may survive without their
// checkpoint, and the restore that replays them again gets the same
// state.) Pebble writes the memtables to sstables when they fill up, at
// Close, and, so that a crash of the process or of the
// machine costs a replay of at most about FlushInterval (30 s by default)
// of store writes, at the first commit after each FlushInterval. Without
// the log, a restore's large commits cost less CPU and ran faster when they
// went to Pebble as batches (before the Loader ingested them): Pebble wrote
// each of them to the log in full before flushing it to an sstable anyway
// (go run ./internal/bench
// -scenarios restore, 1M records, state DB: 3.8-4.4 M records/s and
// 0.41-0.46 s of CPU per million records, against 2.0-3.5 M/s and 0.50-0.83
// s with the log). Processing commits ran as fast either way.
func Open(dir string, opts ...Option) (*DB, error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	sp := splitBudget(c.budget, c.noCache)

	blockCache := pebble.NewCache(sp.blockCache)
	defer blockCache.Unref() // the DB holds its own reference
	po := &pebble.Options{
		Cache:                       blockCache,
		MemTableSize:                uint64(sp.memTables / memTableCount),
		MemTableStopWritesThreshold: memTableCount,
		L0StopWritesThreshold:       24,
		CompactionConcurrencyRange: func() (int, int) {
			return 1, max(1, runtime.GOMAXPROCS(0)/2)
		},
		FormatMajorVersion: pebble.FormatValueSeparation,
		DisableWAL:         true,
		Logger:             pebbleLogger{},
	}
	// A table ingested into a level where it overlaps no key, only the
	// bounds of one table (which spans other partitions), goes there: Pebble
	// splits that table in two virtual ones around it.
	po.Experimental.IngestSplit = func() bool { return true }
	gate := newCompactionGate()
	po.Experimental.CompactionScheduler = gate
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		po.Levels[i].FilterType = pebble.TableFilter
	}
	if c.inMemory {
		po.FS = vfs.NewMem()
	}
	po.EnsureDefaults() // for the sstables that loaders write (ingester)
	pdb, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("state: opening %s: %w", dir, err)
	}
	gate.pdb.Store(pdb)
	if err := checkLayout(pdb); err != nil {
		return nil, errors.Join(err, pdb.Close())
	}
	in, err := newIngester(pdb, po, dir)
	if err != nil {
		return nil, errors.Join(err, pdb.Close())
	}
	db := &DB{
		pdb:        pdb,
		ingester:   in,
		flushEvery: c.flushInterval(),
		split:      sp,
		seed:       maphash.MakeSeed(),
		parts:      map[string]*partState{},
		gate:       gate,
	}
	db.lastFlush.Store(time.Now().UnixNano())
	if sp.fastcache > 0 {
		db.cache = fastcache.New(int(sp.fastcache))
	}
	return db, nil
}

// checkLayout writes the layout version into a new database and checks it
// in an existing one.
func checkLayout(pdb *pebble.DB) error {
	v, closer, err := pdb.Get(layoutKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		// Without a write-ahead log, the key is durable once flushed with
		// the first data, which is soon enough: a DB without it is empty.
		if err := pdb.Set(layoutKey, []byte(layoutVersion), pebble.NoSync); err != nil {
			return fmt.Errorf("state: writing layout version: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("state: reading layout version: %w", err)
	}
	got := string(v)
	closer.Close()
	if got != layoutVersion {
		return fmt.Errorf("state: database has key layout version %q, this build reads %q", got, layoutVersion)
	}
	return nil
}

// Close waits for the loader commits being applied (Loader.CommitAsync),
// flushes the memtables to sstables, closes Pebble and empties the
// cache. The flush matters: without a write-ahead log (see Open), the
// memtables are lost otherwise. Every Range must have returned before
// Close; store views and batches of the DB return ErrClosed afterwards. A
// second Close returns ErrClosed.
func (db *DB) Close() error {
	if !db.closed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	db.async.Wait()
	err := db.pdb.Flush()
	if err != nil {
		err = fmt.Errorf("state: flushing before close: %w", err)
	}
	if cerr := db.pdb.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("state: closing pebble: %w", cerr))
	}
	if db.cache != nil {
		db.cache.Reset()
	}
	return err
}

// Flush writes the memtables to sstables and waits until they are written.
// Close does it, and commits start one every FlushInterval; the runtime
// does not need to otherwise.
func (db *DB) Flush() error {
	if db.closed.Load() {
		return ErrClosed
	}
	if err := db.pdb.Flush(); err != nil {
		return fmt.Errorf("state: flush: %w", err)
	}
	return nil
}

// committed follows each commit to Pebble: the first after each
// flushEvery starts a flush of the memtables, so that a crash loses at most
// about flushEvery of writes (Pebble has no write-ahead log: see Open).
func (db *DB) committed() {
	now := time.Now().UnixNano()
	last := db.lastFlush.Load()
	if now-last < int64(db.flushEvery) || !db.lastFlush.CompareAndSwap(last, now) {
		return
	}
	if _, err := db.pdb.AsyncFlush(); err != nil {
		pebbleLogger{}.Errorf("state: scheduling a flush: %v", err)
	}
}

// part returns the shared state of a store partition.
func (db *DB) part(name string, partition int32) *partState {
	prefix := storePrefix(name, partition)
	db.mu.Lock()
	defer db.mu.Unlock()
	p, ok := db.parts[string(prefix)]
	if !ok {
		p = &partState{prefix: prefix}
		p.epoch.Store(db.nextEpoch.Add(1))
		db.parts[string(prefix)] = p
	}
	return p
}

// Store returns a view of one partition of one store: its keys live under a
// prefix of the DB that no other store or partition shares. Views are cheap;
// any number of views of the same store partition share its data and cache
// entries. A view is safe for concurrent use.
//
// Get reads the fastcache first, then Pebble (filling the cache). Put and
// Delete write to Pebble at once, unbatched and without fsync, and update
// the cache; a task writes through a Batch instead (Batch.Store). Range
// scans Pebble. Close marks the view closed and does nothing to the DB or
// the data, which the DB owns.
func (db *DB) Store(name string, partition int32) Store {
	return &view{db: db, part: db.part(name, partition)}
}

// DropPartition deletes every key of one partition of a store, with a
// Pebble range deletion (none if the partition holds no key), and drops
// its cache entries. The runtime calls it before a full restore. Writes of
// batches that are not yet committed are not affected.
func (db *DB) DropPartition(name string, partition int32) error {
	if db.closed.Load() {
		return ErrClosed
	}
	prefix := storePrefix(name, partition)
	empty, err := db.emptyRange(prefix, serde.PrefixEnd(prefix))
	if err != nil {
		return fmt.Errorf("state: dropping store %q partition %d: %w", name, partition, err)
	}
	// An empty partition (a task's first restore) gets no range deletion:
	// the memtable would hold it until its next flush, and every sstable
	// a Loader ingests into the partition meanwhile would overlap it, so
	// Pebble would queue the table behind the memtable and place it in
	// L0, to be compacted, instead of in the lowest level it fits.
	if !empty {
		if err := db.pdb.DeleteRange(prefix, serde.PrefixEnd(prefix), pebble.NoSync); err != nil {
			return fmt.Errorf("state: dropping store %q partition %d: %w", name, partition, err)
		}
	}
	// After the range deletion, so that a concurrent Get that read Pebble
	// before it can only fill a cache entry under the old epoch.
	db.mu.Lock()
	if p, ok := db.parts[string(prefix)]; ok {
		p.epoch.Store(db.nextEpoch.Add(1))
	}
	db.mu.Unlock()
	return nil
}

// emptyRange reports whether Pebble holds no key in [lower, upper).
func (db *DB) emptyRange(lower, upper []byte) (bool, error) {
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return false, err
	}
	found := it.First()
	return !found, errors.Join(it.Error(), it.Close())
}

// stripe returns the index of the lock of a Pebble key.
func (db *DB) stripe(full []byte) uint32 {
	return uint32(maphash.Bytes(db.seed, full) % numStripes)
}

// cacheSet puts key's value into the cache, or deletes key's entry if the
// value is too large to cache. The caller holds key's stripe.
func (db *DB) cacheSet(epoch uint64, key, value []byte) {
	if db.cache == nil {
		return
	}
	var buf [128]byte
	ck := appendCacheKey(buf[:0], epoch, key)
	if len(ck)+len(value) < maxCacheEntry {
		db.cache.Set(ck, value)
	} else {
		db.cache.Del(ck)
	}
}

// cacheDel deletes key's cache entry. The caller holds key's stripe.
func (db *DB) cacheDel(epoch uint64, key []byte) {
	if db.cache == nil {
		return
	}
	var buf [128]byte
	db.cache.Del(appendCacheKey(buf[:0], epoch, key))
}

// Stats are counters and sizes of a DB, for metrics and tests.
type Stats struct {
	// CacheGets and CacheMisses count the fastcache lookups of Get and
	// those that missed.
	CacheGets, CacheMisses uint64
	// CacheEntries and CacheBytes are the fastcache's current size;
	// CacheMaxBytes its capacity (0 with WithoutCache).
	CacheEntries, CacheBytes, CacheMaxBytes uint64
	// BlockCacheHits and BlockCacheMisses count Pebble block cache lookups;
	// BlockCacheBytes is its current size.
	BlockCacheHits, BlockCacheMisses, BlockCacheBytes int64
	// MemTableBytes is the memory of Pebble's memtables.
	MemTableBytes uint64
	// DiskBytes is the disk space of Pebble's files.
	DiskBytes uint64
	// OpenIterators is the number of Pebble iterators of Range calls that
	// have not returned.
	OpenIterators int64
}

// Stats returns the DB's current counters and sizes. It returns the zero
// Stats after Close.
func (db *DB) Stats() Stats {
	if db.closed.Load() {
		return Stats{}
	}
	var s Stats
	if db.cache != nil {
		var fs fastcache.Stats
		db.cache.UpdateStats(&fs)
		s.CacheGets, s.CacheMisses = fs.GetCalls, fs.Misses
		s.CacheEntries, s.CacheBytes, s.CacheMaxBytes = fs.EntriesCount, fs.BytesSize, fs.MaxBytesSize
	}
	m := db.pdb.Metrics()
	s.BlockCacheHits, s.BlockCacheMisses, s.BlockCacheBytes = m.BlockCache.Hits, m.BlockCache.Misses, m.BlockCache.Size
	s.MemTableBytes = m.MemTable.Size
	s.DiskBytes = m.DiskSpaceUsage()
	s.OpenIterators = db.iters.Load()
	return s
}

// pebbleLogger drops Pebble's informational messages (a line per flush and
// compaction) and passes errors and fatal errors to Pebble's default logger.
type pebbleLogger struct{}

func (pebbleLogger) Infof(string, ...any) {}

func (pebbleLogger) Errorf(format string, args ...any) {
	pebble.DefaultLogger.Errorf("state: pebble: "+format, args...)
}

func (pebbleLogger) Fatalf(format string, args ...any) {
	pebble.DefaultLogger.Fatalf("state: pebble: "+format, args...)
}
