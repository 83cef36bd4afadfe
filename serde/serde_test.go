package serde_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kstreamgo/kstream/serde"
)

// unhex parses space-separated hex such as "00 01 ff".
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

type vector[T any] struct {
	v   T
	hex string
}

// checkVectors checks that s encodes each value to exactly the given bytes,
// appends after existing content, and decodes the bytes back to the value.
func checkVectors[T any](t *testing.T, s serde.Serde[T], vectors []vector[T], eq func(a, b T) bool) {
	t.Helper()
	for _, tc := range vectors {
		want := unhex(t, tc.hex)
		got, err := s.Append(nil, tc.v)
		if err != nil {
			t.Errorf("Append(%#v): %v", tc.v, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("Append(%#v) = % x, want % x", tc.v, got, want)
		}
		got, err = s.Append([]byte("pre"), tc.v)
		if err != nil || !bytes.Equal(got, append([]byte("pre"), want...)) {
			t.Errorf("Append(\"pre\", %#v) = % x, %v; want prefix kept", tc.v, got, err)
		}
		dec, err := s.Decode(want)
		if err != nil {
			t.Errorf("Decode(% x): %v", want, err)
			continue
		}
		if !eq(dec, tc.v) {
			t.Errorf("Decode(% x) = %#v, want %#v", want, dec, tc.v)
		}
	}
}

func eqComparable[T comparable](a, b T) bool { return a == b }

// eqFloatBits treats two NaNs as equal and otherwise compares bit patterns,
// so that -0 and +0 differ.
func eqFloatBits(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Float64bits(a) == math.Float64bits(b)
}

func TestStringVectors(t *testing.T) {
	checkVectors(t, serde.String, []vector[string]{
		{"", ""},
		{"abc", "61 62 63"},
		{"héllo", "68 c3 a9 6c 6c 6f"},
		{"日本", "e6 97 a5 e6 9c ac"},
		{"a\x00b", "61 00 62"},
		{"\xff", "ff"}, // invalid UTF-8 is kept as is
	}, eqComparable)
}

func TestBytesVectors(t *testing.T) {
	checkVectors(t, serde.Bytes, []vector[[]byte]{
		{[]byte{}, ""},
		{[]byte{0x00, 0x01, 0xff}, "00 01 ff"},
		{[]byte("kafka"), "6b 61 66 6b 61"},
	}, bytes.Equal)
}

func TestInt32Vectors(t *testing.T) {
	checkVectors(t, serde.Int32, []vector[int32]{
		{0, "00 00 00 00"},
		{1, "00 00 00 01"},
		{256, "00 00 01 00"},
		{-1, "ff ff ff ff"},
		{-256, "ff ff ff 00"},
		{math.MaxInt32, "7f ff ff ff"},
		{math.MinInt32, "80 00 00 00"},
		{123456789, "07 5b cd 15"},
	}, eqComparable)
}

func TestInt64Vectors(t *testing.T) {
	checkVectors(t, serde.Int64, []vector[int64]{
		{0, "00 00 00 00 00 00 00 00"},
		{1, "00 00 00 00 00 00 00 01"},
		{-1, "ff ff ff ff ff ff ff ff"},
		{256, "00 00 00 00 00 00 01 00"},
		{-2, "ff ff ff ff ff ff ff fe"},
		{1234567890123, "00 00 01 1f 71 fb 04 cb"},
		{math.MaxInt64, "7f ff ff ff ff ff ff ff"},
		{math.MinInt64, "80 00 00 00 00 00 00 00"},
	}, eqComparable)
}

func TestFloat64Vectors(t *testing.T) {
	checkVectors(t, serde.Float64, []vector[float64]{
		{0, "00 00 00 00 00 00 00 00"},
		{math.Copysign(0, -1), "80 00 00 00 00 00 00 00"},
		{1, "3f f0 00 00 00 00 00 00"},
		{1.5, "3f f8 00 00 00 00 00 00"},
		{-2, "c0 00 00 00 00 00 00 00"},
		{0.1, "3f b9 99 99 99 99 99 9a"},
		{math.Inf(1), "7f f0 00 00 00 00 00 00"},
		{math.Inf(-1), "ff f0 00 00 00 00 00 00"},
		{math.MaxFloat64, "7f ef ff ff ff ff ff ff"},
		{math.SmallestNonzeroFloat64, "00 00 00 00 00 00 00 01"},
		{math.NaN(), "7f f8 00 00 00 00 00 00"},
	}, eqFloatBits)
}

// TestFloat64NaN checks that every NaN is written as Java's canonical NaN,
// as Double.doubleToLongBits does, and that decoding keeps NaN payloads.
func TestFloat64NaN(t *testing.T) {
	want := unhex(t, "7f f8 00 00 00 00 00 00")
	for _, bits := range []uint64{
		math.Float64bits(math.NaN()), // Go's NaN is 0x7ff8000000000001
		0x7ff8000000000000,
		0xfff8000000000000,
		0x7ff0000000000001,
		0xffffffffffffffff,
	} {
		got, err := serde.Float64.Append(nil, math.Float64frombits(bits))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("Append(NaN %#x) = % x, %v; want % x", bits, got, err, want)
		}
	}
	enc := unhex(t, "ff ff ff ff ff ff ff ff")
	v, err := serde.Float64.Decode(enc)
	if err != nil || math.Float64bits(v) != 0xffffffffffffffff {
		t.Errorf("Decode(% x) = %#x, %v; want NaN bits kept", enc, math.Float64bits(v), err)
	}
}

func TestBoolVectors(t *testing.T) {
	checkVectors(t, serde.Bool, []vector[bool]{
		{true, "01"},
		{false, "00"},
	}, eqComparable)
}

func TestDecodeErrors(t *testing.T) {
	decodeErr := func(_ any, err error) error { return err }
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"int32 short", decodeErr(serde.Int32.Decode([]byte{1, 2, 3})), "serde: int32: need 4 bytes, got 3"},
		{"int32 long", decodeErr(serde.Int32.Decode(make([]byte, 5))), "serde: int32: need 4 bytes, got 5"},
		{"int32 nil", decodeErr(serde.Int32.Decode(nil)), "serde: int32: need 4 bytes, got 0"},
		{"int64 short", decodeErr(serde.Int64.Decode([]byte{1, 2, 3})), "serde: int64: need 8 bytes, got 3"},
		{"int64 long", decodeErr(serde.Int64.Decode(make([]byte, 9))), "serde: int64: need 8 bytes, got 9"},
		{"int64 nil", decodeErr(serde.Int64.Decode(nil)), "serde: int64: need 8 bytes, got 0"},
		{"float64 short", decodeErr(serde.Float64.Decode(make([]byte, 4))), "serde: float64: need 8 bytes, got 4"},
		{"float64 long", decodeErr(serde.Float64.Decode(make([]byte, 16))), "serde: float64: need 8 bytes, got 16"},
		{"bool empty", decodeErr(serde.Bool.Decode(nil)), "serde: bool: need 1 bytes, got 0"},
		{"bool long", decodeErr(serde.Bool.Decode([]byte{1, 0})), "serde: bool: need 1 bytes, got 2"},
		{"bool invalid", decodeErr(serde.Bool.Decode([]byte{2})), "serde: bool: invalid byte 0x02, want 0x00 or 0x01"},
		{"bool ff", decodeErr(serde.Bool.Decode([]byte{0xff})), "serde: bool: invalid byte 0xff, want 0x00 or 0x01"},
	}
	for _, tc := range tests {
		if tc.err == nil {
			t.Errorf("%s: no error, want %q", tc.name, tc.want)
		} else if tc.err.Error() != tc.want {
			t.Errorf("%s: error %q, want %q", tc.name, tc.err, tc.want)
		}
	}
}

func TestStringDecodeDoesNotRetain(t *testing.T) {
	b := []byte("hello")
	s, err := serde.String.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	b[0] = 'j'
	if s != "hello" {
		t.Errorf("decoded string changed to %q after input was modified", s)
	}
}

func TestBytesDecode(t *testing.T) {
	if got, err := serde.Bytes.Decode(nil); err != nil || got != nil {
		t.Errorf("Decode(nil) = %#v, %v; want nil, nil", got, err)
	}
	if got, err := serde.Bytes.Decode([]byte{}); err != nil || got == nil || len(got) != 0 {
		t.Errorf("Decode([]byte{}) = %#v, %v; want empty non-nil", got, err)
	}
	in := []byte{1, 2, 3}
	got, err := serde.Bytes.Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	in[0] = 9
	if !bytes.Equal(got, []byte{1, 2, 3}) {
		t.Errorf("Decode result aliases its input: %v", got)
	}
}

type event struct {
	User    string            `json:"user"`
	Count   int64             `json:"count"`
	Score   float64           `json:"score"`
	Tags    []string          `json:"tags,omitempty"`
	Attrs   map[string]string `json:"attrs,omitempty"`
	Payload []byte            `json:"payload,omitempty"`
	Next    *event            `json:"next,omitempty"`
}

func TestJSONRoundTrip(t *testing.T) {
	s := serde.JSON[event]()
	in := event{
		User:    "alice <&>",
		Count:   -42,
		Score:   3.25,
		Tags:    []string{"a", "b"},
		Attrs:   map[string]string{"k": "v"},
		Payload: []byte{0, 1, 2, 0xff},
		Next:    &event{User: "bob"},
	}
	got, err := s.Append(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Append = %s, want %s", got, want)
	}
	if bytes.HasSuffix(got, []byte("\n")) {
		t.Errorf("Append output ends with a newline: %q", got)
	}
	prefixed, err := s.Append([]byte("pre:"), in)
	if err != nil || string(prefixed) != "pre:"+string(want) {
		t.Errorf("Append with prefix = %q, %v", prefixed, err)
	}
	out, err := s.Decode(got)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Errorf("round trip = %+v, want %+v", out, in)
	}

	// Decode must not retain its input.
	buf := bytes.Clone(got)
	out, err = s.Decode(buf)
	if err != nil {
		t.Fatal(err)
	}
	for i := range buf {
		buf[i] = 'x'
	}
	if !reflect.DeepEqual(out, in) {
		t.Errorf("decoded value changed after input was modified: %+v", out)
	}
}

func TestJSONErrors(t *testing.T) {
	if _, err := serde.JSON[event]().Decode([]byte(`{"user":`)); err == nil || !strings.HasPrefix(err.Error(), "serde: json: ") {
		t.Errorf("Decode truncated JSON: err = %v, want serde: json: prefix", err)
	}
	_, err := serde.JSON[event]().Decode([]byte(`{"count":"x"}`))
	var typeErr *json.UnmarshalTypeError
	if !errors.As(err, &typeErr) || !strings.HasPrefix(err.Error(), "serde: json: ") {
		t.Errorf("Decode wrong type: err = %v, want wrapped *json.UnmarshalTypeError", err)
	}
	dst := []byte("keep")
	got, err := serde.JSON[float64]().Append(dst, math.Inf(1))
	if err == nil || !strings.HasPrefix(err.Error(), "serde: json: ") {
		t.Errorf("Append(+Inf): err = %v, want serde: json: prefix", err)
	}
	if string(got) != "keep" {
		t.Errorf("Append(+Inf) returned %q, want dst unchanged", got)
	}
	if _, err := serde.JSON[chan int]().Append(nil, make(chan int)); err == nil {
		t.Error("Append(chan) succeeded, want error")
	}
}

func TestDefault(t *testing.T) {
	check := func(name string, got, want any, ok bool) {
		t.Helper()
		if !ok || got != want {
			t.Errorf("Default[%s]() = %v, %v; want %v, true", name, got, ok, want)
		}
	}
	s1, ok := serde.Default[string]()
	check("string", s1, serde.String, ok)
	s2, ok := serde.Default[[]byte]()
	check("[]byte", s2, serde.Bytes, ok)
	s3, ok := serde.Default[int32]()
	check("int32", s3, serde.Int32, ok)
	s4, ok := serde.Default[int64]()
	check("int64", s4, serde.Int64, ok)
	s5, ok := serde.Default[float64]()
	check("float64", s5, serde.Float64, ok)
	s6, ok := serde.Default[bool]()
	check("bool", s6, serde.Bool, ok)

	// The returned serde is usable with its static type.
	b, err := s4.Append(nil, 1)
	if err != nil || !bytes.Equal(b, []byte{0, 0, 0, 0, 0, 0, 0, 1}) {
		t.Errorf("Default[int64]().Append(nil, 1) = % x, %v", b, err)
	}

	type myString string
	notDefault := func(name string, s any, ok bool) {
		t.Helper()
		if ok || s != nil {
			t.Errorf("Default[%s]() = %v, %v; want nil, false", name, s, ok)
		}
	}
	{
		s, ok := serde.Default[event]()
		notDefault("event", s, ok)
	}
	{
		s, ok := serde.Default[myString]()
		notDefault("myString", s, ok)
	}
	{
		s, ok := serde.Default[int]()
		notDefault("int", s, ok)
	}
	{
		s, ok := serde.Default[any]()
		notDefault("any", s, ok)
	}
	{
		s, ok := serde.Default[*string]()
		notDefault("*string", s, ok)
	}
}

func TestFunc(t *testing.T) {
	var errOdd = errors.New("odd length")
	runes := serde.Func(
		func(dst []byte, v []rune) ([]byte, error) {
			for _, r := range v {
				dst = append(dst, byte(r>>8), byte(r))
			}
			return dst, nil
		},
		func(b []byte) ([]rune, error) {
			if len(b)%2 != 0 {
				return nil, errOdd
			}
			out := make([]rune, 0, len(b)/2)
			for i := 0; i < len(b); i += 2 {
				out = append(out, rune(b[i])<<8|rune(b[i+1]))
			}
			return out, nil
		},
	)
	enc, err := runes.Append([]byte{0xAA}, []rune("hé"))
	if err != nil || !bytes.Equal(enc, []byte{0xAA, 0, 'h', 0, 0xe9}) {
		t.Errorf("Append = % x, %v", enc, err)
	}
	dec, err := runes.Decode(enc[1:])
	if err != nil || string(dec) != "hé" {
		t.Errorf("Decode = %q, %v", string(dec), err)
	}
	if _, err := runes.Decode([]byte{1}); !errors.Is(err, errOdd) {
		t.Errorf("Decode(odd) err = %v, want %v", err, errOdd)
	}

	for _, tc := range []struct {
		name string
		fn   func()
	}{
		{"nil append", func() { serde.Func(nil, serde.Int64.Decode) }},
		{"nil decode", func() { serde.Func(serde.Int64.Append, nil) }},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Func with %s did not panic", tc.name)
				}
			}()
			tc.fn()
		}()
	}
}

// allocs reports the average number of allocations made by f.
func allocs(f func()) float64 { return testing.AllocsPerRun(100, f) }

func TestAppendDoesNotAllocate(t *testing.T) {
	dst := make([]byte, 0, 64)
	hello := []byte("hello")
	var err error
	tests := []struct {
		name string
		fn   func()
	}{
		{"Int32", func() { dst, err = serde.Int32.Append(dst[:0], -7) }},
		{"Int64", func() { dst, err = serde.Int64.Append(dst[:0], -7) }},
		{"Float64", func() { dst, err = serde.Float64.Append(dst[:0], 1.5) }},
		{"Float64 NaN", func() { dst, err = serde.Float64.Append(dst[:0], math.NaN()) }},
		{"Bool", func() { dst, err = serde.Bool.Append(dst[:0], true) }},
		{"String", func() { dst, err = serde.String.Append(dst[:0], "hello, world") }},
		{"Bytes", func() { dst, err = serde.Bytes.Append(dst[:0], hello) }},
	}
	for _, tc := range tests {
		if n := allocs(tc.fn); n != 0 {
			t.Errorf("%s.Append allocated %v times per call, want 0", tc.name, n)
		}
		if err != nil {
			t.Errorf("%s.Append: %v", tc.name, err)
		}
	}
}

func TestDecodeAllocations(t *testing.T) {
	b8 := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	str := []byte("hello, world")
	var sink any
	tests := []struct {
		name string
		max  float64
		fn   func()
	}{
		{"Int32", 0, func() { v, _ := serde.Int32.Decode(b8[:4]); sink = v == 0 }},
		{"Int64", 0, func() { v, _ := serde.Int64.Decode(b8); sink = v == 0 }},
		{"Float64", 0, func() { v, _ := serde.Float64.Decode(b8); sink = v == 0 }},
		{"Bool", 0, func() { v, _ := serde.Bool.Decode(b8[:1]); sink = v }},
		{"String", 1, func() { v, _ := serde.String.Decode(str); sink = len(v) == 0 }},
	}
	for _, tc := range tests {
		if n := allocs(tc.fn); n > tc.max {
			t.Errorf("%s.Decode allocated %v times per call, want at most %v", tc.name, n, tc.max)
		}
	}
	_ = sink
}

func FuzzRoundTrip(f *testing.F) {
	f.Add("", []byte(nil), int32(0), int64(0), 0.0, false)
	f.Add("hello", []byte("world"), int32(1), int64(1), 1.5, true)
	f.Add("\x00", []byte{0x00}, int32(-1), int64(-1), -1.5, false)
	f.Add("\xff\x00\xff", []byte{0xff, 0x00}, int32(math.MinInt32), int64(math.MinInt64), math.Inf(-1), true)
	f.Add("日本語", []byte{}, int32(math.MaxInt32), int64(math.MaxInt64), math.MaxFloat64, false)
	f.Add("a\x00b", []byte{0xff}, int32(256), int64(-256), math.Copysign(0, -1), true)
	f.Add("\u2028<&>", []byte("\x00\xff"), int32(-256), int64(1<<40), math.NaN(), false)
	f.Add("x", []byte{1}, int32(7), int64(7), math.SmallestNonzeroFloat64, true)

	f.Fuzz(func(t *testing.T, s string, b []byte, i32 int32, i64 int64, f64 float64, bl bool) {
		roundTrip(t, serde.String, s, eqComparable)
		roundTrip(t, serde.Bytes, b, bytes.Equal)
		roundTrip(t, serde.Int32, i32, eqComparable)
		roundTrip(t, serde.Int64, i64, eqComparable)
		roundTrip(t, serde.Float64, f64, eqFloatBits)
		roundTrip(t, serde.Bool, bl, eqComparable)

		type record struct {
			S  string
			B  []byte
			I  int64
			I2 int32
			F  float64
			Ok bool
		}
		js := serde.JSON[record]()
		in := record{S: s, B: b, I: i64, I2: i32, F: f64, Ok: bl}
		enc, err := js.Append(nil, in)
		if math.IsNaN(f64) || math.IsInf(f64, 0) {
			if err == nil {
				t.Fatalf("JSON Append(%v) succeeded, want error", f64)
			}
			return
		}
		if err != nil {
			t.Fatalf("JSON Append: %v", err)
		}
		out, err := js.Decode(enc)
		if err != nil {
			t.Fatalf("JSON Decode(%s): %v", enc, err)
		}
		if utf8.ValidString(s) && out.S != s {
			t.Errorf("JSON S = %q, want %q", out.S, s)
		}
		if !bytes.Equal(out.B, b) || out.I != i64 || out.I2 != i32 || out.F != f64 || out.Ok != bl {
			t.Errorf("JSON round trip = %+v, want %+v", out, in)
		}
	})
}

// roundTrip checks that v survives Append and Decode, both on its own and
// after existing buffer content, and that the decoded value does not alias
// the encoded bytes.
func roundTrip[T any](t *testing.T, s serde.Serde[T], v T, eq func(a, b T) bool) {
	t.Helper()
	enc, err := s.Append(nil, v)
	if err != nil {
		t.Fatalf("Append(%#v): %v", v, err)
	}
	pre, err := s.Append([]byte{0xAB, 0xCD}, v)
	if err != nil || !bytes.Equal(pre[2:], enc) || pre[0] != 0xAB || pre[1] != 0xCD {
		t.Fatalf("Append after prefix = % x, %v; want ab cd % x", pre, err, enc)
	}
	got, err := s.Decode(enc)
	if err != nil {
		t.Fatalf("Decode(% x) of %#v: %v", enc, v, err)
	}
	if !eq(got, v) {
		t.Fatalf("Decode(Append(%#v)) = %#v", v, got)
	}
	for i := range enc {
		enc[i] ^= 0x5A
	}
	if !eq(got, v) {
		t.Fatalf("decoded value %#v changed when encoded bytes were modified", got)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		"", "\x00", "\x01", "\x02", "\xff",
		"\x00\x00\x00", "\x00\x00\x01\x00", "\xff\xff\xff\xff",
		"\x00\x00\x00\x00\x00\x00\x00\x01", "\xff\xff\xff\xff\xff\xff\xff\xff",
		"\x7f\xf8\x00\x00\x00\x00\x00\x01", "\x3f\xf8\x00\x00\x00\x00\x00\x00",
		"\x00\x00\x00\x00\x00\x00\x00\x00\x00",
		`{"S":"x","I":1}`, `null`, `[1,2`, `"\ud800"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := serde.String.Decode(b); err != nil || s != string(b) {
			t.Errorf("String.Decode = %q, %v", s, err)
		}
		if v, err := serde.Bytes.Decode(b); err != nil || !bytes.Equal(v, b) || (v == nil) != (b == nil) {
			t.Errorf("Bytes.Decode = %#v, %v", v, err)
		}
		checkDecode(t, "Int32", serde.Int32, b, len(b) == 4, true)
		checkDecode(t, "Int64", serde.Int64, b, len(b) == 8, true)
		v, _ := serde.Float64.Decode(b)
		checkDecode(t, "Float64", serde.Float64, b, len(b) == 8, !math.IsNaN(v))
		checkDecode(t, "Bool", serde.Bool, b, len(b) == 1 && b[0] <= 1, true)

		// JSON decoding must not panic, whatever it is given.
		_, _ = serde.JSON[event]().Decode(b)
		_, _ = serde.JSON[any]().Decode(b)
		_, _ = serde.JSON[[]int64]().Decode(b)
	})
}

// checkDecode decodes b with s, checks that it succeeds exactly when valid
// is true, and, when canonical is true, that re-encoding gives back b.
func checkDecode[T any](t *testing.T, name string, s serde.Serde[T], b []byte, valid, canonical bool) {
	t.Helper()
	v, err := s.Decode(b)
	if (err == nil) != valid {
		t.Fatalf("%s.Decode(% x) error = %v, want valid=%v", name, b, err, valid)
	}
	if err != nil {
		if !strings.HasPrefix(err.Error(), "serde: ") {
			t.Fatalf("%s.Decode error %q lacks serde: prefix", name, err)
		}
		return
	}
	if !canonical {
		return
	}
	enc, err := s.Append(nil, v)
	if err != nil || !bytes.Equal(enc, b) {
		t.Fatalf("%s: Append(Decode(% x)) = % x, %v", name, b, enc, err)
	}
}

func BenchmarkInt64Append(b *testing.B) {
	b.ReportAllocs()
	dst := make([]byte, 0, 8)
	var v int64
	for b.Loop() {
		dst, _ = serde.Int64.Append(dst[:0], v)
		v++
	}
}

func BenchmarkInt64Decode(b *testing.B) {
	b.ReportAllocs()
	enc, _ := serde.Int64.Append(nil, 1234567890123)
	var sum int64
	for b.Loop() {
		v, _ := serde.Int64.Decode(enc)
		sum += v
	}
	_ = sum
}

func BenchmarkStringAppend(b *testing.B) {
	b.ReportAllocs()
	s := "the quick brown fox jumps over the lazy dog"
	dst := make([]byte, 0, 64)
	for b.Loop() {
		dst, _ = serde.String.Append(dst[:0], s)
	}
}

func BenchmarkStringDecode(b *testing.B) {
	b.ReportAllocs()
	enc := []byte("the quick brown fox jumps over the lazy dog")
	var n int
	for b.Loop() {
		s, _ := serde.String.Decode(enc)
		n += len(s)
	}
	_ = n
}
