package state

import (
	"math/rand/v2"
	"testing"
)

// TestHindexModel inserts and removes slots whose hashes are drawn from a
// few values, so that probes collide and wrap around the end of the table,
// and checks after each step that every live slot is found from its home
// position and that no removed slot is.
func TestHindexModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var x hindex
	hashes := map[uint32]uint32{} // live slot -> hash
	lookup := func(slot, h uint32) (int, bool) {
		if len(x.cells) == 0 {
			return 0, false
		}
		for pos := x.home(h); x.cells[pos] != 0; pos = x.next(pos) {
			if x.cells[pos] == cell(slot, h) {
				return pos, true
			}
		}
		return 0, false
	}
	for step := range 20000 {
		slot := uint32(r.IntN(40))
		h, live := hashes[slot]
		if live && r.IntN(2) == 0 {
			pos, ok := lookup(slot, h)
			if !ok {
				t.Fatalf("step %d: live slot %d not found", step, slot)
			}
			x.remove(pos)
			delete(hashes, slot)
		} else if !live {
			h = uint32(r.IntN(6)) * 0x9E3779B1 // few distinct homes, spread over the table
			x.insert(h, slot)
			hashes[slot] = h
		}
		if x.n != len(hashes) {
			t.Fatalf("step %d: %d cells for %d slots", step, x.n, len(hashes))
		}
		for s := range uint32(40) {
			h, live := hashes[s]
			if _, ok := lookup(s, h); ok != live {
				t.Fatalf("step %d: slot %d found %v, live %v", step, s, ok, live)
			}
		}
	}
}
