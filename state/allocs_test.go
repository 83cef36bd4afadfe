package state

import (
	"testing"
)

// TestStoreOpsAllocateNothing holds the per-record operations of a task's
// stores on a state DB to no allocation: reads into a buffer (a cache hit,
// a miss that reads Pebble, a key written in the batch), writes into the
// batch (new keys: once its buffers have grown), scans; and the direct
// writes and reads of a view outside a batch.
func TestStoreOpsAllocateNothing(t *testing.T) {
	if raceEnabled {
		t.Log("under -race, sync.Pool drops pooled objects: allocations are not counted")
	}
	for _, cached := range []bool{true, false} {
		name := "cache"
		var opts []Option
		if !cached {
			name, opts = "nocache", []Option{WithoutCache()}
		}
		t.Run(name, func(t *testing.T) {
			db := openDB(t, t.TempDir(), opts...)
			v := db.Store("s", 0)
			for _, k := range []string{"a", "b", "c"} {
				mustPut(t, v, k, "value-"+k)
			}
			b := db.NewBatch()
			defer b.Close()
			bv := b.Store(v)
			mustPut(t, bv, "d", "value-d")
			ka, kd, kz, lo, hi, val := []byte("a"), []byte("d"), []byte("z"), []byte("a"), []byte("c"), []byte("v2")
			var buf []byte
			fresh := make([][]byte, 200) // keys new to the batch, one per run
			for i := range fresh {
				fresh[i] = []byte{'n', byte(i)}
			}
			next := 0
			keys := 0
			count := func(k, v []byte) bool { keys++; return true }
			for _, op := range []struct {
				name string
				fn   func()
			}{
				{"view get", func() { buf, _, _ = GetAppend(v, buf[:0], ka) }},
				{"view get missing", func() { buf, _, _ = GetAppend(v, buf[:0], kz) }},
				{"batch get", func() { buf, _, _ = GetAppend(bv, buf[:0], ka) }},
				{"batch get written", func() { buf, _, _ = GetAppend(bv, buf[:0], kd) }},
				{"batch rewrite", func() { _ = bv.Put(kd, val) }},
				{"batch put", func() { _ = bv.Put(ka, val) }}, // a key the batch did not write
				{"batch put new key", func() { _ = bv.Put(fresh[next], val); next++ }},
				{"view range", func() { _ = v.Range(lo, hi, count) }},
				{"batch range", func() { _ = bv.Range(lo, hi, count) }},
				{"view put", func() { _ = v.Put(kz, val) }},
				{"view delete", func() { _ = v.Delete(kz) }},
			} {
				op.fn() // grow buffers
				if allocs := testing.AllocsPerRun(100, op.fn); allocs != 0 && !raceEnabled {
					t.Errorf("%s: %v allocations, want 0", op.name, allocs)
				}
			}
			if keys == 0 {
				t.Error("the scans found nothing")
			}
		})
	}
}
