package state

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// backend opens a DB for a test.
type backend struct {
	name string
	open func(t testing.TB, opts ...Option) *DB
}

var backends = []backend{
	{"dir", func(t testing.TB, opts ...Option) *DB { return openDB(t, t.TempDir(), opts...) }},
	{"mem", func(t testing.TB, opts ...Option) *DB { return openDB(t, "db", append(opts, InMemory())...) }},
	{"dir-nocache", func(t testing.TB, opts ...Option) *DB {
		return openDB(t, t.TempDir(), append(opts, WithoutCache())...)
	}},
}

// openDB opens a DB and closes it at the end of the test, failing the test
// if Close reports an error (leaked iterators included).
func openDB(t testing.TB, dir string, opts ...Option) *DB {
	t.Helper()
	db, err := Open(dir, opts...)
	if err != nil {
		t.Fatalf("Open(%q): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// storeMaker makes an empty Store for the conformance tests, which every
// backend must pass: Memory, a DB view, and a DB view through a batch.
type storeMaker struct {
	name string
	make func(t *testing.T) Store
}

func storeMakers() []storeMaker {
	ms := []storeMaker{{"memory", func(*testing.T) Store { return NewMemory() }}}
	for _, be := range backends {
		ms = append(ms,
			storeMaker{be.name, func(t *testing.T) Store { return be.open(t).Store("s", 0) }},
			storeMaker{be.name + "-batch", func(t *testing.T) Store {
				db := be.open(t)
				b := db.NewBatch()
				t.Cleanup(func() { b.Close() })
				return b.Store(db.Store("s", 0))
			}},
		)
	}
	return ms
}

// collect returns the entries of s in [lo, hi) as "k=v" strings.
func collect(t testing.TB, s Store, lo, hi []byte) []string {
	t.Helper()
	var out []string
	err := s.Range(lo, hi, func(k, v []byte) bool {
		out = append(out, string(k)+"="+string(v))
		return true
	})
	if err != nil {
		t.Fatalf("Range(%q, %q): %v", lo, hi, err)
	}
	return out
}

func mustGet(t testing.TB, s Store, key string) (string, bool) {
	t.Helper()
	v, ok, err := s.Get([]byte(key))
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if ok && v == nil {
		t.Fatalf("Get(%q) found a nil value", key)
	}
	return string(v), ok
}

func mustPut(t testing.TB, s Store, key, value string) {
	t.Helper()
	if err := s.Put([]byte(key), []byte(value)); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func mustDelete(t testing.TB, s Store, key string) {
	t.Helper()
	if err := s.Delete([]byte(key)); err != nil {
		t.Fatalf("Delete(%q): %v", key, err)
	}
}

func wantGet(t testing.TB, s Store, key, want string, wantOK bool) {
	t.Helper()
	got, ok := mustGet(t, s, key)
	if ok != wantOK || got != want {
		t.Errorf("Get(%q) = %q, %v; want %q, %v", key, got, ok, want, wantOK)
	}
}

func TestStoreConformance(t *testing.T) {
	for _, m := range storeMakers() {
		t.Run(m.name, func(t *testing.T) {
			s := m.make(t)
			wantGet(t, s, "a", "", false)
			mustPut(t, s, "b", "1")
			mustPut(t, s, "a", "2")
			mustPut(t, s, "c", "3")
			mustPut(t, s, "e", "")
			mustPut(t, s, "a\x00", "4")
			mustPut(t, s, "\xff\xff", "5")
			mustPut(t, s, "", "6")
			wantGet(t, s, "a", "2", true)
			wantGet(t, s, "e", "", true)
			wantGet(t, s, "", "6", true)
			mustPut(t, s, "a", "22")
			wantGet(t, s, "a", "22", true)
			mustDelete(t, s, "c")
			mustDelete(t, s, "zz") // missing: not an error
			wantGet(t, s, "c", "", false)

			all := []string{"=6", "a=22", "a\x00=4", "b=1", "e=", "\xff\xff=5"}
			ranges := []struct {
				lo, hi []byte
				want   []string
			}{
				{nil, nil, all},
				{[]byte("a"), nil, all[1:]},
				{nil, []byte("b"), all[:3]},
				{[]byte("a\x00"), []byte("e"), all[2:4]},
				{[]byte("b"), []byte("b"), nil},
				{[]byte("e"), []byte("b"), nil},
				{[]byte{}, []byte("a"), all[:1]},
				{[]byte("\xff"), nil, all[5:]},
			}
			for _, r := range ranges {
				if got := collect(t, s, r.lo, r.hi); !slices.Equal(got, r.want) {
					t.Errorf("Range(%q, %q) = %q, want %q", r.lo, r.hi, got, r.want)
				}
			}

			// Early stop.
			n := 0
			if err := s.Range(nil, nil, func(k, v []byte) bool { n++; return n < 2 }); err != nil {
				t.Fatal(err)
			}
			if n != 2 {
				t.Errorf("Range called fn %d times after it returned false, want 2", n)
			}

			// Put copies its arguments.
			k, v := []byte("k"), []byte("v")
			if err := s.Put(k, v); err != nil {
				t.Fatal(err)
			}
			k[0], v[0] = 'x', 'x'
			wantGet(t, s, "k", "v", true)

			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.Get([]byte("a")); !errors.Is(err, ErrClosed) {
				t.Errorf("Get after Close: %v, want ErrClosed", err)
			}
			if err := s.Put([]byte("a"), nil); !errors.Is(err, ErrClosed) {
				t.Errorf("Put after Close: %v, want ErrClosed", err)
			}
		})
	}
}

// TestIsolation writes the same keys into store partitions whose names and
// numbers are prefixes of each other, or would collide in a naive encoding.
func TestIsolation(t *testing.T) {
	type sp struct {
		name string
		part int32
	}
	parts := []sp{
		{"a", 0}, {"a", 1}, {"a", 256}, {"a", 65536}, {"a", -1},
		{"ab", 0}, {"ab", 1}, {"", 0}, {"a\x00", 1}, {"a\x00\x01", 0},
		{"a\x01", 0}, {"\xff", 0}, {"b", 0x01000000},
	}
	keys := []string{"", "k", "\x00", "\x00\x01", "\xff\xff\xff\xff", "\x00\x00\x00\x01k"}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			db := be.open(t)
			for _, p := range parts {
				s := db.Store(p.name, p.part)
				for _, k := range keys {
					mustPut(t, s, k, fmt.Sprintf("%q/%d", p.name, p.part))
				}
			}
			check := func(dropped map[sp]bool) {
				t.Helper()
				for _, p := range parts {
					s := db.Store(p.name, p.part)
					val := fmt.Sprintf("%q/%d", p.name, p.part)
					var want []string
					if !dropped[p] {
						sorted := slices.Sorted(slices.Values(keys))
						for _, k := range sorted {
							want = append(want, k+"="+val)
						}
					}
					for _, k := range keys {
						if dropped[p] {
							wantGet(t, s, k, "", false)
						} else {
							wantGet(t, s, k, val, true)
						}
					}
					if got := collect(t, s, nil, nil); !slices.Equal(got, want) {
						t.Errorf("store %q partition %d: Range = %q, want %q", p.name, p.part, got, want)
					}
				}
			}
			check(nil)
			// Dropping a partition leaves its neighbours alone.
			for _, p := range []sp{{"a", 1}, {"a\x00", 1}} {
				if err := db.DropPartition(p.name, p.part); err != nil {
					t.Fatal(err)
				}
			}
			check(map[sp]bool{{"a", 1}: true, {"a\x00", 1}: true})
		})
	}
}

func TestStorePrefixIsPrefixFree(t *testing.T) {
	names := []string{"", "a", "ab", "a\x00", "a\x00\x01", "a\x00\xff", "\x00", "\xff", "ab\x00"}
	parts := []int32{0, 1, 255, 256, 65535, 65536, -1, 1 << 24}
	var prefixes [][]byte
	for _, n := range names {
		for _, p := range parts {
			prefixes = append(prefixes, storePrefix(n, p))
		}
	}
	for i, a := range prefixes {
		for j, b := range prefixes {
			if i != j && bytes.HasPrefix(b, a) {
				t.Errorf("prefix %q is a prefix of %q", a, b)
			}
		}
	}
}

// TestReopen checks that data written through views and batches survives
// Close and Open on a real directory: Close must flush the memtable.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := db.Store("s", 3)
	for i := range 1000 {
		mustPut(t, s, fmt.Sprintf("k%04d", i), fmt.Sprint(i))
	}
	b := db.NewBatch()
	bs := b.Store(db.Store("t", 0))
	for i := range 1000 {
		mustPut(t, bs, fmt.Sprintf("k%04d", i), fmt.Sprint(-i))
	}
	if err := b.SetCheckpoint("task-1", map[string]int64{"in/0": 42}); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
	if _, _, err := s.Get([]byte("k0001")); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after DB Close: %v, want ErrClosed", err)
	}
	ssts, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(ssts) == 0 {
		t.Errorf("no sstables in %s after Close: the memtable was not flushed", dir)
	}

	db = openDB(t, dir)
	s, ts := db.Store("s", 3), db.Store("t", 0)
	for i := range 1000 {
		k := fmt.Sprintf("k%04d", i)
		wantGet(t, s, k, fmt.Sprint(i), true)
		wantGet(t, ts, k, fmt.Sprint(-i), true)
	}
	if n := len(collect(t, s, nil, nil)); n != 1000 {
		t.Errorf("Range after reopen: %d keys, want 1000", n)
	}
	cp, ok, err := db.Checkpoint("task-1")
	if err != nil || !ok || cp["in/0"] != 42 {
		t.Errorf("Checkpoint after reopen = %v, %v, %v", cp, ok, err)
	}
}

func TestOpenLocksDirectory(t *testing.T) {
	dir := t.TempDir()
	openDB(t, dir)
	if db, err := Open(dir); err == nil {
		db.Close()
		t.Fatal("a second Open of the same directory succeeded")
	}
}

func TestLayoutVersion(t *testing.T) {
	dir := t.TempDir()
	pdb, err := pebble.Open(dir, &pebble.Options{Logger: pebbleLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := pdb.Set(layoutKey, []byte("99"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := pdb.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := Open(dir)
	if err == nil {
		db.Close()
		t.Fatal("Open of a database with another layout version succeeded")
	}
	if !strings.Contains(err.Error(), "layout version") {
		t.Errorf("error %q does not mention the layout version", err)
	}
}

func TestSplitBudget(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		budget  int64
		noCache bool
		want    split
	}{
		{0, false, split{32 * mib, 64 * mib, 64 * mib}},
		{256 * mib, false, split{32 * mib, 64 * mib, 64 * mib}},
		{256*mib - 1, false, split{0, 192 * mib, 64*mib - 1}},
		{128 * mib, false, split{0, 96 * mib, 32 * mib}},
		{64 * mib, false, split{0, 48 * mib, 16 * mib}},
		{1, false, split{0, 48 * mib, 16 * mib}},
		{1024 * mib, false, split{128 * mib, 256 * mib, 256 * mib}},
		{256 * mib, true, split{0, 192 * mib, 64 * mib}},
		{64 * mib, true, split{0, 48 * mib, 16 * mib}},
	}
	for _, tt := range tests {
		got := splitBudget(tt.budget, tt.noCache)
		if got != tt.want {
			t.Errorf("splitBudget(%d, %v) = %+v, want %+v", tt.budget, tt.noCache, got, tt.want)
		}
		// The block cache holds the memtables; the fastcache's index costs
		// twice its entries; the rest is left for Pebble's allocations
		// outside its cache and malloc's overhead.
		if got.memTables > got.blockCache {
			t.Errorf("splitBudget(%d, %v) = %+v: the memtables do not fit in the block cache", tt.budget, tt.noCache, got)
		}
		total := got.fastcache*3 + got.blockCache + tt.budget/4
		if got.fastcache > 0 {
			total += tt.budget / 8
		}
		if tt.budget >= MinMemoryBudget && total != tt.budget {
			t.Errorf("splitBudget(%d, %v) = %+v does not add up to the budget", tt.budget, tt.noCache, got)
		}
	}
}

func TestGoMemoryLimit(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		opts []Option
		want int64
	}{
		{nil, 160 * mib},
		{[]Option{MemoryBudget(1 << 30)}, 352 * mib},
		{[]Option{WithoutCache()}, 96 * mib},
		{[]Option{MemoryBudget(128 * mib)}, 96 * mib},
	} {
		if got := GoMemoryLimit(c.opts...); got != c.want {
			t.Errorf("GoMemoryLimit(%d options) = %d MiB, want %d MiB", len(c.opts), got/mib, c.want/mib)
		}
	}
}

// TestCacheCoherence reads keys (filling the cache) and then changes them in
// every way there is: a later Get must see the change.
func TestCacheCoherence(t *testing.T) {
	big := strings.Repeat("x", 70<<10)
	tests := []struct {
		name   string
		change func(t *testing.T, db *DB, s Store)
		want   string
		found  bool
	}{
		{"put", func(t *testing.T, db *DB, s Store) { mustPut(t, s, "k", "new") }, "new", true},
		{"delete", func(t *testing.T, db *DB, s Store) { mustDelete(t, s, "k") }, "", false},
		{"put-big", func(t *testing.T, db *DB, s Store) { mustPut(t, s, "k", big) }, big, true},
		{"other-view-put", func(t *testing.T, db *DB, s Store) { mustPut(t, db.Store("s", 1), "k", "new") }, "new", true},
		{"batch-put", func(t *testing.T, db *DB, s Store) {
			commit(t, db, func(b *Batch) { mustPut(t, b.Store(s), "k", "new") })
		}, "new", true},
		{"batch-delete", func(t *testing.T, db *DB, s Store) {
			commit(t, db, func(b *Batch) { mustDelete(t, b.Store(s), "k") })
		}, "", false},
		{"batch-put-delete-put", func(t *testing.T, db *DB, s Store) {
			commit(t, db, func(b *Batch) {
				bs := b.Store(s)
				mustPut(t, bs, "k", "a")
				mustDelete(t, bs, "k")
				mustPut(t, bs, "k", "new")
			})
		}, "new", true},
		{"batch-put-then-delete", func(t *testing.T, db *DB, s Store) {
			commit(t, db, func(b *Batch) {
				bs := b.Store(s)
				mustPut(t, bs, "k", "a")
				mustDelete(t, bs, "k")
			})
		}, "", false},
		{"batch-put-big", func(t *testing.T, db *DB, s Store) {
			commit(t, db, func(b *Batch) { mustPut(t, b.Store(s), "k", big) })
		}, big, true},
		{"drop-partition", func(t *testing.T, db *DB, s Store) {
			if err := db.DropPartition("s", 1); err != nil {
				t.Fatal(err)
			}
		}, "", false},
		{"discarded-batch", func(t *testing.T, db *DB, s Store) {
			b := db.NewBatch()
			defer b.Close()
			mustPut(t, b.Store(s), "k", "new")
			if err := b.Discard(); err != nil {
				t.Fatal(err)
			}
		}, "old", true},
	}
	for _, be := range backends {
		for _, tt := range tests {
			t.Run(be.name+"/"+tt.name, func(t *testing.T) {
				db := be.open(t)
				s := db.Store("s", 1)
				mustPut(t, s, "k", "old")
				wantGet(t, s, "k", "old", true)
				wantGet(t, s, "k", "old", true) // a cache hit
				tt.change(t, db, s)
				wantGet(t, s, "k", tt.want, tt.found)
				wantGet(t, s, "k", tt.want, tt.found)
				wantGet(t, db.Store("s", 1), "k", tt.want, tt.found)
				// And back to a small value.
				mustPut(t, s, "k", "small")
				wantGet(t, s, "k", "small", true)
				if st := db.Stats(); db.cache != nil && st.CacheGets-st.CacheMisses == 0 {
					t.Errorf("no cache hits: %+v", st)
				}
			})
		}
	}
}

func commit(t *testing.T, db *DB, fn func(b *Batch)) {
	t.Helper()
	b := db.NewBatch()
	defer b.Close()
	fn(b)
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestLargeValues checks values around fastcache's 64 KiB entry limit, which
// fastcache.Set drops silently.
func TestLargeValues(t *testing.T) {
	sizes := []int{0, 1, 65536 - 100, 65536 - 70, 65536 - 8, 65536 - 4, 65536, 70 << 10, 1 << 20}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			db := be.open(t)
			s := db.Store("big", 0)
			for i, n := range sizes {
				val := bytes.Repeat([]byte{byte('a' + i)}, n)
				for _, write := range []string{"put", "batch"} {
					switch write {
					case "put":
						if err := s.Put([]byte("k"), val); err != nil {
							t.Fatal(err)
						}
					case "batch":
						commit(t, db, func(b *Batch) {
							if err := b.Store(s).Put([]byte("k"), val); err != nil {
								t.Fatal(err)
							}
						})
					}
					for range 2 {
						got, ok, err := s.Get([]byte("k"))
						if err != nil || !ok || !bytes.Equal(got, val) {
							t.Fatalf("%s of %d bytes: Get = %d bytes, %v, %v", write, n, len(got), ok, err)
						}
					}
				}
			}
		})
	}
}

func TestConcurrentReadersSeeLastWrite(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			db := be.open(t)
			const keys = 64
			var wg sync.WaitGroup
			stop := make(chan struct{})
			for range 2 {
				wg.Go(func() {
					s := db.Store("c", 0)
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						if _, _, err := s.Get(fmt.Appendf(nil, "k%d", i%keys)); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			s := db.Store("c", 0)
			b := db.NewBatch()
			bs := b.Store(s)
			model := map[string]string{}
			const rounds = 60
			for round := range rounds {
				for k := range keys {
					key := fmt.Sprintf("k%d", k)
					val := fmt.Sprintf("%d-%d", round, k)
					var err error
					switch (round + k) % 4 {
					case 0:
						err = s.Put([]byte(key), []byte(val))
						model[key] = val
					case 1:
						err = bs.Put([]byte(key), []byte(val))
						model[key] = val
					case 2:
						err = s.Delete([]byte(key))
						delete(model, key)
					default:
						err = bs.Delete([]byte(key))
						delete(model, key)
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				if err := b.Commit(); err != nil {
					t.Fatal(err)
				}
			}
			close(stop)
			wg.Wait()
			b.Close()
			for k := range keys {
				key := fmt.Sprintf("k%d", k)
				want, ok := model[key]
				wantGet(t, s, key, want, ok)
			}
		})
	}
}

func TestRangeClosesIterator(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			db := be.open(t)
			s := db.Store("r", 0)
			for i := range 100 {
				mustPut(t, s, fmt.Sprintf("k%03d", i), "v")
			}
			b := db.NewBatch()
			defer b.Close()
			bs := b.Store(s)
			mustPut(t, bs, "k050x", "v")
			for _, st := range []Store{s, bs} {
				n := 0
				if err := st.Range(nil, nil, func(k, v []byte) bool { n++; return n < 3 }); err != nil {
					t.Fatal(err)
				}
				if got := db.iters.Load(); got != 0 {
					t.Errorf("%d iterators open after Range stopped early", got)
				}
				func() {
					defer func() {
						if recover() == nil {
							t.Error("the callback's panic did not propagate")
						}
					}()
					st.Range(nil, nil, func(k, v []byte) bool { panic("boom") })
				}()
				if got := db.Stats().OpenIterators; got != 0 {
					t.Errorf("%d iterators open after the Range callback panicked", got)
				}
			}
			// The cleanup's Close fails on leaked iterators too.
		})
	}
}

func TestClosedDB(t *testing.T) {
	db, err := Open("x", InMemory())
	if err != nil {
		t.Fatal(err)
	}
	s := db.Store("s", 0)
	b := db.NewBatch()
	bs := b.Store(s)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Put":              s.Put([]byte("k"), nil),
		"Delete":           s.Delete([]byte("k")),
		"Range":            s.Range(nil, nil, func(k, v []byte) bool { return true }),
		"batch Put":        bs.Put([]byte("k"), nil),
		"Commit":           b.Commit(),
		"Discard":          b.Discard(),
		"SetCheckpoint":    b.SetCheckpoint("t", nil),
		"DeleteCheckpoint": db.DeleteCheckpoint("t"),
		"DropPartition":    db.DropPartition("s", 0),
		"Flush":            db.Flush(),
		"NewBatch.Commit":  db.NewBatch().Commit(),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	if _, _, err := db.Checkpoint("t"); !errors.Is(err, ErrClosed) {
		t.Errorf("Checkpoint after Close: %v, want ErrClosed", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("batch Close after DB Close: %v", err)
	}
}

func TestBatchStoreRejectsForeignStores(t *testing.T) {
	db1 := backends[1].open(t)
	db2 := openDB(t, "other", InMemory())
	b := db1.NewBatch()
	defer b.Close()
	for name, s := range map[string]Store{"memory": NewMemory(), "other DB": db2.Store("s", 0)} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Batch.Store(%s) did not panic", name)
				}
			}()
			b.Store(s)
		}()
	}
	// A view through another batch of the same DB is fine.
	b2 := db1.NewBatch()
	defer b2.Close()
	bs := b.Store(b2.Store(db1.Store("s", 0)))
	mustPut(t, bs, "k", "v")
	if b.Count() != 1 || b2.Count() != 0 || b.Size() == 0 {
		t.Errorf("writes went to the wrong batch: counts %d, %d", b.Count(), b2.Count())
	}
}

func TestMain(m *testing.M) {
	if os.Getenv(rssChildEnv) != "" {
		os.Exit(rssChild())
	}
	code := m.Run()
	if benchDirRoot != "" {
		os.RemoveAll(benchDirRoot)
	}
	os.Exit(code)
}
