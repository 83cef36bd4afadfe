package serde

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
)

// Serde encodes and decodes values of type T to and from Kafka record bytes.
//
// Implementations should be safe for concurrent use. The built-in serdes
// return dst unchanged when Append fails.
type Serde[T any] interface {
	// Append appends the encoding of v to dst and returns the extended buffer.
	Append(dst []byte, v T) ([]byte, error)
	// Decode decodes b. It must not retain b.
	Decode(b []byte) (T, error)
}

// Built-in serdes, byte-compatible with the serializers and deserializers in
// Apache Kafka's org.apache.kafka.common.serialization package. They are
// stateless and safe for concurrent use.
var (
	// String encodes a string as its raw bytes, like Kafka's
	// StringSerializer with the default UTF-8 encoding. Decoding copies the
	// bytes into a new string without validating UTF-8; Java would replace
	// invalid sequences with U+FFFD, this serde keeps them unchanged.
	String Serde[string] = stringSerde{}

	// Bytes passes byte slices through unchanged, like Kafka's
	// ByteArraySerializer. Decode returns a copy of its input; a nil input
	// decodes to nil and an empty non-nil input to an empty non-nil slice.
	Bytes Serde[[]byte] = bytesSerde{}

	// Int32 encodes an int32 as 4 bytes, big-endian two's complement, like
	// Kafka's IntegerSerializer.
	Int32 Serde[int32] = int32Serde{}

	// Int64 encodes an int64 as 8 bytes, big-endian two's complement, like
	// Kafka's LongSerializer.
	Int64 Serde[int64] = int64Serde{}

	// Float64 encodes a float64 as the 8 bytes of its IEEE-754 bit pattern,
	// big-endian, like Kafka's DoubleSerializer. As Java's
	// Double.doubleToLongBits does, every NaN is encoded as the canonical
	// quiet NaN 0x7FF8000000000000; decoding keeps the bits it is given.
	Float64 Serde[float64] = float64Serde{}

	// Bool encodes a bool as one byte, 0x01 for true and 0x00 for false, like
	// Kafka's BooleanSerializer. Decoding requires exactly one byte that is
	// 0x00 or 0x01.
	Bool Serde[bool] = boolSerde{}
)

// canonicalNaN is the bit pattern Java's Double.doubleToLongBits produces for
// every NaN.
const canonicalNaN = 0x7FF8000000000000

// lengthError reports a fixed-width decode given the wrong number of bytes.
func lengthError(name string, need, got int) error {
	return fmt.Errorf("serde: %s: need %d bytes, got %d", name, need, got)
}

type stringSerde struct{}

func (stringSerde) Append(dst []byte, v string) ([]byte, error) {
	return append(dst, v...), nil
}

func (stringSerde) Decode(b []byte) (string, error) {
	return string(b), nil
}

type bytesSerde struct{}

func (bytesSerde) Append(dst []byte, v []byte) ([]byte, error) {
	return append(dst, v...), nil
}

func (bytesSerde) Decode(b []byte) ([]byte, error) {
	return bytes.Clone(b), nil
}

type int32Serde struct{}

func (int32Serde) Append(dst []byte, v int32) ([]byte, error) {
	return binary.BigEndian.AppendUint32(dst, uint32(v)), nil
}

func (int32Serde) Decode(b []byte) (int32, error) {
	if len(b) != 4 {
		return 0, lengthError("int32", 4, len(b))
	}
	return int32(binary.BigEndian.Uint32(b)), nil
}

type int64Serde struct{}

func (int64Serde) Append(dst []byte, v int64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(dst, uint64(v)), nil
}

func (int64Serde) Decode(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, lengthError("int64", 8, len(b))
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

type float64Serde struct{}

func (float64Serde) Append(dst []byte, v float64) ([]byte, error) {
	bits := math.Float64bits(v)
	if v != v { // NaN
		bits = canonicalNaN
	}
	return binary.BigEndian.AppendUint64(dst, bits), nil
}

func (float64Serde) Decode(b []byte) (float64, error) {
	if len(b) != 8 {
		return 0, lengthError("float64", 8, len(b))
	}
	return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
}

type boolSerde struct{}

func (boolSerde) Append(dst []byte, v bool) ([]byte, error) {
	if v {
		return append(dst, 1), nil
	}
	return append(dst, 0), nil
}

func (boolSerde) Decode(b []byte) (bool, error) {
	if len(b) != 1 {
		return false, lengthError("bool", 1, len(b))
	}
	switch b[0] {
	case 0:
		return false, nil
	case 1:
		return true, nil
	}
	return false, fmt.Errorf("serde: bool: invalid byte 0x%02x, want 0x00 or 0x01", b[0])
}

// JSON returns a Serde that encodes values of type T with encoding/json.
// Append appends the output of json.Marshal (which has no trailing newline)
// and Decode uses json.Unmarshal. Errors are prefixed with "serde: json: " and
// wrap the underlying encoding/json error.
func JSON[T any]() Serde[T] {
	return jsonSerde[T]{}
}

type jsonSerde[T any] struct{}

func (jsonSerde[T]) Append(dst []byte, v T) ([]byte, error) {
	out, err := json.Marshal(v)
	if err != nil {
		return dst, fmt.Errorf("serde: json: %w", err)
	}
	if len(dst) == 0 && cap(dst) < len(out) {
		return out, nil
	}
	return append(dst, out...), nil
}

func (jsonSerde[T]) Decode(b []byte) (T, error) {
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		var zero T
		return zero, fmt.Errorf("serde: json: %w", err)
	}
	return v, nil
}

// Default returns the built-in Kafka-compatible serde for T and true when T
// is exactly string, []byte, int32, int64, float64 or bool (String, Bytes,
// Int32, Int64, Float64 or Bool). For any other type, including named types
// whose underlying type is one of those, it returns nil and false.
func Default[T any]() (Serde[T], bool) {
	var zero T
	var s any
	switch any(&zero).(type) {
	case *string:
		s = String
	case *[]byte:
		s = Bytes
	case *int32:
		s = Int32
	case *int64:
		s = Int64
	case *float64:
		s = Float64
	case *bool:
		s = Bool
	default:
		return nil, false
	}
	return s.(Serde[T]), true
}

// Func returns a Serde whose Append calls appendFn and whose Decode calls
// decodeFn. decodeFn must not retain its argument. Func panics if either
// function is nil.
func Func[T any](appendFn func([]byte, T) ([]byte, error), decodeFn func([]byte) (T, error)) Serde[T] {
	if appendFn == nil || decodeFn == nil {
		panic("serde: Func: nil function")
	}
	return funcSerde[T]{appendFn: appendFn, decodeFn: decodeFn}
}

type funcSerde[T any] struct {
	appendFn func([]byte, T) ([]byte, error)
	decodeFn func([]byte) (T, error)
}

func (s funcSerde[T]) Append(dst []byte, v T) ([]byte, error) {
	return s.appendFn(dst, v)
}

func (s funcSerde[T]) Decode(b []byte) (T, error) {
	return s.decodeFn(b)
}
