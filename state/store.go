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

// ErrClosed is returned by a store used after Close.
var ErrClosed = errors.New("state: store is closed")

// entry is a key of a Memory, in Memory.slots.
type entry struct {
	key, value []byte // one allocation: value follows key
	// next is the slot+1 of the next entry whose key has the same hash (0:
	// none): keys are indexed by a 64-bit hash, and the rare collisions
	// are chained.
	next    uint32
	inTree  bool // in the B-tree; else waiting in pending
	deleted bool // deleted while pending
}

// pivotSlot stands for Memory.pivot in the B-tree's comparisons.
const pivotSlot = math.MaxUint32

// Memory is an ordered in-memory Store: a hash index for point operations,
// and a B-tree of the same entries for ordered scans, which new keys join
// lazily, at the next Range (a restore or a run of point updates pays for
// ordering only when something scans). It is not safe for concurrent use: a
// task owns its store instances.
//
// The index maps a 64-bit hash of each key to a slot of an array of
// entries, and the B-tree holds slot numbers: neither holds pointers, so
// the garbage collector scans neither, and growing the index rehashes
// integers, without reading the keys.
type Memory struct {
	seed    maphash.Seed
	index   map[uint64]uint32 // key hash -> slot+1 of its first entry
	slots   [][]entry         // chunks of slotChunk entries (see at)
	nslots  uint32
	free    []uint32 // slots to reuse
	tree    *btree.BTreeG[uint32]
	pending []uint32 // slots of the keys not yet in the tree
	pivot   []byte   // the key that pivotSlot stands for
	mask    uint64   // of the hashes: tests narrow it to make keys collide
	n       int
	closed  bool
}

// slotChunk is the number of entries of a chunk of Memory.slots: growing
// the store adds a chunk instead of copying every entry (the first chunk
// grows as a slice, so that a small store stays small).
const (
	slotChunkBits = 12
	slotChunk     = 1 << slotChunkBits
)

// at returns the entry of a slot.
func (m *Memory) at(s uint32) *entry { return &m.slots[s>>slotChunkBits][s&(slotChunk-1)] }

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	m := &Memory{seed: maphash.MakeSeed(), index: map[uint64]uint32{}, mask: math.MaxUint64}
	m.tree = btree.NewG(32, m.less)
	return m
}

func (m *Memory) hash(key []byte) uint64 { return maphash.Bytes(m.seed, key) & m.mask }

func (m *Memory) key(slot uint32) []byte {
	if slot == pivotSlot {
		return m.pivot
	}
	return m.at(slot).key
}

func (m *Memory) less(a, b uint32) bool { return bytes.Compare(m.key(a), m.key(b)) < 0 }

// find returns the slot of key, or false.
func (m *Memory) find(h uint64, key []byte) (uint32, bool) {
	for s := m.index[h]; s != 0; s = m.at(s - 1).next {
		if bytes.Equal(m.at(s-1).key, key) {
			return s - 1, true
		}
	}
	return 0, false
}

// Get implements Store.
func (m *Memory) Get(key []byte) ([]byte, bool, error) {
	if m.closed {
		return nil, false, ErrClosed
	}
	s, ok := m.find(m.hash(key), key)
	if !ok {
		return nil, false, nil
	}
	return m.at(s).value, true, nil
}

// Reserve prepares an empty store for about n keys (a restore knows how many
// records its changelog holds), so that its index does not grow step by
// step. It does nothing to a store that holds keys.
func (m *Memory) Reserve(n int) {
	if m.n == 0 && len(m.pending) == 0 && n > 0 {
		m.index = make(map[uint64]uint32, n)
	}
}

// GetAppend implements AppendGetter: it appends the value of key to dst.
func (m *Memory) GetAppend(dst, key []byte) ([]byte, bool, error) {
	v, ok, err := m.Get(key)
	if !ok {
		return dst, ok, err
	}
	return append(dst, v...), true, nil
}

// Put implements Store. It reuses the old value's memory when it fits; a new
// key and its value share one allocation.
func (m *Memory) Put(key, value []byte) error {
	if m.closed {
		return ErrClosed
	}
	h := m.hash(key)
	if s, ok := m.find(h, key); ok {
		e := m.at(s)
		e.value = append(e.value[:0], value...)
		return nil
	}
	buf := make([]byte, len(key)+len(value))
	copy(buf, key)
	copy(buf[len(key):], value)
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
	*m.at(s) = entry{key: buf[:len(key):len(key)], value: buf[len(key):], next: m.index[h]}
	m.index[h] = s + 1
	m.pending = append(m.pending, s)
	m.n++
	return nil
}

// Delete implements Store.
func (m *Memory) Delete(key []byte) error {
	if m.closed {
		return ErrClosed
	}
	h := m.hash(key)
	var prev uint32 // slot+1 of the previous entry in the chain
	for s := m.index[h]; s != 0; prev, s = s, m.at(s-1).next {
		e := m.at(s - 1)
		if !bytes.Equal(e.key, key) {
			continue
		}
		switch {
		case prev != 0:
			m.at(prev - 1).next = e.next
		case e.next != 0:
			m.index[h] = e.next
		default:
			delete(m.index, h)
		}
		m.n--
		if e.inTree {
			m.tree.Delete(s - 1)
			m.release(s - 1)
		} else {
			e.deleted = true // order releases it
		}
		return nil
	}
	return nil
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
}

// Range implements Store.
func (m *Memory) Range(lo, hi []byte, fn func(key, value []byte) bool) error {
	if m.closed {
		return ErrClosed
	}
	m.order()
	visit := func(s uint32) bool {
		e := m.at(s)
		if hi != nil && bytes.Compare(e.key, hi) >= 0 {
			return false
		}
		return fn(e.key, e.value)
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
	clear(m.index)
	m.slots, m.nslots, m.free, m.pending = nil, 0, nil, nil
	m.n = 0
	return nil
}
