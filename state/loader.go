package state

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"unsafe"

	"github.com/cockroachdb/pebble/v2"
)

// LoaderCommitBytes is the recommended Loader.Size at which to call
// Loader.Commit during a restore. See Loader for the measurements behind it.
const LoaderCommitBytes = 16 << 20

// maxLoaderBytes bounds the records a Loader holds between commits: its
// offsets are 32-bit.
const maxLoaderBytes = 1 << 31

// Loader bulk-writes restored records into store partitions of a DB, for
// example a changelog replayed into a task's stores before the task
// processes. It is much cheaper per record than a Batch: Put and Delete only
// append the record to a buffer (no cache fill, no tracking of the keys
// written, no read-your-writes, no Pebble index), and Commit sorts the
// buffered records by key and applies them, with the checkpoints recorded
// by SetCheckpoint, in one atomic Pebble commit. Reads see the loaded
// records only after Commit.
//
// Commit makes every cache entry of each partition written since the
// previous Commit unreachable at once (as DropPartition does) instead of
// updating or deleting the entries of the keys written, so a Get after
// Commit reads Pebble and never an older cached value. Reads of the other
// partitions, and their cache entries, are not affected. A partition being
// loaded should not be read meanwhile (its task is not active yet: reads
// would fill the cache for nothing), and must not be written by a Batch at
// the same time.
//
// Commit about every LoaderCommitBytes bytes (Size). A commit of at least
// half a memtable (MemoryBudget/32, 8 MiB by default) is a "large batch"
// for Pebble, which does not insert its records into the memtable: it sorts
// them on the committing goroutine, writes them to the write-ahead log, and
// flushes them to an sstable in the background, on another core. Pebble's
// sort compares the keys in the batch; the loader's own sort (a radix sort
// of 8-byte key prefixes) is several times cheaper and leaves Pebble a
// sorted batch. Measured on 2 cores shared with other work
// (BenchmarkLoader: 1M 16-byte keys in scattered order, 100-byte values,
// into a new DB in a directory, default budget, until the last Commit
// returns): 0.64-0.75 M records/s and 2.1-2.5 µs of CPU per record (both
// cores: the background flushes and compactions count), against 0.16-0.19
// M records/s and 9-10 µs for the same writes through a Batch committed
// every 4096 records. Commits of 1 to 4 MiB, which Pebble inserts into the
// memtable, ran at 0.45-0.66 M records/s; commits of 32 MiB at 0.81-0.88 M
// records/s, for twice the memory. The background work, about 0.7 µs per
// record to flush and as much to compact, is what bounds a long restore on
// 2 cores: the loader waits for the flushes once a memtable budget of data
// is queued.
//
// Commit drops buffers larger than 1 MiB, so that the loaders of tasks done
// restoring hold little memory; while loading, a loader holds about twice
// the size of a commit (its buffer and the Pebble batch).
//
// A Loader is for one goroutine at a time. It is reusable: Commit leaves it
// empty. Close releases it.
type Loader struct {
	db    *DB
	arena []byte       // the Pebble key and value of each record, in arrival order
	recs  []loadRecord // one per record, in arrival order until Commit sorts them
	tmp   []loadRecord // scratch space of the sort
	lcp   int          // length of the prefix shared by every Pebble key in recs
	size  int          // Pebble batch size of recs and ckpts
	ckpts [][2][]byte  // checkpoint key and record, in call order
	// arenaHint and recsHint are the sizes of the buffers that the last
	// Commit dropped: the next commit allocates them at once.
	arenaHint, recsHint int
	parts               []*partState // partitions written since the last Commit
	last                *partState   // the partition of the previous write
	closed              bool
}

// loadRecord locates a buffered record in Loader.arena: its Pebble key is
// arena[off:off+klen] and its value the vlen bytes after it.
type loadRecord struct {
	abbr    uint64 // the 8 key bytes after the common prefix, big-endian, zero-padded
	off     uint32
	klen    uint32
	vlen    uint32
	deleted bool
}

// NewLoader returns an empty loader. A loader of a closed DB returns
// ErrClosed from every method.
func (db *DB) NewLoader() *Loader {
	return &Loader{db: db, closed: db.closed.Load()}
}

func (l *Loader) check() error {
	if l.closed || l.db.closed.Load() {
		return ErrClosed
	}
	return nil
}

// target returns the partition viewed by s, which must be a view of the
// loader's DB (from DB.Store, or Batch.Store of a batch of the DB).
func (l *Loader) target(s Store) (*partState, error) {
	v := asView(s)
	if v == nil || v.db != l.db {
		return nil, fmt.Errorf("state: loader: %T is not a store view of the loader's DB", s)
	}
	if v.closed.Load() {
		return nil, ErrClosed
	}
	p := v.part
	if p != l.last {
		l.last = p
		l.note(p)
	}
	return p, nil
}

// note adds p to the partitions written since the last Commit. A restore
// writes one partition or a few, so a linear scan is cheaper than a map.
func (l *Loader) note(p *partState) {
	for _, q := range l.parts {
		if q == p {
			return
		}
	}
	l.parts = append(l.parts, p)
}

// add buffers a write of key (value is nil for a deletion).
func (l *Loader) add(s Store, key, value []byte, deleted bool) error {
	if err := l.check(); err != nil {
		return err
	}
	p, err := l.target(s)
	if err != nil {
		return err
	}
	if l.arena == nil && l.arenaHint > 0 {
		l.arena = make([]byte, 0, l.arenaHint+l.arenaHint/8)
		l.arenaHint = 0
	}
	if l.recs == nil && l.recsHint > 0 {
		l.recs = make([]loadRecord, 0, l.recsHint+l.recsHint/8)
		l.recsHint = 0
	}
	off := len(l.arena)
	klen := len(p.prefix) + len(key)
	if off+klen+len(value) > maxLoaderBytes {
		return fmt.Errorf("state: loader: more than %d bytes since the last commit", maxLoaderBytes)
	}
	l.arena = append(append(append(l.arena, p.prefix...), key...), value...)
	full := l.arena[off : off+klen]
	if len(l.recs) == 0 {
		l.lcp = klen
	} else {
		first := l.arena[l.recs[0].off:][:l.lcp]
		l.lcp = commonPrefix(first, full)
	}
	l.recs = append(l.recs, loadRecord{off: uint32(off), klen: uint32(klen), vlen: uint32(len(value)), deleted: deleted})
	l.size += batchRecordSize(klen, len(value), deleted)
	return nil
}

// commonPrefix returns the length of the longest common prefix of a and b.
func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for ; i+8 <= n; i += 8 {
		if x := binary.LittleEndian.Uint64(a[i:]) ^ binary.LittleEndian.Uint64(b[i:]); x != 0 {
			return i + bits.TrailingZeros64(x)/8
		}
	}
	for ; i < n && a[i] == b[i]; i++ {
	}
	return i
}

// batchRecordSize is the size of a record in a Pebble batch: its kind, the
// key and the value (not for a deletion), each after its uvarint length.
func batchRecordSize(klen, vlen int, deleted bool) int {
	n := 1 + uvarintLen(klen) + klen
	if !deleted {
		n += uvarintLen(vlen) + vlen
	}
	return n
}

func uvarintLen(n int) int { return (bits.Len64(uint64(n)|1) + 6) / 7 }

// batchSlack is more than the room Pebble reserves, beyond a record's
// encoded size, when it appends the record to a batch.
const batchSlack = 32

// batchHeaderLen is the size of a Pebble batch's header: a sequence number
// and a count.
const batchHeaderLen = 12

// Put writes key with value into the store partition viewed by s (a view
// from DB.Store, or from Batch.Store of a batch of the same DB, whose batch
// is bypassed). Key and value are copied. Commit applies the write.
func (l *Loader) Put(s Store, key, value []byte) error {
	return l.add(s, key, value, false)
}

// Delete writes a deletion of key into the store partition viewed by s (see
// Put). Commit applies it.
func (l *Loader) Delete(s Store, key []byte) error {
	return l.add(s, key, nil, true)
}

// SetCheckpoint records, in the loader, the checkpoint of task, as
// Batch.SetCheckpoint does: Commit writes it atomically with the loaded
// records, replacing the task's previous checkpoint; read it with
// DB.Checkpoint.
func (l *Loader) SetCheckpoint(task string, offsets map[string]int64) error {
	if err := l.check(); err != nil {
		return err
	}
	k, v := checkpointKey(task), encodeCheckpoint(offsets)
	l.ckpts = append(l.ckpts, [2][]byte{k, v})
	l.size += batchRecordSize(len(k), len(v), false)
	return nil
}

// Count returns the number of writes (records, deletions and checkpoints)
// since the last Commit.
func (l *Loader) Count() int { return len(l.recs) + len(l.ckpts) }

// Size returns the size in bytes of the writes since the last Commit as
// Pebble encodes them in a batch: keys with their store prefix, values, and
// a few bytes per record. Compare it with LoaderCommitBytes.
func (l *Loader) Size() int {
	if l.Count() == 0 {
		return 0
	}
	return batchHeaderLen + l.size
}

// Commit applies the writes since the last Commit to the DB in one atomic
// Pebble commit, without fsync (see Open), sorted by key (the writes of one
// key keep their order: the last one wins); then it makes the cache entries
// of every partition written unreachable, and empties the loader. If the
// Pebble commit fails, the loader keeps its writes, and the caller should
// Close it.
func (l *Loader) Commit() error {
	if err := l.check(); err != nil {
		return err
	}
	if l.Count() == 0 {
		return nil
	}
	l.sort()
	// Pebble reserves room for the longest length prefixes before each
	// record it appends: the slack keeps the last one from reallocating.
	pb := l.db.pdb.NewBatchWithSize(l.Size() + batchSlack)
	defer pb.Close()
	for i := range l.recs {
		r := &l.recs[i]
		key := l.arena[r.off : r.off+r.klen]
		var err error
		if r.deleted {
			op := pb.DeleteDeferred(len(key))
			copy(op.Key, key)
			err = op.Finish()
		} else {
			op := pb.SetDeferred(len(key), int(r.vlen))
			copy(op.Key, key)
			copy(op.Value, l.arena[r.off+r.klen:][:r.vlen])
			err = op.Finish()
		}
		if err != nil {
			return fmt.Errorf("state: loader: commit: %w", err)
		}
	}
	for _, c := range l.ckpts {
		if err := pb.Set(c[0], c[1], nil); err != nil {
			return fmt.Errorf("state: loader: commit: %w", err)
		}
	}
	if err := pb.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("state: loader: commit: %w", err)
	}
	// After the Pebble commit, as DropPartition does: a Get that read Pebble
	// before the commit can only fill the cache under the old epoch, and a
	// Get that sees the new epoch reads Pebble after the commit.
	for _, p := range l.parts {
		p.epoch.Store(l.db.nextEpoch.Add(1))
	}
	l.reset()
	return nil
}

// sort orders l.recs by Pebble key, then by arrival. It computes each
// record's abbreviated key, the 8 key bytes after the prefix that all keys
// share, sorts by it with a stable radix sort (which keeps the arrival order
// of equal keys), then orders the runs of equal abbreviated keys by the rest
// of their keys, stably.
func (l *Loader) sort() {
	lcp, arena := uint32(l.lcp), l.arena
	sorted := true
	var prev uint64
	for i := range l.recs {
		r := &l.recs[i]
		var b [8]byte
		copy(b[:], arena[r.off+lcp:r.off+r.klen])
		r.abbr = binary.BigEndian.Uint64(b[:])
		if r.abbr < prev {
			sorted = false
		}
		prev = r.abbr
	}
	if !sorted {
		l.tmp = radixSort(l.recs, l.tmp)
	}
	// Runs of equal abbreviated keys: keys longer than lcp+8 that differ
	// after it, and repeated keys.
	recs := l.recs
	for i := 0; i < len(recs); {
		j := i + 1
		for j < len(recs) && recs[j].abbr == recs[i].abbr {
			j++
		}
		if j-i > 1 {
			slices.SortStableFunc(recs[i:j], func(a, b loadRecord) int {
				return bytes.Compare(arena[a.off+lcp:a.off+a.klen], arena[b.off+lcp:b.off+b.klen])
			})
		}
		i = j
	}
}

// radixSort sorts recs by abbr, stably, with tmp as scratch space (grown as
// needed and returned for reuse): one pass per byte of abbr, least
// significant first, skipping the bytes that all records share.
func radixSort(recs, tmp []loadRecord) []loadRecord {
	if cap(tmp) < len(recs) {
		tmp = make([]loadRecord, len(recs))
	}
	tmp = tmp[:len(recs)]
	var counts [8][256]int
	for i := range recs {
		a := recs[i].abbr
		for b := range 8 {
			counts[b][byte(a>>(8*b))]++
		}
	}
	src, dst := recs, tmp
	for b := range 8 {
		c := &counts[b]
		if c[byte(src[0].abbr>>(8*b))] == len(src) {
			continue // every record has the same byte here
		}
		pos := 0
		for i, n := range c {
			c[i] = pos
			pos += n
		}
		shift := 8 * b
		for i := range src {
			k := byte(src[i].abbr >> shift)
			dst[c[k]] = src[i]
			c[k]++
		}
		src, dst = dst, src
	}
	if &src[0] != &recs[0] {
		copy(recs, src)
	}
	return tmp
}

// maxRetainedLoader bounds the buffers a loader keeps between commits, so
// that the loaders of tasks that are done restoring hold little memory;
// buffers of LoaderCommitBytes are allocated again for each commit (a few
// percent of its cost).
const maxRetainedLoader = 1 << 20

// reset empties the loader, keeping its buffers unless they grew large.
func (l *Loader) reset() {
	if cap(l.arena) > maxRetainedLoader {
		l.arena, l.arenaHint = nil, len(l.arena)
	}
	if cap(l.recs)*int(unsafe.Sizeof(loadRecord{})) > maxRetainedLoader {
		l.recs, l.tmp, l.recsHint = nil, nil, len(l.recs)
	}
	l.arena, l.recs = l.arena[:0], l.recs[:0]
	clear(l.ckpts)
	l.ckpts = l.ckpts[:0]
	clear(l.parts)
	l.parts, l.last = l.parts[:0], nil
	l.lcp, l.size = 0, 0
}

// Close drops the writes since the last Commit and releases the loader.
// Closing a closed loader returns ErrClosed.
func (l *Loader) Close() error {
	if l.closed {
		return ErrClosed
	}
	l.closed = true
	l.reset()
	l.arena, l.recs, l.tmp, l.ckpts, l.parts = nil, nil, nil, nil, nil
	return nil
}
