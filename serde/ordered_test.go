package serde_test

import (
	"bytes"
	"cmp"
	"math"
	"strings"
	"testing"

	"github.com/kstreamgo/kstream/serde"
)

func TestOrderedVectors(t *testing.T) {
	checkVectors(t, serde.OrderedInt32, []vector[int32]{
		{math.MinInt32, "00 00 00 00"},
		{-1, "7f ff ff ff"},
		{0, "80 00 00 00"},
		{1, "80 00 00 01"},
		{256, "80 00 01 00"},
		{math.MaxInt32, "ff ff ff ff"},
	}, eqComparable)
	checkVectors(t, serde.OrderedInt64, []vector[int64]{
		{math.MinInt64, "00 00 00 00 00 00 00 00"},
		{-1, "7f ff ff ff ff ff ff ff"},
		{0, "80 00 00 00 00 00 00 00"},
		{1, "80 00 00 00 00 00 00 01"},
		{math.MaxInt64, "ff ff ff ff ff ff ff ff"},
	}, eqComparable)
	checkVectors(t, serde.OrderedUint64, []vector[uint64]{
		{0, "00 00 00 00 00 00 00 00"},
		{258, "00 00 00 00 00 00 01 02"},
		{math.MaxUint64, "ff ff ff ff ff ff ff ff"},
	}, eqComparable)
	checkVectors(t, serde.OrderedFloat64, []vector[float64]{
		{math.Inf(-1), "00 0f ff ff ff ff ff ff"},
		{-1.5, "40 07 ff ff ff ff ff ff"},
		{math.Copysign(0, -1), "7f ff ff ff ff ff ff ff"},
		{0, "80 00 00 00 00 00 00 00"},
		{1.5, "bf f8 00 00 00 00 00 00"},
		{math.Inf(1), "ff f0 00 00 00 00 00 00"},
		{math.NaN(), "ff f8 00 00 00 00 00 01"},
	}, eqFloatBits)
	checkVectors(t, serde.OrderedBool, []vector[bool]{
		{false, "00"},
		{true, "01"},
	}, eqComparable)
	checkVectors(t, serde.OrderedBytes, []vector[[]byte]{
		{[]byte{}, "00 01"},
		{[]byte{0}, "00 ff 00 01"},
		{[]byte("a\x00b"), "61 00 ff 62 00 01"},
		{[]byte{0xff, 0x00, 0x00}, "ff 00 ff 00 ff 00 01"},
		{[]byte{0x01}, "01 00 01"},
	}, bytes.Equal)
	checkVectors(t, serde.OrderedString, []vector[string]{
		{"", "00 01"},
		{"ab", "61 62 00 01"},
		{"a\x00b", "61 00 ff 62 00 01"},
		{"\x00\x00", "00 ff 00 ff 00 01"},
		{"\xff", "ff 00 01"},
	}, eqComparable)
}

// checkSorted checks that the encodings of values, which are in strictly
// ascending order, are in strictly ascending byte order too.
func checkSorted[T any](t *testing.T, name string, s serde.Serde[T], values []T) {
	t.Helper()
	encs := make([][]byte, len(values))
	for i, v := range values {
		enc, err := s.Append(nil, v)
		if err != nil {
			t.Fatalf("%s: Append(%#v): %v", name, v, err)
		}
		encs[i] = enc
	}
	for i := range encs {
		for j := range encs {
			if got, want := bytes.Compare(encs[i], encs[j]), cmp.Compare(i, j); got != want {
				t.Errorf("%s: Compare(enc(%#v), enc(%#v)) = %d, want %d", name, values[i], values[j], got, want)
			}
		}
	}
}

var sortedByteStrings = []string{
	"", "\x00", "\x00\x00", "\x00\x00\xff", "\x00\x01", "\x00\xff", "\x01", "\x01\x00",
	"a", "a\x00", "a\x00\x00", "a\x00\x01", "a\x00\xff", "a\x01", "ab", "ab\x00", "b",
	"\xfe\xff", "\xff", "\xff\x00", "\xff\x01", "\xff\xff", "\xff\xff\xff",
}

func TestOrderedSorted(t *testing.T) {
	checkSorted(t, "OrderedInt32", serde.OrderedInt32, []int32{
		math.MinInt32, math.MinInt32 + 1, -65536, -256, -2, -1, 0, 1, 2, 255, 256, 65536, math.MaxInt32 - 1, math.MaxInt32,
	})
	checkSorted(t, "OrderedInt64", serde.OrderedInt64, []int64{
		math.MinInt64, math.MinInt64 + 1, math.MinInt32, -256, -1, 0, 1, 255, 256, math.MaxInt32, 1 << 40, math.MaxInt64 - 1, math.MaxInt64,
	})
	checkSorted(t, "OrderedUint64", serde.OrderedUint64, []uint64{
		0, 1, 255, 256, 1 << 32, 1 << 63, math.MaxUint64,
	})
	checkSorted(t, "OrderedFloat64", serde.OrderedFloat64, []float64{
		math.Float64frombits(0xffffffffffffffff), // NaN with the sign bit set
		math.Inf(-1), -math.MaxFloat64, -1e100, -1.5, -1, -math.SmallestNonzeroFloat64 * 2,
		-math.SmallestNonzeroFloat64, math.Copysign(0, -1), 0, math.SmallestNonzeroFloat64,
		math.SmallestNonzeroFloat64 * 2, 1, 1.5, 1e100, math.MaxFloat64, math.Inf(1),
		math.NaN(),
	})
	checkSorted(t, "OrderedBool", serde.OrderedBool, []bool{false, true})
	checkSorted(t, "OrderedString", serde.OrderedString, sortedByteStrings)
	byteValues := make([][]byte, len(sortedByteStrings))
	for i, s := range sortedByteStrings {
		byteValues[i] = []byte(s)
	}
	checkSorted(t, "OrderedBytes", serde.OrderedBytes, byteValues)

	// Composite (key, timestamp) keys sort by key, then by timestamp.
	type windowKey struct {
		key string
		ts  int64
	}
	var tuples []windowKey
	for _, k := range sortedByteStrings {
		for _, ts := range []int64{math.MinInt64, -1, 0, 1, math.MaxInt64} {
			tuples = append(tuples, windowKey{k, ts})
		}
	}
	checkSorted(t, "(string, int64)", serde.Func(
		func(dst []byte, v windowKey) ([]byte, error) {
			return serde.AppendOrderedInt64(serde.AppendOrderedString(dst, v.key), v.ts), nil
		},
		func(b []byte) (windowKey, error) { panic("unused") },
	), tuples)
}

func TestDecodeOrderedComposite(t *testing.T) {
	key := serde.AppendOrderedString(nil, "a\x00b")
	key = serde.AppendOrderedBytes(key, []byte{0xff, 0x00})
	key = serde.AppendOrderedInt64(key, -5)
	key = serde.AppendOrderedInt32(key, 7)
	key = serde.AppendOrderedUint64(key, 9)
	key = serde.AppendOrderedFloat64(key, -2.5)
	key = serde.AppendOrderedBool(key, true)
	key = append(key, "tail"...)

	s, rest, err := serde.DecodeOrderedString(key)
	if err != nil || s != "a\x00b" {
		t.Fatalf("DecodeOrderedString = %q, %v", s, err)
	}
	b, rest, err := serde.DecodeOrderedBytes(rest)
	if err != nil || !bytes.Equal(b, []byte{0xff, 0x00}) {
		t.Fatalf("DecodeOrderedBytes = % x, %v", b, err)
	}
	i64, rest, err := serde.DecodeOrderedInt64(rest)
	if err != nil || i64 != -5 {
		t.Fatalf("DecodeOrderedInt64 = %d, %v", i64, err)
	}
	i32, rest, err := serde.DecodeOrderedInt32(rest)
	if err != nil || i32 != 7 {
		t.Fatalf("DecodeOrderedInt32 = %d, %v", i32, err)
	}
	u64, rest, err := serde.DecodeOrderedUint64(rest)
	if err != nil || u64 != 9 {
		t.Fatalf("DecodeOrderedUint64 = %d, %v", u64, err)
	}
	f64, rest, err := serde.DecodeOrderedFloat64(rest)
	if err != nil || f64 != -2.5 {
		t.Fatalf("DecodeOrderedFloat64 = %v, %v", f64, err)
	}
	bl, rest, err := serde.DecodeOrderedBool(rest)
	if err != nil || !bl {
		t.Fatalf("DecodeOrderedBool = %v, %v", bl, err)
	}
	if string(rest) != "tail" {
		t.Fatalf("rest = %q, want %q", rest, "tail")
	}
}

func TestOrderedDecodeErrors(t *testing.T) {
	decodeErr := func(_ any, err error) error { return err }
	decodeErr3 := func(_ any, _ []byte, err error) error { return err }
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"int32 helper short", decodeErr3(serde.DecodeOrderedInt32([]byte{1, 2, 3})), "serde: ordered int32: need 4 bytes, got 3"},
		{"int64 helper short", decodeErr3(serde.DecodeOrderedInt64([]byte{1, 2, 3})), "serde: ordered int64: need 8 bytes, got 3"},
		{"uint64 helper nil", decodeErr3(serde.DecodeOrderedUint64(nil)), "serde: ordered uint64: need 8 bytes, got 0"},
		{"float64 helper short", decodeErr3(serde.DecodeOrderedFloat64(make([]byte, 7))), "serde: ordered float64: need 8 bytes, got 7"},
		{"bool helper empty", decodeErr3(serde.DecodeOrderedBool(nil)), "serde: ordered bool: need 1 bytes, got 0"},
		{"bool helper invalid", decodeErr3(serde.DecodeOrderedBool([]byte{2, 0})), "serde: ordered bool: invalid byte 0x02, want 0x00 or 0x01"},
		{"int32 long", decodeErr(serde.OrderedInt32.Decode(make([]byte, 5))), "serde: ordered int32: need 4 bytes, got 5"},
		{"int64 long", decodeErr(serde.OrderedInt64.Decode(make([]byte, 9))), "serde: ordered int64: need 8 bytes, got 9"},
		{"uint64 short", decodeErr(serde.OrderedUint64.Decode(make([]byte, 1))), "serde: ordered uint64: need 8 bytes, got 1"},
		{"float64 long", decodeErr(serde.OrderedFloat64.Decode(make([]byte, 10))), "serde: ordered float64: need 8 bytes, got 10"},
		{"bool long", decodeErr(serde.OrderedBool.Decode([]byte{0, 0})), "serde: ordered bool: need 1 bytes, got 2"},
		{"bytes empty", decodeErr3(serde.DecodeOrderedBytes(nil)), "serde: ordered bytes: missing terminator"},
		{"bytes unterminated", decodeErr3(serde.DecodeOrderedBytes([]byte("abc"))), "serde: ordered bytes: missing terminator"},
		{"bytes truncated", decodeErr3(serde.DecodeOrderedBytes([]byte("abc\x00"))), "serde: ordered bytes: truncated escape"},
		{"bytes invalid escape", decodeErr3(serde.DecodeOrderedBytes([]byte("a\x00\x02\x00\x01"))), "serde: ordered bytes: invalid escape 0x00 0x02 at offset 1"},
		{"string truncated", decodeErr3(serde.DecodeOrderedString([]byte("a\x00\xff\x00"))), "serde: ordered bytes: truncated escape"},
		{"string invalid escape", decodeErr3(serde.DecodeOrderedString([]byte("\x00\x00"))), "serde: ordered bytes: invalid escape 0x00 0x00 at offset 0"},
		{"bytes trailing", decodeErr(serde.OrderedBytes.Decode([]byte("a\x00\x01x"))), "serde: ordered bytes: 1 trailing bytes"},
		{"string trailing", decodeErr(serde.OrderedString.Decode([]byte("a\x00\x01\x00\x01"))), "serde: ordered string: 2 trailing bytes"},
		{"string unterminated", decodeErr(serde.OrderedString.Decode([]byte("a"))), "serde: ordered bytes: missing terminator"},
	}
	for _, tc := range tests {
		if tc.err == nil {
			t.Errorf("%s: no error, want %q", tc.name, tc.want)
		} else if tc.err.Error() != tc.want {
			t.Errorf("%s: error %q, want %q", tc.name, tc.err, tc.want)
		}
	}
}

func TestOrderedBytesDecodeCopies(t *testing.T) {
	enc := serde.AppendOrderedBytes(nil, []byte("a\x00b"))
	enc = serde.AppendOrderedBytes(enc, nil)
	v, rest, err := serde.DecodeOrderedBytes(enc)
	if err != nil {
		t.Fatal(err)
	}
	empty, rest2, err := serde.DecodeOrderedBytes(rest)
	if err != nil || empty == nil || len(empty) != 0 || len(rest2) != 0 {
		t.Fatalf("DecodeOrderedBytes(empty) = %#v, rest %q, %v; want non-nil empty", empty, rest2, err)
	}
	s, _, err := serde.DecodeOrderedString(enc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range enc {
		enc[i] = 'x'
	}
	if string(v) != "a\x00b" || s != "a\x00b" {
		t.Errorf("decoded values %q, %q changed when the input was modified", v, s)
	}
}

func TestPrefixEnd(t *testing.T) {
	tests := []struct {
		prefix, want []byte
	}{
		{nil, nil},
		{[]byte{}, nil},
		{[]byte{0xff}, nil},
		{[]byte{0xff, 0xff, 0xff}, nil},
		{[]byte{0x00}, []byte{0x01}},
		{[]byte{0x01, 0x02}, []byte{0x01, 0x03}},
		{[]byte{0x01, 0xff}, []byte{0x02}},
		{[]byte{0x01, 0xfe, 0xff, 0xff}, []byte{0x01, 0xff}},
		{[]byte{0xfe}, []byte{0xff}},
		{[]byte("abc"), []byte("abd")},
	}
	for _, tc := range tests {
		orig := bytes.Clone(tc.prefix)
		got := serde.PrefixEnd(tc.prefix)
		if !bytes.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
			t.Errorf("PrefixEnd(% x) = % x (nil=%v), want % x (nil=%v)", tc.prefix, got, got == nil, tc.want, tc.want == nil)
		}
		if !bytes.Equal(tc.prefix, orig) {
			t.Errorf("PrefixEnd modified its argument: % x, was % x", tc.prefix, orig)
		}
		if len(got) > 0 {
			got[0] ^= 0xff
			if !bytes.Equal(tc.prefix, orig) {
				t.Errorf("PrefixEnd(% x) result aliases its argument", orig)
			}
		}
	}

	// Scanning [prefix, PrefixEnd(prefix)) finds exactly the windows of one
	// record key, even when another key extends it.
	keys := [][]byte{}
	for _, k := range []string{"user", "user-1", "user-1\x00", "user-2"} {
		for _, ts := range []int64{-1, 0, 1 << 40} {
			keys = append(keys, serde.AppendOrderedInt64(serde.AppendOrderedString(nil, k), ts))
		}
	}
	prefix := serde.AppendOrderedString(nil, "user-1")
	end := serde.PrefixEnd(prefix)
	var found []string
	for _, k := range keys {
		if bytes.Compare(k, prefix) >= 0 && bytes.Compare(k, end) < 0 {
			s, _, err := serde.DecodeOrderedString(k)
			if err != nil {
				t.Fatal(err)
			}
			found = append(found, s)
		}
	}
	if len(found) != 3 || strings.Join(found, ",") != "user-1,user-1,user-1" {
		t.Errorf("range scan found %q, want three user-1 keys", found)
	}
}

func TestOrderedAppendDoesNotAllocate(t *testing.T) {
	dst := make([]byte, 0, 64)
	withZeros := []byte("a\x00b\x00")
	var err error
	tests := []struct {
		name string
		fn   func()
	}{
		{"OrderedInt32", func() { dst, err = serde.OrderedInt32.Append(dst[:0], -7) }},
		{"OrderedInt64", func() { dst, err = serde.OrderedInt64.Append(dst[:0], -7) }},
		{"OrderedUint64", func() { dst, err = serde.OrderedUint64.Append(dst[:0], 7) }},
		{"OrderedFloat64", func() { dst, err = serde.OrderedFloat64.Append(dst[:0], -1.5) }},
		{"OrderedBool", func() { dst, err = serde.OrderedBool.Append(dst[:0], true) }},
		{"OrderedString", func() { dst, err = serde.OrderedString.Append(dst[:0], "a\x00b\x00") }},
		{"OrderedBytes", func() { dst, err = serde.OrderedBytes.Append(dst[:0], withZeros) }},
		{"AppendOrdered composite", func() {
			dst = serde.AppendOrderedString(dst[:0], "user-1")
			dst = serde.AppendOrderedBytes(dst, withZeros)
			dst = serde.AppendOrderedInt64(dst, -1)
			dst = serde.AppendOrderedInt32(dst, 1)
			dst = serde.AppendOrderedUint64(dst, 1)
			dst = serde.AppendOrderedFloat64(dst, 1)
			dst = serde.AppendOrderedBool(dst, false)
		}},
	}
	for _, tc := range tests {
		if n := allocs(tc.fn); n != 0 {
			t.Errorf("%s allocated %v times per call, want 0", tc.name, n)
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}

	enc := serde.AppendOrderedString(nil, "a\x00b\x00c")
	var sink int
	if n := allocs(func() { s, _, _ := serde.DecodeOrderedString(enc); sink += len(s) }); n > 1 {
		t.Errorf("DecodeOrderedString with escapes allocated %v times per call, want at most 1", n)
	}
	if n := allocs(func() { b, _, _ := serde.DecodeOrderedBytes(enc); sink += len(b) }); n > 1 {
		t.Errorf("DecodeOrderedBytes allocated %v times per call, want at most 1", n)
	}
	enc = serde.AppendOrderedInt64(nil, 5)
	if n := allocs(func() { v, _, _ := serde.DecodeOrderedInt64(enc); sink += int(v) }); n != 0 {
		t.Errorf("DecodeOrderedInt64 allocated %v times per call, want 0", n)
	}
	_ = sink
}

// Fuzz seeds shared by the ordered fuzz targets.
var (
	seedInt64s   = []int64{math.MinInt64, math.MinInt64 + 1, math.MinInt32, -256, -1, 0, 1, 256, math.MaxInt32, math.MaxInt64 - 1, math.MaxInt64}
	seedFloat64s = []float64{math.Inf(-1), -math.MaxFloat64, -1.5, -math.SmallestNonzeroFloat64, math.Copysign(0, -1), 0, math.SmallestNonzeroFloat64, 1.5, math.MaxFloat64, math.Inf(1)}
	seedStrings  = []string{"", "\x00", "\x00\x00", "\x00\x01", "\x00\xff", "\x01", "\xff", "\xff\x00", "\xff\xff", "a", "a\x00", "a\x00b", "a\x01", "ab", "\x00\xff\x00\x01"}
)

func FuzzOrderedRoundTrip(f *testing.F) {
	for i, s := range seedStrings {
		f.Add(s, []byte(seedStrings[len(seedStrings)-1-i]), int32(seedInt64s[i%len(seedInt64s)]),
			seedInt64s[i%len(seedInt64s)], uint64(seedInt64s[(i+3)%len(seedInt64s)]),
			seedFloat64s[i%len(seedFloat64s)], i%2 == 0)
	}
	f.Add("x", []byte(nil), int32(math.MinInt32), int64(0), uint64(math.MaxUint64), math.NaN(), true)

	f.Fuzz(func(t *testing.T, s string, b []byte, i32 int32, i64 int64, u64 uint64, f64 float64, bl bool) {
		roundTrip(t, serde.OrderedString, s, eqComparable)
		roundTrip(t, serde.OrderedBytes, b, bytes.Equal)
		roundTrip(t, serde.OrderedInt32, i32, eqComparable)
		roundTrip(t, serde.OrderedInt64, i64, eqComparable)
		roundTrip(t, serde.OrderedUint64, u64, eqComparable)
		roundTrip(t, serde.OrderedFloat64, f64, func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) })
		roundTrip(t, serde.OrderedBool, bl, eqComparable)

		// The helpers produce the same bytes as the serdes, and a
		// concatenation decodes back into its parts.
		key := serde.AppendOrderedString(nil, s)
		if !bytes.Equal(key, serde.AppendOrderedBytes(nil, []byte(s))) {
			t.Fatalf("AppendOrderedString(%q) differs from AppendOrderedBytes", s)
		}
		key = serde.AppendOrderedBytes(key, b)
		key = serde.AppendOrderedInt32(key, i32)
		key = serde.AppendOrderedInt64(key, i64)
		key = serde.AppendOrderedUint64(key, u64)
		key = serde.AppendOrderedFloat64(key, f64)
		key = serde.AppendOrderedBool(key, bl)

		gs, rest, err := serde.DecodeOrderedString(key)
		if err != nil || gs != s {
			t.Fatalf("DecodeOrderedString = %q, %v; want %q", gs, err, s)
		}
		gb, rest, err := serde.DecodeOrderedBytes(rest)
		if err != nil || !bytes.Equal(gb, b) {
			t.Fatalf("DecodeOrderedBytes = %q, %v; want %q", gb, err, b)
		}
		g32, rest, err := serde.DecodeOrderedInt32(rest)
		if err != nil || g32 != i32 {
			t.Fatalf("DecodeOrderedInt32 = %d, %v; want %d", g32, err, i32)
		}
		g64, rest, err := serde.DecodeOrderedInt64(rest)
		if err != nil || g64 != i64 {
			t.Fatalf("DecodeOrderedInt64 = %d, %v; want %d", g64, err, i64)
		}
		gu, rest, err := serde.DecodeOrderedUint64(rest)
		if err != nil || gu != u64 {
			t.Fatalf("DecodeOrderedUint64 = %d, %v; want %d", gu, err, u64)
		}
		gf, rest, err := serde.DecodeOrderedFloat64(rest)
		if err != nil || math.Float64bits(gf) != math.Float64bits(f64) {
			t.Fatalf("DecodeOrderedFloat64 = %v, %v; want %v", gf, err, f64)
		}
		gbl, rest, err := serde.DecodeOrderedBool(rest)
		if err != nil || gbl != bl {
			t.Fatalf("DecodeOrderedBool = %v, %v; want %v", gbl, err, bl)
		}
		if len(rest) != 0 {
			t.Fatalf("%d bytes left after decoding composite key", len(rest))
		}
	})
}

func FuzzOrderedDecode(f *testing.F) {
	for _, s := range seedStrings {
		f.Add([]byte(s))
		f.Add(serde.AppendOrderedString(nil, s))
		f.Add(append(serde.AppendOrderedString(nil, s), s...))
	}
	f.Add([]byte("a\x00\x02"))
	f.Add([]byte("\x80\x00\x00\x00\x00\x00\x00\x01\x00"))
	f.Add([]byte("\x00\x00\x00"))

	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecodeRest(t, "DecodeOrderedBytes", b, serde.DecodeOrderedBytes, serde.AppendOrderedBytes)
		checkDecodeRest(t, "DecodeOrderedString", b, serde.DecodeOrderedString, serde.AppendOrderedString)
		checkDecodeRest(t, "DecodeOrderedInt32", b, serde.DecodeOrderedInt32, serde.AppendOrderedInt32)
		checkDecodeRest(t, "DecodeOrderedInt64", b, serde.DecodeOrderedInt64, serde.AppendOrderedInt64)
		checkDecodeRest(t, "DecodeOrderedUint64", b, serde.DecodeOrderedUint64, serde.AppendOrderedUint64)
		checkDecodeRest(t, "DecodeOrderedFloat64", b, serde.DecodeOrderedFloat64, serde.AppendOrderedFloat64)
		checkDecodeRest(t, "DecodeOrderedBool", b, serde.DecodeOrderedBool, serde.AppendOrderedBool)

		_, restLen, _ := decodeLen(serde.DecodeOrderedBytes(b))
		checkDecode(t, "OrderedBytes", serde.OrderedBytes, b, restLen == 0, true)
		checkDecode(t, "OrderedString", serde.OrderedString, b, restLen == 0, true)
		checkDecode(t, "OrderedInt32", serde.OrderedInt32, b, len(b) == 4, true)
		checkDecode(t, "OrderedInt64", serde.OrderedInt64, b, len(b) == 8, true)
		checkDecode(t, "OrderedUint64", serde.OrderedUint64, b, len(b) == 8, true)
		checkDecode(t, "OrderedFloat64", serde.OrderedFloat64, b, len(b) == 8, true)
		checkDecode(t, "OrderedBool", serde.OrderedBool, b, len(b) == 1 && b[0] <= 1, true)
	})
}

// decodeLen turns a DecodeOrdered* result into the length of the rest, or
// -1 on error.
func decodeLen[T any](v T, rest []byte, err error) (T, int, error) {
	if err != nil {
		return v, -1, err
	}
	return v, len(rest), nil
}

// checkDecodeRest checks that decode either fails with a serde error and
// returns b as the rest, or succeeds with a rest that is a suffix of b and a
// value whose encoding is exactly the consumed bytes.
func checkDecodeRest[T any](t *testing.T, name string, b []byte, decode func([]byte) (T, []byte, error), appendFn func([]byte, T) []byte) {
	t.Helper()
	v, rest, err := decode(b)
	if err != nil {
		if !strings.HasPrefix(err.Error(), "serde: ") {
			t.Fatalf("%s(% x) error %q lacks serde: prefix", name, b, err)
		}
		if len(rest) != len(b) {
			t.Fatalf("%s(% x) failed but consumed %d bytes", name, b, len(b)-len(rest))
		}
		return
	}
	if len(rest) > len(b) || !bytes.Equal(rest, b[len(b)-len(rest):]) {
		t.Fatalf("%s(% x) rest % x is not a suffix of the input", name, b, rest)
	}
	consumed := b[:len(b)-len(rest)]
	if enc := appendFn(nil, v); !bytes.Equal(enc, consumed) {
		t.Fatalf("%s(% x): re-encoding gives % x, want consumed bytes % x", name, b, enc, consumed)
	}
}

// sign returns -1, 0 or 1 like the result of bytes.Compare.
func sign(c int) int { return cmp.Compare(c, 0) }

func encodeWith[T any](t *testing.T, s serde.Serde[T], v T) []byte {
	t.Helper()
	enc, err := s.Append(nil, v)
	if err != nil {
		t.Fatalf("Append(%#v): %v", v, err)
	}
	return enc
}

func FuzzOrderedInt64(f *testing.F) {
	for _, a := range seedInt64s {
		for _, b := range seedInt64s {
			f.Add(a, b)
		}
	}
	f.Fuzz(func(t *testing.T, a, b int64) {
		got := bytes.Compare(encodeWith(t, serde.OrderedInt64, a), encodeWith(t, serde.OrderedInt64, b))
		if want := cmp.Compare(a, b); got != want {
			t.Fatalf("Compare(enc(%d), enc(%d)) = %d, want %d", a, b, got, want)
		}
	})
}

func FuzzOrderedInt32(f *testing.F) {
	for _, a := range []int32{math.MinInt32, math.MinInt32 + 1, -256, -1, 0, 1, 256, math.MaxInt32 - 1, math.MaxInt32} {
		f.Add(a, -a)
		f.Add(a, int32(0))
		f.Add(a, int32(math.MinInt32))
		f.Add(a, int32(math.MaxInt32))
	}
	f.Fuzz(func(t *testing.T, a, b int32) {
		got := bytes.Compare(encodeWith(t, serde.OrderedInt32, a), encodeWith(t, serde.OrderedInt32, b))
		if want := cmp.Compare(a, b); got != want {
			t.Fatalf("Compare(enc(%d), enc(%d)) = %d, want %d", a, b, got, want)
		}
	})
}

func FuzzOrderedUint64(f *testing.F) {
	for _, a := range []uint64{0, 1, 255, 256, 1 << 63, math.MaxUint64 - 1, math.MaxUint64} {
		f.Add(a, uint64(0))
		f.Add(a, uint64(math.MaxUint64))
		f.Add(a, a+1)
	}
	f.Fuzz(func(t *testing.T, a, b uint64) {
		got := bytes.Compare(encodeWith(t, serde.OrderedUint64, a), encodeWith(t, serde.OrderedUint64, b))
		if want := cmp.Compare(a, b); got != want {
			t.Fatalf("Compare(enc(%d), enc(%d)) = %d, want %d", a, b, got, want)
		}
	})
}

// compareFloat orders non-NaN floats numerically, with -0 before +0.
func compareFloat(a, b float64) int {
	if c := cmp.Compare(a, b); c != 0 {
		return c
	}
	if a == 0 {
		// Equal zeros: order by sign, negative first.
		switch as, bs := math.Signbit(a), math.Signbit(b); {
		case as && !bs:
			return -1
		case !as && bs:
			return 1
		}
	}
	return 0
}

func FuzzOrderedFloat64(f *testing.F) {
	for _, a := range seedFloat64s {
		for _, b := range seedFloat64s {
			f.Add(a, b)
		}
	}
	f.Add(1.0, math.Nextafter(1, 2))
	f.Add(-1.0, math.Nextafter(-1, -2))
	f.Fuzz(func(t *testing.T, a, b float64) {
		if math.IsNaN(a) || math.IsNaN(b) {
			return // NaN has no numeric order
		}
		got := bytes.Compare(encodeWith(t, serde.OrderedFloat64, a), encodeWith(t, serde.OrderedFloat64, b))
		if want := compareFloat(a, b); got != want {
			t.Fatalf("Compare(enc(%v), enc(%v)) = %d, want %d", a, b, got, want)
		}
	})
}

func FuzzOrderedBytes(f *testing.F) {
	for _, a := range seedStrings {
		for _, b := range seedStrings {
			f.Add([]byte(a), []byte(b))
		}
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		encA := encodeWith(t, serde.OrderedBytes, a)
		got := bytes.Compare(encA, encodeWith(t, serde.OrderedBytes, b))
		if want := bytes.Compare(a, b); got != want {
			t.Fatalf("Compare(enc(%q), enc(%q)) = %d, want %d", a, b, got, want)
		}
		gotS := bytes.Compare(encodeWith(t, serde.OrderedString, string(a)), encodeWith(t, serde.OrderedString, string(b)))
		if want := strings.Compare(string(a), string(b)); gotS != want {
			t.Fatalf("Compare(OrderedString(%q), OrderedString(%q)) = %d, want %d", a, b, gotS, want)
		}

		// A value sorts before every extension of it.
		ab := append(bytes.Clone(a), b...)
		got = bytes.Compare(encA, encodeWith(t, serde.OrderedBytes, ab))
		if want := bytes.Compare(a, ab); got != want {
			t.Fatalf("Compare(enc(%q), enc(%q)) = %d, want %d", a, ab, got, want)
		}
	})
}

// FuzzOrderedTuple checks that concatenated encodings compare like tuples:
// (bytes, int64) window keys, and (bytes, bytes) keys with two variable-length
// parts.
func FuzzOrderedTuple(f *testing.F) {
	for i, a := range seedStrings {
		for j, b := range seedStrings {
			f.Add([]byte(a), seedInt64s[i%len(seedInt64s)], []byte(b), seedInt64s[j%len(seedInt64s)])
		}
	}
	f.Fuzz(func(t *testing.T, k1 []byte, t1 int64, k2 []byte, t2 int64) {
		windowKey := func(k []byte, ts int64) []byte {
			return serde.AppendOrderedInt64(serde.AppendOrderedBytes(nil, k), ts)
		}
		check := func(a1 []byte, b1 int64, a2 []byte, b2 int64) {
			t.Helper()
			want := bytes.Compare(a1, a2)
			if want == 0 {
				want = cmp.Compare(b1, b2)
			}
			if got := bytes.Compare(windowKey(a1, b1), windowKey(a2, b2)); got != want {
				t.Fatalf("Compare((%q, %d), (%q, %d)) = %d, want %d", a1, b1, a2, b2, got, want)
			}
		}
		check(k1, t1, k2, t2)
		// Extensions of a key must still sort after all of its windows.
		k12 := append(bytes.Clone(k1), k2...)
		check(k1, t1, k12, t2)
		check(k12, t1, k1, t2)
		check(k1, t1, k1, t2)

		pair := func(a, b []byte) []byte {
			return serde.AppendOrderedBytes(serde.AppendOrderedBytes(nil, a), b)
		}
		want := bytes.Compare(k1, k12)
		if want == 0 {
			want = bytes.Compare(k2, k1)
		}
		if got := bytes.Compare(pair(k1, k2), pair(k12, k1)); got != want {
			t.Fatalf("Compare((%q, %q), (%q, %q)) = %d, want %d", k1, k2, k12, k1, got, want)
		}
		want = bytes.Compare(k1, k2)
		if want == 0 {
			want = bytes.Compare(k2, k1)
		}
		if got := bytes.Compare(pair(k1, k2), pair(k2, k1)); got != want {
			t.Fatalf("Compare((%q, %q), (%q, %q)) = %d, want %d", k1, k2, k2, k1, got, want)
		}
	})
}

func FuzzPrefixEnd(f *testing.F) {
	for _, p := range seedStrings {
		for _, k := range seedStrings {
			f.Add([]byte(p), []byte(k))
		}
	}
	f.Fuzz(func(t *testing.T, p, k []byte) {
		orig := bytes.Clone(p)
		end := serde.PrefixEnd(p)
		if !bytes.Equal(p, orig) {
			t.Fatalf("PrefixEnd modified its argument")
		}
		inRange := func(k []byte) bool {
			return bytes.Compare(k, p) >= 0 && (end == nil || bytes.Compare(k, end) < 0)
		}
		for _, key := range [][]byte{k, append(bytes.Clone(p), k...), end} {
			if key == nil {
				continue
			}
			if got, want := inRange(key), bytes.HasPrefix(key, p); got != want {
				t.Fatalf("PrefixEnd(% x) = % x: key % x in range = %v, has prefix = %v", p, end, key, got, want)
			}
		}
	})
}

func BenchmarkAppendOrderedBytes(b *testing.B) {
	b.ReportAllocs()
	v := []byte("user-12345\x00region-7")
	dst := make([]byte, 0, 64)
	for b.Loop() {
		dst = serde.AppendOrderedBytes(dst[:0], v)
	}
}

func BenchmarkDecodeOrderedBytes(b *testing.B) {
	b.ReportAllocs()
	enc := serde.AppendOrderedInt64(serde.AppendOrderedBytes(nil, []byte("user-12345\x00region-7")), 42)
	var n int
	for b.Loop() {
		v, _, _ := serde.DecodeOrderedBytes(enc)
		n += len(v)
	}
	_ = n
}
