package state

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/kstreamgo/kstream/serde"
)

// fuzzEntry is one logical key of FuzzStoreOrder: a byte string and an
// integer, used alone (OrderedString, OrderedInt64) and as a tuple
// (AppendOrderedBytes+AppendOrderedInt64).
type fuzzEntry struct {
	b []byte
	i int64
}

// parseFuzzEntries splits data into entries: a length byte (mod 12), that
// many bytes, and 8 bytes of integer (zero-padded at the end of data).
func parseFuzzEntries(data []byte) []fuzzEntry {
	var out []fuzzEntry
	for len(data) > 0 && len(out) < 64 {
		n := int(data[0]) % 12
		data = data[1:]
		n = min(n, len(data))
		e := fuzzEntry{b: bytes.Clone(data[:n])}
		data = data[n:]
		var ib [8]byte
		k := copy(ib[:], data)
		data = data[k:]
		e.i = int64(binary.BigEndian.Uint64(ib[:]))
		out = append(out, e)
	}
	return out
}

func fuzzSeed(es ...fuzzEntry) []byte {
	var out []byte
	for _, e := range es {
		out = append(out, byte(len(e.b)))
		out = append(out, e.b...)
		out = binary.BigEndian.AppendUint64(out, uint64(e.i))
	}
	return out
}

// FuzzStoreOrder checks that Pebble's order of keys encoded with the
// order-preserving codecs of package serde, as Store.Range returns them
// (through a batch and from the DB), is the logical order of the keys, and
// that a Range between two encoded keys returns exactly the logical range.
func FuzzStoreOrder(f *testing.F) {
	f.Add(fuzzSeed(fuzzEntry{nil, 0}, fuzzEntry{[]byte{0}, -1}, fuzzEntry{[]byte{0, 0}, 1}))
	f.Add(fuzzSeed(fuzzEntry{[]byte("a"), math.MinInt64}, fuzzEntry{[]byte("a\x00"), math.MaxInt64},
		fuzzEntry{[]byte("a\x01"), 0}, fuzzEntry{[]byte("ab"), -1}, fuzzEntry{[]byte("\xff"), 1}))
	f.Add(fuzzSeed(fuzzEntry{[]byte("x"), 5}, fuzzEntry{[]byte("x"), -5}, fuzzEntry{[]byte("x\x00\xff"), 5},
		fuzzEntry{[]byte("x\x00"), 5}, fuzzEntry{[]byte(""), 256}))
	f.Add([]byte("\x03abc\x00\x00\x00\x00\x00\x00\x00\x01\x00\x80"))

	db := openDB(f, "fuzz", InMemory())
	var seq atomic.Int64
	f.Fuzz(func(t *testing.T, data []byte) {
		es := parseFuzzEntries(data)
		if len(es) == 0 {
			return
		}
		run := seq.Add(1)
		name := fmt.Sprintf("fuzz-%d", run)
		ints := make([]int64, len(es))
		strs := make([]string, len(es))
		for i, e := range es {
			ints[i], strs[i] = e.i, string(e.b)
		}
		tupleCmp := func(a, b fuzzEntry) int {
			return cmp.Or(bytes.Compare(a.b, b.b), cmp.Compare(a.i, b.i))
		}
		tupleKey := func(e fuzzEntry) []byte {
			return serde.AppendOrderedInt64(serde.AppendOrderedBytes(nil, e.b), e.i)
		}
		checkOrder(t, db, name+"/int", ints, cmp.Compare[int64], func(v int64) []byte {
			k, _ := serde.OrderedInt64.Append(nil, v)
			return k
		}, func(b []byte) (int64, error) { return serde.OrderedInt64.Decode(b) }, run%64 == 0)
		checkOrder(t, db, name+"/string", strs, cmp.Compare[string], func(v string) []byte {
			k, _ := serde.OrderedString.Append(nil, v)
			return k
		}, func(b []byte) (string, error) { return serde.OrderedString.Decode(b) }, false)
		checkOrder(t, db, name+"/tuple", es, tupleCmp, tupleKey, func(b []byte) (fuzzEntry, error) {
			v, rest, err := serde.DecodeOrderedBytes(b)
			if err != nil {
				return fuzzEntry{}, err
			}
			i, rest, err := serde.DecodeOrderedInt64(rest)
			if err == nil && len(rest) != 0 {
				err = fmt.Errorf("%d trailing bytes", len(rest))
			}
			return fuzzEntry{v, i}, err
		}, false)
	})
}

// checkOrder writes vals as keys of a fresh store partition, through a batch,
// and checks Range's order and bounds before and after the commit.
func checkOrder[T any](t *testing.T, db *DB, name string, vals []T, compare func(a, b T) int,
	encode func(T) []byte, decode func([]byte) (T, error), flush bool) {
	t.Helper()
	want := slices.Clone(vals)
	slices.SortFunc(want, compare)
	want = slices.CompactFunc(want, func(a, b T) bool { return compare(a, b) == 0 })

	s := db.Store(name, int32(len(vals)))
	b := db.NewBatch()
	defer b.Close()
	bs := b.Store(s)
	for i, v := range vals {
		if err := bs.Put(encode(v), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	scan := func(st Store, lo, hi []byte) []T {
		var got []T
		err := st.Range(lo, hi, func(k, _ []byte) bool {
			v, err := decode(k)
			if err != nil {
				t.Fatalf("%s: decoding %x: %v", name, k, err)
			}
			got = append(got, v)
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	equal := func(a, b []T) bool {
		return slices.EqualFunc(a, b, func(x, y T) bool { return compare(x, y) == 0 })
	}
	check := func(st Store, when string) {
		if got := scan(st, nil, nil); !equal(got, want) {
			t.Fatalf("%s %s: Range order\n got %v\nwant %v", name, when, got, want)
		}
		// A range between the first two input values, in either order.
		lo, hi := vals[0], vals[len(vals)-1]
		var sub []T
		for _, v := range want {
			if compare(v, lo) >= 0 && compare(v, hi) < 0 {
				sub = append(sub, v)
			}
		}
		if got := scan(st, encode(lo), encode(hi)); !equal(got, sub) {
			t.Fatalf("%s %s: Range(%v, %v)\n got %v\nwant %v", name, when, lo, hi, got, sub)
		}
	}
	check(bs, "in batch")
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if flush {
		if err := db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	check(s, "committed")
	if err := db.DropPartition(name, int32(len(vals))); err != nil {
		t.Fatal(err)
	}
}
