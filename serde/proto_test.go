package serde_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/kstreamgo/kstream/serde"
)

const protoPrefix = "serde: proto: "

// bigStruct returns a Struct with n fields of every kind, including nested
// Structs (maps in maps) and lists. Each call builds new maps, inserting
// keys in an order that depends on reverse.
func bigStruct(t testing.TB, n int, reverse bool) *structpb.Struct {
	t.Helper()
	m := make(map[string]any, n)
	for j := range n {
		i := j
		if reverse {
			i = n - 1 - j
		}
		key := fmt.Sprintf("k%03d", i)
		switch i % 6 {
		case 0:
			m[key] = fmt.Sprintf("v%d", i)
		case 1:
			m[key] = float64(i) / 3
		case 2:
			m[key] = i%4 == 1
		case 3:
			m[key] = nil
		case 4:
			m[key] = map[string]any{"a": i, "b": "x", "c": map[string]any{"d": false, "e": []any{1, "two"}}}
		case 5:
			m[key] = []any{i, "s", map[string]any{"z": 1, "y": 2, "x": 3}}
		}
	}
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// abbrev shortens long failure output.
func abbrev(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// protoRoundTrip checks that v encodes to want (when want is not nil), that
// Append keeps existing buffer content, that the bytes decode to a message
// equal to v, and that the decoded message does not alias the bytes.
func protoRoundTrip[T proto.Message](t *testing.T, s serde.Serde[T], v T, want []byte) {
	t.Helper()
	name := abbrev(fmt.Sprint(v))
	enc, err := s.Append(nil, v)
	if err != nil {
		t.Fatalf("Append(%s): %v", name, err)
	}
	if want != nil && !bytes.Equal(enc, want) {
		t.Errorf("Append(%s) = % x, want % x", name, enc, want)
	}
	pre, err := s.Append([]byte("pre"), v)
	if err != nil || !bytes.Equal(pre, append([]byte("pre"), enc...)) {
		t.Errorf("Append(\"pre\", %s) = %s, %v; want prefix kept", name, abbrev(fmt.Sprintf("% x", pre)), err)
	}
	got, err := s.Decode(enc)
	if err != nil {
		t.Fatalf("Decode(Append(%s)): %v", name, err)
	}
	if !proto.Equal(got, v) {
		t.Fatalf("Decode(Append(%s)) = %s", name, abbrev(fmt.Sprint(got)))
	}
	for i := range enc {
		enc[i] ^= 0x5A
	}
	if !proto.Equal(got, v) {
		t.Fatalf("decoded message changed to %s when the encoded bytes were modified", abbrev(fmt.Sprint(got)))
	}
}

func TestProtoRoundTrip(t *testing.T) {
	ts := serde.Proto[*timestamppb.Timestamp]()
	protoRoundTrip(t, ts, &timestamppb.Timestamp{}, []byte{})
	protoRoundTrip(t, ts, &timestamppb.Timestamp{Seconds: 1, Nanos: 2}, unhex(t, "08 01 10 02"))
	protoRoundTrip(t, ts, &timestamppb.Timestamp{Seconds: -1}, unhex(t, "08 ff ff ff ff ff ff ff ff ff 01"))
	protoRoundTrip(t, ts, &timestamppb.Timestamp{Seconds: 1700000000, Nanos: 999999999}, unhex(t, "08 80 e2 cf aa 06 10 ff 93 eb dc 03"))

	bv := serde.Proto[*wrapperspb.BytesValue]()
	protoRoundTrip(t, bv, wrapperspb.Bytes(nil), []byte{})
	protoRoundTrip(t, bv, wrapperspb.Bytes([]byte("abc")), unhex(t, "0a 03 61 62 63"))
	protoRoundTrip(t, bv, wrapperspb.Bytes(bytes.Repeat([]byte{0xff}, 200)), nil)

	st := serde.Proto[*structpb.Struct]()
	protoRoundTrip(t, st, &structpb.Struct{}, []byte{})
	protoRoundTrip(t, st, bigStruct(t, 60, false), nil)
	nan, err := structpb.NewStruct(map[string]any{"nan": math.NaN(), "inf": math.Inf(-1), "utf8": "日本"})
	if err != nil {
		t.Fatal(err)
	}
	protoRoundTrip(t, st, nan, nil)

	// A proto2 message, with a nested message and repeated fields.
	fd := serde.Proto[*descriptorpb.FileDescriptorProto]()
	protoRoundTrip(t, fd, &descriptorpb.FileDescriptorProto{
		Name:       proto.String("a.proto"),
		Package:    proto.String("pkg"),
		Dependency: []string{"b.proto", "c.proto"},
		MessageType: []*descriptorpb.DescriptorProto{{
			Name: proto.String("M"),
			Field: []*descriptorpb.FieldDescriptorProto{{
				Name:   proto.String("f"),
				Number: proto.Int32(1),
				Label:  descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
				Type:   descriptorpb.FieldDescriptorProto_TYPE_BYTES.Enum(),
			}},
		}},
		Syntax: proto.String("proto3"),
	}, nil)
}

// TestProtoDecodeDoesNotRetain checks that bytes and string fields of a
// decoded message do not share memory with the input.
func TestProtoDecodeDoesNotRetain(t *testing.T) {
	bv := serde.Proto[*wrapperspb.BytesValue]()
	payload := []byte("payload \x00\x01\xff")
	enc, err := bv.Append(nil, wrapperspb.Bytes(payload))
	if err != nil {
		t.Fatal(err)
	}
	got, err := bv.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range enc {
		enc[i] = 'x'
	}
	if !bytes.Equal(got.GetValue(), payload) {
		t.Errorf("decoded bytes field changed to %q after the input was modified, want %q", got.GetValue(), payload)
	}

	st := serde.Proto[*structpb.Struct]()
	in, err := structpb.NewStruct(map[string]any{"name": "alice", "nested": map[string]any{"city": "Paris"}})
	if err != nil {
		t.Fatal(err)
	}
	enc, err = st.Append(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := st.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	clear(enc)
	if !proto.Equal(out, in) {
		t.Errorf("decoded Struct changed to %v after the input was modified", out)
	}
}

// TestProtoDeterministic checks that equal messages with map fields always
// give the same bytes, whatever order their maps were filled in.
func TestProtoDeterministic(t *testing.T) {
	s := serde.Proto[*structpb.Struct]()
	msg := bigStruct(t, 100, false)
	want, err := s.Append(nil, msg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		m := msg
		if i%2 == 1 {
			m = bigStruct(t, 100, i%4 == 1)
		}
		got, err := s.Append(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("encoding %d differs from the first one", i)
		}
	}
	// A decoded copy encodes the same way too.
	dec, err := s.Decode(want)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Append(nil, dec); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Append(Decode(b)) differs from b: %v", err)
	}
}

func TestProtoNilAndEmpty(t *testing.T) {
	s := serde.Proto[*timestamppb.Timestamp]()
	got, err := s.Append([]byte("pre"), nil)
	if err != nil || string(got) != "pre" {
		t.Errorf("Append(\"pre\", nil) = %q, %v; want \"pre\", nil", got, err)
	}
	got, err = s.Append(nil, nil)
	if err != nil || len(got) != 0 {
		t.Errorf("Append(nil, nil) = % x, %v; want no bytes", got, err)
	}
	for _, in := range [][]byte{nil, {}} {
		m, err := s.Decode(in)
		if err != nil {
			t.Fatalf("Decode(%#v): %v", in, err)
		}
		if m == nil || !proto.Equal(m, &timestamppb.Timestamp{}) {
			t.Errorf("Decode(%#v) = %v, want a non-nil empty message", in, m)
		}
	}
	// Every Decode returns a new message.
	a, _ := s.Decode(nil)
	b, _ := s.Decode(nil)
	if a == b {
		t.Error("two Decode calls returned the same message")
	}
	a.Seconds = 5
	if b.Seconds != 0 {
		t.Error("modifying one decoded message changed another")
	}
}

func TestProtoDecodeErrors(t *testing.T) {
	ts := serde.Proto[*timestamppb.Timestamp]()
	bv := serde.Proto[*wrapperspb.BytesValue]()
	sv := serde.Proto[*wrapperspb.StringValue]()
	np := serde.Proto[*descriptorpb.UninterpretedOption_NamePart]()
	decodeErr := func(_ any, err error) error { return err }
	tests := []struct {
		name string
		err  error
	}{
		{"truncated varint", decodeErr(ts.Decode([]byte{0x08, 0x80}))},
		{"lone 0xff", decodeErr(ts.Decode([]byte{0xff}))},
		{"field number 0", decodeErr(ts.Decode([]byte{0x00, 0x01}))},
		{"end group without start", decodeErr(ts.Decode([]byte{0x0c}))},
		{"wire type 7", decodeErr(ts.Decode([]byte{0x0f, 0x00}))},
		{"truncated bytes", decodeErr(bv.Decode(unhex(t, "0a 05 61 62")))},
		{"length past end", decodeErr(bv.Decode(unhex(t, "0a ff ff ff ff 0f")))},
		{"invalid UTF-8 in proto3 string", decodeErr(sv.Decode(unhex(t, "0a 01 ff")))},
		{"missing proto2 required fields", decodeErr(np.Decode(nil))},
		{"text", decodeErr(ts.Decode([]byte(`{"seconds":1}`)))},
	}
	for _, tc := range tests {
		if tc.err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if !strings.HasPrefix(tc.err.Error(), protoPrefix) {
			t.Errorf("%s: error %q lacks the %q prefix", tc.name, tc.err, protoPrefix)
		}
		if !errors.Is(tc.err, proto.Error) {
			t.Errorf("%s: error %q does not wrap proto.Error", tc.name, tc.err)
		}
	}
	// A failed Decode returns a nil message.
	if m, err := ts.Decode([]byte{0xff}); err == nil || m != nil {
		t.Errorf("Decode(ff) = %v, %v; want nil and an error", m, err)
	}
}

func TestProtoAppendErrors(t *testing.T) {
	tests := []struct {
		name string
		fn   func(dst []byte) ([]byte, error)
	}{
		{"invalid UTF-8 in proto3 string", func(dst []byte) ([]byte, error) {
			return serde.Proto[*wrapperspb.StringValue]().Append(dst, wrapperspb.String("ok\xff"))
		}},
		{"missing proto2 required field", func(dst []byte) ([]byte, error) {
			return serde.Proto[*descriptorpb.UninterpretedOption_NamePart]().Append(dst,
				&descriptorpb.UninterpretedOption_NamePart{NamePart: proto.String("x")})
		}},
		{"nested invalid UTF-8", func(dst []byte) ([]byte, error) {
			return serde.Proto[*structpb.Struct]().Append(dst, &structpb.Struct{Fields: map[string]*structpb.Value{
				"a": structpb.NewStringValue("fine"),
				"b": structpb.NewStringValue("\xc3"),
			}})
		}},
	}
	for _, tc := range tests {
		for _, dst := range [][]byte{nil, []byte("keep"), append(make([]byte, 0, 256), "keep"...)} {
			got, err := tc.fn(dst)
			if err == nil || !strings.HasPrefix(err.Error(), protoPrefix) || !errors.Is(err, proto.Error) {
				t.Errorf("%s: err = %v, want a wrapped proto error with the %q prefix", tc.name, err, protoPrefix)
			}
			if string(got) != string(dst) || len(got) != len(dst) || cap(got) != cap(dst) {
				t.Errorf("%s: Append(%q) returned %q (cap %d), want dst unchanged", tc.name, dst, got, cap(got))
			}
		}
	}
	// The same proto2 message with its required fields set encodes.
	np := serde.Proto[*descriptorpb.UninterpretedOption_NamePart]()
	enc, err := np.Append(nil, &descriptorpb.UninterpretedOption_NamePart{NamePart: proto.String("x"), IsExtension: proto.Bool(true)})
	if err != nil || !bytes.Equal(enc, unhex(t, "0a 01 78 10 01")) {
		t.Errorf("Append(NamePart) = % x, %v", enc, err)
	}
}

func TestProtoBadTypeParameter(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   func()
	}{
		{"proto.Message", func() { serde.Proto[proto.Message]() }},
		{"*dynamicpb.Message", func() { serde.Proto[*dynamicpb.Message]() }},
	} {
		func() {
			defer func() {
				r := recover()
				if msg, ok := r.(string); !ok || !strings.HasPrefix(msg, "serde: Proto: ") {
					t.Errorf("Proto[%s]() panicked with %v, want a serde: Proto: message", tc.name, r)
				}
			}()
			tc.fn()
		}()
	}
}

func TestProtoConcurrent(t *testing.T) {
	s := serde.Proto[*structpb.Struct]()
	msg := bigStruct(t, 20, false)
	want, err := s.Append(nil, msg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			var buf []byte
			for range 50 {
				var err error
				buf, err = s.Append(buf[:0], msg)
				if err != nil || !bytes.Equal(buf, want) {
					t.Errorf("concurrent Append = %v, differs from the first encoding", err)
					return
				}
				m, err := s.Decode(buf)
				if err != nil || !proto.Equal(m, msg) {
					t.Errorf("concurrent Decode = %v, %v", m, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestProtoAppendDoesNotAllocate checks that encoding a message without map
// fields into a buffer with room does not allocate: Append writes straight
// into the caller's buffer.
func TestProtoAppendDoesNotAllocate(t *testing.T) {
	ts := serde.Proto[*timestamppb.Timestamp]()
	bv := serde.Proto[*wrapperspb.BytesValue]()
	tsMsg := &timestamppb.Timestamp{Seconds: 1700000000, Nanos: 42}
	bvMsg := wrapperspb.Bytes([]byte("hello, world"))
	dst := make([]byte, 0, 64)
	var err error
	for _, tc := range []struct {
		name string
		fn   func()
	}{
		{"Timestamp", func() { dst, err = ts.Append(dst[:0], tsMsg) }},
		{"BytesValue", func() { dst, err = bv.Append(dst[:0], bvMsg) }},
	} {
		if n := allocs(tc.fn); n != 0 {
			t.Errorf("%s: Append allocated %v times per call, want 0", tc.name, n)
		}
		if err != nil {
			t.Errorf("%s: Append: %v", tc.name, err)
		}
	}
}

// TestProtoDecodeAllocations checks that decoding a message of scalar
// fields allocates only the new message.
func TestProtoDecodeAllocations(t *testing.T) {
	s := serde.Proto[*timestamppb.Timestamp]()
	enc, err := s.Append(nil, &timestamppb.Timestamp{Seconds: 1700000000, Nanos: 42})
	if err != nil {
		t.Fatal(err)
	}
	var sink *timestamppb.Timestamp
	if n := allocs(func() { sink, _ = s.Decode(enc) }); n > 1 {
		t.Errorf("Decode allocated %v times per call, want at most 1 (the message)", n)
	}
	if sink.GetNanos() != 42 {
		t.Errorf("Decode = %v", sink)
	}
}

func FuzzProtoDecode(f *testing.F) {
	ts := serde.Proto[*timestamppb.Timestamp]()
	bv := serde.Proto[*wrapperspb.BytesValue]()
	st := serde.Proto[*structpb.Struct]()
	fd := serde.Proto[*descriptorpb.FileDescriptorProto]()

	seed := func(b []byte, err error) {
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"", "\x00", "\xff", "\x08\x80", "\x08\x01\x10\x02", "\x0a\x03abc", "\x0a\x05ab",
		"\x0b\x0c", "\x0c", "\x0f\x00", "\x0a\x01\xff", "\x0d\x00\x00\x80\x7f",
		"\x0a\x00\x0a\x00", "\x08\x01\x08\x02", "\xf8\xff\xff\xff\x0f\x01",
	} {
		f.Add([]byte(s))
	}
	seed(ts.Append(nil, &timestamppb.Timestamp{Seconds: -62135596800, Nanos: 1}))
	seed(bv.Append(nil, wrapperspb.Bytes([]byte{0, 1, 2, 0xff})))
	seed(st.Append(nil, bigStruct(f, 12, false)))
	seed(fd.Append(nil, &descriptorpb.FileDescriptorProto{
		Name: proto.String("a.proto"),
		MessageType: []*descriptorpb.DescriptorProto{{
			Name:  proto.String("M"),
			Field: []*descriptorpb.FieldDescriptorProto{{Name: proto.String("f"), Number: proto.Int32(1)}},
			Options: &descriptorpb.MessageOptions{UninterpretedOption: []*descriptorpb.UninterpretedOption{{
				Name: []*descriptorpb.UninterpretedOption_NamePart{{NamePart: proto.String("x"), IsExtension: proto.Bool(false)}},
			}}},
		}},
	}))

	f.Fuzz(func(t *testing.T, b []byte) {
		checkProtoDecode(t, ts, b)
		checkProtoDecode(t, bv, b)
		checkProtoDecode(t, st, b)
		checkProtoDecode(t, fd, b)
	})
}

// checkProtoDecode decodes b with s. On failure the error must have the
// serde: proto: prefix; on success the message must survive another
// encode and decode, and its encoding must be a fixed point.
func checkProtoDecode[T proto.Message](t *testing.T, s serde.Serde[T], b []byte) {
	t.Helper()
	in := bytes.Clone(b)
	m, err := s.Decode(b)
	if !bytes.Equal(b, in) {
		t.Fatalf("%T: Decode modified its input", m)
	}
	if err != nil {
		if !strings.HasPrefix(err.Error(), protoPrefix) {
			t.Fatalf("%T: Decode(% x) error %q lacks the %q prefix", m, b, err, protoPrefix)
		}
		return
	}
	enc, err := s.Append(nil, m)
	if err != nil {
		t.Fatalf("%T: Append(Decode(% x)): %v", m, b, err)
	}
	m2, err := s.Decode(enc)
	if err != nil {
		t.Fatalf("%T: Decode(Append(Decode(% x))) = Decode(% x): %v", m, b, enc, err)
	}
	if !proto.Equal(m, m2) {
		t.Fatalf("%T: re-encoded message differs: %s, want %s", m, abbrev(fmt.Sprint(m2)), abbrev(fmt.Sprint(m)))
	}
	if enc2, err := s.Append(nil, m2); err != nil || !bytes.Equal(enc2, enc) {
		t.Fatalf("%T: encoding is not a fixed point: % x then % x (%v)", m, enc, enc2, err)
	}
}
