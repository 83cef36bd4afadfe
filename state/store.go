package state

import (
	"bytes"
	"errors"
	"unsafe"

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

// ErrClosed is returned by a store used after Close.
var ErrClosed = errors.New("state: store is closed")

type entry struct {
	key, value []byte
	inTree     bool // in the B-tree; else waiting in pending
	deleted    bool // deleted while pending
}

func lessEntry(a, b *entry) bool { return bytes.Compare(a.key, b.key) < 0 }

// Memory is an ordered in-memory Store: a hash index for point operations,
// and a B-tree of the same entries for ordered scans, which new keys join
// lazily, at the next Range (a restore or a run of point updates pays for
// ordering only when something scans). It is not safe for concurrent use: a
// task owns its store instances.
type Memory struct {
	index   map[string]*entry
	tree    *btree.BTreeG[*entry]
	pending []*entry
	closed  bool
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{index: map[string]*entry{}, tree: btree.NewG[*entry](32, lessEntry)}
}

// Get implements Store.
func (m *Memory) Get(key []byte) ([]byte, bool, error) {
	if m.closed {
		return nil, false, ErrClosed
	}
	e, ok := m.index[string(key)]
	if !ok {
		return nil, false, nil
	}
	return e.value, true, nil
}

// Put implements Store. It reuses the old value's memory when it fits; a new
// key and its value share one allocation.
func (m *Memory) Put(key, value []byte) error {
	if m.closed {
		return ErrClosed
	}
	if e, ok := m.index[string(key)]; ok {
		e.value = append(e.value[:0], value...)
		return nil
	}
	buf := make([]byte, len(key)+len(value))
	copy(buf, key)
	copy(buf[len(key):], value)
	e := &entry{key: buf[:len(key):len(key)], value: buf[len(key):]}
	m.index[keyString(e.key)] = e
	m.pending = append(m.pending, e)
	return nil
}

// keyString views an entry's key, never modified, as a string without
// copying it.
func keyString(k []byte) string {
	if len(k) == 0 {
		return ""
	}
	return unsafe.String(&k[0], len(k))
}

// Delete implements Store.
func (m *Memory) Delete(key []byte) error {
	if m.closed {
		return ErrClosed
	}
	if e, ok := m.index[string(key)]; ok {
		delete(m.index, string(key))
		if e.inTree {
			m.tree.Delete(e)
		} else {
			e.deleted = true
		}
	}
	return nil
}

// order moves the pending entries into the B-tree.
func (m *Memory) order() {
	for _, e := range m.pending {
		if !e.deleted {
			m.tree.ReplaceOrInsert(e)
			e.inTree = true
		}
	}
	clear(m.pending)
	m.pending = m.pending[:0]
}

// Range implements Store.
func (m *Memory) Range(lo, hi []byte, fn func(key, value []byte) bool) error {
	if m.closed {
		return ErrClosed
	}
	m.order()
	visit := func(e *entry) bool {
		if hi != nil && bytes.Compare(e.key, hi) >= 0 {
			return false
		}
		return fn(e.key, e.value)
	}
	if lo == nil {
		m.tree.Ascend(visit)
	} else {
		m.tree.AscendGreaterOrEqual(&entry{key: lo}, visit)
	}
	return nil
}

// Len returns the number of keys.
func (m *Memory) Len() int { return len(m.index) }

// Close implements Store.
func (m *Memory) Close() error {
	m.closed = true
	m.tree.Clear(false)
	clear(m.index)
	m.pending = nil
	return nil
}
