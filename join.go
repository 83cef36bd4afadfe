package kstream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/serde"
	"github.com/kstreamgo/kstream/state"
)

// Joins of a stream with another stream (windowed), a table or a global
// table: the rows of the join matrix that start from a stream.

// JoinWindows says which records of two streams join: a record of the left
// stream with timestamp t joins every right record with the same key and a
// timestamp in [t-before, t+after], both ends inclusive; symmetrically, a
// right record with timestamp t joins the left records in [t-after,
// t+before]. Create one with [JoinWindow].
//
// The grace period (default 0, as Kafka Streams'
// JoinWindows.ofTimeDifferenceWithNoGrace) admits out-of-order records: a
// record's window closes once stream time (the largest timestamp the join has
// seen on either side) passes the window's end plus the grace period, and
// left and outer joins then emit the record if it found no partner. Records
// are kept for before+after+grace: a record older than that, behind stream
// time, is late, and dropped.
type JoinWindows struct {
	before, after, grace time.Duration
}

// JoinWindow returns join windows reaching before into the past and after
// into the future of each left record (see [JoinWindows]), with no grace
// period. JoinWindow(d, d) is Kafka Streams'
// JoinWindows.ofTimeDifferenceWithNoGrace(d); JoinWindow(0, d) and
// JoinWindow(d, 0) accept only right records at or after, or at or before,
// the left record. Either bound may be negative, as in Kafka Streams, as long
// as before+after is not. Durations count in whole milliseconds.
func JoinWindow(before, after time.Duration) JoinWindows {
	return JoinWindows{before: before, after: after}
}

// Grace returns the windows with a grace period of d (default 0): how long
// after a window ends, in stream time, records may still arrive out of order
// and join, and before left and outer joins emit a record that found no
// partner. d must not be negative.
func (w JoinWindows) Grace(d time.Duration) JoinWindows {
	w.grace = d
	return w
}

func (w JoinWindows) check() error {
	switch {
	case w.before+w.after < 0:
		return fmt.Errorf("the join window is empty: before (%v) + after (%v) is negative", w.before, w.after)
	case w.grace < 0:
		return fmt.Errorf("negative grace period %v", w.grace)
	}
	return nil
}

// Join joins two streams on their keys within windows w: each pair of a left
// record (k, v) and a right record (k, vo) whose timestamps fit w gives one
// result record (k, joiner(k, v, vo)), stamped with the larger of the two
// timestamps and carrying the headers of the record that arrived second. A
// record of either side joins, as it arrives, every matching record of the
// other side seen so far, in timestamp then arrival order.
//
// Join requires [Named]. The name names the result node, the join's window
// stores "<name>-this-join-store" (left records) and "<name>-other-join-store"
// (right records), their changelogs "<appID>-<store>-changelog", and, for a
// side whose key changed upstream, its repartition topic
// "<appID>-<name>-left-repartition" or "<appID>-<name>-right-repartition".
// Both join nodes use both stores, which puts the two sides in one
// sub-topology: they must be co-partitioned (same partition count, records
// partitioned by the same key bytes). The stores need serdes: the key serde
// of s (else of o) for both sides, and each side's value serde, set with
// [Stream.WithSerdes] unless the type has a built-in one.
//
// Records are kept for matching while their timestamp is within
// before+after+grace of the largest timestamp their side has seen. A record
// older than stream time (the largest timestamp the join has seen on either
// side, in the task) minus before+after+grace is late: it is dropped, neither
// joined nor kept, and counted. Records with a null key and tombstones are
// dropped and counted too (by the node named as the join: kstest's
// Driver.Dropped(name)).
//
// kstream follows Kafka Streams 4.x (KStreamKStreamJoin), except:
//   - Kafka Streams does not drop late records (reported as KAFKA-16123): it
//     joins them with the records the other side still retains, and in left
//     and outer joins emits them at once as unmatched. (Its window store does
//     not keep such a record, measuring its age against its own side's
//     largest timestamp rather than stream time.)
//   - In left and outer joins, Kafka Streams emits an out-of-order record that
//     found no partner at once when its window's end is behind stream time,
//     even though its grace period is not, so that a partner arriving within
//     grace gives a second result (reported as KAFKA-19536). kstream waits for
//     the grace period, as for records in order.
//   - With before, after and grace all zero, Kafka Streams' window stores
//     retain nothing and the join never matches; kstream retains records for
//     at least 1 ms, so such a join matches records with equal timestamps.
//   - Kafka Streams keeps the stream time that closes windows in memory only,
//     and starts it over after a restart; kstream recovers it from the stores,
//     so a restart does not change which records are late.
func Join[K, V, VO, VR any](s Stream[K, V], o Stream[K, VO], w JoinWindows, joiner func(k K, v V, vo VO) VR, opts ...Opt) Stream[K, VR] {
	var f func(K, V, bool, VO, bool) VR
	if joiner != nil {
		f = func(k K, v V, _ bool, vo VO, _ bool) VR { return joiner(k, v, vo) }
	}
	return streamStreamJoin(s, o, w, "join", false, false, f, opts)
}

// LeftJoin is [Join], except that every left record also comes out when it
// found no right record: as (k, joiner(k, v, zero, false)), stamped with the
// left record's timestamp. ok is true when vo is a right record's value, false
// when the left record found none (vo is then VO's zero value).
//
// Such unmatched results come out only once the left record's window has
// closed, never eagerly: when a record of either side, at a new stream time,
// finds that stream time has passed the left record's timestamp + after +
// grace. Meanwhile they wait in the store "<name>-shared-join-store" (with
// its changelog). They come out before the results of the record that found
// them due, in order of timestamp, then key bytes, then arrival, without
// headers (Kafka Streams gives them the headers of that record). A left
// record that arrives out of order, not late but after its window closed,
// comes out at once if it finds no right record.
//
// As in Kafka Streams (KIP-633, KAFKA-10847), some surprises:
//   - The join looks for due records only when a record is not out of order,
//     and skips the look while its lower bound of the oldest waiting timestamp
//     says nothing can be due, a bound that is, after each look, the timestamp
//     of the last record looked at, and that the two sides test with their own
//     window bound (a left record with after, a right one with before). So an
//     unmatched result can come out some time after its window closed, never
//     before. Kafka Streams also throttles the look to once per second of
//     wall-clock time (the internal config
//     emit.interval.ms.kstreams.outer.join.spurious.results.fix, default 1000);
//     kstream looks on every record, so its results do not depend on the wall
//     clock (set that config to 0 to compare with Kafka Streams).
//   - The two sides' windows close independently: a right record at t joins
//     the left records in [t-after, t+before] while t+before+grace is not
//     behind stream time, even a left record whose own window has closed and
//     that already came out unmatched (the right record must be out of order,
//     by less than before).
//
// A left record with a null key cannot match: as in Kafka Streams 4.x
// (KIP-962), it comes out at once as unmatched, with its null key, K's zero
// value passed to joiner. Right records with a null key, and tombstones, are
// dropped and counted.
func LeftJoin[K, V, VO, VR any](s Stream[K, V], o Stream[K, VO], w JoinWindows, joiner func(k K, v V, vo VO, ok bool) VR, opts ...Opt) Stream[K, VR] {
	var f func(K, V, bool, VO, bool) VR
	if joiner != nil {
		f = func(k K, v V, _ bool, vo VO, ok bool) VR { return joiner(k, v, vo, ok) }
	}
	return streamStreamJoin(s, o, w, "left-join", true, false, f, opts)
}

// OuterJoin is [LeftJoin] for both sides: a left record that found no right
// record comes out as joiner(k, v, true, zero, false), and a right record that
// found no left record as joiner(k, zero, false, vo, true), each once its
// window has closed, stamped with its own timestamp. vOK and voOK say which
// values are present; at least one of them is true. Null-key records of
// either side come out at once as unmatched (KIP-962).
func OuterJoin[K, V, VO, VR any](s Stream[K, V], o Stream[K, VO], w JoinWindows, joiner func(k K, v V, vOK bool, vo VO, voOK bool) VR, opts ...Opt) Stream[K, VR] {
	return streamStreamJoin(s, o, w, "outer-join", true, true, joiner, opts)
}

// Sides of a stream–stream join, numbered as Kafka Streams orders them in its
// shared store of unmatched records: at equal timestamps, right records
// before left ones.
const (
	sjRight = 0
	sjLeft  = 1
)

// streamJoin is a stream–stream join: its windows, stores, serdes and joiner,
// and the state it keeps per task.
type streamJoin[K, V, VO, VR any] struct {
	name                 string
	before, after, grace int64
	// retention is how far behind its side's largest timestamp a record is
	// kept; segment is the time span of one segment of a window store.
	retention, segment int64
	// outer says which sides emit their unmatched records.
	outer  [2]bool
	stores [2]string
	shared string // "" for an inner join
	ks     serde.Serde[K]
	vs     serde.Serde[V]
	vos    serde.Serde[VO]
	joiner func(k K, v V, vOK bool, vo VO, voOK bool) VR
	tasks  sjTaskStates[streamJoinState]
}

// streamJoinState is what the two nodes of a stream–stream join share in one
// task. One goroutine uses it at a time, as it does the task.
type streamJoinState struct {
	// streamTime is the largest timestamp the join has seen, on either
	// side; minTime is a lower bound of the timestamps in the shared store,
	// as Kafka Streams keeps it (math.MaxInt64: none known).
	streamTime, minTime int64
	// observed is each side's largest stored timestamp (math.MinInt64:
	// none); expiredBelow the first segment not yet expired.
	observed, expiredBelow [2]int64
	win                    [2]state.Store
	shared                 state.Store
	loaded                 bool

	kbuf, vbuf, sbuf, lbuf, hbuf []byte
	matches                      []sjMatch
	arena                        []byte
	due                          []sjDue
	// collect is st.collectMatches, bound once rather than per fetch.
	collect    func(key, val []byte) bool
	collectErr error
}

// collectMatches is the Range callback of a fetch: it copies the values of
// one window store entry into st.arena and lists them in st.matches.
func (st *streamJoinState) collectMatches(key, val []byte) bool {
	if len(key) < 8 {
		st.collectErr = errSJKey
		return false
	}
	ts, _, _ := serde.DecodeOrderedInt64(key[len(key)-8:])
	for len(val) > 0 {
		l, w := binary.Uvarint(val)
		if w <= 0 || uint64(len(val)-w) < l {
			st.collectErr = errSJList
			return false
		}
		start := len(st.arena)
		st.arena = append(st.arena, val[w:w+int(l)]...)
		st.matches = append(st.matches, sjMatch{ts: ts, start: start, end: len(st.arena)})
		val = val[w+int(l):]
	}
	return true
}

// sjMatch is a record of the other side found by a fetch: its timestamp and
// its value's bytes, arena[start:end].
type sjMatch struct {
	ts         int64
	start, end int
}

// sjDue is an entry of the shared store whose window has closed: key and
// value at arena[kStart:vStart] and arena[vStart:end].
type sjDue struct {
	kStart, vStart, end int
}

// sjTaskStates holds the per-task state that several nodes of one operator
// share, created by the first of them.
type sjTaskStates[T any] struct {
	mu sync.Mutex
	m  map[*graph.TaskContext]*T
}

func (p *sjTaskStates[T]) get(tc *graph.TaskContext, create func() (*T, error)) (*T, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.m[tc]; ok {
		return s, nil
	}
	s, err := create()
	if err != nil {
		return nil, err
	}
	if p.m == nil {
		p.m = map[*graph.TaskContext]*T{}
	}
	p.m[tc] = s
	tc.OnClose(func() error {
		p.mu.Lock()
		delete(p.m, tc)
		p.mu.Unlock()
		return nil
	})
	return s, nil
}

// sjSerde returns the serde a join uses for one of its inputs: the one a
// repartition already resolved (or reported missing), or else s or the
// built-in one.
func sjSerde[T any](b *Builder, s serde.Serde[T], repartitioned bool, name, what string) serde.Serde[T] {
	if repartitioned {
		return s
	}
	return resolveSerde(b, s, name, what)
}

func streamStreamJoin[K, V, VO, VR any](s Stream[K, V], o Stream[K, VO], w JoinWindows, op string, leftOuter, rightOuter bool,
	joiner func(K, V, bool, VO, bool) VR, opts []Opt) Stream[K, VR] {
	b := s.b
	opt := collect(opts)
	name := b.requireName(opt, op, s.node, 0)
	if o.b != b {
		b.g.Errorf("kstream: %s %s: the right stream belongs to another Builder", op, name)
		n := b.proc(op, options{name: name}, s.node)
		n.Make = passMake[K, VR]
		return Stream[K, VR]{b: b, node: n}
	}
	if err := w.check(); err != nil {
		b.g.Errorf("kstream: %s %s: %v", op, name, err)
	}
	if joiner == nil {
		b.g.Errorf("kstream: %s %s: the joiner is nil", op, name)
	}
	left, right := s, o
	if left.keyChanged {
		left = repartition(left, name+"-left")
	}
	if right.keyChanged {
		right = repartition(right, name+"-right")
	}
	var ks serde.Serde[K]
	switch {
	case s.keyChanged:
		ks = left.ks
	case o.keyChanged:
		ks = right.ks
	default:
		in := s.ks
		if in == nil {
			in = o.ks
		}
		ks = resolveSerde(b, in, name, "key")
	}
	vs := sjSerde(b, left.vs, s.keyChanged, name, "left value")
	vos := sjSerde(b, right.vs, o.keyChanged, name, "right value")

	before, after, grace := w.before.Milliseconds(), w.after.Milliseconds(), w.grace.Milliseconds()
	retention := max(before+after+grace, 1)
	j := &streamJoin[K, V, VO, VR]{name: name, before: before, after: after, grace: grace,
		retention: retention, segment: max(retention/2, 60_000),
		outer:  [2]bool{sjLeft: leftOuter, sjRight: rightOuter},
		stores: [2]string{sjLeft: name + "-this-join-store", sjRight: name + "-other-join-store"},
		ks:     ks, vs: vs, vos: vos, joiner: joiner}
	stores := []string{j.stores[sjLeft], j.stores[sjRight]}
	if leftOuter || rightOuter {
		j.shared = name + "-shared-join-store"
		stores = append(stores, j.shared)
	}
	for _, st := range stores {
		b.g.AddStore(&graph.StoreSpec{Name: st, Changelog: graph.TopicRef{Name: st + "-changelog", Internal: true}})
	}
	thisNode := b.proc(op+"-this", options{name: name + "-this-join"}, left.node)
	otherNode := b.proc(op+"-other", options{name: name + "-other-join"}, right.node)
	thisNode.Stores = stores
	otherNode.Stores = append([]string(nil), stores...)
	thisNode.Make = streamJoinSideMake(j, thisNode, sjLeft, vs, vos,
		func(k K, v V, vo VO) VR { return joiner(k, v, true, vo, true) },
		func(k K, v V) VR {
			var zero VO
			return joiner(k, v, true, zero, false)
		})
	otherNode.Make = streamJoinSideMake(j, otherNode, sjRight, vos, vs,
		func(k K, vo VO, v V) VR { return joiner(k, v, true, vo, true) },
		func(k K, vo VO) VR {
			var zero V
			return joiner(k, zero, false, vo, true)
		})
	merge := b.proc(op, options{name: name}, thisNode, otherNode)
	merge.Make = passMake[K, VR]
	return Stream[K, VR]{b: b, node: merge, ks: ks}
}

// state returns the task's join state, creating it for the first node.
func (j *streamJoin[K, V, VO, VR]) state(tc *graph.TaskContext) (*streamJoinState, error) {
	return j.tasks.get(tc, func() (*streamJoinState, error) {
		st := &streamJoinState{streamTime: -1, minTime: math.MaxInt64}
		st.collect = st.collectMatches
		for side, name := range j.stores {
			s, err := tc.Store(name)
			if err != nil {
				return nil, err
			}
			st.win[side] = s
			st.observed[side], st.expiredBelow[side] = math.MinInt64, math.MinInt64
		}
		if j.shared != "" {
			s, err := tc.Store(j.shared)
			if err != nil {
				return nil, err
			}
			st.shared = s
		}
		return st, nil
	})
}

// load recovers, before the task's first record (its stores are restored
// after its executors are made), each side's largest timestamp, the stream
// time and the oldest unmatched record's timestamp.
func (j *streamJoin[K, V, VO, VR]) load(st *streamJoinState) error {
	for side, s := range st.win {
		o, err := sjWindowMaxTime(s)
		if err != nil {
			return fmt.Errorf("reading store %s: %w", j.stores[side], err)
		}
		st.observed[side] = o
		st.streamTime = max(st.streamTime, o)
	}
	if st.shared != nil {
		err := st.shared.Range(nil, nil, func(k, _ []byte) bool {
			if ts, _, derr := serde.DecodeOrderedInt64(k); derr == nil {
				st.minTime = ts
			}
			return false
		})
		if err != nil {
			return fmt.Errorf("reading store %s: %w", j.shared, err)
		}
	}
	st.loaded = true
	return nil
}

// streamJoinSideMake makes the executor of one side of a stream–stream join:
// this side's records have type T and serde ts, the other side's type O and
// serde os; match joins a record with one of the other side, alone makes its
// unmatched result.
func streamJoinSideMake[K, V, VO, VR, T, O any](j *streamJoin[K, V, VO, VR], n *graph.Node, side int, ts serde.Serde[T], os serde.Serde[O],
	match func(k K, this T, other O) VR, alone func(k K, this T) VR) graph.MakeFunc {
	id := int32(n.ID)
	other := 1 - side
	// this side's window: [t-before, t+after] for left records,
	// [t-after, t+before] for right ones.
	back, ahead := j.before, j.after
	if side == sjRight {
		back, ahead = j.after, j.before
	}
	return func(tc *graph.TaskContext, children []any) (any, error) {
		next, err := streamNext[K, VR](children)
		if err != nil {
			return nil, err
		}
		st, err := j.state(tc)
		if err != nil {
			return nil, err
		}
		var mm graph.Meta
		fail := func(what string, err error) { tc.Fail(n.Name, fmt.Errorf("%s: %w", what, err)) }
		return streamFn[K, T](func(k K, v T, m *graph.Meta) {
			tc.Node = id // for the serdes
			if !st.loaded {
				if err := j.load(st); err != nil {
					tc.Fail(n.Name, err)
					return
				}
			}
			t := m.Timestamp
			st.streamTime = max(st.streamTime, t)
			if m.NullKey {
				if j.outer[side] && !m.Tombstone {
					next(k, alone(k, v), m)
					return
				}
				tc.Drop(j.name)
				return
			}
			// Late: older than the join keeps records for.
			if m.Tombstone || t+j.before+j.after+j.grace < st.streamTime {
				tc.Drop(j.name)
				return
			}
			if st.shared != nil && t == st.streamTime {
				if !j.emitDue(tc, st, id, ahead, next) {
					return
				}
				tc.Node = id
			}
			var err error
			if st.kbuf, err = j.ks.Append(st.kbuf[:0], k); err != nil {
				fail("encoding key", err)
				return
			}
			if st.vbuf, err = ts.Append(st.vbuf[:0], v); err != nil {
				fail("encoding value", err)
				return
			}
			if err = j.fetch(st, other, st.kbuf, max(0, t-back), max(0, t+ahead)); err != nil {
				fail("reading the window store", err)
				return
			}
			for _, x := range st.matches {
				tc.Node = id // again: next ran the nodes downstream
				if st.shared != nil {
					st.sbuf = sjSharedKey(st.sbuf[:0], x.ts, other, st.kbuf)
					if _, found, err := st.shared.Get(st.sbuf); err != nil {
						fail("reading the shared store", err)
						return
					} else if found {
						if err := st.shared.Delete(st.sbuf); err != nil {
							fail("writing the shared store", err)
							return
						}
					}
				}
				ov, err := os.Decode(st.arena[x.start:x.end])
				if err != nil {
					fail("decoding a stored value", err)
					return
				}
				r := match(k, v, ov)
				mm = graph.Meta{Timestamp: max(t, x.ts), Headers: m.Headers}
				next(k, r, &mm)
			}
			if len(st.matches) == 0 && j.outer[side] {
				if t+ahead+j.grace < st.streamTime {
					// The record's window has closed already.
					tc.Node = id
					next(k, alone(k, v), m)
				} else {
					// Wait for a partner until the window closes.
					st.minTime = min(st.minTime, t)
					st.sbuf = sjSharedKey(st.sbuf[:0], t, side, st.kbuf)
					if err := sjAppendValue(st.shared, st.sbuf, st.vbuf, &st.lbuf); err != nil {
						fail("writing the shared store", err)
						return
					}
				}
			}
			stored, err := j.put(st, side, st.kbuf, t, st.vbuf)
			if err != nil {
				fail("writing the window store", err)
				return
			}
			if !stored {
				tc.Drop(j.name)
			}
		}), nil
	}
}

// fetch collects into st.matches the values of side with key kb and a
// timestamp in [from, to] that the side's store still retains, in timestamp
// and arrival order.
func (j *streamJoin[K, V, VO, VR]) fetch(st *streamJoinState, side int, kb []byte, from, to int64) error {
	st.matches, st.arena = st.matches[:0], st.arena[:0]
	if o := st.observed[side]; o != math.MinInt64 {
		from = max(from, o-j.retention+1)
	}
	if from > to {
		return nil
	}
	s := st.win[side]
	for seg := sjFloorDiv(from, j.segment); seg <= sjFloorDiv(to, j.segment); seg++ {
		// [prefix|from, prefix|to+1), in one buffer.
		buf := sjWindowKey(st.hbuf[:0], seg, kb, from)
		loEnd := len(buf)
		prefix := buf[:loEnd-8]
		var hi []byte
		if to < math.MaxInt64 {
			buf = serde.AppendOrderedInt64(append(buf, prefix...), to+1)
			hi = buf[loEnd:]
		} else {
			hi = serde.PrefixEnd(prefix)
		}
		st.hbuf = buf
		lo := buf[:loEnd]
		st.collectErr = nil
		err := s.Range(lo, hi, st.collect)
		if err == nil {
			err = st.collectErr
		}
		if err != nil {
			return err
		}
		if seg == math.MaxInt64 {
			break
		}
	}
	return nil
}

// put adds a record to side's window store, unless it is already older than
// the store retains, and expires the segments that fell out of retention. It
// reports whether the record was stored.
func (j *streamJoin[K, V, VO, VR]) put(st *streamJoinState, side int, kb []byte, ts int64, vb []byte) (bool, error) {
	o := max(st.observed[side], ts)
	if ts <= o-j.retention {
		return false, nil
	}
	st.observed[side] = o
	s := st.win[side]
	st.hbuf = sjWindowKey(st.hbuf[:0], sjFloorDiv(ts, j.segment), kb, ts)
	if err := sjAppendValue(s, st.hbuf, vb, &st.lbuf); err != nil {
		return false, err
	}
	live := sjFloorDiv(o-j.retention+1, j.segment)
	if live <= st.expiredBelow[side] {
		return true, nil
	}
	st.expiredBelow[side] = live
	hi := serde.AppendOrderedInt64(st.hbuf[:0], live)
	st.hbuf = hi
	st.arena = st.arena[:0]
	var ends []int
	err := s.Range(nil, hi, func(key, _ []byte) bool {
		st.arena = append(st.arena, key...)
		ends = append(ends, len(st.arena))
		return true
	})
	if err != nil {
		return true, err
	}
	start := 0
	for _, end := range ends {
		if err := s.Delete(st.arena[start:end]); err != nil {
			return true, err
		}
		start = end
	}
	return true, nil
}

// emitDue emits the unmatched records of the shared store whose window has
// closed, and deletes them, as Kafka Streams' emitNonJoinedOuterRecords does
// (ahead is the processing side's after bound, which Kafka Streams' quick
// check uses). It returns false if the task failed.
func (j *streamJoin[K, V, VO, VR]) emitDue(tc *graph.TaskContext, st *streamJoinState, id int32, ahead int64, next streamFn[K, VR]) bool {
	// Kafka Streams' arithmetic, overflow included: with no lower bound
	// known (math.MaxInt64), the sum wraps around and the check goes on.
	if st.minTime+ahead+j.grace >= st.streamTime {
		return true
	}
	st.minTime = math.MaxInt64
	st.due, st.arena = st.due[:0], st.arena[:0]
	var open [2]bool
	var derr error
	err := st.shared.Range(nil, nil, func(key, val []byte) bool {
		ts, rest, err := serde.DecodeOrderedInt64(key)
		if err != nil || len(rest) == 0 {
			derr = errSJKey
			return false
		}
		st.minTime = ts
		if open[sjLeft] && open[sjRight] {
			return false
		}
		side := int(rest[0] & 1)
		window := j.before
		if side == sjLeft {
			window = j.after
		}
		if ts+window+j.grace >= st.streamTime {
			open[side] = true
			return true
		}
		kStart := len(st.arena)
		st.arena = append(st.arena, key...)
		vStart := len(st.arena)
		st.arena = append(st.arena, val...)
		st.due = append(st.due, sjDue{kStart: kStart, vStart: vStart, end: len(st.arena)})
		return true
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		tc.Fail(j.name, fmt.Errorf("reading the shared store: %w", err))
		return false
	}
	var mm graph.Meta
	for _, d := range st.due {
		tc.Node = id // again: next ran the nodes downstream
		key, list := st.arena[d.kStart:d.vStart], st.arena[d.vStart:d.end]
		ts, rest, _ := serde.DecodeOrderedInt64(key)
		side := int(rest[0] & 1)
		k, err := j.ks.Decode(rest[1:])
		if err != nil {
			tc.Fail(j.name, fmt.Errorf("decoding a stored key: %w", err))
			return false
		}
		for len(list) > 0 {
			tc.Node = id
			l, w := binary.Uvarint(list)
			if w <= 0 || uint64(len(list)-w) < l {
				tc.Fail(j.name, errSJList)
				return false
			}
			vb := list[w : w+int(l)]
			list = list[w+int(l):]
			var r VR
			if side == sjLeft {
				v, err := j.vs.Decode(vb)
				if err != nil {
					tc.Fail(j.name, fmt.Errorf("decoding a stored value: %w", err))
					return false
				}
				var zero VO
				r = j.joiner(k, v, true, zero, false)
			} else {
				vo, err := j.vos.Decode(vb)
				if err != nil {
					tc.Fail(j.name, fmt.Errorf("decoding a stored value: %w", err))
					return false
				}
				var zero V
				r = j.joiner(k, zero, false, vo, true)
			}
			mm = graph.Meta{Timestamp: ts}
			next(k, r, &mm)
		}
		if err := st.shared.Delete(key); err != nil {
			tc.Fail(j.name, fmt.Errorf("writing the shared store: %w", err))
			return false
		}
	}
	return true
}

var (
	errSJList = errors.New("kstream: malformed value list in a join store")
	errSJKey  = errors.New("kstream: malformed key in a join store")
)

// Window store keys: the segment (ordered int64), the key's length (uvarint)
// and bytes, the timestamp (ordered int64). Values: the list of the values
// stored for that key and timestamp, in arrival order, each as its length
// (uvarint) and bytes. Segments let expired records be deleted by range, and
// let a task find its side's largest timestamp quickly when it starts.
func sjWindowKey(dst []byte, seg int64, kb []byte, ts int64) []byte {
	dst = serde.AppendOrderedInt64(dst, seg)
	dst = binary.AppendUvarint(dst, uint64(len(kb)))
	dst = append(dst, kb...)
	return serde.AppendOrderedInt64(dst, ts)
}

// Shared store keys, in Kafka Streams' order: the timestamp (ordered int64),
// the side (0 right, 1 left), the key bytes. Values: a list, as in the window
// stores.
func sjSharedKey(dst []byte, ts int64, side int, kb []byte) []byte {
	dst = serde.AppendOrderedInt64(dst, ts)
	dst = append(dst, byte(side))
	return append(dst, kb...)
}

// sjAppendValue appends vb to the list stored under key.
func sjAppendValue(s state.Store, key, vb []byte, buf *[]byte) error {
	old, _, err := s.Get(key)
	if err != nil {
		return err
	}
	b := append((*buf)[:0], old...)
	b = binary.AppendUvarint(b, uint64(len(vb)))
	b = append(b, vb...)
	*buf = b
	return s.Put(key, b)
}

// sjWindowMaxTime returns the largest timestamp in a window store, or
// math.MinInt64 if it is empty: it finds the last segment by binary search,
// then scans that segment only.
func sjWindowMaxTime(s state.Store) (int64, error) {
	seek := func(lo []byte) (key []byte, err error) {
		err = s.Range(lo, nil, func(k, _ []byte) bool {
			key = append([]byte(nil), k...)
			return false
		})
		return key, err
	}
	first, err := seek(nil)
	if err != nil || first == nil {
		return math.MinInt64, err
	}
	lo, _, err := serde.DecodeOrderedInt64(first)
	if err != nil {
		return 0, err
	}
	hi := int64(math.MaxInt64)
	for lo < hi { // the last segment is in [lo, hi]
		mid := lo + int64((uint64(hi)-uint64(lo)+1)/2)
		k, err := seek(serde.AppendOrderedInt64(nil, mid))
		if err != nil {
			return 0, err
		}
		if k != nil {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	start := serde.AppendOrderedInt64(nil, lo)
	end := serde.PrefixEnd(start)
	maxTs := int64(math.MinInt64)
	var derr error
	err = s.Range(start, end, func(k, _ []byte) bool {
		if len(k) < 16 {
			derr = errSJKey
			return false
		}
		ts, _, _ := serde.DecodeOrderedInt64(k[len(k)-8:])
		maxTs = max(maxTs, ts)
		return true
	})
	if err == nil {
		err = derr
	}
	return maxTs, err
}

func sjFloorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// JoinTable joins the stream with the table on the stream's key: each stream
// record (k, v) whose key the table holds, with value vt, gives (k, joiner(k,
// v, vt)), with the stream record's timestamp and headers. Only stream
// records trigger the join; a table update changes what later stream records
// see, and emits nothing. A stream record whose key the table lacks gives
// nothing.
//
// The table must be materialized: a source table, a table made with
// [Stream.ToTable], or an aggregation; joining a derived table (Filter,
// MapTableValues) is a Build error, fixed by materializing it (for example
// t.ToStream().ToTable(kstream.Named(...))). The join reads the table's
// store, which puts it in the table's sub-topology: stream and table must be
// co-partitioned. A stream whose key changed upstream is repartitioned first,
// through "<appID>-<name>-left-repartition", which requires [Named]; the name
// is optional otherwise.
//
// Tombstones and records with a null key are dropped and counted (by the
// node). The join reads the table as it is when the stream record is
// processed, so the result depends on the order in which the runtime
// processes the records of the two topics (in kstest, the order they are
// piped); there is no grace period (Kafka Streams' KIP-923 buffering for
// versioned tables).
func JoinTable[K, V, VT, VR any](s Stream[K, V], t Table[K, VT], joiner func(k K, v V, vt VT) VR, opts ...Opt) Stream[K, VR] {
	var f func(K, V, VT, bool) VR
	if joiner != nil {
		f = func(k K, v V, vt VT, _ bool) VR { return joiner(k, v, vt) }
	}
	return streamTableJoin(s, t, "join-table", false, f, opts)
}

// LeftJoinTable is [JoinTable], except that a stream record whose key the
// table lacks also comes out, as (k, joiner(k, v, zero, false)); ok is true
// when vt is the table's value. As in Kafka Streams 4.x (KIP-962), a stream
// record with a null key comes out unmatched too, keeping its null key, with
// K's zero value passed to joiner.
func LeftJoinTable[K, V, VT, VR any](s Stream[K, V], t Table[K, VT], joiner func(k K, v V, vt VT, ok bool) VR, opts ...Opt) Stream[K, VR] {
	return streamTableJoin(s, t, "left-join-table", true, joiner, opts)
}

func streamTableJoin[K, V, VT, VR any](s Stream[K, V], t Table[K, VT], op string, left bool, joiner func(K, V, VT, bool) VR, opts []Opt) Stream[K, VR] {
	b := s.b
	o := collect(opts)
	in := s
	if s.keyChanged {
		in = repartition(s, b.requireName(options{name: o.name}, op, s.node, 0)+"-left")
	}
	n := b.proc(op, o, in.node)
	out := Stream[K, VR]{b: b, node: n, ks: in.ks}
	n.Make = passMake[K, VR]
	switch {
	case t.b != b:
		b.g.Errorf("kstream: %s %s: the table belongs to another Builder", op, n.Name)
		return out
	case t.store == "":
		b.g.Errorf("kstream: %s %s: table %s is not materialized: join a source table, a table made with ToTable, or an aggregation (materialize this one with ToStream().ToTable(kstream.Named(...)))", op, n.Name, t.node.Name)
		return out
	case joiner == nil:
		b.g.Errorf("kstream: %s %s: the joiner is nil", op, n.Name)
		return out
	}
	ks := resolveSerde(b, t.ks, n.Name, "table key")
	vts := resolveSerde(b, t.vs, n.Name, "table value")
	n.Stores = []string{t.store}
	id := int32(n.ID)
	n.Make = func(tc *graph.TaskContext, children []any) (any, error) {
		next, err := streamNext[K, VR](children)
		if err != nil {
			return nil, err
		}
		st, err := tc.Store(t.store)
		if err != nil {
			return nil, err
		}
		var kbuf, raw []byte
		return streamFn[K, V](func(k K, v V, m *graph.Meta) {
			if m.Tombstone || (m.NullKey && !left) {
				tc.Drop(n.Name)
				return
			}
			tc.Node = id
			var vt VT
			found := false
			if !m.NullKey {
				var err error
				if kbuf, err = ks.Append(kbuf[:0], k); err != nil {
					tc.Fail(n.Name, fmt.Errorf("encoding key: %w", err))
					return
				}
				var ok bool
				raw, ok, err = state.GetAppend(st, raw[:0], kbuf)
				if err != nil {
					tc.Fail(n.Name, fmt.Errorf("reading table store %s: %w", t.store, err))
					return
				}
				if ok {
					if _, vt, err = decodeTimestamped(raw, vts); err != nil {
						tc.Fail(n.Name, fmt.Errorf("decoding table value: %w", err))
						return
					}
					found = true
				}
			}
			if !found && !left {
				return
			}
			next(k, joiner(k, v, vt, found), m)
		}), nil
	}
	return out
}

// JoinGlobal joins the stream with a global table: for each stream record
// (k, v), it looks keyFn(k, v) up in the table and, if the table holds it
// with value gv, emits (k, joiner(k, v, gv)) with the stream record's
// timestamp and headers. Only stream records trigger the join. The global
// table is replicated in full on every instance, so the stream needs no
// co-partitioning nor repartition, whatever its key: the result keeps the
// stream's key, and is repartitioned later only if the stream's key had
// changed.
//
// Tombstones are dropped and counted (by the node). Records with a null key
// are joined like any other, as in Kafka Streams, since keyFn may find the
// table's key in the value: keyFn and joiner receive K's zero value for the
// null key, which the result keeps. A global table is brought up to date before
// processing starts, then kept current on its own: which version of a row a
// record sees depends on timing, as in Kafka Streams. [Named] is optional.
func JoinGlobal[K, V, GK, GV, VR any](s Stream[K, V], g GlobalTable[GK, GV], keyFn func(k K, v V) GK, joiner func(k K, v V, gv GV) VR, opts ...Opt) Stream[K, VR] {
	var f func(K, V, GV, bool) VR
	if joiner != nil {
		f = func(k K, v V, gv GV, _ bool) VR { return joiner(k, v, gv) }
	}
	return streamGlobalJoin(s, g, "join-global", false, keyFn, f, opts)
}

// LeftJoinGlobal is [JoinGlobal], except that a stream record whose mapped key
// the table lacks also comes out, as (k, joiner(k, v, zero, false)); ok is
// true when gv is the table's value.
func LeftJoinGlobal[K, V, GK, GV, VR any](s Stream[K, V], g GlobalTable[GK, GV], keyFn func(k K, v V) GK, joiner func(k K, v V, gv GV, ok bool) VR, opts ...Opt) Stream[K, VR] {
	return streamGlobalJoin(s, g, "left-join-global", true, keyFn, joiner, opts)
}

func streamGlobalJoin[K, V, GK, GV, VR any](s Stream[K, V], g GlobalTable[GK, GV], op string, left bool,
	keyFn func(K, V) GK, joiner func(K, V, GV, bool) VR, opts []Opt) Stream[K, VR] {
	b := s.b
	n := b.proc(op, collect(opts), s.node)
	out := Stream[K, VR]{b: b, node: n, ks: s.ks, keyChanged: s.keyChanged}
	n.Make = passMake[K, VR]
	switch {
	case g.b != b:
		b.g.Errorf("kstream: %s %s: the global table belongs to another Builder", op, n.Name)
		return out
	case g.store == "":
		b.g.Errorf("kstream: %s %s: the global table was not made with SourceGlobalTable", op, n.Name)
		return out
	case keyFn == nil || joiner == nil:
		b.g.Errorf("kstream: %s %s: the key function and the joiner must not be nil", op, n.Name)
		return out
	}
	gks := resolveSerde(b, g.ks, n.Name, "global table key")
	gvs := resolveSerde(b, g.vs, n.Name, "global table value")
	n.Stores = []string{g.store}
	id := int32(n.ID)
	n.Make = func(tc *graph.TaskContext, children []any) (any, error) {
		next, err := streamNext[K, VR](children)
		if err != nil {
			return nil, err
		}
		st, err := tc.Store(g.store)
		if err != nil {
			return nil, err
		}
		var kbuf, raw []byte
		return streamFn[K, V](func(k K, v V, m *graph.Meta) {
			if m.Tombstone {
				tc.Drop(n.Name)
				return
			}
			tc.Node = id
			gk := keyFn(k, v)
			var err error
			if kbuf, err = gks.Append(kbuf[:0], gk); err != nil {
				tc.Fail(n.Name, fmt.Errorf("encoding global table key: %w", err))
				return
			}
			var found bool
			raw, found, err = state.GetAppend(st, raw[:0], kbuf)
			if err != nil {
				tc.Fail(n.Name, fmt.Errorf("reading global store %s: %w", g.store, err))
				return
			}
			var gv GV
			if found {
				if _, gv, err = decodeTimestamped(raw, gvs); err != nil {
					tc.Fail(n.Name, fmt.Errorf("decoding global table value: %w", err))
					return
				}
			} else if !left {
				return
			}
			tc.Node = id
			next(k, joiner(k, v, gv, found), m)
		}), nil
	}
	return out
}
