package kstream

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/serde"
	"github.com/kstreamgo/kstream/state"
)

// Executors are typed per-record functions composed at task creation: each
// node's function calls its children's directly, so a chain of stateless
// operators runs as one pass over a batch, with no copy of the record between
// steps. Build time and task creation use any; the per-record path does not.

// streamFn receives one stream record.
type streamFn[K, V any] = func(k K, v V, m *graph.Meta)

// change is a table update: the new value and the value it replaces.
type change[V any] struct {
	New, Old       V
	HasNew, HasOld bool
}

// tableFn receives one table update.
type tableFn[K, V any] = func(k K, c *change[V], m *graph.Meta)

// childFns returns the children's executors. When the task counts the
// records each node receives, the runtime passes each child as a
// graph.CountedExec, and wrap makes the function that counts the calls (one
// of countStream, countTable, countRaw...).
func childFns[F any](children []any, wrap func(F, *int64) F) ([]F, error) {
	fns := make([]F, len(children))
	for i, c := range children {
		c, n := uncount(c)
		f, ok := c.(F)
		if !ok {
			return nil, fmt.Errorf("kstream: internal error: child executor is %T, want %T", c, f)
		}
		if n != nil {
			f = wrap(f, n)
		}
		fns[i] = f
	}
	return fns, nil
}

// uncount returns a child's typed input function and, when the task counts
// the records each node receives, the child's counter.
func uncount(c any) (any, *int64) {
	if ce, ok := c.(graph.CountedExec); ok {
		return graph.ExecOf(ce.Exec), ce.N
	}
	return graph.ExecOf(c), nil
}

// stepExec is the executor of a node that keeps its input's types and
// forwards each record to at most one child: Filter, FilterNot, Peek,
// Foreach. A source, Map or MapValues of which it is the only child runs the
// step in its own frame (inlineStep), saving a call and a frame per record;
// every other caller calls run. A parent runs it only on records that are
// not tombstones: run is what handles those. Each of those parents writes
// the step's part out (sourceMake, mapThen, mapValuesThen): a function of
// its own would cost the call that running it inline saves.
type stepExec[K, V any] struct {
	tc   *graph.TaskContext
	id   int32
	keep func(K, V) bool // Filter, FilterNot: forward when keep(k, v) != not
	not  bool
	each func(K, V)     // Peek, Foreach: called before forwarding
	next streamFn[K, V] // nil: Foreach, which forwards nothing
	run  streamFn[K, V]
}

// Exec implements graph.Inlinable.
func (s *stepExec[K, V]) Exec() any { return s.run }

// The kinds of step, which a parent running a step inline tells apart once,
// when the task is created, rather than for each record.
const (
	stepFilter  = iota // Filter or FilterNot: keep and next
	stepForeach        // Foreach: each
	stepPeek           // Peek: each and next
)

// shape returns the step's kind: stepFilter, stepForeach or stepPeek.
func (s *stepExec[K, V]) shape() int {
	switch {
	case s.keep != nil:
		return stepFilter
	case s.next == nil:
		return stepForeach
	}
	return stepPeek
}

// inlineStep returns the step that a parent with these children may run
// inline: its only child, when that child is a stepExec; else nil. When the
// task counts the records each node receives, the step's function counts
// its calls (a parent runs it once for each record the step receives that
// is not a tombstone; tombstones go through run, counted as any child).
func inlineStep[K, V any](children []any) *stepExec[K, V] {
	if len(children) != 1 {
		return nil
	}
	c, n := children[0], (*int64)(nil)
	if ce, ok := c.(graph.CountedExec); ok {
		c, n = ce.Exec, ce.N
	}
	st, ok := c.(*stepExec[K, V])
	if !ok || n == nil {
		return st
	}
	counted := *st
	if keep := st.keep; keep != nil {
		counted.keep = func(k K, v V) bool {
			*n++
			return keep(k, v)
		}
	} else {
		each := st.each
		counted.each = func(k K, v V) {
			*n++
			each(k, v)
		}
	}
	return &counted
}

// onlyChild returns the executor of node n's one child.
func onlyChild[F any](n *graph.Node, children []any, wrap func(F, *int64) F) (F, error) {
	fns, err := childFns(children, wrap)
	if err == nil && len(fns) != 1 {
		err = fmt.Errorf("kstream: internal error: node %s has %d children, want 1", n.Name, len(fns))
	}
	if err != nil {
		var zero F
		return zero, err
	}
	return fns[0], nil
}

// The wrappers of childFns: each call of the child adds one to *n. Only
// tasks that count records per node (an opt-in, as Kafka Streams' DEBUG
// recording level) pay for the extra call.

func countStream[K, V any](f streamFn[K, V], n *int64) streamFn[K, V] {
	return func(k K, v V, m *graph.Meta) {
		*n++
		f(k, v, m)
	}
}

func countTable[K, V any](f tableFn[K, V], n *int64) tableFn[K, V] {
	return func(k K, c *change[V], m *graph.Meta) {
		*n++
		f(k, c, m)
	}
}

func countRaw(f func(*graph.RawRecord), n *int64) func(*graph.RawRecord) {
	return func(r *graph.RawRecord) {
		*n++
		f(r)
	}
}

// streamNext combines the children's executors into one.
func streamNext[K, V any](children []any) (streamFn[K, V], error) {
	fns, err := childFns(children, countStream[K, V])
	if err != nil {
		return nil, err
	}
	switch len(fns) {
	case 0:
		return func(K, V, *graph.Meta) {}, nil
	case 1:
		return fns[0], nil
	}
	return func(k K, v V, m *graph.Meta) {
		for _, f := range fns {
			f(k, v, m)
		}
	}, nil
}

// tableNext combines the children's table executors into one.
func tableNext[K, V any](children []any) (tableFn[K, V], error) {
	fns, err := childFns(children, countTable[K, V])
	if err != nil {
		return nil, err
	}
	switch len(fns) {
	case 0:
		return func(K, *change[V], *graph.Meta) {}, nil
	case 1:
		return fns[0], nil
	}
	return func(k K, c *change[V], m *graph.Meta) {
		for _, f := range fns {
			f(k, c, m)
		}
	}, nil
}

// cacheMaxEntries bounds the keys an updateCache holds: one more flushes it.
const cacheMaxEntries = 10_000

// updateCache holds a table node's updates back until the task flushes
// (before each commit), keeping one per key (kstream.Cached): the old value
// of the first update since the last flush, the new value, timestamp and
// headers of the latest.
type updateCache[K, V any] struct {
	next    tableFn[K, V]
	index   map[string]int // encoded key -> entry
	entries []cachedUpdate[K, V]
	seq     uint64
}

type cachedUpdate[K, V any] struct {
	key  K
	c    change[V]
	meta graph.Meta
	seq  uint64 // of the latest update: flushes forward in that order
}

// newUpdateCache returns a cache in front of next, flushed with the task.
func newUpdateCache[K, V any](tc *graph.TaskContext, next tableFn[K, V]) *updateCache[K, V] {
	u := &updateCache[K, V]{next: next, index: map[string]int{}}
	tc.OnFlush(u.flush)
	return u
}

// put records an update of the key k, encoded as kb.
func (u *updateCache[K, V]) put(kb []byte, k K, c *change[V], m *graph.Meta) {
	u.seq++
	if i, ok := u.index[string(kb)]; ok {
		e := &u.entries[i]
		e.c.New, e.c.HasNew = c.New, c.HasNew
		e.meta, e.seq = *m, u.seq
		return
	}
	u.index[string(kb)] = len(u.entries)
	u.entries = append(u.entries, cachedUpdate[K, V]{key: k, c: *c, meta: *m, seq: u.seq})
	if len(u.entries) >= cacheMaxEntries {
		u.flush()
	}
}

// flush forwards the held updates, in the order of their keys' latest
// updates; a key added and removed since the last flush forwards nothing.
func (u *updateCache[K, V]) flush() {
	if len(u.entries) == 0 {
		return
	}
	entries := u.entries
	slices.SortFunc(entries, func(a, b cachedUpdate[K, V]) int { return cmp.Compare(a.seq, b.seq) })
	for i := range entries {
		if e := &entries[i]; e.c.HasNew || e.c.HasOld {
			u.next(e.key, &e.c, &e.meta)
		}
	}
	clear(entries)
	clear(u.index)
	u.entries = entries[:0]
}

// resolveSerde returns s, or the built-in serde of T, or records a Build
// error naming the node and what needs the serde.
func resolveSerde[T any](b *Builder, s serde.Serde[T], node, what string) serde.Serde[T] {
	if s != nil {
		return s
	}
	if d, ok := serde.Default[T](); ok {
		return d
	}
	var zero T
	b.g.Errorf("kstream: node %s: no %s serde for type %T: set one with WithSerdes or pass one to the operator", node, what, zero)
	return nil
}

// tableReader reads a timestamped store (tables, aggregations) by typed key;
// after get, kbuf holds the encoded key, for the write that usually follows.
// Stores that append values to a buffer (state.AppendGetter: Pebble views,
// memory) are read into vbuf, reused, so a cached read allocates nothing.
type tableReader[K, V any] struct {
	st   state.Store
	ks   serde.Serde[K]
	vs   serde.Serde[V]
	kbuf []byte
	vbuf []byte
}

func (r *tableReader[K, V]) get(k K) (v V, ts int64, found bool, err error) {
	if r.kbuf, err = r.ks.Append(r.kbuf[:0], k); err != nil {
		return v, 0, false, fmt.Errorf("encoding key: %w", err)
	}
	if r.vbuf, found, err = state.GetAppend(r.st, r.vbuf[:0], r.kbuf); err != nil || !found {
		return v, 0, false, err
	}
	if ts, v, err = decodeTimestamped(r.vbuf, r.vs); err != nil {
		return v, 0, false, fmt.Errorf("decoding stored value: %w", err)
	}
	return v, ts, true, nil
}

// Timestamped store values: 8 bytes of big-endian timestamp, then the value.

func appendTimestamped[V any](dst []byte, ts int64, v V, s serde.Serde[V]) ([]byte, error) {
	dst = binary.BigEndian.AppendUint64(dst, uint64(ts))
	return s.Append(dst, v)
}

var errShortTimestamped = errors.New("kstream: stored value shorter than its timestamp")

func decodeTimestamped[V any](b []byte, s serde.Serde[V]) (int64, V, error) {
	var zero V
	if len(b) < 8 {
		return 0, zero, errShortTimestamped
	}
	v, err := s.Decode(b[8:])
	return int64(binary.BigEndian.Uint64(b)), v, err
}
