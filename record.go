package kstream

import (
	"time"
	"unsafe"

	"github.com/kstreamgo/kstream/internal/graph"
)

// Header is a Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// Record is a typed Kafka record: what a [Processor] receives and forwards,
// and what kstest returns.
type Record[K, V any] struct {
	Key   K
	Value V
	// Timestamp is in milliseconds since the Unix epoch, as Kafka stores it.
	Timestamp int64
	Headers   []Header
	// Tombstone marks a record whose value is Kafka's null: a delete for
	// tables and compacted topics. Value is then V's zero value.
	Tombstone bool
}

// Time returns the record's timestamp as a time.Time.
func (r Record[K, V]) Time() time.Time { return time.UnixMilli(r.Timestamp) }

// Header and graph.Header have the same layout, so slices of one are slices of
// the other: converting costs nothing per record.
var _ = [1]struct{}{}[unsafe.Sizeof(Header{})-unsafe.Sizeof(graph.Header{})]

func toGraphHeaders(h []Header) []graph.Header {
	if len(h) == 0 {
		return nil
	}
	return unsafe.Slice((*graph.Header)(unsafe.Pointer(&h[0])), len(h))
}

func fromGraphHeaders(h []graph.Header) []Header {
	if len(h) == 0 {
		return nil
	}
	return unsafe.Slice((*Header)(unsafe.Pointer(&h[0])), len(h))
}

// RecordError is the error a runtime reports for a record that failed: the
// record's Topic, Partition and Offset (-1 in a punctuation), the Node that
// failed, whether it was a Deserialization failure or a Production failure
// (a PartitionWith or PartitionsWith partition out of range), and the cause (Err). Match it
// with errors.As.
type RecordError = graph.RecordError

// PanicError is the cause (RecordError.Err) of a record's failure in which
// user code, a function given to an operator or a serde, panicked: the
// value passed to panic, the function, file and line that raised it, and
// the goroutine's stack at the panic. Match it with errors.As; when the
// value is an error (a runtime error such as an index out of range), the
// PanicError unwraps to it.
type PanicError = graph.PanicError

// Policy says what a runtime does with a record that fails: kafkaio's
// OnDeserializationError, OnProcessingError and OnProductionError options,
// and kstest's, take one per kind of failure (RecordError.Deserialization,
// RecordError.Production, and processing: the rest).
type Policy uint8

const (
	// PolicyFail stops the application (kafkaio: Run returns an error
	// naming the topic, partition, offset and node; kstest: Pipe fails the
	// test, TryPipeRecord returns the error). It is the default.
	PolicyFail Policy = iota
	// PolicySkip logs the failure (log/slog), counts it, and goes on.
	PolicySkip
	// PolicyDeadLetter writes the raw record to the dead-letter topic with
	// headers describing the failure (kafkaio: inside the transaction under
	// exactly-once), counts it, and goes on. A failure with no record (in a
	// punctuation) fails as with PolicyFail.
	PolicyDeadLetter
)
