package state

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestBatchAtomicity(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			db := be.open(t)
			s1, s2 := db.Store("one", 0), db.Store("two", 7)
			mustPut(t, s1, "kept", "0")
			mustPut(t, s1, "gone", "0")
			mustPut(t, s2, "x", "0")
			wantGet(t, s1, "gone", "0", true) // cached

			b := db.NewBatch()
			defer b.Close()
			b1, b2 := b.Store(s1), b.Store(s2)
			mustPut(t, b1, "new", "1")
			mustPut(t, b1, "kept", "1")
			mustDelete(t, b1, "gone")
			mustPut(t, b2, "x", "1")
			mustPut(t, b2, "y", "1")
			if err := b.SetCheckpoint("task", map[string]int64{"in/0": 10}); err != nil {
				t.Fatal(err)
			}

			// Invisible outside the batch...
			wantGet(t, s1, "new", "", false)
			wantGet(t, s1, "kept", "0", true)
			wantGet(t, s1, "gone", "0", true)
			wantGet(t, s2, "x", "0", true)
			if got, want := collect(t, s1, nil, nil), []string{"gone=0", "kept=0"}; !slices.Equal(got, want) {
				t.Errorf("s1 before commit = %q, want %q", got, want)
			}
			if _, ok, err := db.Checkpoint("task"); ok || err != nil {
				t.Errorf("checkpoint visible before commit: %v, %v", ok, err)
			}
			// ...visible through it, merged over the DB.
			wantGet(t, b1, "new", "1", true)
			wantGet(t, b1, "kept", "1", true)
			wantGet(t, b1, "gone", "", false)
			wantGet(t, b2, "x", "1", true)
			if got, want := collect(t, b1, nil, nil), []string{"kept=1", "new=1"}; !slices.Equal(got, want) {
				t.Errorf("b1 before commit = %q, want %q", got, want)
			}
			if got, want := collect(t, b2, nil, nil), []string{"x=1", "y=1"}; !slices.Equal(got, want) {
				t.Errorf("b2 before commit = %q, want %q", got, want)
			}
			if b.Count() != 6 {
				t.Errorf("Count = %d, want 6", b.Count())
			}

			if err := b.Commit(); err != nil {
				t.Fatal(err)
			}
			if b.Count() != 0 {
				t.Errorf("Count after Commit = %d, want 0", b.Count())
			}
			for _, s := range []Store{s1, b1} {
				wantGet(t, s, "new", "1", true)
				wantGet(t, s, "kept", "1", true)
				wantGet(t, s, "gone", "", false)
				if got, want := collect(t, s, nil, nil), []string{"kept=1", "new=1"}; !slices.Equal(got, want) {
					t.Errorf("after commit = %q, want %q", got, want)
				}
			}
			wantGet(t, s2, "y", "1", true)
			cp, ok, err := db.Checkpoint("task")
			if err != nil || !ok || cp["in/0"] != 10 {
				t.Errorf("Checkpoint after commit = %v, %v, %v", cp, ok, err)
			}

			// The batch is reusable; Discard drops writes and checkpoint.
			mustPut(t, b1, "new", "2")
			mustDelete(t, b2, "x")
			if err := b.SetCheckpoint("task", map[string]int64{"in/0": 20}); err != nil {
				t.Fatal(err)
			}
			wantGet(t, b1, "new", "2", true)
			if err := b.Discard(); err != nil {
				t.Fatal(err)
			}
			wantGet(t, b1, "new", "1", true)
			wantGet(t, b2, "x", "1", true)
			wantGet(t, s1, "new", "1", true)
			if cp, _, _ := db.Checkpoint("task"); cp["in/0"] != 10 {
				t.Errorf("Discard kept the checkpoint: %v", cp)
			}
			if err := b.Commit(); err != nil { // empty
				t.Fatal(err)
			}

			// Committing again after a discard works.
			mustPut(t, b1, "new", "3")
			if err := b.Commit(); err != nil {
				t.Fatal(err)
			}
			wantGet(t, s1, "new", "3", true)

			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			if err := b.Close(); !errors.Is(err, ErrClosed) {
				t.Errorf("second Close: %v, want ErrClosed", err)
			}
			if err := b1.Put([]byte("k"), nil); !errors.Is(err, ErrClosed) {
				t.Errorf("Put through a closed batch: %v, want ErrClosed", err)
			}
			if err := b.Commit(); !errors.Is(err, ErrClosed) {
				t.Errorf("Commit of a closed batch: %v, want ErrClosed", err)
			}
		})
	}
}

// TestBatchesAreIndependent checks that two tasks' batches do not see each
// other's uncommitted writes.
func TestBatchesAreIndependent(t *testing.T) {
	db := backends[0].open(t)
	s := db.Store("s", 0)
	b1, b2 := db.NewBatch(), db.NewBatch()
	defer b1.Close()
	defer b2.Close()
	mustPut(t, b1.Store(s), "a", "1")
	mustPut(t, b2.Store(s), "b", "2")
	wantGet(t, b1.Store(s), "b", "", false)
	wantGet(t, b2.Store(s), "a", "", false)
	if err := b1.Commit(); err != nil {
		t.Fatal(err)
	}
	wantGet(t, b2.Store(s), "a", "1", true)
	if err := b2.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, want := collect(t, s, nil, nil), []string{"a=1", "b=2"}; !slices.Equal(got, want) {
		t.Errorf("Range = %q, want %q", got, want)
	}
}

// TestBatchManyKeys commits batches over many stripes and partitions and
// compares with a model.
func TestBatchManyKeys(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			db := be.open(t)
			b := db.NewBatch()
			defer b.Close()
			model := map[string]string{}
			for round := range 5 {
				for i := range 2000 {
					p := int32(i % 4)
					k := fmt.Sprintf("%d/k%04d", p, (i*7+round*13)%1500)
					s := b.Store(db.Store("m", p))
					key := k[2:]
					if (i+round)%5 == 0 {
						mustDelete(t, s, key)
						delete(model, k)
					} else {
						v := fmt.Sprintf("r%d-%d", round, i)
						mustPut(t, s, key, v)
						model[k] = v
					}
				}
				if round%2 == 0 {
					if err := b.Commit(); err != nil {
						t.Fatal(err)
					}
				}
				// Whether committed or not, the batch's views see the model.
				got := map[string]string{}
				for p := range int32(4) {
					db.Store("m", p) // (a view per read, as a query would)
					b.Store(db.Store("m", p)).Range(nil, nil, func(k, v []byte) bool {
						got[fmt.Sprintf("%d/%s", p, k)] = string(v)
						return true
					})
				}
				if !maps.Equal(got, model) {
					t.Fatalf("round %d: batch view differs from the model (%d vs %d keys)", round, len(got), len(model))
				}
			}
			if err := b.Commit(); err != nil {
				t.Fatal(err)
			}
			for k, v := range model {
				wantGet(t, db.Store("m", int32(k[0]-'0')), k[2:], v, true)
			}
		})
	}
}

// TestBatchModel runs random writes of keys of two partitions, with values
// that grow and shrink (rewritten in place or moved in the batch's arena),
// deletions, reads, scans (of everything, and of ranges within one of five
// key families, which the batch covers prefix by prefix, past maxCovered
// too), commits and discards, through a Batch and
// against a model: what the batch's views read and scan is the model's
// pending state, what the DB holds is its committed state, and the batch's
// Count and Size are those of the last write of each key since the last
// commit or discard.
func TestBatchModel(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			db := be.open(t)
			b := db.NewBatch()
			defer b.Close()
			views := []Store{db.Store("m", 0), db.Store("m", 1)}
			bviews := []Store{b.Store(views[0]), b.Store(views[1])}
			committed := []map[string]string{{}, {}}
			pending := []map[string]string{{}, {}}
			// written is the last write of each key since the last Commit
			// or Discard (nil: a deletion), from which Count and Size follow.
			written := []map[string]*string{{}, {}}
			checkSize := func(step int) {
				t.Helper()
				count, size := 0, 0
				for p, w := range written {
					plen := len(storePrefix("m", int32(p)))
					for k, v := range w {
						count++
						if v == nil {
							size += batchRecordSize(plen+len(k), 0, true)
						} else {
							size += batchRecordSize(plen+len(k), len(*v), false)
						}
					}
				}
				if count > 0 {
					size += batchHeaderLen
				}
				if b.Count() != count || b.Size() != size {
					t.Fatalf("step %d: Count %d, Size %d; want %d, %d", step, b.Count(), b.Size(), count, size)
				}
			}
			checkRange := func(step int, stores []Store, model []map[string]string, lo, hi string) {
				t.Helper()
				var blo, bhi []byte
				if lo != "" {
					blo, bhi = []byte(lo), []byte(hi)
				}
				for p, s := range stores {
					got := map[string]string{}
					for _, kv := range collect(t, s, blo, bhi) {
						k, v, _ := strings.Cut(kv, "=")
						got[k] = v
					}
					want := maps.Clone(model[p])
					maps.DeleteFunc(want, func(k, _ string) bool { return lo != "" && (k < lo || k >= hi) })
					if !maps.Equal(got, want) {
						t.Fatalf("step %d, partition %d: Range(%q, %q) = %v, want %v", step, p, lo, hi, got, want)
					}
				}
			}
			check := func(step int, stores []Store, model []map[string]string) {
				t.Helper()
				checkRange(step, stores, model, "", "")
			}
			for step := range 3000 {
				p := r.IntN(2)
				k := fmt.Sprintf("%c%02d", 'a'+r.IntN(5), r.IntN(12))
				switch op := r.IntN(100); {
				case op < 50:
					v := strings.Repeat(string(rune('a'+step%26)), r.IntN(30))
					mustPut(t, bviews[p], k, v)
					pending[p][k] = v
					written[p][k] = &v
					checkSize(step)
				case op < 65:
					mustDelete(t, bviews[p], k)
					delete(pending[p], k)
					written[p][k] = nil
					checkSize(step)
				case op < 85:
					v, ok := pending[p][k]
					wantGet(t, bviews[p], k, v, ok)
				case op < 88:
					// Within one family: [a03, a07), say, or [b0, b1).
					f := string(rune('a' + r.IntN(5)))
					if r.IntN(2) == 0 {
						i := r.IntN(12)
						checkRange(step, bviews, pending, fmt.Sprintf("%s%02d", f, i), fmt.Sprintf("%s%02d", f, i+r.IntN(6)+1))
					} else {
						checkRange(step, bviews, pending, f+"0", f+"1")
					}
				case op < 92:
					check(step, bviews, pending)
				case op < 97:
					if err := b.Commit(); err != nil {
						t.Fatal(err)
					}
					for p := range pending {
						committed[p] = maps.Clone(pending[p])
						clear(written[p])
					}
					checkSize(step)
					check(step, views, committed)
					for p := range views {
						for k, v := range committed[p] {
							wantGet(t, views[p], k, v, true) // the cache after the commit
						}
					}
				default:
					if err := b.Discard(); err != nil {
						t.Fatal(err)
					}
					for p := range pending {
						pending[p] = maps.Clone(committed[p])
						clear(written[p])
					}
					checkSize(step)
					check(step, bviews, pending)
				}
			}
		})
	}
}

// TestBatchFootprint checks the batch's memory estimate: it covers the
// writes' bytes and per-key bookkeeping, grows when a scan fills the
// indexed batch, does not grow when a key is rewritten in place, and is 0
// after a commit.
func TestBatchFootprint(t *testing.T) {
	db := backends[0].open(t)
	b := db.NewBatch()
	defer b.Close()
	s := b.Store(db.Store("f", 0))
	if b.Footprint() != 0 {
		t.Fatalf("empty batch: Footprint %d", b.Footprint())
	}
	for i := range 100 {
		mustPut(t, s, fmt.Sprintf("key-%03d", i), "0123456789")
	}
	fp := b.Footprint()
	if fp < b.Size() || fp < 100*keyOverhead {
		t.Errorf("Footprint %d for 100 keys (Size %d)", fp, b.Size())
	}
	mustPut(t, s, "key-000", "9876543210") // in place
	if b.Footprint() != fp {
		t.Errorf("an in-place rewrite changed Footprint from %d to %d", fp, b.Footprint())
	}
	collect(t, s, nil, nil)
	if b.Footprint() <= fp {
		t.Errorf("Footprint %d after a scan filled the indexed batch, want more than %d", b.Footprint(), fp)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if b.Footprint() != 0 {
		t.Errorf("Footprint %d after Commit, want 0", b.Footprint())
	}
}

// TestBatchCoversScannedPrefixes checks what the indexed batch of scans
// holds: after a scan of one key family, the writes under that family's
// prefix (the prefix that the scan's bounds share) and no others; past
// maxCovered families, every write. Every scan sees the batch's writes
// merged over the DB.
func TestBatchCoversScannedPrefixes(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			db := be.open(t)
			mustPut(t, db.Store("c", 0), "f0-committed", "old")
			b := db.NewBatch()
			defer b.Close()
			s := b.Store(db.Store("c", 0))
			families := maxCovered + 2
			for f := range families {
				mustPut(t, s, fmt.Sprintf("f%d-1", f), "x")
			}
			indexed := func() uint32 {
				if b.ib == nil {
					return 0
				}
				return b.ib.Count()
			}
			for f := range families {
				lo, hi := fmt.Sprintf("f%d-", f), fmt.Sprintf("f%d.", f)
				want := []string{lo + "1=x"}
				if f == 0 {
					want = []string{"f0-committed=old", "f0-1=x"}
					slices.Sort(want)
				}
				if got := collect(t, s, []byte(lo), []byte(hi)); !slices.Equal(got, want) {
					t.Fatalf("Range(%q, %q) = %v, want %v", lo, hi, got, want)
				}
				before := indexed()
				mustPut(t, s, lo+"2", "y") // covered now
				mustPut(t, s, "g-other", "z")
				grew := indexed() - before
				switch {
				case f < maxCovered && grew != 1:
					t.Errorf("family %d: a write under the scanned prefix and one outside it added %d records to the indexed batch, want 1", f, grew)
				case f >= maxCovered && grew != 2:
					t.Errorf("family %d, past maxCovered: two writes added %d records to the indexed batch, want 2 (every key covered)", f, grew)
				}
				if got, want := collect(t, s, []byte(lo), []byte(hi)), len(want)+1; len(got) != want {
					t.Errorf("Range(%q, %q) after a write under it = %v, want %d entries", lo, hi, got, want)
				}
			}
			if got := collect(t, s, []byte("g"), []byte("h")); !slices.Equal(got, []string{"g-other=z"}) {
				t.Errorf(`Range("g", "h") = %v`, got)
			}
		})
	}
}
