package state

import (
	"errors"
	"testing"
)

// TestGetAppend checks AppendGetter on every store: a value found is
// appended to dst (from the cache, from Pebble, from a batch's writes), a
// missing or deleted key leaves dst as it was, an empty value is found, and
// the bytes appended stay valid after writes.
func TestGetAppend(t *testing.T) {
	for _, m := range storeMakers() {
		t.Run(m.name, func(t *testing.T) {
			s := m.make(t)
			ag, ok := s.(AppendGetter)
			if !ok {
				t.Fatalf("%T does not implement AppendGetter", s)
			}
			mustPut(t, s, "a", "1")
			mustPut(t, s, "e", "")
			mustPut(t, s, "d", "x")
			mustDelete(t, s, "d")
			check := func(key, want string, wantOK bool) {
				t.Helper()
				for range 2 { // a cache miss, then a hit
					dst := append(make([]byte, 0, 16), "pre:"...)
					got, ok, err := ag.GetAppend(dst, []byte(key))
					if err != nil || ok != wantOK || string(got) != "pre:"+want {
						t.Fatalf("GetAppend(pre:, %q) = %q, %v, %v; want %q, %v", key, got, ok, err, "pre:"+want, wantOK)
					}
				}
			}
			check("a", "1", true)
			check("e", "", true)
			check("d", "", false)
			check("missing", "", false)
			if v, ok, err := s.Get([]byte("e")); err != nil || !ok || v == nil || len(v) != 0 {
				t.Errorf("Get(e) = %q (nil %v), %v, %v; want an empty, non-nil value", v, v == nil, ok, err)
			}
			got, _, _ := ag.GetAppend(nil, []byte("a"))
			mustPut(t, s, "a", "2")
			if string(got) != "1" {
				t.Errorf("the bytes GetAppend appended changed to %q after a write", got)
			}
			check("a", "2", true)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if _, _, err := ag.GetAppend(nil, []byte("a")); !errors.Is(err, ErrClosed) {
				t.Errorf("GetAppend after Close: %v, want ErrClosed", err)
			}
		})
	}
}

// TestBatchGetAppendAfterCommit reads a key through a batch's view before
// and after the batch's Commit, and after a write of another key: the
// batch's fast path for an empty batch reads the committed value.
func TestBatchGetAppendAfterCommit(t *testing.T) {
	db := openDB(t, t.TempDir())
	b := db.NewBatch()
	defer b.Close()
	s := b.Store(db.Store("s", 0))
	mustPut(t, s, "k", "1")
	wantGet(t, s, "k", "1", true)
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	wantGet(t, s, "k", "1", true)
	mustPut(t, s, "k", "2")
	wantGet(t, s, "k", "2", true)
	wantGet(t, db.Store("s", 0), "k", "1", true)
	if err := b.Discard(); err != nil {
		t.Fatal(err)
	}
	wantGet(t, s, "k", "1", true)
}
