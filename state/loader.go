package state

import (
	"errors"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"

	"github.com/kstreamgo/kstream/serde"
)

// LoaderCommitBytes is the recommended Loader.Size at which to call
// Loader.CommitAsync (or Commit) during a restore. See Loader for the
// measurements behind it.
const LoaderCommitBytes = 8 << 20

// Loader bulk-writes restored records into store partitions of a DB, for
// example a changelog replayed into a task's stores before the task
// processes. It does less per record than a Batch: Put and Delete only
// append the record to a buffer (no cache fill, no index of the keys
// written, no read-your-writes, no locks), and Commit sorts the
// buffered records by key (a radix sort of 8-byte key prefixes) and
// applies them, with the checkpoints recorded by SetCheckpoint. Reads see
// the loaded records only after Commit.
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
// Commit about every LoaderCommitBytes bytes (Size), with CommitAsync
// until the last commit. A commit of at least half that, or of at least 1
// MiB into partitions that hold no key yet, is written to sstables, one per
// partition (two for a large one), in Pebble's row-block format, which
// Pebble ingests: the records skip the memtable and the flush that would
// write them to an sstable anyway, and, when they overlap no key of the DB
// (a first load of a partition), the compactions too. CommitAsync writes
// the sstables on another goroutine while the caller loads the next
// records. A smaller commit goes to Pebble as one batch.
//
// From a CommitAsync to the next Commit or Close, the loader restores, and
// the DB's compactions wait (until L0 is deep: see compactionGate). A
// large partition's records are written as two sstables, on two
// goroutines.
//
// Measured on 2 cores when the loader was written (BenchmarkLoader: 1M
// 16-byte keys in scattered order, 100-byte values, into a new DB in a
// directory, default budget, until the last Commit returns; CPU of both
// cores, the compactions that ran meanwhile included):
// 2.9-3.0 M records/s and 0.58-0.61 µs of CPU per record with CommitAsync,
// 2.5-2.6 M records/s and 0.65-0.67 µs with Commit, against 2.2-2.3 M
// records/s and 0.82-0.83 µs, with flushes still to run, when every commit
// went to Pebble as a batch (sstables flushed from the memtables), and
// 0.92-0.94 M records/s and 1.9 µs for the same writes through a Batch
// committed every 4096 records. With CommitAsync, commits of 4 MiB ran at
// 2.4-2.6 M records/s, 16 MiB at 2.2-2.4, 32 MiB at 1.9, and 2 MiB (batches)
// at 1.7. Writing the sstables in Pebble's columnar format (that of the
// DB's own) cost 115 ns per record against 71 ns in row blocks; Pebble
// rewrites them in its format when it compacts them. With the records of
// internal/bench's restore scenario (11-byte keys, 16-byte values, 8 MiB
// commits with CommitAsync, no Kafka), 4M records loaded at 5.7-6.0 M
// records/s and 1.0-1.1 s of CPU, after which Pebble had no flush or
// compaction running (read amplification 2), against 2.9-3.1 M records/s,
// 2.1-2.3 s of CPU and 0.03-0.24 s more of compactions as batches.
//
// Measured again when compactions started to wait for restores, on a
// slower day, alternated with the build before: with CommitAsync 2.60 M
// records/s and 0.47-0.49 µs of CPU per record, against 2.28-2.48 M/s and
// 0.71-0.79 µs; with Commit 2.45-2.49 M/s, against 2.23-2.27. After the
// last Commit, Pebble compacted L0 once, for 0.42-0.45 s, where it had
// compacted four times during the load and went on for 0.68-0.82 s: load
// and compactions took 0.74-0.76 s and 0.9-1.0 s of CPU in all, against
// 1.06-1.19 s and 1.45-1.6 s (a scratch benchmark, not kept, that waited
// until no compaction ran for 300 ms). Then with two commits applied at
// once (loaderInFlight), alternated with one: with CommitAsync 3.82-4.15 M
// records/s against 2.67-3.05, and 164 MB allocated per load of 1M records
// against 111 MB (a third set of buffers).
//
// While loading, a loader holds about three times the size of a commit:
// its buffers, and those of the two commits being applied (see
// CommitAsync). A commit of at least LoaderCommitBytes keeps the sets for
// the next ones; a smaller commit,
// such as the last of a restore, drops those larger than 1 MiB, so that
// the loaders of tasks done restoring hold little memory.
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
	// pending is the commits applied or being applied, oldest first, until
	// wait has taken their buffers back into spare.
	pending, spare []*loadCommit
	// small is set when the last commit was smaller than
	// LoaderCommitBytes.
	small bool
	// restoring is set from a CommitAsync to the next Commit or Close: the
	// DB's compactions wait meanwhile (see compactionGate).
	restoring bool
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

// Commit applies the writes since the last Commit to the DB, sorted by key
// (the writes of one key keep their order: the last one wins), with the
// checkpoints set, and returns when they are applied, and those of an
// earlier CommitAsync too. It makes the cache entries of every partition
// written unreachable, and empties the loader.
//
// A small commit goes to Pebble as one atomic batch with the checkpoints,
// without fsync (see Open). A large one is written to sstables that Pebble
// ingests (see Loader), then the checkpoints are committed: a crash in between leaves records newer than
// their checkpoint, which the next restore replays over them to the same
// result (a changelog's replay puts and deletes keys, the last write of
// each key wins).
//
// If Commit fails, the writes are lost, and the caller should Close the
// loader.
func (l *Loader) Commit() error {
	if err := l.commit(false); err != nil {
		return err
	}
	return l.wait()
}

// CommitAsync is Commit for a restore that goes on loading: it returns
// once the commit before the previous one is applied (loaderInFlight
// commits are applied at once), with the error of each commit it waited
// for, and before its own writes are applied. A commit that Pebble ingests
// is written to its sstables on another goroutine while the caller loads
// the next records into another set of buffers; Pebble ingests the
// commits in their order, and a commit after one that failed applies
// nothing. A smaller commit is applied at once, after those before it. The
// next Commit, or Close, waits for them all, and so does the DB's Close.
// Reads see the writes once the next Commit has returned.
func (l *Loader) CommitAsync() error { return l.commit(true) }

// loaderInFlight is how many of a loader's CommitAsync commits are applied
// at once: the next one writes its sstables while the one before still
// writes its own, and Pebble ingests them in their order.
const loaderInFlight = 2

// loadCommit is the writes of one commit, applied by applyLoad, possibly on
// its own goroutine.
type loadCommit struct {
	recordBuf
	ckpts checkpoints
	parts []*partState
	size  int
	seq   uint64 // names its sstables, in the order of the commits
	res   *loadResult
}

// loadResult is how a commit ended: done is closed once err is set. Each
// commit gets a new one: the goroutine of the next commit waits for it
// while the loader may already reuse the commit's buffers.
type loadResult struct {
	done chan struct{}
	err  error
}

// commit starts applying the writes since the last commit, on another
// goroutine if async and they are ingested, after waiting for the commits
// before it (all of them, or when async all but loaderInFlight-1).
func (l *Loader) commit(async bool) error {
	if err := l.check(); err != nil {
		return err
	}
	if async && !l.restoring {
		l.restoring = true
		l.db.gate.startRestore()
	} else if !async {
		l.endRestore()
	}
	// A Commit too sorts and writes its sstables while the commit before
	// it is applied (Commit then waits for them all).
	if err := l.waitFor(loaderInFlight - 1); err != nil {
		return err
	}
	if l.Count() == 0 {
		return nil
	}
	var c *loadCommit
	if n := len(l.spare); n > 0 {
		c, l.spare = l.spare[n-1], l.spare[:n-1]
	} else {
		// The loader goes on with c's buffers: as large as these at once.
		c = &loadCommit{recordBuf: recordBuf{arenaHint: len(l.arena), recsHint: len(l.recs)}}
	}
	c.size = l.Size()
	l.small = c.size < LoaderCommitBytes
	if l.small { // large buffers go (see recycle)
		c.empty(maxRetainedRecords)
		for _, sp := range l.spare {
			sp.empty(maxRetainedRecords)
		}
	}
	// The writes go to c; the loader goes on with c's emptied buffers.
	c.recordBuf, l.recordBuf = l.recordBuf, c.recordBuf
	c.ckpts, l.ckpts = l.ckpts, c.ckpts
	c.parts, l.parts = l.parts, c.parts
	l.last = nil
	ingest := l.ingests(c)
	if ingest {
		c.seq = l.db.ingests.Add(1)
	}
	var prev *loadResult
	if n := len(l.pending); n > 0 {
		prev = l.pending[n-1].res
	}
	res := &loadResult{done: make(chan struct{})}
	c.res = res
	l.pending = append(l.pending, c)
	if async && ingest {
		l.db.async.Add(1)
		go func() {
			defer l.db.async.Done()
			res.err = l.db.applyLoad(c, ingest, prev)
			close(res.done)
		}()
		return nil
	}
	res.err = l.db.applyLoad(c, ingest, prev)
	close(res.done)
	return nil
}

// ingests reports whether c is to be ingested (see ingestBytes).
func (l *Loader) ingests(c *loadCommit) bool {
	in := l.db.ingester
	switch {
	case len(c.recs) == 0 || c.size < in.empty:
		return false
	case c.size >= in.large:
		return true
	}
	for _, p := range c.parts {
		if empty, err := l.db.emptyRange(p.prefix, serde.PrefixEnd(p.prefix)); err != nil || !empty {
			return false // a batch reports the error, if it lasts
		}
	}
	return true
}

// wait waits for the pending commits.
func (l *Loader) wait() error { return l.waitFor(0) }

// waitFor waits for the oldest pending commits until at most n are left,
// takes their buffers back as spare ones and returns the first error.
func (l *Loader) waitFor(n int) error {
	var first error
	for len(l.pending) > n {
		c := l.pending[0]
		l.pending = append(l.pending[:0], l.pending[1:]...)
		<-c.res.done
		err := c.res.err
		c.res = nil
		l.recycle(c, err)
		if first == nil {
			first = err
		}
	}
	return first
}

// recycle empties c, which ended with err, into the spare commits.
func (l *Loader) recycle(c *loadCommit, err error) {
	// A loader that commits LoaderCommitBytes at a time is restoring: its
	// next commit is likely as large, and reusing the buffers spares
	// allocating, zeroing and faulting them in again (and the garbage
	// collections that this allocation starts). A smaller commit ends a
	// restore, or is a standby's periodic one: large buffers go, those of
	// the commits before it too.
	keep := maxRetainedRecords
	if c.size >= LoaderCommitBytes && err == nil && !l.small {
		keep = math.MaxInt
	}
	c.empty(keep)
	l.spare = append(l.spare, c)
}

// applyLoad applies the writes of a loader's commit: sorted, ingested in an
// sstable if ingest, else written into the Pebble batch that commits the
// checkpoints. Before it writes to Pebble, it waits for prev, the loader's
// commit before (nil if none), and applies nothing if that one failed.
func (db *DB) applyLoad(c *loadCommit, ingest bool, prev *loadResult) error {
	after := func() error {
		if prev == nil {
			return nil
		}
		<-prev.done
		if prev.err != nil {
			return errors.New("state: loader: commit: not applied after an earlier commit failed")
		}
		return nil
	}
	c.sort(c.recs)
	bsize := c.size
	if ingest {
		if err := db.ingester.ingest(db.pdb, &c.recordBuf, c.recs, c.parts, c.seq, after); err != nil {
			return fmt.Errorf("state: loader: commit: ingesting %d records: %w", len(c.recs), err)
		}
		if db.gate.restoring.Load() > 0 {
			db.gate.poke() // L0 is deeper
		}
		bsize = batchHeaderLen + c.ckpts.size
	}
	// Pebble reserves room for the longest length prefixes before each
	// record it appends: the slack keeps the last one from reallocating.
	pb := db.pdb.NewBatchWithSize(bsize + batchSlack)
	defer pb.Close()
	if !ingest {
		if err := after(); err != nil {
			return err
		}
		if err := c.write(pb, c.recs); err != nil {
			return fmt.Errorf("state: loader: commit: %w", err)
		}
	}
	if err := c.ckpts.write(pb); err != nil {
		return fmt.Errorf("state: loader: commit: %w", err)
	}
	if err := pb.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("state: loader: commit: %w", err)
	}
	// After the Pebble commit, as DropPartition does: a Get that read Pebble
	// before the commit can only fill the cache under the old epoch, and a
	// Get that sees the new epoch reads Pebble after the commit.
	for _, p := range c.parts {
		p.epoch.Store(db.nextEpoch.Add(1))
	}
	db.committed()
	return nil
}

// empty empties the writes, keeping each of the buffers that holds at
// most keep bytes.
func (c *loadCommit) empty(keep int) {
	c.recordBuf.empty(keep)
	c.ckpts.reset()
	clear(c.parts)
	c.parts = c.parts[:0]
}

// endRestore ends the loader's restore, if any.
func (l *Loader) endRestore() {
	if l.restoring {
		l.restoring = false
		l.db.gate.endRestore()
	}
}

// Close drops the writes since the last commit and releases the loader,
// after waiting for the CommitAsync commits being applied, whose first
// error it returns.
// Closing a closed loader returns ErrClosed.
func (l *Loader) Close() error {
	if l.closed {
		return ErrClosed
	}
	l.closed = true
	l.endRestore()
	err := l.wait()
	l.release()
	l.ckpts, l.parts, l.last, l.spare = checkpoints{}, nil, nil, nil
	return err
}
