package kstream

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/serde"
	"github.com/kstreamgo/kstream/state"
)

// Window stores. A windowed aggregation keeps its windows in one timestamped
// store (graph.StoreSpec.Timestamped), changelogged like every store, with two
// families of keys:
//
//	data:  ordered(key) | ordered(start) | ordered(end)  ->  8-byte timestamp | aggregate
//	index: 0x00 0x02 | ordered(time) | data key          ->  8-byte timestamp
//
// ordered(key) is serde.AppendOrderedBytes of the key serde's bytes and
// ordered(start), ordered(end) are serde.AppendOrderedInt64: a data key is
// exactly the WindowedSerde encoding of the window's Windowed key, so the
// store reads as a table of Windowed keys, and all windows of one key are one
// prefix, ordered by start. An escaped key never starts with 0x00 0x02 (a 0x00
// is always followed by 0x01 or 0xFF), so index keys never collide with data
// keys. The index orders the windows by time (the window start for time and
// sliding windows, the end for sessions) then data key: closing windows,
// emitting final results and expiring old windows are range scans from its
// start. An index entry is written when a window is created and deleted with
// it; its value is the 8-byte timestamp so that the runtime's changelog
// (value without the timestamp, timestamp as the record's) restores it
// exactly.
//
// Stream time is the largest timestamp the node aggregated. It is not stored:
// after a restart it is recovered from the newest windows, which always hold
// the record that set it (a window holding the newest record cannot have
// closed, let alone expired), so closing resumes exactly where it was.
//
// A window closes (it takes no more records; with emit-on-close its final
// result goes out) and later expires (it is deleted, with its index entry):
// with kstream.Retention longer than the minimum, closed windows stay in the
// store, readable by interactive queries, until then. Both bounds are
// functions of stream time (and, for sliding windows, of the largest window
// start, recovered as the largest index time), so after a restart they are
// recomputed, not stored: what was emitted before the crash is not emitted
// again, and closed windows still in the store take no late record. The
// aggregations never read a window that the minimum retention would have
// deleted, so what the store retains does not change their output.

var (
	indexPrefix = []byte{0x00, 0x02}
	indexLimit  = []byte{0x00, 0x03} // exclusive upper bound of the index
)

// windowAgg is a windowed aggregation's configuration, shared by its tasks.
type windowAgg[K, V, A any] struct {
	node        *graph.Node
	name        string
	ks          serde.Serde[K]
	as          serde.Serde[A]
	first       func(K, V) A    // time and sliding windows: a new window's aggregate
	agg         func(K, V, A) A // time and sliding windows: fold a record in
	session     sessionOps[K, V, A]
	spec        windowSpec // sessions: size is the gap
	retention   int64      // milliseconds: kstream.Retention, or its minimum
	emitOnClose bool
	cached      bool // kstream.Cached (without emit-on-close, which holds back already)
}

// winEntry is a window read from the store: val is its stored value
// (timestamp then aggregate), a copy owned by the task.
type winEntry struct {
	start, end, ts int64
	val            []byte
}

// windowTask is a windowed aggregation's state in one task.
type windowTask[K, A any] struct {
	tc          *graph.TaskContext
	name        string
	id          int32
	ks          serde.Serde[K]
	as          serde.Serde[A]
	st          state.Store
	next        tableFn[Windowed[K], A]
	emitOnClose bool
	cache       *updateCache[Windowed[K], A] // kstream.Cached
	cbuf        []byte                       // the cache's key of a window
	rbuf        []byte                       // the value read by get

	recovered  bool
	streamTime int64 // largest timestamp aggregated, -1 before any
	storeTime  int64 // sliding windows: largest window start written
	// Closing and expiry are tracked apart: with a retention longer than
	// the minimum, closed windows stay in the store until they expire.
	expiredTo int64 // the windows with index time <= expiredTo have expired: deleted
	emitted   int64 // with emit-on-close, the windows with index time <= emitted were emitted
	// retiredTo is, for sliding windows, the bound below which the
	// aggregation no longer reads windows (index time <= retiredTo): the
	// bound that the minimum retention would have deleted to, so that a
	// longer retention cannot change what later records see.
	retiredTo int64
	// nextExpire and nextEmit are lower bounds of the index time of the
	// next window to delete and to emit: while the bound stays below them,
	// there is nothing to scan. Creating a window lowers them.
	nextExpire, nextEmit int64

	kbuf, okey, dkey, ikey, vbuf, lo, hi []byte
	arena                                []byte // copies of scanned keys and values
	offs                                 []int
	wins                                 []winEntry
	c                                    change[A]
	mm                                   graph.Meta

	// The store's Range callbacks, made once per task (a closure made per
	// call would be allocated per record), with their state.
	collectIndex, firstIndex, collectWin func(k, v []byte) bool
	nextTime                             int64 // firstIndex: the index time found
	winKeyLen                            int   // collectWin: the length of a data key of the current key
	winMinEnd                            int64 // collectWin: the windows that end before it are skipped
	badWin                               bool  // collectWin: a malformed window was found
}

func newWindowTask[K, V, A any](w *windowAgg[K, V, A], tc *graph.TaskContext, children []any) (*windowTask[K, A], error) {
	next, err := tableNext[Windowed[K], A](children)
	if err != nil {
		return nil, err
	}
	st, err := tc.Store(w.name)
	if err != nil {
		return nil, err
	}
	t := &windowTask[K, A]{tc: tc, name: w.name, id: int32(w.node.ID), ks: w.ks, as: w.as, st: st, next: next,
		emitOnClose: w.emitOnClose, streamTime: -1, storeTime: -1, expiredTo: math.MinInt64, emitted: math.MinInt64,
		retiredTo: math.MinInt64, nextExpire: math.MinInt64, nextEmit: math.MinInt64}
	if w.cached && !w.emitOnClose {
		t.cache = newUpdateCache(tc, next)
	}
	t.collectIndex = func(k, _ []byte) bool {
		t.arena = append(t.arena, k...)
		t.offs = append(t.offs, len(t.arena))
		return len(t.offs) < scanBatch
	}
	t.firstIndex = func(k, _ []byte) bool {
		if len(k) >= len(indexPrefix)+8 {
			t.nextTime, _, _ = serde.DecodeOrderedInt64(k[len(indexPrefix):])
		}
		return false
	}
	t.collectWin = func(k, v []byte) bool {
		n := t.winKeyLen
		if len(k) != n+16 || len(v) < 8 {
			t.badWin = true
			return false
		}
		start, rest, _ := serde.DecodeOrderedInt64(k[n:])
		end, _, _ := serde.DecodeOrderedInt64(rest)
		if end < t.winMinEnd {
			return true
		}
		off := len(t.arena)
		t.arena = append(t.arena, v...)
		t.wins = append(t.wins, winEntry{start: start, end: end, ts: int64(binary.BigEndian.Uint64(v)), val: t.arena[off:len(t.arena):len(t.arena)]})
		return true
	}
	return t, nil
}

func (t *windowTask[K, A]) fail(what string, err error) {
	t.tc.Fail(t.name, fmt.Errorf("%s: %w", what, err))
}

// setKey encodes the record's key into kbuf and its escaped form into okey.
func (t *windowTask[K, A]) setKey(k K) bool {
	var err error
	if t.kbuf, err = t.ks.Append(t.kbuf[:0], k); err != nil {
		t.fail("encoding key", err)
		return false
	}
	t.okey = serde.AppendOrderedBytes(t.okey[:0], t.kbuf)
	return true
}

// dataKey returns the data key of the current key's window [start, end] in
// dkey (valid until the next call).
func (t *windowTask[K, A]) dataKey(start, end int64) []byte {
	t.dkey = append(t.dkey[:0], t.okey...)
	t.dkey = serde.AppendOrderedInt64(t.dkey, start)
	t.dkey = serde.AppendOrderedInt64(t.dkey, end)
	return t.dkey
}

func appendIndexKey(dst []byte, time int64, dk []byte) []byte {
	dst = append(dst, indexPrefix...)
	dst = serde.AppendOrderedInt64(dst, time)
	return append(dst, dk...)
}

// get reads the window dk: its timestamp and aggregate, if it exists.
func (t *windowTask[K, A]) get(dk []byte) (ts int64, a A, found, ok bool) {
	var err error
	t.rbuf, found, err = state.GetAppend(t.st, t.rbuf[:0], dk)
	b := t.rbuf
	if err != nil {
		t.fail("reading window", err)
		return 0, a, false, false
	}
	if !found {
		return 0, a, false, true
	}
	if ts, a, err = decodeTimestamped(b, t.as); err != nil {
		t.fail("decoding stored aggregate", err)
		return 0, a, false, false
	}
	return ts, a, true, true
}

// put writes the window dk with its index time; isNew also writes its index
// entry.
func (t *windowTask[K, A]) put(dk []byte, time int64, isNew bool, ts int64, a A) bool {
	var err error
	if t.vbuf, err = appendTimestamped(t.vbuf[:0], ts, a, t.as); err != nil {
		t.fail("encoding aggregate", err)
		return false
	}
	return t.putRaw(dk, time, isNew, t.vbuf)
}

// putRaw is put with the stored value (timestamp then aggregate) given.
func (t *windowTask[K, A]) putRaw(dk []byte, time int64, isNew bool, val []byte) bool {
	if isNew {
		t.nextExpire, t.nextEmit = min(t.nextExpire, time), min(t.nextEmit, time)
		t.ikey = appendIndexKey(t.ikey[:0], time, dk)
		if err := t.st.Put(t.ikey, val[:8]); err != nil {
			t.fail("writing window index", err)
			return false
		}
	}
	if err := t.st.Put(dk, val); err != nil {
		t.fail("writing window", err)
		return false
	}
	return true
}

// remove deletes the window dk and its index entry.
func (t *windowTask[K, A]) remove(dk []byte, time int64) bool {
	t.ikey = appendIndexKey(t.ikey[:0], time, dk)
	if err := t.st.Delete(t.ikey); err != nil {
		t.fail("deleting window index", err)
		return false
	}
	if err := t.st.Delete(dk); err != nil {
		t.fail("deleting window", err)
		return false
	}
	return true
}

func (t *windowTask[K, A]) forward(k K, start, end, ts int64, headers []graph.Header) {
	t.mm = graph.Meta{Timestamp: ts, Headers: headers}
	if t.cache != nil {
		var err error
		if t.cbuf, err = t.ks.Append(t.cbuf[:0], k); err != nil {
			t.fail("encoding key", err)
			return
		}
		t.cbuf = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(t.cbuf, uint64(start)), uint64(end))
		t.cache.put(t.cbuf, Windowed[K]{Key: k, Start: start, End: end}, &t.c, &t.mm)
		return
	}
	t.next(Windowed[K]{Key: k, Start: start, End: end}, &t.c, &t.mm)
}

// scanBatch is how many index entries scanIndex copies per store scan.
const scanBatch = 128

// scanIndex calls fn, in index order, for each index entry whose time is in
// [from, to]; fn may write to the store. It stops and returns false when fn
// does.
func (t *windowTask[K, A]) scanIndex(from, to int64, fn func(time int64, dk []byte) bool) bool {
	if from > to {
		return true
	}
	t.lo = appendIndexKey(t.lo[:0], from, nil)
	if to == math.MaxInt64 {
		t.hi = append(t.hi[:0], indexLimit...)
	} else {
		t.hi = appendIndexKey(t.hi[:0], to+1, nil)
	}
	for {
		t.arena, t.offs = t.arena[:0], t.offs[:0]
		err := t.st.Range(t.lo, t.hi, t.collectIndex)
		if err != nil {
			t.fail("scanning window index", err)
			return false
		}
		start := 0
		for _, end := range t.offs {
			k := t.arena[start:end:end]
			start = end
			if len(k) < len(indexPrefix)+8 {
				continue
			}
			time, dk, _ := serde.DecodeOrderedInt64(k[len(indexPrefix):])
			if !fn(time, dk) {
				return false
			}
		}
		if len(t.offs) < scanBatch {
			return true
		}
		// Resume just after the last key seen (fn may have deleted it).
		last := t.arena[t.offs[len(t.offs)-2]:t.offs[len(t.offs)-1]]
		t.lo = append(append(t.lo[:0], last...), 0x00)
	}
}

// indexFrom reports whether an index entry exists whose time has an
// encoding (serde.AppendOrderedInt64) >= u.
func (t *windowTask[K, A]) indexFrom(u uint64) (bool, error) {
	t.lo = append(append(t.lo[:0], indexPrefix...), 0, 0, 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint64(t.lo[len(indexPrefix):], u)
	found := false
	err := t.st.Range(t.lo, indexLimit, func(_, _ []byte) bool {
		found = true
		return false
	})
	return found, err
}

// recover sets stream time (and the sliding windows' store time) from the
// store, before the first record of the task: the largest index time is
// found by binary search on its encoding, then stream time is the largest
// timestamp of the windows whose index time is within span of it.
func (t *windowTask[K, A]) recover(span int64) bool {
	t.recovered = true
	found, err := t.indexFrom(0)
	if err != nil {
		t.fail("scanning window index", err)
		return false
	}
	if !found {
		return true // a new store
	}
	lo, hi := uint64(0), uint64(math.MaxUint64)
	for lo < hi {
		mid := lo + (hi-lo)/2 + 1
		if found, err = t.indexFrom(mid); err != nil {
			t.fail("scanning window index", err)
			return false
		}
		if found {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	maxTime := int64(lo ^ 1<<63)
	t.storeTime = maxTime
	from := maxTime - span
	if from > maxTime { // overflow
		from = math.MinInt64
	}
	return t.scanIndex(from, math.MaxInt64, func(_ int64, dk []byte) bool {
		b, ok, err := t.st.Get(dk)
		if err != nil {
			t.fail("reading window", err)
			return false
		}
		if ok && len(b) >= 8 {
			t.streamTime = max(t.streamTime, int64(binary.BigEndian.Uint64(b)))
		}
		return true
	})
}

// nextIndex returns the smallest index time after after (MaxInt64 if none).
func (t *windowTask[K, A]) nextIndex(after int64) (int64, bool) {
	if after == math.MaxInt64 {
		return math.MaxInt64, true
	}
	t.lo = appendIndexKey(t.lo[:0], after+1, nil)
	t.nextTime = math.MaxInt64
	if err := t.st.Range(t.lo, indexLimit, t.firstIndex); err != nil {
		t.fail("scanning window index", err)
		return 0, false
	}
	return t.nextTime, true
}

// emitFinal forwards the window dk as a final result, stamped with its
// timestamp and carrying headers.
func (t *windowTask[K, A]) emitFinal(dk []byte, headers []graph.Header) bool {
	t.tc.Node = t.id // for the serdes, again for each window: forward ran the nodes downstream
	k, start, end, err := decodeDataKey(dk, t.ks)
	if err != nil {
		t.fail("decoding stored window key", err)
		return false
	}
	ts, a, found, ok := t.get(dk)
	if ok && found {
		t.c = change[A]{New: a, HasNew: true}
		t.forward(k, start, end, ts, headers)
	}
	return ok
}

// settle runs after each record the aggregation took: with emit-on-close it
// emits the windows whose index time is at most closed as final results,
// and it deletes those whose index time is at most expired (expired <=
// closed: a window never expires before it closes). When expired == closed
// (time windows and sessions with the minimum retention), one scan does
// both.
func (t *windowTask[K, A]) settle(closed, expired int64, headers []graph.Header) bool {
	return t.expireTo(expired, headers) && (!t.emitOnClose || t.emitTo(closed, headers))
}

// expireTo deletes the windows whose index time is in (expiredTo, bound],
// in index order; with emit-on-close, it first emits each that was not
// emitted yet as a final result.
func (t *windowTask[K, A]) expireTo(bound int64, headers []graph.Header) bool {
	if bound <= t.expiredTo {
		return true
	}
	emit := t.emitOnClose
	if bound < t.nextExpire {
		t.expiredTo = bound
		if emit {
			t.emitted = max(t.emitted, bound)
		}
		return true
	}
	// Windows are created after the bound that closes them, so none is
	// below expiredTo.
	ok := t.scanIndex(t.expiredTo+1, bound, func(time int64, dk []byte) bool {
		return (!emit || time <= t.emitted || t.emitFinal(dk, headers)) && t.remove(dk, time)
	})
	if !ok {
		return false
	}
	t.expiredTo = bound
	if emit {
		t.emitted = max(t.emitted, bound)
	}
	t.nextExpire, ok = t.nextIndex(bound)
	return ok
}

// emitTo emits the windows whose index time is in (emitted, bound] as final
// results, without deleting them.
func (t *windowTask[K, A]) emitTo(bound int64, headers []graph.Header) bool {
	if bound <= t.emitted {
		return true
	}
	if bound < t.nextEmit {
		t.emitted = bound
		return true
	}
	ok := t.scanIndex(t.emitted+1, bound, func(_ int64, dk []byte) bool { return t.emitFinal(dk, headers) })
	if !ok {
		return false
	}
	t.emitted = bound
	t.nextEmit, ok = t.nextIndex(bound)
	return ok
}

func decodeDataKey[K any](dk []byte, ks serde.Serde[K]) (k K, start, end int64, err error) {
	kb, rest, err := serde.DecodeOrderedBytes(dk)
	if err != nil {
		return k, 0, 0, err
	}
	if len(rest) != 16 {
		return k, 0, 0, errWindowedKey
	}
	if k, err = ks.Decode(kb); err != nil {
		return k, 0, 0, err
	}
	start, rest, _ = serde.DecodeOrderedInt64(rest)
	end, _, _ = serde.DecodeOrderedInt64(rest)
	return k, start, end, nil
}

// scanKey reads the current key's windows whose start is in [from, to] and
// whose end is at least minEnd into wins, in ascending start order, with
// copies of their values.
func (t *windowTask[K, A]) scanKey(from, to, minEnd int64) bool {
	t.wins, t.arena = t.wins[:0], t.arena[:0]
	t.lo = serde.AppendOrderedInt64(append(t.lo[:0], t.okey...), from)
	if to == math.MaxInt64 {
		t.hi = serde.PrefixEnd(t.okey)
	} else {
		t.hi = serde.AppendOrderedInt64(append(t.hi[:0], t.okey...), to+1)
	}
	t.winKeyLen, t.winMinEnd, t.badWin = len(t.okey), minEnd, false
	if err := t.st.Range(t.lo, t.hi, t.collectWin); err != nil {
		t.fail("reading windows", err)
		return false
	}
	if t.badWin {
		t.fail("reading windows", errWindowedKey)
		return false
	}
	// The arena may have moved while growing: point the values at its
	// final copy.
	off := 0
	for i := range t.wins {
		l := len(t.wins[i].val)
		t.wins[i].val = t.arena[off : off+l : off+l]
		off += l
	}
	return true
}

// makeTime creates the executor of a tumbling or hopping window aggregation
// for one task. Kafka Streams' KStreamWindowAggregate: for each window
// containing the record, in ascending start order, a window whose end is
// after stream time minus grace is updated (or created from the record) and
// forwarded with the larger of the record's and the window's timestamps; the
// others are late.
func (w *windowAgg[K, V, A]) makeTime(tc *graph.TaskContext, children []any) (any, error) {
	t, err := newWindowTask(w, tc, children)
	if err != nil {
		return nil, err
	}
	size, adv, grace, retention := w.spec.size, w.spec.advance, w.spec.grace, w.retention
	if adv <= 0 { // an invalid specification fails Build; never divide by 0
		adv = 1
	}
	first, agg, name := w.first, w.agg, w.name
	return streamFn[K, V](func(k K, v V, m *graph.Meta) {
		ts := m.Timestamp
		if m.NullKey || m.Tombstone || ts < 0 {
			tc.Drop(name)
			return
		}
		tc.Node = t.id // for the serdes
		if !t.recovered {
			if !t.recover(0) {
				return
			}
			if t.streamTime >= 0 {
				t.emitted = t.streamTime - grace - size // emitted before the restart
			}
		}
		t.streamTime = max(t.streamTime, ts)
		closeTime := t.streamTime - grace
		if !t.setKey(k) {
			return
		}
		contributed := false
		for start := max(0, ts-size+adv) / adv * adv; start <= ts; start += adv {
			end := start + size
			if end <= closeTime {
				continue // late for this window
			}
			contributed = true
			tc.Node = t.id // again: forwarding ran the nodes downstream
			dk := t.dataKey(start, end)
			oldTs, old, found, ok := t.get(dk)
			if !ok {
				return
			}
			var a A
			nts := ts
			if found {
				a, nts = agg(k, v, old), max(ts, oldTs)
			} else {
				a = first(k, v)
			}
			if !t.put(dk, start, !found, nts, a) {
				return
			}
			if !t.emitOnClose {
				t.c = change[A]{New: a, HasNew: true, Old: old, HasOld: found}
				t.forward(k, start, end, nts, m.Headers)
			}
		}
		if !contributed {
			tc.Drop(name)
		}
		// A window [start, start+size) is closed once start+size+grace <=
		// stream time, and expires once start+retention <= stream time
		// (with the minimum retention, size+grace, when it closes).
		t.settle(closeTime-size, t.streamTime-retention, m.Headers)
	}), nil
}

// makeSession creates the executor of a session window aggregation for one
// task: Kafka Streams' KStreamSessionWindowAggregate.
func (w *windowAgg[K, V, A]) makeSession(tc *graph.TaskContext, children []any) (any, error) {
	t, err := newWindowTask(w, tc, children)
	if err != nil {
		return nil, err
	}
	gap, grace, retention := w.spec.size, w.spec.grace, w.retention
	span := gap + grace // a session closes when stream time passes its end plus span
	ops, name := w.session, w.name
	var aggs []A
	return streamFn[K, V](func(k K, v V, m *graph.Meta) {
		ts := m.Timestamp
		if m.NullKey || m.Tombstone || ts < 0 {
			tc.Drop(name)
			return
		}
		tc.Node = t.id // for the serdes
		if !t.recovered {
			if !t.recover(0) {
				return
			}
			if t.streamTime >= 0 {
				t.emitted = t.streamTime - span - 1 // emitted before the restart
			}
		}
		prev := t.streamTime
		t.streamTime = max(t.streamTime, ts)
		closeTime := t.streamTime - span
		if !t.setKey(k) {
			return
		}
		// The sessions the record touches: end >= ts-gap and start <=
		// ts+gap. Like Kafka Streams' session store with the minimum
		// retention, whose observed time is the previous stream time, hide
		// the sessions that expired with it (end <= prev - gap - grace):
		// those that closed, still in the store with a longer retention,
		// and those that end exactly there.
		if !t.scanKey(math.MinInt64, ts+gap, max(ts-gap, prev-span+1)) {
			return
		}
		found := t.wins
		aggs = aggs[:0]
		for _, s := range found {
			a, err := t.as.Decode(s.val[8:])
			if err != nil {
				t.fail("decoding stored aggregate", err)
				return
			}
			aggs = append(aggs, a)
		}
		acc, has := ops.start()
		mStart, mEnd := ts, ts
		for i, s := range found {
			tc.Node = t.id
			acc, has = ops.merge(k, acc, has, aggs[i]), true
			mStart, mEnd = min(mStart, s.start), max(mEnd, s.end)
		}
		if mEnd < closeTime {
			tc.Drop(name) // late: the merged session has closed
			return
		}
		isNew := true
		if mStart != ts || mEnd != ts {
			for i, s := range found {
				if s.start == mStart && s.end == mEnd {
					isNew = false // rewritten below: no need to delete it
				} else if !t.remove(t.dataKey(s.start, s.end), s.end) {
					return
				}
				if !t.emitOnClose {
					t.c = change[A]{Old: aggs[i], HasOld: true}
					t.forward(k, s.start, s.end, s.end, m.Headers)
				}
			}
		} else if len(found) > 0 {
			isNew = false // the record repeats a one-record session
		}
		tc.Node = t.id
		acc = ops.add(k, v, acc, has)
		if !t.put(t.dataKey(mStart, mEnd), mEnd, isNew, mEnd, acc) {
			return
		}
		if !t.emitOnClose {
			t.c = change[A]{New: acc, HasNew: true}
			t.forward(k, mStart, mEnd, mEnd, m.Headers)
		}
		// A session closes once its end < stream time - gap - grace, and
		// expires once its end < stream time - retention (with the minimum
		// retention, gap+grace, when it closes).
		t.settle(closeTime-1, t.streamTime-retention-1, m.Headers)
	}), nil
}

// makeSliding creates the executor of a sliding window aggregation for one
// task: Kafka Streams' KStreamSlidingWindowAggregate, as it runs on stores
// that iterate backwards (every built-in store since Kafka 2.7), including its
// handling of records earlier than the time difference.
func (w *windowAgg[K, V, A]) makeSliding(tc *graph.TaskContext, children []any) (any, error) {
	t, err := newWindowTask(w, tc, children)
	if err != nil {
		return nil, err
	}
	d, grace, retention := w.spec.diff, w.spec.grace, w.retention
	minRetention := 2*d + grace // Kafka Streams' default: the oldest window a record can need
	first, agg, name := w.first, w.agg, w.name
	var starts []int64
	return streamFn[K, V](func(k K, v V, m *graph.Meta) {
		ts := m.Timestamp
		if m.NullKey || m.Tombstone || ts < 0 {
			tc.Drop(name)
			return
		}
		tc.Node = t.id // for the serdes
		if !t.recovered {
			if !t.recover(d) {
				return
			}
			if t.streamTime >= 0 {
				closed := t.streamTime - grace - d - 1
				t.emitted = closed // emitted before the restart
				t.retiredTo = min(t.storeTime-minRetention, closed)
			}
		}
		t.streamTime = max(t.streamTime, ts)
		closeTime := t.streamTime - grace
		if ts+1+d <= closeTime {
			tc.Drop(name) // even the window starting after it has closed
			return
		}
		if !t.setKey(k) {
			return
		}
		contributed, failed := false, false
		// update folds the record into the window [start, start+d]: base is
		// the window's aggregate so far (nil: a new window from the
		// record), baseTs its timestamp.
		update := func(start int64, base []byte, baseTs int64, existed bool) {
			if failed {
				return
			}
			end := start + d
			if end < closeTime {
				return // late for this window
			}
			contributed = true
			tc.Node = t.id // again: forwarding ran the nodes downstream
			var a, old A
			nts := ts
			if base != nil {
				var err error
				if old, err = t.as.Decode(base); err != nil {
					t.fail("decoding stored aggregate", err)
					failed = true
					return
				}
				a, nts = agg(k, v, old), max(ts, baseTs)
			} else {
				a = first(k, v)
			}
			if !t.put(t.dataKey(start, end), start, !existed, nts, a) {
				failed = true
				return
			}
			t.storeTime = max(t.storeTime, start)
			if !t.emitOnClose {
				if !existed {
					var zero A
					old = zero // the base of a new window is not an old value
				}
				t.c = change[A]{New: a, HasNew: true, Old: old, HasOld: existed}
				t.forward(k, start, end, nts, m.Headers)
			}
		}
		// createRight creates the record's right window [ts+1, ts+1+d]
		// from the aggregate of the later records, src.
		createRight := func(src *winEntry) {
			if failed {
				return
			}
			tc.Node = t.id
			start := ts + 1
			if !t.putRaw(t.dataKey(start, start+d), start, true, src.val) {
				failed = true
				return
			}
			t.storeTime = max(t.storeTime, start)
			if !t.emitOnClose {
				a, err := t.as.Decode(src.val[8:])
				if err != nil {
					t.fail("decoding stored aggregate", err)
					failed = true
					return
				}
				t.c = change[A]{New: a, HasNew: true}
				t.forward(k, start, start+d, src.ts, m.Headers)
			}
		}
		starts = starts[:0]
		hasStart := func(s int64) bool {
			for _, x := range starts {
				if x == s {
					return true
				}
			}
			return false
		}
		var right *winEntry
		rightExists := false
		var prevTs int64
		hasPrev := false
		if ts < d {
			// Records before the time difference share the window [0, d].
			if !t.scanKey(max(0, t.retiredTo+1), ts+1, math.MinInt64) {
				return
			}
			var combined *winEntry
			for i := range t.wins {
				w := &t.wins[i]
				starts = append(starts, w.start)
				switch {
				case w.start == 0:
					combined = w
					if w.ts < ts {
						prevTs, hasPrev = w.ts, true
					}
				case w.start <= ts:
					right = w
					update(w.start, w.val[8:], w.ts, true)
				case w.start == ts+1:
					rightExists = true
				}
			}
			if right == nil && combined != nil && combined.ts > ts {
				right = combined
			}
			if !rightExists && right != nil && right.ts > ts {
				createRight(right)
			}
			if hasPrev && !hasStart(prevTs+1) {
				update(prevTs+1, nil, 0, false)
			}
			if combined == nil {
				update(0, nil, 0, false)
			} else {
				update(0, combined.val[8:], combined.ts, true)
			}
		} else {
			if !t.scanKey(max(0, ts-2*d, t.retiredTo+1), ts+1, math.MinInt64) {
				return
			}
			var left *winEntry
			leftExists, done := false, false
		scan:
			for i := len(t.wins) - 1; i >= 0; i-- {
				w := &t.wins[i]
				starts = append(starts, w.start)
				end := w.start + d
				switch {
				case w.start == ts+1:
					rightExists = true
				case end > ts:
					if right == nil {
						right = w
					}
					update(w.start, w.val[8:], w.ts, true)
				case end == ts:
					leftExists = true
					update(w.start, w.val[8:], w.ts, true)
					if w.ts >= ts {
						done = true // a record at ts was here: its windows exist
						break scan
					}
					prevTs, hasPrev = w.ts, true
				default:
					left = w
					prevTs, hasPrev = w.ts, true
					break scan
				}
			}
			if !done {
				// The right window of the previous record, if the record
				// falls into it.
				if hasPrev && !hasStart(prevTs+1) && prevTs+1+d >= ts {
					update(prevTs+1, nil, 0, false)
				}
				// The record's left window, from the previous window's
				// aggregate if the previous record falls into it.
				if !leftExists {
					if hasPrev && ts-d <= prevTs {
						update(ts-d, left.val[8:], ts, false)
					} else {
						update(ts-d, nil, 0, false)
					}
				}
				if !rightExists && right != nil && right.ts > ts {
					createRight(right)
				}
			}
		}
		if failed {
			return
		}
		if !contributed {
			tc.Drop(name)
		}
		// A window [start, start+d] closes once start+d < stream time -
		// grace; it expires when its start is at most the store time minus
		// the retention, and never before it closed. The aggregation stops
		// reading it when the minimum retention would have expired it.
		closed := closeTime - d - 1
		t.retiredTo = max(t.retiredTo, min(t.storeTime-minRetention, closed))
		t.settle(closed, min(t.storeTime-retention, closed), m.Headers)
	}), nil
}
