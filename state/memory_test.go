package state

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestMemoryLazyOrder mixes puts, deletes and scans so that keys are deleted
// both while waiting to be ordered and once in the B-tree, and re-put after.
func TestMemoryLazyOrder(t *testing.T) {
	m := NewMemory()
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
		}
	}
	for k, v := range want {
		if got, ok, _ := m.Get([]byte(k)); !ok || string(got) != v {
			t.Fatalf("Get(%s) = %s %v, want %s", k, got, ok, v)
		}
	}
}
