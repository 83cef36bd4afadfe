package state

import (
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"
)

// LoaderCommitBytes is the recommended Loader.Size at which to call
// Loader.Commit during a restore. See Loader for the measurements behind it.
const LoaderCommitBytes = 16 << 20

// Loader bulk-writes restored records into store partitions of a DB, for
// example a changelog replayed into a task's stores before the task
// processes. It does less per record than a Batch: Put and Delete only
// append the record to a buffer (no cache fill, no index of the keys
// written, no read-your-writes, no locks), and Commit sorts the
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
// them on the committing goroutine and flushes them to an sstable in the
// background, on another core (the DB has no write-ahead log for them to
// cross first: see Open). Pebble's sort compares the keys in the batch;
// the loader's own sort (a radix sort of 8-byte key prefixes) is several
// times cheaper and leaves Pebble a sorted batch. Measured on 2 cores (BenchmarkLoader: 1M 16-byte keys in
// scattered order, 100-byte values, into a new DB in a directory, default
// budget, until the last Commit returns): 2.2-2.5 M records/s and 0.74-0.86
// µs of CPU per record (both cores: the background flushes and compactions
// count), against 0.76-0.88 M records/s and 2.1-2.3 µs for the same writes
// through a Batch committed every 4096 records, whose commits Pebble
// inserts into its memtable. Commits of 4 and 8 MiB ran at 1.9-2.0 M
// records/s; commits of 32 MiB at 3.0-3.4 M records/s, for twice the
// memory. Before the DB dropped Pebble's write-ahead log (and compacted L0
// at 2 files instead of 4), the loader ran at 1.6-1.7 M records/s and
// 1.0-1.1 µs per record, the Batch at 0.60-0.64 M records/s and 2.8-3.0 µs.
// The background work, flushing and compacting, is what bounds a long
// restore on 2 cores: the loader waits for the flushes once a memtable
// budget of data is queued.
//
// While loading, a loader holds about twice the size of a commit (its
// buffer and the Pebble batch). A Commit of at least LoaderCommitBytes keeps
// the buffers for the next one; a smaller Commit, such as the last of a
// restore, drops those larger than 1 MiB, so that the loaders of tasks done
// restoring hold little memory.
//
// A Loader is for one goroutine at a time. It is reusable: Commit leaves it
// empty. Close releases it.
type Loader struct {
	db        *DB
	recordBuf // the records, in arrival order until Commit sorts them
	ckpts     checkpoints
	parts     []*partState // partitions written since the last Commit
	last      *partState   // the partition of the previous write
	closed    bool
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
	if _, err := l.recordBuf.add(p.prefix, key, value, deleted); err != nil {
		return fmt.Errorf("state: loader: %w", err)
	}
	return nil
}

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
	l.ckpts.set(task, offsets)
	return nil
}

// Count returns the number of writes since the last Commit: records,
// deletions, and checkpoints (one per task: a task's last SetCheckpoint
// replaces the one before).
func (l *Loader) Count() int { return len(l.recs) + len(l.ckpts.recs) }

// Size returns the size in bytes of the writes since the last Commit as
// Pebble encodes them in a batch: keys with their store prefix, values, and
// a few bytes per record. Compare it with LoaderCommitBytes.
func (l *Loader) Size() int {
	if l.Count() == 0 {
		return 0
	}
	return batchHeaderLen + l.size + l.ckpts.size
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
	l.sort(l.recs)
	// Pebble reserves room for the longest length prefixes before each
	// record it appends: the slack keeps the last one from reallocating.
	pb := l.db.pdb.NewBatchWithSize(l.Size() + batchSlack)
	defer pb.Close()
	if err := l.write(pb, l.recs); err != nil {
		return fmt.Errorf("state: loader: commit: %w", err)
	}
	if err := l.ckpts.write(pb); err != nil {
		return fmt.Errorf("state: loader: commit: %w", err)
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
	// A loader that commits LoaderCommitBytes at a time is restoring: its
	// next commit is likely as large, and reusing the buffers spares
	// allocating, zeroing and faulting them in again (and the garbage
	// collections that this allocation starts). A smaller commit ends a
	// restore, or is a standby's periodic one: large buffers go.
	keep := maxRetainedRecords
	if l.Size() >= LoaderCommitBytes {
		keep = math.MaxInt
	}
	l.empty(keep)
	l.db.committed()
	return nil
}

// reset empties the loader, keeping its buffers unless they grew large.
func (l *Loader) reset() { l.empty(maxRetainedRecords) }

// empty empties the loader, keeping each of its buffers that holds at most
// keep bytes.
func (l *Loader) empty(keep int) {
	l.recordBuf.empty(keep)
	l.ckpts.reset()
	clear(l.parts)
	l.parts, l.last = l.parts[:0], nil
}

// Close drops the writes since the last Commit and releases the loader.
// Closing a closed loader returns ErrClosed.
func (l *Loader) Close() error {
	if l.closed {
		return ErrClosed
	}
	l.closed = true
	l.reset()
	l.release()
	l.ckpts, l.parts = checkpoints{}, nil
	return nil
}
