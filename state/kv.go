package state

import (
	"fmt"
	"iter"

	"github.com/kstreamgo/kstream/serde"
)

// KV is a typed view of a Store: keys and values pass through serdes. It keeps
// scratch buffers, so like the store it is for one goroutine.
//
// Range scans and iteration follow the byte order of the encoded keys, which
// is the order of the keys themselves with the order-preserving key serdes of
// package serde (serde.OrderedString, serde.OrderedInt64, ...).
type KV[K, V any] struct {
	store Store
	ks    serde.Serde[K]
	vs    serde.Serde[V]
	kbuf  []byte
	vbuf  []byte
	err   error // of the last Range or Entries iteration
}

// NewKV returns a typed view of s.
func NewKV[K, V any](s Store, ks serde.Serde[K], vs serde.Serde[V]) *KV[K, V] {
	return &KV[K, V]{store: s, ks: ks, vs: vs}
}

// Store returns the underlying byte-level store.
func (kv *KV[K, V]) Store() Store { return kv.store }

func (kv *KV[K, V]) key(k K) ([]byte, error) {
	b, err := kv.ks.Append(kv.kbuf[:0], k)
	if err != nil {
		return nil, fmt.Errorf("state: encoding key: %w", err)
	}
	kv.kbuf = b
	return b, nil
}

// Get returns the value of k and whether it was found.
func (kv *KV[K, V]) Get(k K) (V, bool, error) {
	var zero V
	kb, err := kv.key(k)
	if err != nil {
		return zero, false, err
	}
	b, ok, err := kv.store.Get(kb)
	if err != nil || !ok {
		return zero, false, err
	}
	v, err := kv.vs.Decode(b)
	if err != nil {
		return zero, false, fmt.Errorf("state: decoding value: %w", err)
	}
	return v, true, nil
}

// Put sets k to v.
func (kv *KV[K, V]) Put(k K, v V) error {
	kb, err := kv.key(k)
	if err != nil {
		return err
	}
	vb, err := kv.vs.Append(kv.vbuf[:0], v)
	if err != nil {
		return fmt.Errorf("state: encoding value: %w", err)
	}
	kv.vbuf = vb
	return kv.store.Put(kb, vb)
}

// Delete removes k.
func (kv *KV[K, V]) Delete(k K) error {
	kb, err := kv.key(k)
	if err != nil {
		return err
	}
	return kv.store.Delete(kb)
}

// All calls fn for every entry in key-byte order until fn returns false. An
// entry that does not decode stops the scan with an error.
func (kv *KV[K, V]) All(fn func(K, V) bool) error {
	return kv.scan(nil, nil, fn)
}

// Range returns an iterator over the entries with keys in [lo, hi), in
// key-byte order. The iteration stops at the first error, of the store or of
// decoding an entry, which Err then reports: check it after the loop.
// Breaking out of the loop ends the store's scan and releases its iterator.
// The loop body must not write to the store (a Memory store does not allow
// it).
func (kv *KV[K, V]) Range(lo, hi K) iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		kv.err = nil
		// Fresh buffers: the bounds must outlive any Get or Put in the loop
		// body, which reuse kv.kbuf.
		lb, err := kv.ks.Append(nil, lo)
		if err != nil {
			kv.err = fmt.Errorf("state: encoding range start: %w", err)
			return
		}
		hb, err := kv.ks.Append(nil, hi)
		if err != nil {
			kv.err = fmt.Errorf("state: encoding range end: %w", err)
			return
		}
		if lb == nil {
			lb = []byte{}
		}
		if hb == nil {
			hb = []byte{}
		}
		kv.err = kv.scan(lb, hb, yield)
	}
}

// Entries returns an iterator over all entries in key-byte order. Like
// Range, it stops at the first error, which Err reports, and breaking out of
// the loop releases the store's iterator. (All is the callback form.)
func (kv *KV[K, V]) Entries() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		kv.err = nil
		kv.err = kv.scan(nil, nil, yield)
	}
}

// Err returns the error that ended the last Range or Entries iteration, or
// nil if it ended normally or by a break.
func (kv *KV[K, V]) Err() error { return kv.err }

// scan decodes the entries of the store's range [lo, hi) for fn until fn
// returns false.
func (kv *KV[K, V]) scan(lo, hi []byte, fn func(K, V) bool) error {
	var derr error
	err := kv.store.Range(lo, hi, func(kb, vb []byte) bool {
		k, err := kv.ks.Decode(kb)
		if err != nil {
			derr = fmt.Errorf("state: decoding key: %w", err)
			return false
		}
		v, err := kv.vs.Decode(vb)
		if err != nil {
			derr = fmt.Errorf("state: decoding value: %w", err)
			return false
		}
		return fn(k, v)
	})
	if err != nil {
		return err
	}
	return derr
}
