// Package serde converts between Go values and the bytes of Kafka record keys
// and values, and builds sortable keys for state stores.
//
// # Serde
//
// A [Serde] pairs an Append method, which appends the encoding of a value to
// a caller-supplied buffer, with a Decode method, which decodes a value from
// bytes it does not retain. Appending lets callers reuse buffers, and the
// built-in fixed-width serdes do not allocate when the buffer has room.
// [Func] builds a Serde from two functions, [JSON] builds one for any
// type that encoding/json can handle, and [Proto] builds one for protocol
// buffer messages.
//
// # Kafka-compatible serdes
//
// [String], [Bytes], [Int32], [Int64], [Float64] and [Bool] produce the same
// bytes as Apache Kafka's StringSerializer (UTF-8), ByteArraySerializer,
// IntegerSerializer, LongSerializer, DoubleSerializer and BooleanSerializer,
// so topics can be shared with Java producers, consumers and Kafka Streams
// applications. Fixed-width values are big-endian; decoding input of the
// wrong length returns an error such as
//
//	serde: int64: need 8 bytes, got 3
//
// [Default] returns the built-in serde for exactly those Go types.
//
// [Proto] encodes protocol buffer messages in the plain protobuf binary
// encoding, the bytes of Java's message.toByteArray(), deterministically so
// that messages can be record keys. It does not read or write the framed
// format of Confluent Schema Registry's serializers (a magic byte, a schema
// ID and message indexes before the message).
//
// # Order-preserving key encodings
//
// State stores keep keys sorted by their bytes (for example in Pebble) and
// answer range scans over them. The Ordered serdes ([OrderedString],
// [OrderedBytes], [OrderedInt32], [OrderedInt64], [OrderedUint64],
// [OrderedFloat64] and [OrderedBool]) encode values so that bytes.Compare on
// two encodings orders them like the values themselves. The encodings are
// also self-delimiting, so a composite key made by concatenating encodings,
// such as a record key followed by a window start timestamp, sorts like the
// tuple of its parts. Build and take apart composite keys with the
// AppendOrdered* and DecodeOrdered* functions, and bound a scan over all keys
// with a given prefix with [PrefixEnd].
//
// These encodings are for local storage; they are not Kafka's wire formats.
//
// # Usage
//
//	// Kafka record value.
//	buf, _ := serde.Int64.Append(nil, 42) // 00 00 00 00 00 00 00 2a
//	n, err := serde.Int64.Decode(buf)
//
//	// Window store key: (record key, window start) sorted by key, then time.
//	key := serde.AppendOrderedString(nil, "user-1")
//	key = serde.AppendOrderedInt64(key, windowStart)
//	user, rest, err := serde.DecodeOrderedString(key)
//	start, _, err := serde.DecodeOrderedInt64(rest)
//
//	// Scan every window of "user-1": [prefix, serde.PrefixEnd(prefix)).
//	prefix := serde.AppendOrderedString(nil, "user-1")
//	upper := serde.PrefixEnd(prefix)
package serde
