package state

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"math/bits"
	"slices"
	"unsafe"

	"github.com/cockroachdb/pebble/v2"
)

// Batch is a task's write buffer: it collects writes to any number of store
// partitions of a DB, and checkpoints, and applies them atomically with
// Commit. Until then they are visible only through the batch's views
// (Batch.Store), which read the batch's writes first and the DB after.
//
// A Batch keeps the last write of each key, in an arena with a hash index
// over it: a write of a key written before replaces it (in place when the
// new value fits), and a read of a written key costs a hash lookup. Commit
// writes the keys into a Pebble batch in key order, one record per key, so
// a key written many times between commits costs Pebble one write, and
// Pebble inserts the sorted records into its memtable more cheaply. Range
// merges the writes over the DB through a Pebble indexed batch. The indexed
// batch holds only the writes under the key prefixes that scans covered
// since the last Commit or Discard: a Range from lo to hi covers the longest
// prefix that every key in [lo, hi) shares, the writes under it go into the
// indexed batch then, and later writes under it as they come. A task that
// never scans its stores does not pay for it, and a window store, which
// scans only its index, does not insert its windows into the indexed batch
// (each insertion costs a search of Pebble's skiplist). Past maxCovered
// prefixes, the batch covers every key.
//
// A Batch is reusable: Commit and Discard leave it empty, with its views
// still valid. Close releases it. A Batch is for one goroutine at a time.
type Batch struct {
	db        *DB
	recordBuf            // the last write of each key written, in order of first write
	keys      []dirtyKey // what the batch knows of each record of recordBuf
	index     hindex     // hash of each written Pebble key -> its record
	ckpts     checkpoints
	order     []loadRecord  // scratch: the records in key order, for Commit
	wb        *pebble.Batch // the Pebble batch of Commit, reused
	ib        *pebble.Batch // the writes under covered again, indexed for Range
	// covered are the Pebble key prefixes under which ib holds every write
	// since the last Commit or Discard (an empty one: every key).
	covered [][]byte
	buf     []byte // scratch for Pebble keys
	closed  bool
}

// dirtyKey is what the batch knows about a store key it wrote.
type dirtyKey struct {
	part   *partState
	stripe uint32 // DB.stripe of the Pebble key
	room   uint32 // bytes after the key in the arena that a new value may fill
}

// NewBatch returns an empty batch. A batch of a closed DB returns ErrClosed
// from every method.
func (db *DB) NewBatch() *Batch {
	return &Batch{db: db, closed: db.closed.Load()}
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
	b.ckpts.set(task, offsets)
	return nil
}

// Count returns the number of keys written and checkpoints set since the
// last Commit or Discard.
func (b *Batch) Count() int { return len(b.recs) + len(b.ckpts.recs) }

// Size returns the size in bytes of the Pebble batch that Commit would
// write: the last write of each key, with its store prefix, and the
// checkpoints.
func (b *Batch) Size() int {
	if b.Count() == 0 {
		return 0
	}
	return batchHeaderLen + b.size + b.ckpts.size
}

// keyOverhead is the memory a batch spends per key written beyond its key
// and value: its record (24 bytes), what it knows of the key (16), about
// two index cells (8 each) and the record's copy that Commit sorts (24).
const keyOverhead = 24 + 16 + 2*8 + 24

// Footprint estimates the memory in bytes that the batch's writes since the
// last Commit or Discard take: the arena of keys and values (with the old
// copies of values that outgrew their room), the bookkeeping of each key,
// and the Pebble indexed batch of scans, when filled, at twice its size.
// It does not count buffers kept from earlier commits.
func (b *Batch) Footprint() int {
	n := len(b.arena) + len(b.recs)*keyOverhead
	if len(b.covered) > 0 {
		n += 2 * b.ib.Len()
	}
	return n
}

// Commit applies the batch's writes to the DB in one atomic Pebble commit,
// without fsync (see Open), updates the cache, and empties the batch. If it
// fails, the batch is left as it was, and the caller should Discard it.
func (b *Batch) Commit() error {
	if err := b.check(); err != nil {
		return err
	}
	if b.Count() == 0 {
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

	b.order = append(b.order[:0], b.recs...)
	b.sort(b.order)
	if b.wb == nil {
		b.wb = db.pdb.NewBatch()
	}
	err := b.write(b.wb, b.order)
	if err == nil {
		err = b.ckpts.write(b.wb)
	}
	if err == nil {
		err = b.wb.Commit(pebble.NoSync)
	}
	b.wb.Reset()
	if err != nil {
		b.updateCache(true)
		return fmt.Errorf("state: commit: %w", err)
	}
	b.updateCache(false)
	b.reset()
	b.db.committed()
	return nil
}

// updateCache puts the value of each key written into the cache, or
// deletes its entry (a deletion, a value too large to cache, or, if
// uncache, every key: after a failed commit). The caller holds the keys'
// stripes.
func (b *Batch) updateCache(uncache bool) {
	if b.db.cache == nil {
		return
	}
	for i := range b.recs {
		r, d := &b.recs[i], &b.keys[i]
		epoch := d.part.epoch.Load()
		key := b.key(r)[len(d.part.prefix):]
		if uncache || r.deleted {
			b.db.cacheDel(epoch, key)
		} else {
			b.db.cacheSet(epoch, key, b.value(r))
		}
	}
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
	b.recordBuf.reset()
	clear(b.keys) // drop the partState pointers
	b.keys = b.keys[:0]
	if cap(b.keys)*int(unsafe.Sizeof(dirtyKey{})) > maxRetainedRecords {
		b.keys, b.order = nil, nil
	}
	b.index.empty()
	b.ckpts.reset()
	if len(b.covered) > 0 {
		b.ib.Reset()
		clear(b.covered)
		b.covered = b.covered[:0]
	}
}

// Close drops the batch's writes and releases it. Its views return ErrClosed
// afterwards. Closing a closed batch returns ErrClosed.
func (b *Batch) Close() error {
	if b.closed {
		return ErrClosed
	}
	b.closed = true
	b.release()
	b.keys, b.order, b.index, b.ckpts = nil, nil, hindex{}, checkpoints{}
	if b.db.closed.Load() {
		return nil
	}
	for _, pb := range []*pebble.Batch{b.wb, b.ib} {
		if pb == nil {
			continue
		}
		if err := pb.Close(); err != nil && !errors.Is(err, pebble.ErrClosed) {
			return fmt.Errorf("state: closing batch: %w", err)
		}
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
	if len(b.recs) == 0 { // nothing written since the last commit
		return bv.v.GetAppend(dst, key)
	}
	_, i, ok := b.find(b.pebbleKey(bv.v.part, key))
	if !ok {
		return bv.v.GetAppend(dst, key)
	}
	if r := &b.recs[i]; !r.deleted {
		return append(dst, b.value(r)...), true, nil
	}
	return dst, false, nil // deleted in the batch
}

// Put implements Store: it writes into the batch.
func (bv *bufferedView) Put(key, value []byte) error {
	if err := bv.check(); err != nil {
		return err
	}
	return bv.b.set(bv.v.part, key, value, false)
}

// Delete implements Store: it writes a deletion into the batch.
func (bv *bufferedView) Delete(key []byte) error {
	if err := bv.check(); err != nil {
		return err
	}
	return bv.b.set(bv.v.part, key, nil, true)
}

// find returns the hash of a Pebble key and whether the batch wrote it, at
// which record.
func (b *Batch) find(full []byte) (h uint64, i int, ok bool) {
	h = maphash.Bytes(b.db.seed, full)
	s, _, ok := b.index.find(uint32(h>>32), func(s uint32) bool { return bytes.Equal(b.key(&b.recs[s]), full) })
	return h, int(s), ok
}

// set writes key of partition p (value is nil for a deletion) into the batch.
func (b *Batch) set(p *partState, key, value []byte, deleted bool) error {
	full := b.pebbleKey(p, key)
	h, i, ok := b.find(full)
	if !ok {
		i, err := b.add(p.prefix, key, value, deleted)
		if err != nil {
			return fmt.Errorf("state: %s: %w", opName(deleted), err)
		}
		b.keys = append(b.keys, dirtyKey{part: p, stripe: uint32(h % numStripes), room: uint32(len(value))})
		b.index.insert(uint32(h>>32), uint32(i))
	} else if err := b.rewrite(i, value, deleted); err != nil {
		return fmt.Errorf("state: %s: %w", opName(deleted), err)
	}
	if !b.covers(full) {
		return nil
	}
	var err error
	if deleted {
		err = b.ib.Delete(full, nil)
	} else {
		err = b.ib.Set(full, value, nil)
	}
	if err != nil {
		return fmt.Errorf("state: %s: %w", opName(deleted), err)
	}
	return nil
}

func opName(deleted bool) string {
	if deleted {
		return "delete"
	}
	return "put"
}

// rewrite replaces the write of record i: in place if value fits in the
// room after the key, or else in a copy of the key at the end of the arena.
func (b *Batch) rewrite(i int, value []byte, deleted bool) error {
	r, d := &b.recs[i], &b.keys[i]
	if len(value) > int(d.room) {
		off := len(b.arena)
		if off+int(r.klen)+len(value) > maxRecordBytes {
			return errRecordBytes
		}
		// The copy reads the arena before append may move it.
		b.arena = append(b.arena, b.key(r)...)
		r.off = uint32(off)
		d.room = uint32(len(value))
		b.arena = append(b.arena, value...)
	} else {
		copy(b.arena[r.off+r.klen:], value)
	}
	b.size += batchRecordSize(int(r.klen), len(value), deleted) - batchRecordSize(int(r.klen), int(r.vlen), r.deleted)
	r.vlen, r.deleted = uint32(len(value)), deleted
	return nil
}

// Range implements Store: it scans the batch's writes merged over the DB.
// The slices passed to fn are valid only until fn returns; writing to the
// batch during the scan is allowed and not seen by it.
func (bv *bufferedView) Range(lo, hi []byte, fn func(key, value []byte) bool) error {
	if err := bv.check(); err != nil {
		return err
	}
	b := bv.b
	if len(b.recs) == 0 {
		return b.db.scan(b.db.pdb, bv.v.part.prefix, lo, hi, fn)
	}
	// Every key in [lo, hi) starts with the prefix that lo and hi share.
	n := 0
	if lo != nil && hi != nil {
		n = commonPrefix(lo, hi)
	}
	b.buf = append(append(b.buf[:0], bv.v.part.prefix...), lo[:n]...)
	if err := b.cover(b.buf); err != nil {
		return err
	}
	return b.db.scan(b.ib, bv.v.part.prefix, lo, hi, fn)
}

// maxCovered is the number of key prefixes a batch covers one by one (see
// Batch); beyond, it covers every key.
const maxCovered = 8

// covers reports whether the indexed batch holds the writes of the Pebble
// key full.
func (b *Batch) covers(full []byte) bool {
	for _, c := range b.covered {
		if bytes.HasPrefix(full, c) {
			return true
		}
	}
	return false
}

// cover writes the batch's writes under the Pebble key prefix into its
// indexed batch, unless it holds them already, and keeps it current with
// later writes under it.
func (b *Batch) cover(prefix []byte) error {
	if b.covers(prefix) {
		return nil
	}
	if b.ib == nil {
		b.ib = b.db.pdb.NewIndexedBatch()
	}
	if len(b.covered) >= maxCovered {
		prefix = []byte{} // every key (kept non-nil by bytes.Clone below)
	}
	// The writes under prefix that ib holds already (under a longer
	// covered prefix) are written again, unchanged; those prefixes go.
	b.order = b.order[:0]
	for i := range b.recs {
		if bytes.HasPrefix(b.key(&b.recs[i]), prefix) {
			b.order = append(b.order, b.recs[i])
		}
	}
	if err := b.write(b.ib, b.order); err != nil {
		// ib may hold some of them: start it over.
		b.ib.Reset()
		clear(b.covered)
		b.covered = b.covered[:0]
		return fmt.Errorf("state: range: %w", err)
	}
	b.covered = slices.DeleteFunc(b.covered, func(c []byte) bool { return bytes.HasPrefix(c, prefix) })
	b.covered = append(b.covered, bytes.Clone(prefix))
	return nil
}

// Close implements Store. It marks the view closed; the batch and its
// writes are not affected.
func (bv *bufferedView) Close() error {
	bv.closed = true
	return nil
}
