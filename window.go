package kstream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/serde"
)

// Windows is a window specification for [WindowedBy]: a [TimeWindows]
// (tumbling or hopping) or a [SlidingWindows]. It is implemented only by
// those two types.
//
// Windowed aggregations follow Kafka Streams:
//
//   - Tumbling and hopping windows ([Tumbling], [Hopping]) are aligned to the
//     epoch and half-open: [Start, End). A record belongs to every window that
//     contains its timestamp.
//   - Sliding windows ([Sliding], KIP-450) follow the records: each window
//     spans maxDiff milliseconds, both ends inclusive, and the windows that
//     exist are exactly those Kafka Streams creates (see [Sliding]).
//   - Session windows ([SessionWindowedBy]) grow and merge with the records:
//     records of a key at most the inactivity gap apart fall into one
//     session, from its first to its last record, both ends inclusive.
//
// Stream time is, for each windowed aggregation in each task, the largest
// timestamp among the records it has aggregated (as in Kafka Streams, where
// each windowed processor tracks its own). A window closes when stream time
// goes past its end plus the grace period: a tumbling or hopping window
// [start, end) when end + grace <= stream time, a sliding window
// [start, end] when end + grace < stream time, a session [start, end] when
// end + gap + grace < stream time. A record for a closed window is late: it
// does not change that window, and a record late for all of its windows is
// dropped and counted once (kstest's Driver.Dropped; Kafka Streams'
// dropped-records metric counts each late window instead). Records with a
// null key, tombstones and records with a negative timestamp are dropped and
// counted too. (Kafka Streams 4.4 drops tombstones in sliding windows as in
// non-windowed aggregations, but its time and session windows pass them to
// the aggregator as null values, so Count counts them; kstream never hands a
// tombstone to an aggregation.) Unlike Kafka Streams, which keeps stream time
// in memory and restarts it from nothing, kstream recovers it from the store
// after a restart, so a restart never reopens a closed window.
//
// A window expires from the store after its retention ([Retention]). By
// default that is when it can no longer change: time windows and sessions as
// soon as they close (their retention is size + grace, gap + grace, as in
// Kafka Streams), sliding windows once they are closed and older than
// 2*maxDiff + grace, as later sliding windows may still copy them. A longer
// retention keeps closed windows in the store for interactive queries;
// closing, late records and the output do not change. Expiry deletes them,
// and the deletes are written to the changelog.
//
// Every update of a window is forwarded by default, as Kafka Streams does
// without a record cache; with [EmitOnWindowClose] only the final result of
// each window is, once it closes. Results are tables keyed by [Windowed] keys,
// stamped with the largest timestamp of the records in the window (the window
// end for sessions), materialized in a store named by [Named] that reads as a
// table of [WindowedSerde] keys.
type Windows interface {
	windowSpec() windowSpec
}

type windowKind uint8

const (
	kindTime windowKind = iota
	kindSliding
)

// windowSpec is a window specification in milliseconds.
type windowSpec struct {
	kind          windowKind
	size, advance int64 // time windows
	diff          int64 // sliding windows
	grace         int64
	err           string // why the specification is invalid ("" if valid)
}

// TimeWindows is a tumbling or hopping window specification, made by
// [Tumbling] or [Hopping]. Windows are aligned to the Unix epoch: the windows
// of size s advancing by a start at every multiple of a, and span [start,
// start+s). The grace period is 0 unless set with [TimeWindows.Grace].
type TimeWindows struct {
	spec windowSpec
}

// SlidingWindows is a sliding window specification, made by [Sliding]. The
// grace period is 0 unless set with [SlidingWindows.Grace].
type SlidingWindows struct {
	spec windowSpec
}

func (w TimeWindows) windowSpec() windowSpec    { return w.spec }
func (w SlidingWindows) windowSpec() windowSpec { return w.spec }

// millis converts d to milliseconds, reporting in *err when d is not a whole
// number of them (Kafka's timestamps have millisecond precision).
func millis(what string, d time.Duration, err *string) int64 {
	if d%time.Millisecond != 0 && *err == "" {
		*err = fmt.Sprintf("%s %v is not a whole number of milliseconds", what, d)
	}
	return d.Milliseconds()
}

// Tumbling returns windows of the given size that do not overlap: [0, size),
// [size, 2*size), ... Each record falls into exactly one. This is Kafka
// Streams' TimeWindows.ofSizeWithNoGrace(size): the grace period is 0, so a
// record is late as soon as stream time reaches its window's end. Give
// out-of-order records time with [TimeWindows.Grace].
func Tumbling(size time.Duration) TimeWindows { return Hopping(size, size) }

// Hopping returns windows of the given size starting every advance: [0,
// size), [advance, advance+size), ... A record falls into every window that
// contains its timestamp (size/advance windows when advance divides size),
// and each of them is updated and forwarded. advance must be positive and at
// most size. The grace period is 0, as with Kafka Streams'
// TimeWindows.ofSizeWithNoGrace(size).advanceBy(advance).
func Hopping(size, advance time.Duration) TimeWindows {
	s := windowSpec{kind: kindTime}
	s.size = millis("window size", size, &s.err)
	s.advance = millis("window advance", advance, &s.err)
	switch {
	case s.err != "":
	case s.size <= 0:
		s.err = fmt.Sprintf("window size %v must be positive", size)
	case s.advance <= 0 || s.advance > s.size:
		s.err = fmt.Sprintf("window advance %v must be positive and at most the window size %v", advance, size)
	}
	return TimeWindows{spec: s}
}

// Grace returns the windows with a grace period of d: a window accepts
// out-of-order records until stream time reaches its end plus d, and closes
// then (Kafka Streams' ofSizeAndGrace). d must not be negative.
func (w TimeWindows) Grace(d time.Duration) TimeWindows {
	w.spec.grace = graceMillis(d, &w.spec.err)
	return w
}

// Sliding returns sliding windows over records at most maxDiff apart, as
// Kafka Streams' SlidingWindows.ofTimeDifferenceWithNoGrace(maxDiff) (KIP-450):
// a window [start, start+maxDiff] includes both ends, and windows exist only
// where records are, one per distinct set of records that fit within maxDiff
// of each other rather than one per hop. For a record at time t, the
// aggregation updates each existing window of its key that contains t, newest
// first, then creates the windows that do not exist yet: the one starting
// just after the key's previous record, if t falls into it; the record's left
// window [t-maxDiff, t], starting from a copy of the previous window's
// aggregate when the previous record falls into it; and, for an out-of-order
// record, its right window [t+1, t+1+maxDiff] holding the later records
// (created without the record, so its value is forwarded unchanged). Each is
// forwarded. Surprising but as in Kafka Streams: records with t < maxDiff
// share the window [0, maxDiff] instead of left windows that would start
// before the epoch. maxDiff must be positive. The grace period is 0 unless
// set with [SlidingWindows.Grace].
func Sliding(maxDiff time.Duration) SlidingWindows {
	s := windowSpec{kind: kindSliding}
	s.diff = millis("sliding window time difference", maxDiff, &s.err)
	if s.err == "" && s.diff <= 0 {
		// Kafka Streams accepts 0, then fails on the first record.
		s.err = fmt.Sprintf("sliding window time difference %v must be positive", maxDiff)
	}
	return SlidingWindows{spec: s}
}

// Grace returns the windows with a grace period of d: a window accepts
// records until stream time passes its end plus d. d must not be negative.
func (w SlidingWindows) Grace(d time.Duration) SlidingWindows {
	w.spec.grace = graceMillis(d, &w.spec.err)
	return w
}

func graceMillis(d time.Duration, err *string) int64 {
	g := millis("grace period", d, err)
	if g < 0 && *err == "" {
		*err = fmt.Sprintf("grace period %v must not be negative", d)
	}
	return g
}

// Windowed is the key of a windowed aggregation's result: the record key and
// its window, in milliseconds since the epoch. End is exclusive for tumbling
// and hopping windows, inclusive for sliding and session windows (a session of
// one record has Start == End).
type Windowed[K any] struct {
	Key        K
	Start, End int64
}

// WindowedSerde returns the serde of windowed keys that kstream uses for the
// result tables of windowed aggregations and their stores: the key encoded by
// ks with every 0x00 byte escaped as 0x00 0xFF and a 0x00 0x01 terminator
// (serde.AppendOrderedBytes), then Start and End as 8 big-endian bytes each
// with the sign bit flipped (serde.AppendOrderedInt64). Encodings sort by key
// bytes, then Start, then End, and decode without knowing the window size.
//
// It is not the layout of Kafka Streams' windowed serdes; to exchange windowed
// keys with Java applications use [TimeWindowedSerde] or
// [SessionWindowedSerde].
func WindowedSerde[K any](ks serde.Serde[K]) serde.Serde[Windowed[K]] {
	return windowedSerde[K]{ks: ks}
}

type windowedSerde[K any] struct{ ks serde.Serde[K] }

func (s windowedSerde[K]) Append(dst []byte, w Windowed[K]) ([]byte, error) {
	n := len(dst)
	out, err := s.ks.Append(dst, w.Key)
	if err != nil {
		return dst, err
	}
	if raw := out[n:]; bytes.IndexByte(raw, 0) < 0 {
		out = append(out, 0x00, 0x01) // nothing to escape: the common case, no copy
	} else {
		out = serde.AppendOrderedBytes(out[:n], bytes.Clone(raw))
	}
	out = serde.AppendOrderedInt64(out, w.Start)
	return serde.AppendOrderedInt64(out, w.End), nil
}

var errWindowedKey = errors.New("kstream: windowed key: want the key, then 16 bytes of window")

func (s windowedSerde[K]) Decode(b []byte) (Windowed[K], error) {
	var w Windowed[K]
	kb, rest, err := serde.DecodeOrderedBytes(b)
	if err != nil {
		return w, fmt.Errorf("kstream: windowed key: %w", err)
	}
	if len(rest) != 16 {
		return w, errWindowedKey
	}
	if w.Key, err = s.ks.Decode(kb); err != nil {
		return w, err
	}
	w.Start, rest, _ = serde.DecodeOrderedInt64(rest)
	w.End, _, _ = serde.DecodeOrderedInt64(rest)
	return w, nil
}

// TimeWindowedSerde returns a serde of windowed keys byte-compatible with
// Kafka Streams' TimeWindowedSerializer and TimeWindowedDeserializer: the key
// encoded by ks, then Start as 8 big-endian bytes. End is not written; Decode
// sets it to Start+size, so size must be the window size (for sliding
// windows, their time difference). Use it to write windowed results that Java
// applications read.
func TimeWindowedSerde[K any](ks serde.Serde[K], size time.Duration) serde.Serde[Windowed[K]] {
	return timeWindowedSerde[K]{ks: ks, size: size.Milliseconds()}
}

type timeWindowedSerde[K any] struct {
	ks   serde.Serde[K]
	size int64
}

func (s timeWindowedSerde[K]) Append(dst []byte, w Windowed[K]) ([]byte, error) {
	out, err := s.ks.Append(dst, w.Key)
	if err != nil {
		return dst, err
	}
	return binary.BigEndian.AppendUint64(out, uint64(w.Start)), nil
}

func (s timeWindowedSerde[K]) Decode(b []byte) (Windowed[K], error) {
	var w Windowed[K]
	if len(b) < 8 {
		return w, fmt.Errorf("kstream: time-windowed key: %d bytes, want at least 8", len(b))
	}
	k, err := s.ks.Decode(b[:len(b)-8])
	if err != nil {
		return w, err
	}
	w.Key = k
	w.Start = int64(binary.BigEndian.Uint64(b[len(b)-8:]))
	w.End = w.Start + s.size
	if w.End < w.Start { // overflow, as Kafka Streams' timeWindowForSize
		w.End = math.MaxInt64
	}
	return w, nil
}

// SessionWindowedSerde returns a serde of windowed keys byte-compatible with
// Kafka Streams' SessionWindowedSerializer and SessionWindowedDeserializer:
// the key encoded by ks, then End and Start as 8 big-endian bytes each.
func SessionWindowedSerde[K any](ks serde.Serde[K]) serde.Serde[Windowed[K]] {
	return sessionWindowedSerde[K]{ks: ks}
}

type sessionWindowedSerde[K any] struct{ ks serde.Serde[K] }

func (s sessionWindowedSerde[K]) Append(dst []byte, w Windowed[K]) ([]byte, error) {
	out, err := s.ks.Append(dst, w.Key)
	if err != nil {
		return dst, err
	}
	out = binary.BigEndian.AppendUint64(out, uint64(w.End))
	return binary.BigEndian.AppendUint64(out, uint64(w.Start)), nil
}

func (s sessionWindowedSerde[K]) Decode(b []byte) (Windowed[K], error) {
	var w Windowed[K]
	if len(b) < 16 {
		return w, fmt.Errorf("kstream: session-windowed key: %d bytes, want at least 16", len(b))
	}
	n := len(b) - 16
	k, err := s.ks.Decode(b[:n])
	if err != nil {
		return w, err
	}
	w.Key = k
	w.End = int64(binary.BigEndian.Uint64(b[n:]))
	w.Start = int64(binary.BigEndian.Uint64(b[n+8:]))
	return w, nil
}

// emitOnClose is the Opt of EmitOnWindowClose.
type emitOnClose struct{}

func (emitOnClose) apply(o *options) { o.emitOnClose = true }

// EmitOnWindowClose makes a windowed aggregation forward only final results:
// each window once, after the record that closes it (see the closing rules
// above [Windows]), stamped with the window's timestamp, carrying that
// record's headers, in order of window start (session end), then key bytes.
// Windows close only as records arrive: a partition that receives no more
// records never closes its last windows. Session merges forward nothing in
// this mode.
//
// This is Kafka Streams' EmitStrategy.onWindowClose(), with two differences.
// Kafka Streams checks for closed windows at most once per second of
// wall-clock time (emit.interval.ms.kstreams.windowed.aggregation), so when
// they come out depends on the clock; kstream checks after every record,
// deterministically. And Kafka Streams (4.4) loses the final result of a time
// or sliding window when one record moves stream time well past the window's
// close (about one retention, by default size + grace for time windows): its
// store has expired the window before the emit looks for it. kstream emits
// every window exactly once, when it closes, whatever the [Retention]. It
// replaces suppress(untilWindowCloses) for the common case. It applies to
// windowed and session aggregations (cogrouped ones included); on any other
// operator it is a Build error naming the operator.
func EmitOnWindowClose() Opt { return emitOnClose{} }

func hasEmitOnClose(opts []Opt) bool { return collect(opts).emitOnClose }

// WindowedGrouped is a grouped stream with tumbling, hopping or sliding
// windows, ready for an aggregation. Make it with [WindowedBy].
type WindowedGrouped[K, V any] struct {
	g    Grouped[K, V]
	spec windowSpec
}

// WindowedBy windows the grouped stream with w, a [TimeWindows] (from
// [Tumbling] or [Hopping]) or a [SlidingWindows] (from [Sliding]). It is a
// function because a method would hit an instantiation cycle. The
// aggregation repartitions the stream if the grouping needs it, exactly as
// the non-windowed ones do.
func WindowedBy[K, V any](g Grouped[K, V], w Windows) WindowedGrouped[K, V] {
	var spec windowSpec
	if w == nil {
		spec.err = "nil window specification"
	} else {
		spec = w.windowSpec()
	}
	return WindowedGrouped[K, V]{g: g, spec: spec}
}

// Count counts the records of each key in each window. Records with a null
// key, tombstones and records too late for all of their windows are dropped
// and counted. The result table is materialized in a store named by [Named]
// (required); [EmitOnWindowClose] forwards final counts only.
func (wg WindowedGrouped[K, V]) Count(opts ...Opt) Table[Windowed[K], int64] {
	return aggregateWindowed(wg, "count", func(K, V) int64 { return 1 },
		func(_ K, _ V, a int64) int64 { return a + 1 }, serde.Int64, opts)
}

// Reduce combines the values of each key in each window: a window's first
// value is its aggregate, and each later one is combined with fn(aggregate,
// value).
func (wg WindowedGrouped[K, V]) Reduce(fn func(acc, v V) V, opts ...Opt) Table[Windowed[K], V] {
	return aggregateWindowed(wg, "reduce", func(_ K, v V) V { return v },
		func(_ K, v V, a V) V { return fn(a, v) }, wg.g.s.vs, opts)
}

// AggregateWindowed folds the values of each key in each window into an
// aggregate of type A, starting from init() for each new window. aSerde
// encodes the aggregate in the store and changelog. A sliding window created
// from an earlier one starts from a copy of that window's aggregate, as in
// Kafka Streams.
func AggregateWindowed[K, V, A any](wg WindowedGrouped[K, V], init func() A, agg func(K, V, A) A, aSerde serde.Serde[A], opts ...Opt) Table[Windowed[K], A] {
	return aggregateWindowed(wg, "aggregate", func(k K, v V) A { return agg(k, v, init()) }, agg, aSerde, opts)
}

// SessionGrouped is a grouped stream with session windows, ready for an
// aggregation. Make it with [SessionWindowedBy].
type SessionGrouped[K, V any] struct {
	g          Grouped[K, V]
	gap, grace int64
	err        string
}

// SessionWindowedBy windows the grouped stream into sessions: records of a key
// at most gap apart fall into one session [first record, last record], both
// ends inclusive. A record that comes within gap of two sessions merges them
// into one: the merged sessions are deleted (a tombstone is forwarded for
// each, stamped with its end) and the new session forwarded. Surprising but as
// in Kafka Streams: a record inside an existing session also forwards a
// tombstone for that session before its update; and, as Kafka Streams'
// session store (with its default retention) stops returning a session once
// it ended gap + grace or more before the stream time it has seen (the
// stream time before the record), a record exactly gap after its key's last
// session starts a new session if another key's record already moved stream
// time to it; kstream does so whatever the [Retention]. The grace period is
// 0 (Kafka Streams' SessionWindows.ofInactivityGapWithNoGrace(gap)) unless
// set with [SessionGrouped.Grace]. gap must be positive.
func SessionWindowedBy[K, V any](g Grouped[K, V], gap time.Duration) SessionGrouped[K, V] {
	sg := SessionGrouped[K, V]{g: g}
	sg.gap = millis("session inactivity gap", gap, &sg.err)
	if sg.err == "" && sg.gap <= 0 {
		sg.err = fmt.Sprintf("session inactivity gap %v must be positive", gap)
	}
	return sg
}

// Grace returns the sessions with a grace period of d: a session closes when
// stream time passes its end plus the gap plus d. d must not be negative.
func (sg SessionGrouped[K, V]) Grace(d time.Duration) SessionGrouped[K, V] {
	sg.grace = graceMillis(d, &sg.err)
	return sg
}

// Count counts the records of each session.
func (sg SessionGrouped[K, V]) Count(opts ...Opt) Table[Windowed[K], int64] {
	return aggregateSession(sg, "count", sessionOps[K, V, int64]{
		start: func() (int64, bool) { return 0, true },
		merge: func(_ K, a int64, _ bool, b int64) int64 { return a + b },
		add:   func(_ K, _ V, a int64, _ bool) int64 { return a + 1 },
	}, serde.Int64, opts)
}

// Reduce combines the values of each session with fn(aggregate, value); when
// sessions merge, their aggregates are combined with fn too, oldest first.
func (sg SessionGrouped[K, V]) Reduce(fn func(acc, v V) V, opts ...Opt) Table[Windowed[K], V] {
	return aggregateSession(sg, "reduce", sessionOps[K, V, V]{
		start: func() (V, bool) { var zero V; return zero, false },
		merge: func(_ K, a V, ok bool, b V) V {
			if !ok {
				return b
			}
			return fn(a, b)
		},
		add: func(_ K, v V, a V, ok bool) V {
			if !ok {
				return v
			}
			return fn(a, v)
		},
	}, sg.g.s.vs, opts)
}

// AggregateSession folds the values of each session into an aggregate of type
// A. For each record, as in Kafka Streams, the aggregate starts from init(),
// the sessions the record merges (the one it extends included) are folded in
// with merge(key, aggregate, session aggregate), oldest first, and then the
// record with agg. aSerde encodes the aggregate.
func AggregateSession[K, V, A any](sg SessionGrouped[K, V], init func() A, agg func(K, V, A) A, merge func(K, A, A) A, aSerde serde.Serde[A], opts ...Opt) Table[Windowed[K], A] {
	return aggregateSession(sg, "aggregate", sessionOps[K, V, A]{
		start: func() (A, bool) { return init(), true },
		merge: func(k K, a A, _ bool, b A) A { return merge(k, a, b) },
		add:   func(k K, v V, a A, _ bool) A { return agg(k, v, a) },
	}, aSerde, opts)
}

// sessionOps are a session aggregation's functions. The accumulator may be
// absent (ok false: a reduction before its first value).
type sessionOps[K, V, A any] struct {
	start func() (A, bool)
	merge func(k K, acc A, ok bool, s A) A
	add   func(k K, v V, acc A, ok bool) A
}

// windowedNode adds the node and store of a windowed aggregation.
func windowedNode[K, V any](g Grouped[K, V], op string, o options, specErr string) (name string, ks serde.Serde[K], n *graph.Node) {
	b := g.s.b
	name = b.requireName(o, op, g.s.node, allowWindowed)
	if specErr != "" {
		b.g.Errorf("kstream: %s %s: %s", op, name, specErr)
	}
	in, ks := groupedInput(g, name)
	n = b.proc(op, options{name: name}, in.node)
	n.Stores = []string{name}
	b.g.AddStore(&graph.StoreSpec{Windowed: true, Name: name, Changelog: graph.TopicRef{Name: name + "-changelog", Internal: true}, Timestamped: true})
	return name, ks, n
}

func aggregateWindowed[K, V, A any](wg WindowedGrouped[K, V], op string, first func(K, V) A, agg func(K, V, A) A, aSerde serde.Serde[A], os []Opt) Table[Windowed[K], A] {
	b := wg.g.s.b
	o := collect(os)
	kind := "windowed-"
	if wg.spec.kind == kindSliding {
		kind = "sliding-windowed-"
	}
	name, ks, n := windowedNode(wg.g, kind+op, o, wg.spec.err)
	as := resolveSerde(b, aSerde, name, "aggregate value")
	minimum, what := wg.spec.size+wg.spec.grace, "the window size plus the grace period"
	if wg.spec.kind == kindSliding {
		minimum, what = 2*wg.spec.diff+wg.spec.grace, "twice the time difference plus the grace period"
	}
	w := windowAgg[K, V, A]{node: n, name: name, ks: ks, as: as, first: first, agg: agg, spec: wg.spec,
		retention:   windowRetention(b, o, kind+op, name, wg.spec.err, minimum, what),
		emitOnClose: hasEmitOnClose(os), cached: o.cached}
	if wg.spec.kind == kindSliding {
		n.Make = w.makeSliding
	} else {
		n.Make = w.makeTime
	}
	return Table[Windowed[K], A]{b: b, node: n, ks: windowedKeySerde(ks), vs: as, store: name}
}

func aggregateSession[K, V, A any](sg SessionGrouped[K, V], op string, ops sessionOps[K, V, A], aSerde serde.Serde[A], os []Opt) Table[Windowed[K], A] {
	b := sg.g.s.b
	o := collect(os)
	name, ks, n := windowedNode(sg.g, "session-windowed-"+op, o, sg.err)
	as := resolveSerde(b, aSerde, name, "aggregate value")
	w := windowAgg[K, V, A]{node: n, name: name, ks: ks, as: as, session: ops,
		spec: windowSpec{size: sg.gap, grace: sg.grace}, emitOnClose: hasEmitOnClose(os), cached: o.cached,
		retention: windowRetention(b, o, "session-windowed-"+op, name, sg.err, sg.gap+sg.grace, "the inactivity gap plus the grace period")}
	n.Make = w.makeSession
	return Table[Windowed[K], A]{b: b, node: n, ks: windowedKeySerde(ks), vs: as, store: name}
}

// windowRetention returns the retention of a windowed aggregation in
// milliseconds: the [Retention] among its options, or minimum. A retention
// below minimum (what describes it), negative or not a whole number of
// milliseconds is a Build error naming the node; with an invalid window
// specification (specErr), already an error, it is not checked.
func windowRetention(b *Builder, o options, op, name, specErr string, minimum int64, what string) int64 {
	if !o.retentionSet || specErr != "" {
		return minimum
	}
	var err string
	r := millis("retention", o.retention, &err)
	switch {
	case err != "":
	case r < 0:
		err = fmt.Sprintf("retention %v must not be negative", o.retention)
	case r < minimum:
		err = fmt.Sprintf("retention %v must be at least %s (%v)", o.retention, what, time.Duration(minimum)*time.Millisecond)
	}
	if err != "" {
		b.g.Errorf("kstream: %s %s: %s", op, name, err)
		return minimum
	}
	return r
}

// windowedKeySerde is WindowedSerde(ks), or nil when ks is missing (a Build
// error already names it).
func windowedKeySerde[K any](ks serde.Serde[K]) serde.Serde[Windowed[K]] {
	if ks == nil {
		return nil
	}
	return WindowedSerde(ks)
}
