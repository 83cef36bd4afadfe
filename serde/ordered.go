package serde

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
)

// Order-preserving serdes for state-store keys. For each of them,
// bytes.Compare on two encodings has the same sign as comparing the values,
// and every encoding is self-delimiting, so concatenated encodings compare
// like tuples of values. They are stateless and safe for concurrent use.
//
// Decode on these serdes requires b to hold exactly one encoding and reports
// an error if bytes are left over. To take apart a concatenation, use the
// DecodeOrdered* functions, which return the unconsumed rest of the buffer.
var (
	// OrderedString encodes a string like OrderedBytes does its bytes.
	// Strings are ordered bytewise, as by strings.Compare.
	OrderedString Serde[string] = orderedStringSerde{}

	// OrderedBytes encodes a byte slice with every 0x00 escaped as 0x00 0xFF
	// and a terminating 0x00 0x01. Slices are ordered as by bytes.Compare.
	// A nil slice and an empty slice have the same encoding; Decode returns
	// a new, non-nil slice.
	OrderedBytes Serde[[]byte] = orderedBytesSerde{}

	// OrderedInt32 encodes an int32 as 4 big-endian bytes with the sign bit
	// flipped.
	OrderedInt32 Serde[int32] = orderedInt32Serde{}

	// OrderedInt64 encodes an int64 as 8 big-endian bytes with the sign bit
	// flipped.
	OrderedInt64 Serde[int64] = orderedInt64Serde{}

	// OrderedUint64 encodes a uint64 as 8 big-endian bytes.
	OrderedUint64 Serde[uint64] = orderedUint64Serde{}

	// OrderedFloat64 encodes a float64 as 8 big-endian bytes: the IEEE-754
	// bits with all bits inverted for negative values (sign bit set) and
	// only the sign bit flipped otherwise. Non-NaN values are ordered
	// numerically, except that -0 sorts immediately before +0 (both round
	// trip exactly). NaNs round trip bit for bit; those with the sign bit
	// clear sort after +Inf and those with it set sort before -Inf.
	OrderedFloat64 Serde[float64] = orderedFloat64Serde{}

	// OrderedBool encodes false as 0x00 and true as 0x01, so false sorts
	// before true.
	OrderedBool Serde[bool] = orderedBoolSerde{}
)

const signBit64 = 1 << 63

var (
	errUnterminated = errors.New("serde: ordered bytes: missing terminator")
	errTruncated    = errors.New("serde: ordered bytes: truncated escape")
)

// trailingError reports bytes left over after a complete encoding.
func trailingError(name string, n int) error {
	return fmt.Errorf("serde: %s: %d trailing bytes", name, n)
}

// AppendOrderedBytes appends the order-preserving, self-delimiting encoding
// of v to dst: v with each 0x00 replaced by 0x00 0xFF, followed by 0x00 0x01.
// It does not allocate when dst has enough capacity.
func AppendOrderedBytes(dst, v []byte) []byte {
	for {
		i := bytes.IndexByte(v, 0)
		if i < 0 {
			break
		}
		dst = append(dst, v[:i]...)
		dst = append(dst, 0x00, 0xFF)
		v = v[i+1:]
	}
	dst = append(dst, v...)
	return append(dst, 0x00, 0x01)
}

// AppendOrderedString appends the encoding of s to dst. It produces the same
// bytes as AppendOrderedBytes(dst, []byte(s)) without converting s.
func AppendOrderedString(dst []byte, s string) []byte {
	for {
		i := strings.IndexByte(s, 0)
		if i < 0 {
			break
		}
		dst = append(dst, s[:i]...)
		dst = append(dst, 0x00, 0xFF)
		s = s[i+1:]
	}
	dst = append(dst, s...)
	return append(dst, 0x00, 0x01)
}

// scanOrderedBytes validates the escaped byte string at the start of b. It
// returns the index of the terminating 0x00 0x01 and the number of escaped
// zero bytes before it.
func scanOrderedBytes(b []byte) (end, escapes int, err error) {
	i := 0
	for {
		j := bytes.IndexByte(b[i:], 0)
		if j < 0 {
			return 0, 0, errUnterminated
		}
		i += j
		if i+1 >= len(b) {
			return 0, 0, errTruncated
		}
		switch b[i+1] {
		case 0x01:
			return i, escapes, nil
		case 0xFF:
			escapes++
			i += 2
		default:
			return 0, 0, fmt.Errorf("serde: ordered bytes: invalid escape 0x00 0x%02x at offset %d", b[i+1], i)
		}
	}
}

// DecodeOrderedBytes decodes an encoding written by AppendOrderedBytes from
// the start of b. It returns the decoded value, which is a newly allocated,
// non-nil slice, and the rest of b after the encoding, which aliases b. It
// returns an error if b does not start with a valid encoding.
func DecodeOrderedBytes(b []byte) ([]byte, []byte, error) {
	end, escapes, err := scanOrderedBytes(b)
	if err != nil {
		return nil, b, err
	}
	out := make([]byte, 0, end-escapes)
	src := b[:end]
	for {
		i := bytes.IndexByte(src, 0)
		if i < 0 {
			break
		}
		out = append(out, src[:i+1]...) // includes the 0x00
		src = src[i+2:]                 // skips the 0xFF
	}
	out = append(out, src...)
	return out, b[end+2:], nil
}

// DecodeOrderedString decodes an encoding written by AppendOrderedString (or
// AppendOrderedBytes) from the start of b. It returns the decoded string and
// the rest of b after the encoding, which aliases b. It returns an error if b
// does not start with a valid encoding.
func DecodeOrderedString(b []byte) (string, []byte, error) {
	end, escapes, err := scanOrderedBytes(b)
	if err != nil {
		return "", b, err
	}
	if escapes == 0 {
		return string(b[:end]), b[end+2:], nil
	}
	var sb strings.Builder
	sb.Grow(end - escapes)
	src := b[:end]
	for {
		i := bytes.IndexByte(src, 0)
		if i < 0 {
			break
		}
		sb.Write(src[:i+1])
		src = src[i+2:]
	}
	sb.Write(src)
	return sb.String(), b[end+2:], nil
}

// AppendOrderedInt32 appends the 4-byte order-preserving encoding of v to
// dst: big-endian with the sign bit flipped.
func AppendOrderedInt32(dst []byte, v int32) []byte {
	return binary.BigEndian.AppendUint32(dst, uint32(v)^(1<<31))
}

// DecodeOrderedInt32 decodes an encoding written by AppendOrderedInt32 from
// the start of b and returns the value and the rest of b.
func DecodeOrderedInt32(b []byte) (int32, []byte, error) {
	if len(b) < 4 {
		return 0, b, lengthError("ordered int32", 4, len(b))
	}
	return int32(binary.BigEndian.Uint32(b) ^ (1 << 31)), b[4:], nil
}

// AppendOrderedInt64 appends the 8-byte order-preserving encoding of v to
// dst: big-endian with the sign bit flipped.
func AppendOrderedInt64(dst []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(v)^signBit64)
}

// DecodeOrderedInt64 decodes an encoding written by AppendOrderedInt64 from
// the start of b and returns the value and the rest of b.
func DecodeOrderedInt64(b []byte) (int64, []byte, error) {
	if len(b) < 8 {
		return 0, b, lengthError("ordered int64", 8, len(b))
	}
	return int64(binary.BigEndian.Uint64(b) ^ signBit64), b[8:], nil
}

// AppendOrderedUint64 appends the 8-byte big-endian encoding of v to dst.
func AppendOrderedUint64(dst []byte, v uint64) []byte {
	return binary.BigEndian.AppendUint64(dst, v)
}

// DecodeOrderedUint64 decodes an encoding written by AppendOrderedUint64 from
// the start of b and returns the value and the rest of b.
func DecodeOrderedUint64(b []byte) (uint64, []byte, error) {
	if len(b) < 8 {
		return 0, b, lengthError("ordered uint64", 8, len(b))
	}
	return binary.BigEndian.Uint64(b), b[8:], nil
}

// AppendOrderedFloat64 appends the 8-byte order-preserving encoding of v to
// dst. See OrderedFloat64 for the order.
func AppendOrderedFloat64(dst []byte, v float64) []byte {
	bits := math.Float64bits(v)
	if bits&signBit64 != 0 {
		bits = ^bits
	} else {
		bits ^= signBit64
	}
	return binary.BigEndian.AppendUint64(dst, bits)
}

// DecodeOrderedFloat64 decodes an encoding written by AppendOrderedFloat64
// from the start of b and returns the value and the rest of b.
func DecodeOrderedFloat64(b []byte) (float64, []byte, error) {
	if len(b) < 8 {
		return 0, b, lengthError("ordered float64", 8, len(b))
	}
	bits := binary.BigEndian.Uint64(b)
	if bits&signBit64 != 0 {
		bits ^= signBit64
	} else {
		bits = ^bits
	}
	return math.Float64frombits(bits), b[8:], nil
}

// AppendOrderedBool appends 0x01 for true or 0x00 for false to dst.
func AppendOrderedBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// DecodeOrderedBool decodes an encoding written by AppendOrderedBool from the
// start of b and returns the value and the rest of b.
func DecodeOrderedBool(b []byte) (bool, []byte, error) {
	if len(b) < 1 {
		return false, b, lengthError("ordered bool", 1, len(b))
	}
	switch b[0] {
	case 0:
		return false, b[1:], nil
	case 1:
		return true, b[1:], nil
	}
	return false, b, fmt.Errorf("serde: ordered bool: invalid byte 0x%02x, want 0x00 or 0x01", b[0])
}

// PrefixEnd returns the smallest key that is greater than every key starting
// with prefix, for use as the exclusive upper bound of a range scan (for
// example Pebble's IterOptions.UpperBound) over all keys with that prefix.
// It is prefix with trailing 0xFF bytes removed and the last remaining byte
// incremented, in a new slice. If there is no such key, because prefix is
// empty or consists only of 0xFF bytes, PrefixEnd returns nil, which callers
// should treat as "no upper bound".
func PrefixEnd(prefix []byte) []byte {
	for i := len(prefix) - 1; i >= 0; i-- {
		if prefix[i] != 0xFF {
			end := make([]byte, i+1)
			copy(end, prefix)
			end[i]++
			return end
		}
	}
	return nil
}

// decodeWhole applies a DecodeOrdered* function to b and requires that it
// consume all of b.
func decodeWhole[T any](name string, b []byte, decode func([]byte) (T, []byte, error)) (T, error) {
	v, rest, err := decode(b)
	if err != nil {
		var zero T
		return zero, err
	}
	if len(rest) != 0 {
		var zero T
		return zero, trailingError(name, len(rest))
	}
	return v, nil
}

type orderedStringSerde struct{}

func (orderedStringSerde) Append(dst []byte, v string) ([]byte, error) {
	return AppendOrderedString(dst, v), nil
}

func (orderedStringSerde) Decode(b []byte) (string, error) {
	return decodeWhole("ordered string", b, DecodeOrderedString)
}

type orderedBytesSerde struct{}

func (orderedBytesSerde) Append(dst []byte, v []byte) ([]byte, error) {
	return AppendOrderedBytes(dst, v), nil
}

func (orderedBytesSerde) Decode(b []byte) ([]byte, error) {
	return decodeWhole("ordered bytes", b, DecodeOrderedBytes)
}

type orderedInt32Serde struct{}

func (orderedInt32Serde) Append(dst []byte, v int32) ([]byte, error) {
	return AppendOrderedInt32(dst, v), nil
}

func (orderedInt32Serde) Decode(b []byte) (int32, error) {
	if len(b) != 4 {
		return 0, lengthError("ordered int32", 4, len(b))
	}
	v, _, err := DecodeOrderedInt32(b)
	return v, err
}

type orderedInt64Serde struct{}

func (orderedInt64Serde) Append(dst []byte, v int64) ([]byte, error) {
	return AppendOrderedInt64(dst, v), nil
}

func (orderedInt64Serde) Decode(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, lengthError("ordered int64", 8, len(b))
	}
	v, _, err := DecodeOrderedInt64(b)
	return v, err
}

type orderedUint64Serde struct{}

func (orderedUint64Serde) Append(dst []byte, v uint64) ([]byte, error) {
	return AppendOrderedUint64(dst, v), nil
}

func (orderedUint64Serde) Decode(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, lengthError("ordered uint64", 8, len(b))
	}
	v, _, err := DecodeOrderedUint64(b)
	return v, err
}

type orderedFloat64Serde struct{}

func (orderedFloat64Serde) Append(dst []byte, v float64) ([]byte, error) {
	return AppendOrderedFloat64(dst, v), nil
}

func (orderedFloat64Serde) Decode(b []byte) (float64, error) {
	if len(b) != 8 {
		return 0, lengthError("ordered float64", 8, len(b))
	}
	v, _, err := DecodeOrderedFloat64(b)
	return v, err
}

type orderedBoolSerde struct{}

func (orderedBoolSerde) Append(dst []byte, v bool) ([]byte, error) {
	return AppendOrderedBool(dst, v), nil
}

func (orderedBoolSerde) Decode(b []byte) (bool, error) {
	if len(b) != 1 {
		return false, lengthError("ordered bool", 1, len(b))
	}
	v, _, err := DecodeOrderedBool(b)
	return v, err
}
