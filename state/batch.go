package state

import (
	"context"
	"errors"
	"fmt"
	"math/bits"

	"github.com/cockroachdb/pebble/v2"
)

// Batch is a task's write buffer: it collects writes to any number of store
// partitions of a DB, and checkpoints, and applies them atomically with
// Commit. Until then they are visible only through the batch's views
// (Batch.Store), which read the batch's writes first and the DB after.
//
// A Batch is a Pebble indexed batch. Every write is kept until Commit, also
// repeated writes of one key, so its size grows with the number of writes
// since the last Commit (see Size).
//
// A Batch is reusable: Commit and Discard leave it empty, with its views
// still valid. Close releases it. A Batch is for one goroutine at a time.
type Batch struct {
	db     *DB
	pb     *pebble.Batch
	dirty  map[string]int32 // index in keys of each store key written
	keys   []dirtyKey       // store keys written since the last Commit or Discard
	buf    []byte           // scratch for Pebble keys
	arena  []byte           // cache updates of the commit in progress (collect)
	spans  []cacheSpan
	closed bool
}

// dirtyKey is what the batch knows about a store key it wrote.
type dirtyKey struct {
	key    string // the Pebble key
	part   *partState
	stripe uint32
	cached bool // collect recorded its value for the cache
}

// NewBatch returns an empty batch. A batch of a closed DB returns ErrClosed
// from every method.
func (db *DB) NewBatch() *Batch {
	if db.closed.Load() {
		return &Batch{db: db, closed: true}
	}
	return &Batch{db: db, pb: db.pdb.NewIndexedBatch(), dirty: map[string]int32{}}
}

func (b *Batch) check() error {
	if b.closed || b.db.closed.Load() {
		return ErrClosed
	}
	return nil
}

// Store returns a view of s whose writes go into the batch and whose reads
// see the batch's uncommitted writes first, then the cache and the DB. s must
// be a view of the batch's DB (from DB.Store, or from Batch.Store of any
// batch of the DB); Store panics otherwise.
func (b *Batch) Store(s Store) Store {
	v := asView(s)
	if v == nil || v.db != b.db {
		panic(fmt.Sprintf("state: Batch.Store: %T is not a store view of the batch's DB", s))
	}
	return &bufferedView{b: b, v: v}
}

// SetCheckpoint records, in the batch, the checkpoint of task: offsets by
// source, for example by "topic/partition". Commit writes it atomically with
// the batch's store writes, replacing the task's previous checkpoint; read it
// with DB.Checkpoint.
func (b *Batch) SetCheckpoint(task string, offsets map[string]int64) error {
	if err := b.check(); err != nil {
		return err
	}
	if err := b.pb.Set(checkpointKey(task), encodeCheckpoint(offsets), nil); err != nil {
		return fmt.Errorf("state: checkpoint of task %q: %w", task, err)
	}
	return nil
}

// Count returns the number of writes in the batch.
func (b *Batch) Count() int {
	if b.pb == nil {
		return 0
	}
	return int(b.pb.Count())
}

// Size returns the size of the batch's writes in bytes.
func (b *Batch) Size() int {
	if b.pb == nil {
		return 0
	}
	return b.pb.Len()
}

// Commit applies the batch's writes to the DB in one atomic Pebble commit,
// without fsync (see Open), updates the cache, and empties the batch. If it
// fails, the batch is left as it was, and the caller should Discard it.
func (b *Batch) Commit() error {
	if err := b.check(); err != nil {
		return err
	}
	if b.pb.Empty() {
		return nil
	}
	db := b.db
	// Hold the stripes of every written key, in ascending order, so that no
	// concurrent cache fill interleaves with the commit and the cache update.
	var stripes [numStripes / 64]uint64
	for i := range b.keys {
		st := b.keys[i].stripe
		stripes[st/64] |= 1 << (st % 64)
	}
	forStripes(&stripes, func(i int) { db.stripes[i].Lock() })
	defer forStripes(&stripes, func(i int) { db.stripes[i].Unlock() })

	b.collect()
	if err := b.pb.Commit(pebble.NoSync); err != nil {
		b.uncache(true)
		return fmt.Errorf("state: commit: %w", err)
	}
	b.uncache(false)
	b.recache()
	b.reset()
	return nil
}

// forStripes calls fn for each stripe set in s, in ascending order.
func forStripes(s *[numStripes / 64]uint64, fn func(int)) {
	for w, word := range s {
		for word != 0 {
			i := bits.TrailingZeros64(word)
			fn(w*64 + i)
			word &^= 1 << i
		}
	}
}

// uncache deletes the cache entries of the keys the batch wrote, all of
// them or those whose new value recache does not put into the cache.
func (b *Batch) uncache(all bool) {
	if b.db.cache == nil {
		return
	}
	for i := range b.keys {
		d := &b.keys[i]
		if all || !d.cached {
			// b.buf, not b.arena: the arena holds recache's entries.
			b.buf = appendCacheKey(b.buf[:0], d.part.epoch.Load(), d.key[len(d.part.prefix):])
			b.db.cache.Del(b.buf)
		}
	}
}

// collect records, before the commit, what recache puts into the cache after
// it: the last value of each key the batch wrote, read from the batch alone,
// copied into b.arena. (A Pebble batch may not be read after its commit: a
// large batch is handed over to the memtable.) Keys whose last write is a
// deletion are not in the batch's view, and values too large for the cache
// are skipped: uncache deletes the cache entries of both.
func (b *Batch) collect() {
	b.arena, b.spans = b.arena[:0], b.spans[:0]
	if b.db.cache == nil {
		return
	}
	it, err := b.pb.NewBatchOnlyIter(context.Background(), &pebble.IterOptions{
		LowerBound: []byte{nsData},
		UpperBound: []byte{nsData + 1},
	})
	if err != nil {
		return // the keys are only uncached: still coherent
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		idx, ok := b.dirty[string(it.Key())]
		if !ok {
			continue
		}
		d := &b.keys[idx]
		val, err := it.ValueAndErr()
		if err != nil {
			for i := range b.keys {
				b.keys[i].cached = false
			}
			b.arena, b.spans = b.arena[:0], b.spans[:0]
			return
		}
		start := len(b.arena)
		b.arena = appendCacheKey(b.arena, d.part.epoch.Load(), it.Key()[len(d.part.prefix):])
		keyEnd := len(b.arena)
		if keyEnd-start+len(val) >= maxCacheEntry {
			b.arena = b.arena[:start]
			continue
		}
		b.arena = append(b.arena, val...)
		b.spans = append(b.spans, cacheSpan{start, keyEnd, len(b.arena)})
		d.cached = true
	}
}

// recache puts the values recorded by collect into the cache.
func (b *Batch) recache() {
	for _, sp := range b.spans {
		b.db.cache.Set(b.arena[sp.start:sp.keyEnd], b.arena[sp.keyEnd:sp.end])
	}
	if cap(b.arena) > maxRetainedArena {
		b.arena, b.spans = nil, nil
	}
}

// maxRetainedArena bounds the cache-update buffer a batch keeps between
// commits.
const maxRetainedArena = 1 << 20

// cacheSpan locates one cache entry in Batch.arena: the cache key is
// arena[start:keyEnd] and the value arena[keyEnd:end].
type cacheSpan struct{ start, keyEnd, end int }

// Discard drops the batch's writes and checkpoints, for example when the
// transaction they belong to aborts. The batch stays usable.
func (b *Batch) Discard() error {
	if err := b.check(); err != nil {
		return err
	}
	b.reset()
	return nil
}

func (b *Batch) reset() {
	b.pb.Reset()
	clear(b.dirty)
	clear(b.keys) // drop the partState pointers and key strings
	b.keys = b.keys[:0]
}

// Close drops the batch's writes and releases it. Its views return ErrClosed
// afterwards. Closing a closed batch returns ErrClosed.
func (b *Batch) Close() error {
	if b.closed {
		return ErrClosed
	}
	b.closed = true
	if b.pb == nil || b.db.closed.Load() {
		return nil
	}
	if err := b.pb.Close(); err != nil && !errors.Is(err, pebble.ErrClosed) {
		return fmt.Errorf("state: closing batch: %w", err)
	}
	return nil
}

// pebbleKey returns prefix+key in the batch's scratch buffer, valid until
// the next call.
func (b *Batch) pebbleKey(p *partState, key []byte) []byte {
	b.buf = append(append(b.buf[:0], p.prefix...), key...)
	return b.buf
}

// bufferedView is a store partition seen through a Batch.
type bufferedView struct {
	b      *Batch
	v      *view
	closed bool
}

var _ Store = (*bufferedView)(nil)

func (bv *bufferedView) check() error {
	if bv.closed || bv.v.closed.Load() {
		return ErrClosed
	}
	return bv.b.check()
}

var _ AppendGetter = (*bufferedView)(nil)

// Get implements Store: a key written in the batch is read from the batch,
// any other from the cache and the DB. The returned slice is the caller's.
func (bv *bufferedView) Get(key []byte) ([]byte, bool, error) {
	val, ok, err := bv.GetAppend(nil, key)
	if ok && val == nil {
		val = []byte{} // an empty value, found
	}
	return val, ok, err
}

// GetAppend implements AppendGetter, reading as Get does.
func (bv *bufferedView) GetAppend(dst, key []byte) ([]byte, bool, error) {
	if err := bv.check(); err != nil {
		return dst, false, err
	}
	b := bv.b
	if len(b.keys) == 0 { // nothing written since the last commit
		return bv.v.GetAppend(dst, key)
	}
	full := b.pebbleKey(bv.v.part, key)
	if _, ok := b.dirty[string(full)]; !ok {
		return bv.v.GetAppend(dst, key)
	}
	val, closer, err := b.pb.Get(full)
	if errors.Is(err, pebble.ErrNotFound) {
		return dst, false, nil // deleted in the batch
	}
	if err != nil {
		return dst, false, fmt.Errorf("state: get: %w", err)
	}
	out := append(dst, val...)
	if err := closer.Close(); err != nil {
		return dst, false, fmt.Errorf("state: get: %w", err)
	}
	return out, true, nil
}

// Put implements Store: it writes into the batch.
func (bv *bufferedView) Put(key, value []byte) error {
	if err := bv.check(); err != nil {
		return err
	}
	b := bv.b
	full := b.pebbleKey(bv.v.part, key)
	if err := b.pb.Set(full, value, nil); err != nil {
		return fmt.Errorf("state: put: %w", err)
	}
	b.markDirty(full, bv.v.part)
	return nil
}

// Delete implements Store: it writes a deletion into the batch.
func (bv *bufferedView) Delete(key []byte) error {
	if err := bv.check(); err != nil {
		return err
	}
	b := bv.b
	full := b.pebbleKey(bv.v.part, key)
	if err := b.pb.Delete(full, nil); err != nil {
		return fmt.Errorf("state: delete: %w", err)
	}
	b.markDirty(full, bv.v.part)
	return nil
}

func (b *Batch) markDirty(full []byte, p *partState) {
	if _, ok := b.dirty[string(full)]; !ok {
		k := string(full)
		b.dirty[k] = int32(len(b.keys))
		b.keys = append(b.keys, dirtyKey{key: k, part: p, stripe: b.db.stripe(full)})
	}
}

// Range implements Store: it scans the batch's writes merged over the DB.
// The slices passed to fn are valid only until fn returns; writing to the
// batch during the scan is allowed and not seen by it.
func (bv *bufferedView) Range(lo, hi []byte, fn func(key, value []byte) bool) error {
	if err := bv.check(); err != nil {
		return err
	}
	return bv.b.db.scan(bv.b.pb, bv.v.part.prefix, lo, hi, fn)
}

// Close implements Store. It marks the view closed; the batch and its
// writes are not affected.
func (bv *bufferedView) Close() error {
	bv.closed = true
	return nil
}
