package state

import (
	"bytes"
	"errors"
	"hash/maphash"
	"math"

	"github.com/google/btree"
)

// Store is a byte-level, ordered key-value store. A nil value is never
// stored: use Delete. Slices returned by Get are valid only until the next
// write to the store, and slices passed to Range callbacks only until the
// callback returns; neither may be modified.
//
// Backends: Memory (NewMemory), and store partitions of a persistent DB
// (DB.Store, and Batch.Store for a task's write buffer).
type Store interface {
	// Get returns the value of key and whether it was found.
	Get(key []byte) ([]byte, bool, error)
	// Put sets key to value, copying both.
	Put(key, value []byte) error
	// Delete removes key; deleting a missing key is not an error.
	Delete(key []byte) error
	// Range calls fn for each key in [lo, hi) in ascending byte order (nil lo:
	// from the first key; nil hi: to the last) until fn returns false.
	Range(lo, hi []byte, fn func(key, value []byte) bool) error
	// Close releases the store. For a view of a DB (DB.Store, Batch.Store)
	// it releases only the view: the DB and the data stay.
	Close() error
}

// AppendGetter is implemented by the stores that can append a value to a
// caller's buffer: the views of a DB (DB.Store, Batch.Store) and Memory. A
// caller that reads many keys reuses one buffer through it instead of
// getting a new slice from each Get (a DB view's Get returns a slice the
// caller owns, which costs an allocation per cache hit).
type AppendGetter interface {
	// GetAppend appends the value of key to dst and returns the extended
	// slice and whether key was found; when it was not, dst is returned
	// unchanged. The appended bytes are the caller's: they stay valid after
	// writes to the store.
	GetAppend(dst, key []byte) ([]byte, bool, error)
}

// GetAppend appends the value of key in s to dst, as AppendGetter does:
// through s's own GetAppend when it has one (a cached read then allocates
// nothing), else through Get.
func GetAppend(s Store, dst, key []byte) ([]byte, bool, error) {
	if ag, ok := s.(AppendGetter); ok {
		return ag.GetAppend(dst, key)
	}
	v, ok, err := s.Get(key)
	if !ok || err != nil {
		return dst, false, err
	}
	return append(dst, v...), true, nil
}

// ErrClosed is returned by a store used after Close.
var ErrClosed = errors.New("state: store is closed")

// entry is a key of a Memory, in Memory.slots. Its key and value bytes are
// in the Memory's arena: klen key bytes at off of chunk, then vlen value
// bytes, with room for vcap.
type entry struct {
	chunk, off       uint32
	klen, vlen, vcap uint32
	inTree           bool // in the B-tree; else waiting in pending
	deleted          bool // deleted while pending
}

// pivotSlot stands for Memory.pivot in the B-tree's comparisons.
const pivotSlot = math.MaxUint32

// Memory is an ordered in-memory Store: a hash index for point operations,
// and a B-tree of the same entries for ordered scans, which new keys join
// lazily, at the next Range (a restore or a run of point updates pays for
// ordering only when something scans). It is not safe for concurrent use: a
// task owns its store instances.
//
// The index (hindex) maps a hash of each key to a slot of an array of
// entries, the B-tree holds slot numbers, and the keys and values are
// copied into large chunks of bytes (an arena, compacted when more than
// half of it is garbage): none holds pointers, so the garbage collector
// scans none of them, a new key costs no allocation of its own, and growing
// the index rehashes integers, without reading the keys.
type Memory struct {
	seed    maphash.Seed
	index   hindex
	slots   [][]entry // chunks of slotChunk entries (see at)
	nslots  uint32
	free    []uint32 // slots to reuse
	tree    *btree.BTreeG[uint32]
	pending []uint32 // slots of the keys not yet in the tree
	pivot   []byte   // the key that pivotSlot stands for
	mask    uint64   // of the hashes: tests narrow it to make keys collide
	n       int
	closed  bool
	// pendingDeleted counts the entries of pending deleted since it was
	// last swept or ordered (see sweep).
	pendingDeleted int

	// The arena: chunks[cur] is the one being filled; a value too large
	// for it gets a chunk of its own. used counts the bytes that entries
	// hold (vcap, not vlen), garbage those they no longer hold.
	chunks        [][]byte
	cur           int
	used, garbage int
	compactMin    int // garbage below which the arena is not compacted
}

// slotChunk is the number of entries of a chunk of Memory.slots: growing
// the store adds a chunk instead of copying every entry (the first chunk
// grows as a slice, so that a small store stays small).
const (
	slotChunkBits = 12
	slotChunk     = 1 << slotChunkBits
)

// The arena's chunks grow from arenaFirst bytes, doubling, to arenaChunk; a
// key and value larger than arenaChunk/8 get a chunk of their own.
const (
	arenaFirst      = 1 << 10
	arenaChunk      = 1 << 20
	arenaCompactMin = 4 << 20
)

// at returns the entry of a slot.
func (m *Memory) at(s uint32) *entry { return &m.slots[s>>slotChunkBits][s&(slotChunk-1)] }

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	m := &Memory{seed: maphash.MakeSeed(), mask: math.MaxUint64, compactMin: arenaCompactMin}
	m.tree = btree.NewG(32, m.less)
	return m
}

func (m *Memory) hash(key []byte) uint32 { return uint32(maphash.Bytes(m.seed, key) & m.mask) }

func (m *Memory) key(slot uint32) []byte {
	if slot == pivotSlot {
		return m.pivot
	}
	return m.keyOf(m.at(slot))
}

// keyOf returns the key of e, in the arena.
func (m *Memory) keyOf(e *entry) []byte {
	c := m.chunks[e.chunk]
	return c[e.off : e.off+e.klen : e.off+e.klen]
}

// valueOf returns the value of e, in the arena.
func (m *Memory) valueOf(e *entry) []byte {
	c := m.chunks[e.chunk]
	v := e.off + e.klen
	return c[v : v+e.vlen : v+e.vlen]
}

// alloc returns room for n bytes in the arena: the chunk and offset, and
// the n bytes.
func (m *Memory) alloc(n int) (uint32, uint32, []byte) {
	if n > arenaChunk/8 {
		m.chunks = append(m.chunks, make([]byte, n))
		return uint32(len(m.chunks) - 1), 0, m.chunks[len(m.chunks)-1]
	}
	if len(m.chunks) == 0 || cap(m.chunks[m.cur])-len(m.chunks[m.cur]) < n {
		size := arenaFirst
		if len(m.chunks) > 0 {
			size = min(2*cap(m.chunks[m.cur]), arenaChunk)
		}
		m.chunks = append(m.chunks, make([]byte, 0, max(size, n)))
		m.cur = len(m.chunks) - 1
	}
	c := m.chunks[m.cur]
	off := len(c)
	m.chunks[m.cur] = c[:off+n]
	return uint32(m.cur), uint32(off), c[off : off+n : off+n]
}

// place copies key and value into the arena for e.
func (m *Memory) place(e *entry, key, value []byte) {
	n := len(key) + len(value)
	c, off, b := m.alloc(n)
	copy(b, key)
	copy(b[len(key):], value)
	e.chunk, e.off = c, off
	e.klen, e.vlen, e.vcap = uint32(len(key)), uint32(len(value)), uint32(len(value))
	m.used += n
}

// drop counts the arena bytes of e as garbage, compacting the arena when
// garbage outweighs what is used.
func (m *Memory) drop(e *entry) {
	n := int(e.klen + e.vcap)
	m.used -= n
	m.garbage += n
	e.klen, e.vlen, e.vcap = 0, 0, 0
	if m.garbage >= m.compactMin && m.garbage > m.used {
		m.compact()
	}
}

// compact copies the keys and values of every entry into new chunks and
// drops the old ones (slices that Get returned keep them alive, unchanged).
func (m *Memory) compact() {
	old := m.chunks
	m.chunks, m.cur, m.used, m.garbage = nil, 0, 0, 0
	for s := range m.nslots {
		e := m.at(s)
		c := old[e.chunk] // a free slot's zero entry: chunk 0, no bytes
		key := c[e.off : e.off+e.klen]
		value := c[e.off+e.klen : e.off+e.klen+e.vlen]
		m.place(e, key, value)
	}
}

func (m *Memory) less(a, b uint32) bool { return bytes.Compare(m.key(a), m.key(b)) < 0 }

// find returns the slot of key and the position of its index cell, or
// false and the position where the probe for h ended.
func (m *Memory) find(h uint32, key []byte) (slot uint32, pos int, ok bool) {
	return m.index.find(h, func(s uint32) bool { return bytes.Equal(m.keyOf(m.at(s)), key) })
}

// Get implements Store.
func (m *Memory) Get(key []byte) ([]byte, bool, error) {
	if m.closed {
		return nil, false, ErrClosed
	}
	s, _, ok := m.find(m.hash(key), key)
	if !ok {
		return nil, false, nil
	}
	return m.valueOf(m.at(s)), true, nil
}

// Reserve prepares an empty store for about n keys (a restore knows how many
// records its changelog holds), so that its index does not grow step by
// step. It does nothing to a store that holds keys.
func (m *Memory) Reserve(n int) {
	if m.n == 0 && len(m.pending) == 0 && n > 0 {
		m.index.reserve(n)
	}
}

// Apply puts values[i] as the value of keys[i] for each i in order, or
// deletes keys[i] if values[i] is nil: the same as Put and Delete one by
// one, but the index cells of a group of 32 keys are prefetched together,
// so that their cache misses overlap instead of following one another (a
// restore applies its records so). Restoring 1M new keys into a reserved
// store (BenchmarkMemoryApply) took 60-66 ns per key so, against 103-109 ns
// with the cells of groups of 8 read ahead by plain loads, which the CPU
// cannot retire before they complete.
func (m *Memory) Apply(keys, values [][]byte) error {
	if len(keys) != len(values) {
		return errors.New("state: Apply: keys and values differ in number")
	}
	const group = 32
	var hs [group]uint32
	for base := 0; base < len(keys); base += group {
		ks := keys[base:min(base+group, len(keys))]
		for j, k := range ks {
			hs[j] = m.hash(k)
			if len(m.index.cells) > 0 {
				prefetch(&m.index.cells[m.index.home(hs[j])])
			}
		}
		for j, k := range ks {
			var err error
			if v := values[base+j]; v != nil {
				err = m.put(hs[j], k, v)
			} else {
				err = m.delete(hs[j], k)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// GetAppend implements AppendGetter: it appends the value of key to dst.
func (m *Memory) GetAppend(dst, key []byte) ([]byte, bool, error) {
	v, ok, err := m.Get(key)
	if !ok {
		return dst, ok, err
	}
	return append(dst, v...), true, nil
}

// Put implements Store. It overwrites the old value in place when it fits;
// a new key and its value are copied into the arena.
func (m *Memory) Put(key, value []byte) error {
	return m.put(m.hash(key), key, value)
}

// put is Put with the key's hash.
func (m *Memory) put(h uint32, key, value []byte) error {
	if m.closed {
		return ErrClosed
	}
	if s, _, ok := m.find(h, key); ok {
		e := m.at(s)
		if len(value) <= int(e.vcap) {
			e.vlen = uint32(copy(m.chunks[e.chunk][e.off+e.klen:e.off+e.klen+e.vcap], value))
			return nil
		}
		m.drop(e)
		m.place(e, key, value)
		return nil
	}
	var s uint32
	if n := len(m.free); n > 0 {
		s = m.free[n-1]
		m.free = m.free[:n-1]
	} else {
		if m.nslots == pivotSlot {
			return errors.New("state: memory store is full")
		}
		s = m.nslots
		m.nslots++
		c := len(m.slots) - 1
		if c < 0 || len(m.slots[c]) == slotChunk {
			capacity := slotChunk
			if c < 0 {
				capacity = 8
			}
			m.slots = append(m.slots, make([]entry, 0, capacity))
			c++
		}
		m.slots[c] = append(m.slots[c], entry{})
	}
	e := m.at(s)
	*e = entry{}
	m.place(e, key, value)
	m.index.insert(h, s)
	m.pending = append(m.pending, s)
	m.n++
	return nil
}

// Delete implements Store.
func (m *Memory) Delete(key []byte) error {
	return m.delete(m.hash(key), key)
}

// delete is Delete with the key's hash.
func (m *Memory) delete(h uint32, key []byte) error {
	if m.closed {
		return ErrClosed
	}
	s, pos, ok := m.find(h, key)
	if !ok {
		return nil
	}
	m.index.remove(pos)
	m.n--
	e := m.at(s)
	if e.inTree {
		m.tree.Delete(s)
		m.drop(e)
		m.release(s)
	} else {
		m.drop(e)
		e.deleted = true // order or sweep releases it
		m.pendingDeleted++
		if m.pendingDeleted >= sweepMin && 2*m.pendingDeleted >= len(m.pending) {
			m.sweep()
		}
	}
	return nil
}

// sweepMin is the number of deleted pending entries below which delete
// does not sweep.
const sweepMin = 4096

// sweep releases the pending entries deleted before any Range ordered them,
// so that a store whose new keys are deleted again without a scan in
// between (a buffer) keeps reusing its slots instead of growing. It leaves
// the B-tree alone, so it is safe within a Range's fn; delete calls it once
// at least half of pending is deleted, so its cost is amortized.
func (m *Memory) sweep() {
	kept := m.pending[:0]
	for _, s := range m.pending {
		if m.at(s).deleted {
			m.release(s)
			continue
		}
		kept = append(kept, s)
	}
	clear(m.pending[len(kept):])
	m.pending = kept
	m.pendingDeleted = 0
}

// release makes a slot free for reuse.
func (m *Memory) release(s uint32) {
	*m.at(s) = entry{}
	m.free = append(m.free, s)
}

// order moves the pending entries into the B-tree.
func (m *Memory) order() {
	for _, s := range m.pending {
		if m.at(s).deleted {
			m.release(s)
			continue
		}
		m.tree.ReplaceOrInsert(s)
		m.at(s).inTree = true
	}
	m.pending = m.pending[:0]
	m.pendingDeleted = 0
}

// Range implements Store.
func (m *Memory) Range(lo, hi []byte, fn func(key, value []byte) bool) error {
	if m.closed {
		return ErrClosed
	}
	m.order()
	visit := func(s uint32) bool {
		e := m.at(s)
		key := m.keyOf(e)
		if hi != nil && bytes.Compare(key, hi) >= 0 {
			return false
		}
		return fn(key, m.valueOf(e))
	}
	if lo == nil {
		m.tree.Ascend(visit)
	} else {
		outer := m.pivot // of a Range that calls this one from fn
		m.pivot = lo
		m.tree.AscendGreaterOrEqual(pivotSlot, visit)
		m.pivot = outer
	}
	return nil
}

// Len returns the number of keys.
func (m *Memory) Len() int { return m.n }

// Close implements Store.
func (m *Memory) Close() error {
	m.closed = true
	m.tree.Clear(false)
	m.index.reset()
	m.slots, m.nslots, m.free, m.pending, m.pendingDeleted = nil, 0, nil, nil, 0
	m.chunks, m.cur, m.used, m.garbage = nil, 0, 0, 0
	m.n = 0
	return nil
}
