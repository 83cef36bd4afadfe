package state

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestMemoryLazyOrder mixes puts, deletes and scans so that keys are deleted
// both while waiting to be ordered and once in the B-tree, and re-put after.
// It runs with the full 64-bit hashes, and with hashes narrowed to 2 bits
// and to 0 bits, so that keys collide and share index chains.
func TestMemoryLazyOrder(t *testing.T) {
	for _, mask := range []uint64{^uint64(0), 3, 0} {
		t.Run(fmt.Sprintf("mask=%x", mask), func(t *testing.T) {
			m := NewMemory()
			m.mask = mask
			testMemoryModel(t, m)
		})
	}
}

// TestMemoryArenaCompaction runs the same model with the arena compacted as
// soon as its garbage outweighs its live bytes, so that keys and values move
// between chunks while puts, deletes and scans go on.
func TestMemoryArenaCompaction(t *testing.T) {
	m := NewMemory()
	m.compactMin = 0
	m.mask = 3
	testMemoryModel(t, m)
	if m.garbage > m.used {
		t.Errorf("arena: %d bytes of garbage for %d used", m.garbage, m.used)
	}
}

// TestMemoryLargeValues puts values larger than a chunk's share, which get
// chunks of their own, and grows and shrinks them.
func TestMemoryLargeValues(t *testing.T) {
	m := NewMemory()
	m.compactMin = 0
	want := map[string][]byte{}
	for i := range 200 {
		k := fmt.Sprintf("k%d", i%7)
		v := make([]byte, (i*7919)%(arenaChunk/4))
		for j := range v {
			v[j] = byte(i + j)
		}
		if err := m.Put([]byte(k), v); err != nil {
			t.Fatal(err)
		}
		want[k] = v
	}
	for k, v := range want {
		if got, ok, _ := m.Get([]byte(k)); !ok || !slices.Equal(got, v) {
			t.Fatalf("Get(%s): %d bytes, found %v; want %d bytes", k, len(got), ok, len(v))
		}
	}
	if m.used > 2*arenaChunk {
		t.Errorf("arena holds %d bytes for %d keys of at most %d bytes", m.used, len(want), arenaChunk/4)
	}
}

func testMemoryModel(t *testing.T, m *Memory) {
	want := map[string]string{}
	r := rand.New(rand.NewPCG(7, 8))
	for i := range 5000 {
		k := fmt.Sprintf("k%03d", r.IntN(300))
		switch r.IntN(4) {
		case 0:
			if err := m.Delete([]byte(k)); err != nil {
				t.Fatal(err)
			}
			delete(want, k)
		default:
			v := fmt.Sprint(i)
			if err := m.Put([]byte(k), []byte(v)); err != nil {
				t.Fatal(err)
			}
			want[k] = v
		}
		if i%97 == 0 || i == 4999 {
			var keys []string
			err := m.Range(nil, nil, func(k, v []byte) bool {
				if want[string(k)] != string(v) {
					t.Fatalf("step %d: %s = %s, want %s", i, k, v, want[string(k)])
				}
				keys = append(keys, string(k))
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.IsSorted(keys) || len(keys) != len(want) || m.Len() != len(want) {
				t.Fatalf("step %d: scan gave %d sorted=%v keys, want %d", i, len(keys), slices.IsSorted(keys), len(want))
			}
			lo, hi := fmt.Sprintf("k%03d", r.IntN(300)), fmt.Sprintf("k%03d", r.IntN(300))
			var inRange []string
			for k := range want {
				if k >= lo && k < hi {
					inRange = append(inRange, k)
				}
			}
			slices.Sort(inRange)
			var got []string
			if err := m.Range([]byte(lo), []byte(hi), func(k, _ []byte) bool {
				got = append(got, string(k))
				return true
			}); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, inRange) {
				t.Fatalf("step %d: Range(%s, %s) = %q, want %q", i, lo, hi, got, inRange)
			}
		}
	}
	for k, v := range want {
		if got, ok, _ := m.Get([]byte(k)); !ok || string(got) != v {
			t.Fatalf("Get(%s) = %s %v, want %s", k, got, ok, v)
		}
		buf := []byte("prefix")
		if got, ok, err := m.GetAppend(buf, []byte(k)); err != nil || !ok || string(got) != "prefix"+v {
			t.Fatalf("GetAppend(%s) = %s %v %v, want prefix%s", k, got, ok, err, v)
		}
	}
	for i := range 300 {
		k := fmt.Sprintf("k%03d", i)
		if _, ok := want[k]; ok {
			continue
		}
		if got, ok, err := m.GetAppend([]byte("x"), []byte(k)); err != nil || ok || string(got) != "x" {
			t.Fatalf("GetAppend(%s) of a missing key = %q %v %v", k, got, ok, err)
		}
	}
	// Deleted slots are reused: the slots never outnumber the keys ever
	// live at once plus those deleted since the last Range.
	if int(m.nslots) > 300+len(m.pending) {
		t.Errorf("%d slots for at most 300 keys", m.nslots)
	}
}

func TestMemoryReserve(t *testing.T) {
	m := NewMemory()
	m.Reserve(1000)
	for i := range 2000 {
		if err := m.Put([]byte{byte(i >> 8), byte(i)}, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	m.Reserve(10) // not empty: keeps its keys
	for i := range 2000 {
		if v, ok, err := m.Get([]byte{byte(i >> 8), byte(i)}); err != nil || !ok || v[0] != byte(i) {
			t.Fatalf("key %d after Reserve: %v %v %v", i, v, ok, err)
		}
	}
	if m.Len() != 2000 {
		t.Fatalf("Len %d, want 2000", m.Len())
	}
}

// TestMemoryApply applies batches of puts and deletes, with keys repeated
// within a batch, and checks the store against a map after each batch:
// Apply must equal Put and Delete one by one, in order.
func TestMemoryApply(t *testing.T) {
	for _, mask := range []uint64{^uint64(0), 3} {
		m := NewMemory()
		m.mask = mask
		m.compactMin = 0
		want := map[string]string{}
		r := rand.New(rand.NewPCG(3, 4))
		for batch := range 300 {
			var keys, vals [][]byte
			for range r.IntN(40) {
				k := fmt.Sprintf("k%03d", r.IntN(200))
				keys = append(keys, []byte(k))
				if r.IntN(4) == 0 {
					vals = append(vals, nil)
					delete(want, k)
				} else {
					v := fmt.Sprint(r.IntN(1 << r.IntN(30)))
					vals = append(vals, []byte(v))
					want[k] = v
				}
			}
			if err := m.Apply(keys, vals); err != nil {
				t.Fatal(err)
			}
			if m.Len() != len(want) {
				t.Fatalf("mask %x batch %d: Len %d, want %d", mask, batch, m.Len(), len(want))
			}
			for k, v := range want {
				if got, ok, _ := m.Get([]byte(k)); !ok || string(got) != v {
					t.Fatalf("mask %x batch %d: Get(%s) = %s %v, want %s", mask, batch, k, got, ok, v)
				}
			}
		}
		n := 0
		if err := m.Range(nil, nil, func(k, v []byte) bool { n++; return want[string(k)] == string(v) }); err != nil || n != len(want) {
			t.Fatalf("mask %x: Range saw %d keys, want %d (%v)", mask, n, len(want), err)
		}
	}
	if err := NewMemory().Apply([][]byte{{1}}, nil); err == nil {
		t.Fatal("Apply with fewer values than keys: no error")
	}
}

// TestMemorySweep puts and deletes a stream of new keys with no scan in
// between, as a buffer does: the slots of the deleted keys are reused, so
// the store does not grow, and what it holds stays right.
func TestMemorySweep(t *testing.T) {
	m := NewMemory()
	const n, live = 200_000, 100
	for i := range n {
		key := []byte(fmt.Sprintf("k%08d", i))
		if err := m.Put(key, []byte("v")); err != nil {
			t.Fatal(err)
		}
		if i >= live { // keep the last live keys
			if err := m.Delete([]byte(fmt.Sprintf("k%08d", i-live))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if max := uint32(4 * sweepMin); m.nslots > max {
		t.Errorf("%d slots for %d live keys after %d new keys, want at most %d", m.nslots, m.Len(), n, max)
	}
	var got int
	if err := m.Range(nil, nil, func(k, _ []byte) bool {
		if want := fmt.Sprintf("k%08d", n-live+got); string(k) != want {
			t.Fatalf("key %d: %s, want %s", got, k, want)
		}
		got++
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if got != live || m.Len() != live {
		t.Errorf("Range saw %d keys, Len %d, want %d", got, m.Len(), live)
	}
}
