package state

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// view is a Store over one store partition of a DB, returned by DB.Store.
type view struct {
	db     *DB
	part   *partState
	closed atomic.Bool
}

var _ Store = (*view)(nil)

func (v *view) check() error {
	if v.closed.Load() || v.db.closed.Load() {
		return ErrClosed
	}
	return nil
}

var _ AppendGetter = (*view)(nil)

// asView returns the DB view under s (a view, or a batch's view of one), or
// nil for any other store.
func asView(s Store) *view {
	switch s := s.(type) {
	case *view:
		return s
	case *bufferedView:
		return s.v
	}
	return nil
}

// Get implements Store. The returned slice is the caller's: it stays valid
// after writes. A cache hit costs one allocation, for that slice: GetAppend
// avoids it.
func (v *view) Get(key []byte) ([]byte, bool, error) {
	val, ok, err := v.GetAppend(nil, key)
	if ok && val == nil {
		val = []byte{} // an empty value, found
	}
	return val, ok, err
}

// GetAppend implements AppendGetter. It reads the cache first, then Pebble,
// filling the cache.
func (v *view) GetAppend(dst, key []byte) ([]byte, bool, error) {
	if v.closed.Load() || v.db.closed.Load() {
		return dst, false, ErrClosed
	}
	epoch := v.part.epoch.Load()
	if c := v.db.cache; c != nil {
		var buf [128]byte
		if out, ok := c.HasGet(dst, appendCacheKey(buf[:0], epoch, key)); ok {
			return out, true, nil
		}
	}
	return v.load(dst, epoch, key)
}

// load appends the value of key, read from Pebble, to dst and caches it. It
// holds the key's stripe (if there is a cache) so that a concurrent write of
// the key cannot be followed by this read's older value going into the
// cache.
func (v *view) load(dst []byte, epoch uint64, key []byte) ([]byte, bool, error) {
	db := v.db
	sc := getScratch()
	defer putScratch(sc)
	full := v.part.fullKey(sc, key)
	if db.cache != nil {
		mu := &db.stripes[db.stripe(full)]
		mu.Lock()
		defer mu.Unlock()
	}
	val, closer, err := db.pdb.Get(full)
	if errors.Is(err, pebble.ErrNotFound) {
		return dst, false, nil
	}
	if err != nil {
		return dst, false, fmt.Errorf("state: get: %w", err)
	}
	// val is Pebble's until closer.Close: copy it first.
	n := len(dst)
	out := append(dst, val...)
	if err := closer.Close(); err != nil {
		return dst, false, fmt.Errorf("state: get: %w", err)
	}
	db.cacheSet(epoch, key, out[n:])
	return out, true, nil
}

// Put implements Store: it writes to Pebble at once (NoSync) and puts the
// value into the cache.
func (v *view) Put(key, value []byte) error {
	if err := v.check(); err != nil {
		return err
	}
	db := v.db
	sc := getScratch()
	defer putScratch(sc)
	full := v.part.fullKey(sc, key)
	mu := &db.stripes[db.stripe(full)]
	mu.Lock()
	defer mu.Unlock()
	epoch := v.part.epoch.Load()
	if err := db.pdb.Set(full, value, pebble.NoSync); err != nil {
		db.cacheDel(epoch, key)
		return fmt.Errorf("state: put: %w", err)
	}
	db.cacheSet(epoch, key, value)
	return nil
}

// Delete implements Store: it writes a deletion to Pebble at once (NoSync)
// and deletes the cache entry.
func (v *view) Delete(key []byte) error {
	if err := v.check(); err != nil {
		return err
	}
	db := v.db
	sc := getScratch()
	defer putScratch(sc)
	full := v.part.fullKey(sc, key)
	mu := &db.stripes[db.stripe(full)]
	mu.Lock()
	defer mu.Unlock()
	db.cacheDel(v.part.epoch.Load(), key)
	if err := db.pdb.Delete(full, pebble.NoSync); err != nil {
		return fmt.Errorf("state: delete: %w", err)
	}
	return nil
}

// Range implements Store. It reads Pebble, not the cache; keys are passed to
// fn without the store prefix. The slices passed to fn are valid only until
// fn returns. The Pebble iterator is closed before Range returns, also when
// fn stops the scan or panics, and its error is returned.
func (v *view) Range(lo, hi []byte, fn func(key, value []byte) bool) error {
	if err := v.check(); err != nil {
		return err
	}
	return v.db.scan(v.db.pdb, v.part.prefix, lo, hi, fn)
}

// Close implements Store. It marks the view closed; the DB, the data and
// other views of the same store partition are not affected.
func (v *view) Close() error {
	v.closed.Store(true)
	return nil
}

// iterSource is a Pebble DB or indexed batch.
type iterSource interface {
	NewIter(*pebble.IterOptions) (*pebble.Iterator, error)
}

// scratch holds the Pebble key of a point read or write (fullKey), or a
// scan's iterator options and bounds. Reads, writes and scans of a view take
// one from the pool (getScratch) and put it back when Pebble is done with
// it (putScratch), so that they allocate nothing: a read that misses the
// cache, or a window store's scan, happens on every record.
type scratch struct {
	opts pebble.IterOptions
	key  []byte
}

var scratches = sync.Pool{New: func() any { return new(scratch) }}

// maxPooledKey bounds the key buffer a scratch keeps in the pool.
const maxPooledKey = 4 << 10

func getScratch() *scratch { return scratches.Get().(*scratch) }

func putScratch(sc *scratch) {
	sc.opts = pebble.IterOptions{}
	if cap(sc.key) > maxPooledKey {
		sc.key = nil
	}
	scratches.Put(sc)
}

// scan calls fn for the keys in [prefix+lo, prefix+hi) of src, with prefix
// cut off. A nil lo is the start and a nil hi the end of the prefix's range.
func (db *DB) scan(src iterSource, prefix, lo, hi []byte, fn func(key, value []byte) bool) (err error) {
	if lo != nil && hi != nil && bytes.Compare(lo, hi) >= 0 {
		return nil
	}
	sc := getScratch()
	defer putScratch(sc)
	// Both bounds in one buffer: the lower one is taken after both are
	// appended, and the upper one is not moved by a later append.
	b := append(append(sc.key[:0], prefix...), lo...)
	n := len(b)
	if hi == nil {
		b = appendPrefixEnd(b, prefix)
	} else {
		b = append(append(b, prefix...), hi...)
	}
	sc.key = b
	sc.opts = pebble.IterOptions{LowerBound: b[:n:n], UpperBound: b[n:]}
	if hi == nil && len(b) == n {
		sc.opts.UpperBound = nil // the prefix is all 0xff: no end
	}
	it, err := src.NewIter(&sc.opts)
	if err != nil {
		return fmt.Errorf("state: range: %w", err)
	}
	db.iters.Add(1)
	defer func() {
		cerr := it.Close()
		db.iters.Add(-1)
		if cerr != nil && err == nil {
			err = fmt.Errorf("state: range: %w", cerr)
		}
	}()
	n = len(prefix)
	for ok := it.First(); ok; ok = it.Next() {
		val, verr := it.ValueAndErr()
		if verr != nil {
			return fmt.Errorf("state: range: %w", verr)
		}
		if !fn(it.Key()[n:], val) {
			return nil
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("state: range: %w", err)
	}
	return nil
}

// appendPrefixEnd appends to dst the smallest key greater than every key
// that starts with prefix (serde.PrefixEnd), or nothing if there is none
// (prefix is empty or all 0xff).
func appendPrefixEnd(dst, prefix []byte) []byte {
	for i := len(prefix) - 1; i >= 0; i-- {
		if prefix[i] != 0xff {
			dst = append(dst, prefix[:i+1]...)
			dst[len(dst)-1]++
			return dst
		}
	}
	return dst
}
