package runtime

import (
	"testing"

	"github.com/kstreamgo/kstream/state"
)

// TestStagedStoreEmptyValue: a staged put of an empty value, even as the
// first write (an empty arena), applies as a put, not as a delete.
func TestStagedStoreEmptyValue(t *testing.T) {
	m := state.NewMemory()
	if err := m.Put([]byte("k"), []byte("old")); err != nil {
		t.Fatal(err)
	}
	if err := m.Put(nil, []byte("old")); err != nil {
		t.Fatal(err)
	}
	s := &stagedStore{unreadable: unreadable{"s"}, target: m, ap: m}
	// Alone, an empty key and value leave the arena empty.
	for _, k := range []string{"", "k"} {
		if err := s.Put([]byte(k), nil); err != nil {
			t.Fatal(err)
		}
		if err := s.apply(); err != nil {
			t.Fatal(err)
		}
		if v, ok, err := m.Get([]byte(k)); err != nil || !ok || len(v) != 0 {
			t.Errorf("key %q after a staged put of an empty value: %q %v %v, want an empty value", k, v, ok, err)
		}
	}
}
