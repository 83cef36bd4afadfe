package state

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/kstreamgo/kstream/serde"
)

// kvStores returns stores for the typed tests: Memory and DB views, with the
// DB (nil for Memory) to count its open iterators.
func kvStores(t *testing.T) map[string]func() (Store, *DB) {
	out := map[string]func() (Store, *DB){
		"memory": func() (Store, *DB) { return NewMemory(), nil },
	}
	for _, be := range backends {
		out[be.name] = func() (Store, *DB) {
			db := be.open(t)
			return db.Store("kv", 0), db
		}
	}
	return out
}

func TestKVIterators(t *testing.T) {
	for name, mk := range kvStores(t) {
		t.Run(name, func(t *testing.T) {
			s, db := mk()
			kv := NewKV(s, serde.OrderedInt64, serde.String)
			for _, k := range []int64{5, -3, 0, 100, -100, 7, 1 << 40} {
				if err := kv.Put(k, fmt.Sprint(k)); err != nil {
					t.Fatal(err)
				}
			}
			var keys []int64
			for k, v := range kv.Entries() {
				if v != fmt.Sprint(k) {
					t.Errorf("Entries: %d=%q", k, v)
				}
				keys = append(keys, k)
			}
			if err := kv.Err(); err != nil {
				t.Fatal(err)
			}
			if want := []int64{-100, -3, 0, 5, 7, 100, 1 << 40}; !slices.Equal(keys, want) {
				t.Errorf("Entries keys = %v, want %v", keys, want)
			}

			ranges := []struct {
				lo, hi int64
				want   []int64
			}{
				{-3, 7, []int64{-3, 0, 5}},
				{-1000, 0, []int64{-100, -3}},
				{6, 1 << 50, []int64{7, 100, 1 << 40}},
				{5, 5, nil},
				{7, 5, nil},
			}
			for _, r := range ranges {
				var got []int64
				for k := range kv.Range(r.lo, r.hi) {
					got = append(got, k)
					// Reads in the loop body reuse the KV's key buffer: the
					// scan's bounds must not change.
					if _, _, err := kv.Get(k + 1); err != nil {
						t.Fatal(err)
					}
				}
				if err := kv.Err(); err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, r.want) {
					t.Errorf("Range(%d, %d) = %v, want %v", r.lo, r.hi, got, r.want)
				}
			}

			// Breaking out of the loop closes the store's iterator.
			n := 0
			for range kv.Entries() {
				n++
				if n == 2 {
					break
				}
			}
			for range kv.Range(-1000, 1000) {
				break
			}
			if n != 2 || kv.Err() != nil {
				t.Errorf("break: n=%d err=%v", n, kv.Err())
			}
			if db != nil && db.iters.Load() != 0 {
				t.Errorf("%d iterators open after breaking out of KV loops", db.iters.Load())
			}

			// The callback form still works.
			n = 0
			if err := kv.All(func(int64, string) bool { n++; return true }); err != nil || n != 7 {
				t.Errorf("All: n=%d err=%v", n, err)
			}

			// An entry that does not decode ends the loop with an error.
			if err := s.Put([]byte("bad"), []byte("v")); err != nil {
				t.Fatal(err)
			}
			n = 0
			for range kv.Entries() {
				n++
			}
			if err := kv.Err(); err == nil || !strings.Contains(err.Error(), "decoding key") {
				t.Errorf("Err after a bad key = %v", err)
			}
			if db != nil && db.iters.Load() != 0 {
				t.Errorf("%d iterators open after a decoding error", db.iters.Load())
			}
			// The next iteration resets Err.
			for range kv.Range(0, 1) {
			}
			if err := kv.Err(); err != nil {
				t.Errorf("Err after a clean Range = %v", err)
			}
		})
	}
}
