package graph

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/kstreamgo/kstream/state"
)

// Header is a record header as Kafka stores it.
type Header struct {
	Key   string
	Value []byte
}

// Meta travels with a record through a task's executors, by pointer: the
// timestamp, the headers and whether the record is a tombstone. Executors that
// change a field (an aggregation's timestamp) forward their own copy.
type Meta struct {
	Timestamp int64
	Headers   []Header
	Tombstone bool
	// NullKey is true for a record whose key is Kafka's null: aggregations
	// and joins drop it.
	NullKey bool
}

// RawRecord is a record as read from one partition of a topic. A nil Value is
// Kafka's null value: a tombstone.
type RawRecord struct {
	Key       []byte
	Value     []byte
	Timestamp int64
	Headers   []Header
	Offset    int64
}

// OutRecord is a record that a task produced, kept in its OutBuffer. Key and
// value bytes live in the buffer's arena: read them with OutBuffer.Key and
// OutBuffer.Value.
type OutRecord struct {
	Topic string
	// Partition is the target partition, or -1 to partition by key.
	Partition  int32
	keyStart   int
	keyEnd     int // keyStart < 0: null key
	valueStart int
	valueEnd   int // valueStart < 0: null value (tombstone)
	Timestamp  int64
	Headers    []Header
	// Changelog marks a record of a store's changelog.
	Changelog bool
}

// OutBuffer collects a task's output between two drains without allocating
// per record: records in one slice, their bytes in one arena, both reused.
type OutBuffer struct {
	recs  []OutRecord
	arena []byte
}

// Arena returns the arena for a writer to append to; pass the extended slice
// back with Add.
func (b *OutBuffer) Arena() []byte { return b.arena }

// Add appends a record whose key occupies arena[ks:ke] and value
// arena[vs:ve] of the extended arena a (ks < 0: null key; vs < 0: null value).
func (b *OutBuffer) Add(a []byte, topic string, partition int32, ks, ke, vs, ve int, ts int64, headers []Header) {
	b.arena = a
	r := b.grow()
	r.Topic, r.Partition, r.Timestamp, r.Headers, r.Changelog = topic, partition, ts, headers, false
	r.keyStart, r.keyEnd, r.valueStart, r.valueEnd = ks, ke, vs, ve
}

// grow adds a record to the buffer and returns it, for the caller to set
// every field: filling it in place is cheaper than appending a composite
// literal, which is built aside and then copied.
func (b *OutBuffer) grow() *OutRecord {
	if len(b.recs) == cap(b.recs) {
		b.recs = append(b.recs, OutRecord{})
	} else {
		b.recs = b.recs[:len(b.recs)+1]
	}
	return &b.recs[len(b.recs)-1]
}

// AddBytes appends a record copying key and value (nil: null).
func (b *OutBuffer) AddBytes(topic string, partition int32, key, value []byte, ts int64, headers []Header) {
	ks, ke, vs, ve := -1, -1, -1, -1
	if key != nil {
		ks = len(b.arena)
		b.arena = append(b.arena, key...)
		ke = len(b.arena)
	}
	if value != nil {
		vs = len(b.arena)
		b.arena = append(b.arena, value...)
		ve = len(b.arena)
	}
	b.recs = append(b.recs, OutRecord{Topic: topic, Partition: partition, keyStart: ks, keyEnd: ke,
		valueStart: vs, valueEnd: ve, Timestamp: ts, Headers: headers})
}

// Size returns the number of key and value bytes buffered.
func (b *OutBuffer) Size() int { return len(b.arena) }

// AddChangelog appends a changelog record, copying key and value (nil value:
// a delete).
func (b *OutBuffer) AddChangelog(topic string, partition int32, key, value []byte, ts int64) {
	b.AddBytes(topic, partition, key, value, ts, nil)
	b.recs[len(b.recs)-1].Changelog = true
}

// Len returns the number of buffered records.
func (b *OutBuffer) Len() int { return len(b.recs) }

// At returns the i-th buffered record.
func (b *OutBuffer) At(i int) *OutRecord { return &b.recs[i] }

// Key returns r's key bytes (nil for a null key), valid until Reset.
func (b *OutBuffer) Key(r *OutRecord) []byte {
	if r.keyStart < 0 {
		return nil
	}
	if b.arena == nil { // an empty key in an empty arena: not null
		return []byte{}
	}
	return b.arena[r.keyStart:r.keyEnd:r.keyEnd]
}

// Value returns r's value bytes (nil for a tombstone), valid until Reset.
func (b *OutBuffer) Value(r *OutRecord) []byte {
	if r.valueStart < 0 {
		return nil
	}
	if b.arena == nil { // an empty value in an empty arena: not a tombstone
		return []byte{}
	}
	return b.arena[r.valueStart:r.valueEnd:r.valueEnd]
}

// Reset empties the buffer, keeping its memory.
func (b *OutBuffer) Reset() {
	clear(b.recs) // drop header references
	b.recs = b.recs[:0]
	b.arena = b.arena[:0]
}

// Punctuation is a scheduled callback; Cancel stops it.
type Punctuation struct {
	interval  int64
	next      int64
	wallClock bool
	fn        func(ts int64)
	cancelled bool
	node      string
}

// Cancel stops the punctuation; it does not fire again.
func (p *Punctuation) Cancel() { p.cancelled = true }

// RecordError is a failure tied to the record being processed: where the
// record came from and which node failed.
type RecordError struct {
	Topic     string
	Partition int32
	Offset    int64
	Node      string
	// Deserialization is true when the record could not be decoded.
	Deserialization bool
	// Production is true when an output record of the record could not be
	// produced: a custom partitioner (kstream.PartitionWith,
	// PartitionsWith) chose a partition the target topic does not have, or
	// a negative one with others, or the topic's partition count could not
	// be found. Runtimes apply their production error policy to it.
	Production bool
	Err        error
}

func (e *RecordError) Error() string {
	what := "processing"
	switch {
	case e.Deserialization:
		what = "deserializing"
	case e.Production:
		what = "producing output"
	}
	if e.Offset < 0 {
		return fmt.Sprintf("kstream: %s in node %s (task partition %d, punctuation): %v", what, e.Node, e.Partition, e.Err)
	}
	if e.Production {
		what = "producing the output of"
	}
	return fmt.Sprintf("kstream: %s record %s/%d@%d in node %s: %v", what, e.Topic, e.Partition, e.Offset, e.Node, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

// TaskContext is what executors of one task bind to: the task's identity, its
// stores, stream time, punctuation schedule, output buffer, and the record
// being processed (for error reports). One goroutine uses it at a time.
type TaskContext struct {
	AppID       string
	SubTopology int
	Partition   int32

	// StreamTime is the largest timestamp seen by the task, -1 before any.
	StreamTime int64
	// RecordTime is the timestamp of the record being processed (the
	// punctuation time in a punctuation): changelog records carry it.
	RecordTime int64
	// WallClock is the current wall-clock time in milliseconds, as the
	// runtime last set it.
	WallClock int64

	Out OutBuffer

	// Partitions returns the partition count of a topic (its full name),
	// for the sinks whose partitioner needs it (kstream.PartitionWith,
	// PartitionsWith); the runtime sets it (nil: unknown, an error for such
	// sinks). It may be called per record: it must not allocate once the
	// topic is known.
	Partitions func(topic string) (int32, error)

	// The record being processed, and the node running user code (an index
	// into Names; Decoding(id) while source id decodes the record), for
	// error reports. A node sets Node before it calls user code, functions
	// or serdes, so that a panic names it.
	Topic  string
	Offset int64
	Node   int32
	// Names maps node IDs to node names.
	Names    []string
	closers  []func() error
	flushers []func()

	stores  map[string]state.Store
	puncts  []*Punctuation
	nextST  int64 // earliest stream-time punctuation, MaxInt64 if none
	due     bool  // see ObserveExtracted
	failure *RecordError
	// Dropped counts records dropped by design (tombstones where no
	// operator can use them, null keys in aggregations, records that a
	// kstream.PartitionsWith sends to no partition), per node.
	Dropped map[string]int64
}

// NewTaskContext returns a context for the task of sub-topology st on partition p.
func NewTaskContext(appID string, st int, p int32) *TaskContext {
	return &TaskContext{AppID: appID, SubTopology: st, Partition: p, StreamTime: -1,
		stores: map[string]state.Store{}, nextST: maxInt64, Dropped: map[string]int64{}}
}

const maxInt64 = int64(^uint64(0) >> 1)

// SetStore registers the task's instance of a store.
func (tc *TaskContext) SetStore(name string, s state.Store) { tc.stores[name] = s }

// Store returns the task's instance of the store named name.
func (tc *TaskContext) Store(name string) (state.Store, error) {
	s, ok := tc.stores[name]
	if !ok {
		return nil, fmt.Errorf("kstream: store %q is not connected to this processor (declare it with kstream.WithStores)", name)
	}
	return s, nil
}

// Fail records a failure of node while processing the current record. The
// first failure wins until the runtime takes it with TakeFailure.
func (tc *TaskContext) Fail(node string, err error) {
	if tc.failure != nil {
		return
	}
	tc.failure = &RecordError{Topic: tc.Topic, Partition: tc.Partition, Offset: tc.Offset, Node: node, Err: err}
}

// FailDecode records a deserialization failure of the current record.
func (tc *TaskContext) FailDecode(node string, err error) {
	if tc.failure != nil {
		return
	}
	tc.failure = &RecordError{Topic: tc.Topic, Partition: tc.Partition, Offset: tc.Offset, Node: node, Err: err, Deserialization: true}
}

// FailProduce records a failure to produce an output record of the current
// record (see RecordError.Production).
func (tc *TaskContext) FailProduce(node string, err error) {
	if tc.failure != nil {
		return
	}
	tc.failure = &RecordError{Topic: tc.Topic, Partition: tc.Partition, Offset: tc.Offset, Node: node, Err: err, Production: true}
}

// Failed reports whether a failure is pending.
func (tc *TaskContext) Failed() bool { return tc.failure != nil }

// TakeFailure returns and clears the pending failure.
func (tc *TaskContext) TakeFailure() *RecordError {
	f := tc.failure
	tc.failure = nil
	return f
}

// OnFlush registers fn to run when the runtime flushes the task (before each
// commit): a node that holds records back (a table's update cache) forwards
// them then.
func (tc *TaskContext) OnFlush(fn func()) { tc.flushers = append(tc.flushers, fn) }

// Flush runs the flush callbacks, upstream nodes first, so that what an
// upstream node forwards reaches a downstream cache before that one flushes
// (the runtime creates a task's nodes downstream first: this is the reverse
// order of registration).
func (tc *TaskContext) Flush() {
	for i := len(tc.flushers) - 1; i >= 0; i-- {
		tc.flushers[i]()
	}
}

// OnClose registers fn to run when the task closes.
func (tc *TaskContext) OnClose(fn func() error) { tc.closers = append(tc.closers, fn) }

// Close runs the close callbacks in reverse order of registration and
// returns their errors joined.
func (tc *TaskContext) Close() error {
	var errs []error
	for i := len(tc.closers) - 1; i >= 0; i-- {
		if err := tc.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	tc.closers = nil
	return errors.Join(errs...)
}

// Decoding returns the TaskContext.Node of source node id while it decodes
// the record: a panic then is a deserialization failure of the record.
func Decoding(id int32) int32 { return ^id }

// Panicked records a panic raised by user code as a failure of the node that
// was running (a deserialization failure if it was decoding the record), with
// a PanicError as its cause. Call it from the deferred function that
// recovered v, so that the panic's stack is still there to read.
func (tc *TaskContext) Panicked(v any) {
	id, decoding := tc.Node, tc.Node < 0
	if decoding {
		id = ^id
	}
	name := "?"
	if int(id) < len(tc.Names) && id >= 0 {
		name = tc.Names[id]
	}
	tc.failure = nil
	pe := Recovered(v)
	if decoding {
		tc.FailDecode(name, pe)
	} else {
		tc.Fail(name, pe)
	}
}

// PanicError is the cause (RecordError.Err) of a failure in which user code
// panicked: the value passed to panic, where the panic was raised (the
// innermost function of the stack outside Go's runtime package, as in a
// runtime error such as an index out of range), and the goroutine's stack
// at the panic.
type PanicError struct {
	Value any
	// Func is the function that panicked, as runtime.Frame names it
	// ("example.com/app.parse"); File and Line locate the panic in it. They
	// are empty when the stack could not be read.
	Func string
	File string
	Line int
	// Stack is the stack of the goroutine at the panic, as
	// runtime/debug.Stack formats it.
	Stack []byte
}

// Error returns "panic: " and the value, then where the panic was raised:
// the function, without its package path, and the file's base name and the
// line ("panic: boom [in app.parse at parse.go:42]").
func (e *PanicError) Error() string {
	if e.Func == "" {
		return fmt.Sprintf("panic: %v", e.Value)
	}
	fn := e.Func
	if i := strings.LastIndexByte(fn, '/'); i >= 0 {
		fn = fn[i+1:]
	}
	return fmt.Sprintf("panic: %v [in %s at %s:%d]", e.Value, fn, filepath.Base(e.File), e.Line)
}

// Unwrap returns the panic's value when it is an error (a runtime error, a
// value passed to panic), so that errors.Is and errors.As see it.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// Recovered returns the PanicError of v, the value that recover returned.
// Call it while the panic unwinds (in the deferred function that recovered
// v, or in a function that one calls): it reads the panic's stack.
func Recovered(v any) *PanicError {
	e := &PanicError{Value: v, Stack: panicStack(debug.Stack())}
	var pcs [64]uintptr
	n := runtime.Callers(2, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	panicking := false
	for {
		f, more := frames.Next()
		switch {
		case f.Function == "runtime.gopanic":
			panicking = true
		case panicking && !strings.HasPrefix(f.Function, "runtime."):
			e.Func, e.File, e.Line = f.Function, f.File, f.Line
			return e
		}
		if !more {
			return e
		}
	}
}

// panicStack returns the stack st that runtime/debug.Stack gave during a
// panic from the panic on: its first line, then the frames from panic's
// (the frames of the recovery before them say nothing of the panic).
func panicStack(st []byte) []byte {
	first := bytes.IndexByte(st, '\n')
	at := bytes.Index(st, []byte("\npanic("))
	if first < 0 || at < first {
		return st
	}
	return append(st[:first+1:first+1], st[at+1:]...)
}

// Drop counts a record that node dropped by design.
func (tc *TaskContext) Drop(node string) { tc.Dropped[node]++ }

// Schedule adds a punctuation every interval milliseconds, on stream time or
// on wall-clock time. Stream-time punctuations are aligned to multiples of the
// interval and fire once stream time reaches them; wall-clock ones first fire
// one interval after scheduling.
func (tc *TaskContext) Schedule(node string, interval int64, wallClock bool, fn func(ts int64)) *Punctuation {
	if interval <= 0 {
		interval = 1
	}
	p := &Punctuation{interval: interval, wallClock: wallClock, fn: fn, node: node}
	if wallClock {
		p.next = tc.WallClock + interval
	} // Stream time: aligned to 0, so the first record at or after it fires.
	tc.puncts = append(tc.puncts, p)
	if !wallClock && p.next < tc.nextST {
		tc.nextST = p.next
	}
	return p
}

// Observe advances stream time with a record's timestamp and reports whether
// a stream-time punctuation is due.
func (tc *TaskContext) Observe(ts int64) bool {
	if ts > tc.StreamTime {
		tc.StreamTime = ts
	}
	return tc.StreamTime >= tc.nextST
}

// ObserveExtracted is Observe for a source that sets its records'
// timestamps (Node.ExtractsTime), called by the source before it forwards
// the record: the runtime then asks TakeDue whether stream-time
// punctuations are due.
func (tc *TaskContext) ObserveExtracted(ts int64) {
	tc.RecordTime = ts
	tc.due = tc.Observe(ts)
}

// TakeDue reports and clears whether ObserveExtracted made stream-time
// punctuations due.
func (tc *TaskContext) TakeDue() bool {
	d := tc.due
	tc.due = false
	return d
}

// PunctuateStreamTime runs the due stream-time punctuations.
func (tc *TaskContext) PunctuateStreamTime() { tc.punctuate(false, tc.StreamTime) }

// PunctuateWallClock sets the wall clock to now and runs the due wall-clock
// punctuations.
func (tc *TaskContext) PunctuateWallClock(now int64) {
	if now > tc.WallClock {
		tc.WallClock = now
	}
	tc.punctuate(true, tc.WallClock)
}

func (tc *TaskContext) punctuate(wall bool, now int64) {
	tc.Topic, tc.Offset, tc.RecordTime = "", -1, now
	live := tc.puncts[:0]
	for _, p := range tc.puncts {
		if !p.cancelled {
			live = append(live, p)
		}
	}
	clear(tc.puncts[len(live):])
	tc.puncts = live
	for _, p := range slices.Clone(tc.puncts) {
		if p.wallClock != wall || p.cancelled || p.next > now {
			continue
		}
		p.fn(now)
		// Skip the punctuations that were missed, staying aligned.
		missed := (now - p.next) / p.interval
		p.next += (missed + 1) * p.interval
	}
	tc.nextST = maxInt64
	for _, p := range tc.puncts {
		if !p.wallClock && !p.cancelled && p.next < tc.nextST {
			tc.nextST = p.next
		}
	}
}
