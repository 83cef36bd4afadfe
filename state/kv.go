package state

import (
	"fmt"

	"github.com/kstreamgo/kstream/serde"
)

// KV is a typed view of a Store: keys and values pass through serdes. It keeps
// scratch buffers, so like the store it is for one goroutine.
type KV[K, V any] struct {
	store Store
	ks    serde.Serde[K]
	vs    serde.Serde[V]
	kbuf  []byte
	vbuf  []byte
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
	var derr error
	err := kv.store.Range(nil, nil, func(kb, vb []byte) bool {
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
