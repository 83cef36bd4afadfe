package kstream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/serde"
)

// Table is a typed changelog view: for each key, its latest value. Every
// update is forwarded downstream (no caching), with the value it replaced.
type Table[K, V any] struct {
	b    *Builder
	node *graph.Node
	ks   serde.Serde[K]
	vs   serde.Serde[V]
	// store names the table's materialized store ("" when not materialized).
	store string
}

// StoreName returns the name of the store that materializes the table, or ""
// for a table derived without one (Filter, MapTableValues).
func (t Table[K, V]) StoreName() string { return t.store }

// SourceTable reads topic as a table: each record upserts its key, a
// tombstone deletes it. The table is materialized in a store named by
// [Named] (default: the topic), and the topic itself serves as the store's
// changelog, as in Kafka Streams, so no extra topic is written. A restore
// from the topic decodes each record, so that one that failed when it was
// processed (skipped or dead-lettered by the policy) stays out of the table
// (Kafka Streams would put it back, and every read of its key would fail).
func SourceTable[K, V any](b *Builder, topic string, ks serde.Serde[K], vs serde.Serde[V], opts ...Opt) Table[K, V] {
	o := collect(opts)
	name := o.name
	if name == "" {
		name = topic
	}
	if o.fromLatest {
		b.g.Errorf("kstream: source table %s (topic %s): FromLatest applies to Source only: a table reads its whole topic", name, topic)
		o.fromLatest = false
	}
	src := Source(b, topic, ks, vs, optFunc(func(x *options) { *x = o; x.name = "" })) // Source checks the options
	n := b.proc("source-table", options{name: name}, src.node)
	n.Stores = []string{name}
	spec := &graph.StoreSpec{KeyValue: true, Name: name, Changelog: graph.TopicRef{Name: topic}, Timestamped: true, FromSource: true}
	if ks != nil && vs != nil {
		extract, _ := o.timestamp.(func(K, V, int64) int64)
		spec.RestoreCheck = restoreCheck(ks, vs, extract)
	}
	b.g.AddStore(spec)
	n.Make = tableSourceMake(n, name, ks, vs)
	return Table[K, V]{b: b, node: n, ks: ks, vs: vs, store: name}
}

// restoreCheck returns the check of the records that a source table
// restores from its topic (graph.StoreSpec.RestoreCheck): a record goes
// back into the store as processing put it there, stamped by extract when
// it is not nil, and a record that processing failed (it does not decode,
// or extract gives a negative time, or one of them panics) stays out, as the
// policy that skipped or dead-lettered it left it. (Kafka Streams restores
// such a record, which then fails every read of its key: KAFKA-8037.) A
// panic must not escape: it would end the restore, and every later one.
func restoreCheck[K, V any](ks serde.Serde[K], vs serde.Serde[V], extract func(K, V, int64) int64) func(key, value []byte, ts int64) (int64, bool) {
	return func(key, value []byte, ts int64) (_ int64, keep bool) {
		defer func() {
			if recover() != nil {
				keep = false
			}
		}()
		k, err := ks.Decode(key)
		if err != nil {
			return ts, false
		}
		v, err := vs.Decode(value)
		if err != nil {
			return ts, false
		}
		if extract != nil {
			ts = extract(k, v, ts)
		}
		return ts, ts >= 0
	}
}

// ToTable turns the stream into a table (each record upserts its key, a
// tombstone deletes it), materialized in a store named by [Named], which is
// required. A stream whose keys changed is repartitioned first.
func (s Stream[K, V]) ToTable(opts ...Opt) Table[K, V] {
	o := collect(opts)
	name := s.b.requireName(o, "to-table", s.node, 0)
	in := s
	var ks serde.Serde[K]
	var vs serde.Serde[V]
	if in.keyChanged {
		// The repartition resolves the serdes, or reports them missing.
		in = repartition(in, name)
		ks, vs = in.ks, in.vs
	} else {
		ks = resolveSerde(s.b, in.ks, name, "key")
		vs = resolveSerde(s.b, in.vs, name, "value")
	}
	n := s.b.proc("to-table", options{name: name}, in.node)
	n.Stores = []string{name}
	s.b.g.AddStore(&graph.StoreSpec{KeyValue: true, Name: name, Changelog: graph.TopicRef{Name: name + "-changelog", Internal: true}, Timestamped: true})
	n.Make = tableSourceMake(n, name, ks, vs)
	return Table[K, V]{b: s.b, node: n, ks: ks, vs: vs, store: name}
}

// tableSourceMake materializes a stream into a store and forwards changes.
func tableSourceMake[K, V any](n *graph.Node, store string, ks serde.Serde[K], vs serde.Serde[V]) graph.MakeFunc {
	return func(tc *graph.TaskContext, children []any) (any, error) {
		next, err := tableNext[K, V](children)
		if err != nil {
			return nil, err
		}
		st, err := tc.Store(store)
		if err != nil {
			return nil, err
		}
		r := tableReader[K, V]{st: st, ks: ks, vs: vs}
		// With no node downstream (a global table, a table only joined
		// with), no one takes the old value: it is not read.
		leaf := len(children) == 0
		var vbuf []byte
		var c change[V]
		id := int32(n.ID)
		return streamFn[K, V](func(k K, v V, m *graph.Meta) {
			if m.NullKey {
				tc.Drop(n.Name)
				return
			}
			tc.Node = id // for the serdes
			var old V
			var found bool
			var err error
			if leaf {
				if r.kbuf, err = ks.Append(r.kbuf[:0], k); err != nil {
					err = fmt.Errorf("encoding key: %w", err)
				}
			} else {
				old, _, found, err = r.get(k)
			}
			if err != nil {
				tc.Fail(n.Name, err)
				return
			}
			c = change[V]{New: v, HasNew: !m.Tombstone, Old: old, HasOld: found}
			if m.Tombstone {
				err = st.Delete(r.kbuf)
			} else if vbuf, err = appendTimestamped(vbuf[:0], m.Timestamp, v, vs); err == nil {
				err = st.Put(r.kbuf, vbuf)
			}
			if err != nil {
				tc.Fail(n.Name, err)
				return
			}
			next(k, &c, m)
		}), nil
	}
}

// Filter keeps the keys whose value satisfies pred: an update whose new value
// fails pred becomes a delete of the key. An update whose old and new values
// both fail pred concerns no key of the filtered table and is not forwarded,
// as in Kafka Streams when its upstream table is materialized (kstream's
// tables always know their old values).
func (t Table[K, V]) Filter(pred func(K, V) bool, opts ...Opt) Table[K, V] {
	n := t.b.proc("table-filter", collect(opts), t.node)
	id := int32(n.ID)
	n.Make = func(tc *graph.TaskContext, children []any) (any, error) {
		next, err := tableNext[K, V](children)
		if err != nil {
			return nil, err
		}
		var nc change[V]
		return tableFn[K, V](func(k K, c *change[V], m *graph.Meta) {
			tc.Node = id
			nc = change[V]{}
			if c.HasNew && pred(k, c.New) {
				nc.New, nc.HasNew = c.New, true
			}
			if c.HasOld && pred(k, c.Old) {
				nc.Old, nc.HasOld = c.Old, true
			}
			if nc.HasNew || nc.HasOld {
				next(k, &nc, m)
			}
		}), nil
	}
	return Table[K, V]{b: t.b, node: n, ks: t.ks, vs: t.vs}
}

// ToStream returns the table's updates as a stream; deletes arrive as
// tombstones.
func (t Table[K, V]) ToStream(opts ...Opt) Stream[K, V] {
	n := t.b.proc("to-stream", collect(opts), t.node)
	n.Make = func(tc *graph.TaskContext, children []any) (any, error) {
		next, err := streamNext[K, V](children)
		if err != nil {
			return nil, err
		}
		var mm graph.Meta
		return tableFn[K, V](func(k K, c *change[V], m *graph.Meta) {
			mm = graph.Meta{Timestamp: m.Timestamp, Headers: m.Headers, Tombstone: !c.HasNew, NullKey: m.NullKey}
			next(k, c.New, &mm)
		}), nil
	}
	return Stream[K, V]{b: t.b, node: n, ks: t.ks, vs: t.vs}
}

// MapTableValues maps each value of the table; deletes stay deletes.
// vrSerde serves later stores and repartitions (nil: the built-in one, if any).
func MapTableValues[K, V, VR any](t Table[K, V], fn func(K, V) VR, vrSerde serde.Serde[VR], opts ...Opt) Table[K, VR] {
	n := t.b.proc("table-map-values", collect(opts), t.node)
	id := int32(n.ID)
	n.Make = func(tc *graph.TaskContext, children []any) (any, error) {
		next, err := tableNext[K, VR](children)
		if err != nil {
			return nil, err
		}
		var nc change[VR]
		return tableFn[K, V](func(k K, c *change[V], m *graph.Meta) {
			tc.Node = id
			nc = change[VR]{HasNew: c.HasNew, HasOld: c.HasOld}
			if c.HasNew {
				nc.New = fn(k, c.New)
			}
			if c.HasOld {
				nc.Old = fn(k, c.Old)
			}
			next(k, &nc, m)
		}), nil
	}
	if vrSerde == nil {
		vrSerde, _ = serde.Default[VR]()
	}
	return Table[K, VR]{b: t.b, node: n, ks: t.ks, vs: vrSerde}
}

// Grouped is a stream grouped by key, ready for an aggregation.
type Grouped[K, V any] struct {
	s           Stream[K, V]
	name        string
	repartition bool
	// shared is the repartitioned stream of a named grouping, created by
	// its first aggregation and used by the others, as in Kafka Streams.
	shared *Stream[K, V]
}

func newGrouped[K, V any](s Stream[K, V], name string, repartition bool) Grouped[K, V] {
	g := Grouped[K, V]{s: s, name: name, repartition: repartition}
	if name != "" {
		g.shared = new(Stream[K, V])
	}
	return g
}

// GroupByKey groups the stream by its key. If the key changed upstream, the
// aggregation repartitions through "<appID>-<name>-repartition", where name
// is [Named] given here (the aggregations of the grouping then share that
// topic), or else the aggregation's name.
func (s Stream[K, V]) GroupByKey(opts ...Opt) Grouped[K, V] {
	o := collect(opts)
	s.b.notSource(o, "GroupByKey after node "+s.node.Name, 0)
	return newGrouped(s, o.name, s.keyChanged)
}

// GroupBy groups the stream by a new key, always through a repartition
// topic. krSerde encodes the new key (nil: the built-in one, if any).
func GroupBy[K, V, KR any](s Stream[K, V], fn func(K, V) KR, krSerde serde.Serde[KR], opts ...Opt) Grouped[KR, V] {
	o := collect(opts)
	s.b.notSource(o, "GroupBy after node "+s.node.Name, 0)
	sel := SelectKey(s, fn)
	sel.ks = krSerde
	return newGrouped(sel, o.name, true)
}

// groupedInput returns the stream that an aggregation named name reads from
// the grouping, repartitioned if the grouping needs it (through the
// grouping's shared topic when it is named), and its key serde. It is the
// input path of aggregateStream.
func groupedInput[K, V any](g Grouped[K, V], name string) (Stream[K, V], serde.Serde[K]) {
	return groupedInputAs(g, name, name)
}

// groupedInputAs is groupedInput for a node named node whose unnamed
// grouping repartitions through "<rname>-repartition".
func groupedInputAs[K, V any](g Grouped[K, V], rname, node string) (Stream[K, V], serde.Serde[K]) {
	b := g.s.b
	in := g.s
	repartitioned := g.repartition || in.keyChanged
	if repartitioned {
		if g.shared != nil && g.shared.node != nil {
			in = *g.shared
		} else {
			if g.name != "" {
				rname = g.name
			}
			in = repartition(in, rname)
			if g.shared != nil {
				*g.shared = in
			}
		}
	}
	ks := in.ks
	if !repartitioned { // else the repartition resolved it, or reported it missing
		ks = resolveSerde(b, in.ks, node, "key")
	}
	return in, ks
}

// Count counts the records per key; tombstones and null keys are dropped and
// counted. The result table is materialized in a store named by [Named]
// (required).
func (g Grouped[K, V]) Count(opts ...Opt) Table[K, int64] {
	return aggregateStream(g, "count", func(K, V) int64 { return 1 },
		func(_ K, _ V, a int64) int64 { return a + 1 }, serde.Int64, opts)
}

// Reduce combines the values per key: the first value is the aggregate, and
// each later one is combined with fn(aggregate, value).
func (g Grouped[K, V]) Reduce(fn func(acc, v V) V, opts ...Opt) Table[K, V] {
	return aggregateStream(g, "reduce", func(_ K, v V) V { return v },
		func(_ K, v V, a V) V { return fn(a, v) }, g.s.vs, opts)
}

// Aggregate folds the values per key into an aggregate of type A, starting
// from init(). aSerde encodes the aggregate in the store and changelog.
func Aggregate[K, V, A any](g Grouped[K, V], init func() A, agg func(K, V, A) A, aSerde serde.Serde[A], opts ...Opt) Table[K, A] {
	return aggregateStream(g, "aggregate", func(k K, v V) A { return agg(k, v, init()) }, agg, aSerde, opts)
}

// aggregateStream builds a stream aggregation. first computes the aggregate
// of a key's first record, agg folds a record into it. The output timestamp
// is the largest timestamp of the records folded so far, as in Kafka Streams.
func aggregateStream[K, V, A any](g Grouped[K, V], op string, first func(K, V) A, agg func(K, V, A) A, aSerde serde.Serde[A], os []Opt) Table[K, A] {
	b := g.s.b
	o := collect(os)
	name := b.requireName(o, op, g.s.node, allowCached)
	in, ks := groupedInput(g, name)
	as := resolveSerde(b, aSerde, name, "aggregate value")
	n := b.proc(op, options{name: name}, in.node)
	n.Stores = []string{name}
	b.g.AddStore(&graph.StoreSpec{KeyValue: true, Name: name, Changelog: graph.TopicRef{Name: name + "-changelog", Internal: true}, Timestamped: true})
	n.Make = streamAggMake(n, name, ks, as, first, agg, o.cached)
	return Table[K, A]{b: b, node: n, ks: ks, vs: as, store: name}
}

// streamAggMake returns the executor maker of node n, a stream aggregation
// into the store name: first computes the aggregate of a key's first record,
// agg folds a record into it, and the output timestamp is the largest
// timestamp of the records folded so far, as in Kafka Streams. Records with a
// null key and tombstones are dropped and counted.
func streamAggMake[K, V, A any](n *graph.Node, name string, ks serde.Serde[K], as serde.Serde[A], first func(K, V) A, agg func(K, V, A) A, cached bool) graph.MakeFunc {
	id := int32(n.ID)
	return func(tc *graph.TaskContext, children []any) (any, error) {
		next, err := tableNext[K, A](children)
		if err != nil {
			return nil, err
		}
		st, err := tc.Store(name)
		if err != nil {
			return nil, err
		}
		r := tableReader[K, A]{st: st, ks: ks, vs: as}
		var vbuf []byte
		var mm graph.Meta
		var c change[A]
		var cache *updateCache[K, A]
		if cached {
			cache = newUpdateCache(tc, next)
		}
		return streamFn[K, V](func(k K, v V, m *graph.Meta) {
			if m.NullKey || m.Tombstone {
				tc.Drop(name)
				return
			}
			tc.Node = id
			oldAgg, oldTs, found, err := r.get(k)
			if err != nil {
				tc.Fail(name, err)
				return
			}
			ts := m.Timestamp
			if found {
				ts = max(ts, oldTs)
			}
			var newAgg A
			if found {
				newAgg = agg(k, v, oldAgg)
			} else {
				newAgg = first(k, v)
			}
			if vbuf, err = appendTimestamped(vbuf[:0], ts, newAgg, as); err != nil {
				tc.Fail(name, fmt.Errorf("encoding aggregate: %w", err))
				return
			}
			if err = st.Put(r.kbuf, vbuf); err != nil {
				tc.Fail(name, err)
				return
			}
			c = change[A]{New: newAgg, HasNew: true, Old: oldAgg, HasOld: found}
			mm = graph.Meta{Timestamp: ts, Headers: m.Headers}
			if cache != nil {
				cache.put(r.kbuf, k, &c, &mm)
				return
			}
			next(k, &c, &mm)
		}), nil
	}
}

// GroupedTable is a table regrouped by a new key, ready for an aggregation
// with an adder and a subtractor.
type GroupedTable[K, V any] struct {
	b    *Builder
	name string
	ks   serde.Serde[K]
	vs   serde.Serde[V]
	// attach builds the regrouping for the aggregation named name and
	// returns the source node of the repartitioned changes.
	attach func(name string) *graph.Node
}

// regroupFn receives one table update regrouped: the new value under newK
// and the old value under oldK.
type regroupFn[K, V any] = func(newK, oldK K, c *change[V], m *graph.Meta)

func countRegroup[K, V any](f regroupFn[K, V], n *int64) regroupFn[K, V] {
	return func(newK, oldK K, c *change[V], m *graph.Meta) {
		*n++
		f(newK, oldK, c, m)
	}
}

// Change records in a regrouping topic: a flags byte (1: has new value, 2: has
// old value), the new value's length as a uvarint, the new value, the old value.
const (
	flagNew = 1
	flagOld = 2
)

// GroupTableBy regroups the table by fn(key, value) -> (new key, new value),
// through the repartition topic "<appID>-<name>-repartition", where name is
// [Named] given here (the aggregations of the grouping then share that
// topic), or else the aggregation's name. When a row moves
// from one group to another, the old group receives a subtraction and the new
// one an addition. krSerde and vrSerde encode the new key and value (nil: the
// built-in ones, if any).
func GroupTableBy[K, V, KR, VR any](t Table[K, V], fn func(K, V) (KR, VR), krSerde serde.Serde[KR], vrSerde serde.Serde[VR], opts ...Opt) GroupedTable[KR, VR] {
	o := collect(opts)
	t.b.notSource(o, "GroupTableBy after node "+t.node.Name, 0)
	gt := GroupedTable[KR, VR]{b: t.b, name: o.name}
	mapper := t.b.proc("table-group-by", options{}, t.node)
	gt.ks = resolveSerde(t.b, krSerde, mapper.Name, "key")
	gt.vs = resolveSerde(t.b, vrSerde, mapper.Name, "value")
	id := int32(mapper.ID)
	mapper.Make = func(tc *graph.TaskContext, children []any) (any, error) {
		fns, err := childFns(children, countRegroup[KR, VR])
		if err != nil {
			return nil, err
		}
		// One output per repartition topic: an unnamed grouping has one
		// per aggregation.
		next := func(newK, oldK KR, c *change[VR], m *graph.Meta) {
			for _, f := range fns {
				f(newK, oldK, c, m)
			}
		}
		if len(fns) == 1 {
			next = fns[0]
		}
		var nc change[VR]
		return tableFn[K, V](func(k K, c *change[V], m *graph.Meta) {
			if m.NullKey {
				tc.Drop(mapper.Name)
				return
			}
			tc.Node = id
			var newK, oldK KR
			nc = change[VR]{HasNew: c.HasNew, HasOld: c.HasOld}
			if c.HasNew {
				newK, nc.New = fn(k, c.New)
			}
			if c.HasOld {
				oldK, nc.Old = fn(k, c.Old)
			}
			if nc.HasNew || nc.HasOld {
				next(newK, oldK, &nc, m)
			}
		}), nil
	}
	var shared *graph.Node // a named grouping's aggregations share its topic, as in Kafka Streams
	gt.attach = func(name string) *graph.Node {
		if shared != nil {
			return shared
		}
		topic := graph.TopicRef{Name: name + "-repartition", Internal: true}
		sink := t.b.g.AddNode(&graph.Node{Op: "repartition-sink", Kind: graph.KindSink, Name: topic.Name + "-sink",
			Topic: topic, Repartition: true}, mapper)
		sink.Make = regroupSinkMake(sink, gt.ks, gt.vs)
		src := t.b.g.AddNode(&graph.Node{Op: "repartition-source", Kind: graph.KindSource, Name: topic.Name + "-source",
			Topic: topic, Repartition: true})
		src.Make = regroupSourceMake(src, gt.ks, gt.vs)
		if o.name != "" {
			shared = src
		}
		return src
	}
	return gt
}

func regroupSinkMake[K, V any](n *graph.Node, ks serde.Serde[K], vs serde.Serde[V]) graph.MakeFunc {
	return func(tc *graph.TaskContext, _ []any) (any, error) {
		topic := n.Topic.Resolve(tc.AppID)
		out := &tc.Out
		var newKey, oldKey, newVal, oldVal []byte
		emit := func(key []byte, flags byte, nv []byte, ov []byte, m *graph.Meta) {
			a := out.Arena()
			ks := len(a)
			a = append(a, key...)
			vs := len(a)
			a = append(a, flags)
			a = binary.AppendUvarint(a, uint64(len(nv)))
			a = append(a, nv...)
			a = append(a, ov...)
			out.Add(a, topic, -1, ks, vs, vs, len(a), m.Timestamp, m.Headers)
		}
		id := int32(n.ID)
		return regroupFn[K, V](func(newK, oldK K, c *change[V], m *graph.Meta) {
			tc.Node = id // for the serdes
			var err error
			fail := func(what string, err error) {
				tc.Fail(n.Name, fmt.Errorf("encoding %s for topic %s: %w", what, topic, err))
			}
			if c.HasNew {
				if newKey, err = ks.Append(newKey[:0], newK); err != nil {
					fail("key", err)
					return
				}
				if newVal, err = vs.Append(newVal[:0], c.New); err != nil {
					fail("value", err)
					return
				}
			}
			if c.HasOld {
				if oldKey, err = ks.Append(oldKey[:0], oldK); err != nil {
					fail("key", err)
					return
				}
				if oldVal, err = vs.Append(oldVal[:0], c.Old); err != nil {
					fail("value", err)
					return
				}
			}
			if c.HasNew && c.HasOld && bytes.Equal(newKey, oldKey) {
				emit(newKey, flagNew|flagOld, newVal, oldVal, m)
				return
			}
			if c.HasOld {
				emit(oldKey, flagOld, nil, oldVal, m)
			}
			if c.HasNew {
				emit(newKey, flagNew, newVal, nil, m)
			}
		}), nil
	}
}

var errBadChange = errors.New("malformed regrouping record")

func regroupSourceMake[K, V any](n *graph.Node, ks serde.Serde[K], vs serde.Serde[V]) graph.MakeFunc {
	return func(tc *graph.TaskContext, children []any) (any, error) {
		next, err := tableNext[K, V](children)
		if err != nil {
			return nil, err
		}
		var m graph.Meta
		var c change[V]
		id := int32(n.ID)
		return func(r *graph.RawRecord) {
			tc.Node = graph.Decoding(id)
			k, err := ks.Decode(r.Key)
			if err != nil {
				tc.FailDecode(n.Name, fmt.Errorf("key: %w", err))
				return
			}
			b := r.Value
			if len(b) < 2 {
				tc.FailDecode(n.Name, errBadChange)
				return
			}
			flags := b[0]
			l, w := binary.Uvarint(b[1:])
			if w <= 0 || uint64(len(b)-1-w) < l {
				tc.FailDecode(n.Name, errBadChange)
				return
			}
			nb, ob := b[1+w:1+w+int(l)], b[1+w+int(l):]
			c = change[V]{HasNew: flags&flagNew != 0, HasOld: flags&flagOld != 0}
			if c.HasNew {
				if c.New, err = vs.Decode(nb); err != nil {
					tc.FailDecode(n.Name, fmt.Errorf("new value: %w", err))
					return
				}
			}
			if c.HasOld {
				if c.Old, err = vs.Decode(ob); err != nil {
					tc.FailDecode(n.Name, fmt.Errorf("old value: %w", err))
					return
				}
			}
			tc.Node = id
			m = graph.Meta{Timestamp: r.Timestamp, Headers: r.Headers}
			next(k, &c, &m)
		}, nil
	}
}

// Count counts the rows per group: +1 when a row joins, -1 when it leaves.
func (gt GroupedTable[K, V]) Count(opts ...Opt) Table[K, int64] {
	return aggregateTable(gt, "table-count", func(K, V) int64 { return 1 },
		func(_ K, _ V, a int64) int64 { return a + 1 }, func(_ K, _ V, a int64) int64 { return a - 1 }, serde.Int64, opts)
}

// Reduce combines the values per group: adder folds in a row that joins the
// group (the first row's value is the aggregate), subtractor takes out one
// that leaves or changes.
func (gt GroupedTable[K, V]) Reduce(adder, subtractor func(acc, v V) V, opts ...Opt) Table[K, V] {
	return aggregateTable(gt, "table-reduce", func(_ K, v V) V { return v },
		func(_ K, v V, a V) V { return adder(a, v) }, func(_ K, v V, a V) V { return subtractor(a, v) }, gt.vs, opts)
}

// AggregateTable folds the rows per group into an aggregate of type A:
// adder folds in a row that joins the group (starting from init()),
// subtractor takes out one that leaves or changes. aSerde encodes the
// aggregate.
func AggregateTable[K, V, A any](gt GroupedTable[K, V], init func() A, adder, subtractor func(K, V, A) A, aSerde serde.Serde[A], opts ...Opt) Table[K, A] {
	return aggregateTable(gt, "table-aggregate", func(k K, v V) A { return adder(k, v, init()) }, adder, subtractor, aSerde, opts)
}

// aggregateTable builds a table aggregation, with Kafka Streams' semantics:
// subtract the old value (if the group had an aggregate), then add the new
// one; the output timestamp is the larger of the update's and the
// aggregate's.
func aggregateTable[K, V, A any](gt GroupedTable[K, V], op string, first func(K, V) A, add, sub func(K, V, A) A, aSerde serde.Serde[A], os []Opt) Table[K, A] {
	b := gt.b
	o := collect(os)
	name := b.requireName(o, op, nil, allowCached)
	rname := gt.name
	if rname == "" {
		rname = name
	}
	src := gt.attach(rname)
	ks := gt.ks
	as := resolveSerde(b, aSerde, name, "aggregate value")
	n := b.proc(op, options{name: name}, src)
	n.Stores = []string{name}
	b.g.AddStore(&graph.StoreSpec{KeyValue: true, Name: name, Changelog: graph.TopicRef{Name: name + "-changelog", Internal: true}, Timestamped: true})
	id := int32(n.ID)
	n.Make = func(tc *graph.TaskContext, children []any) (any, error) {
		next, err := tableNext[K, A](children)
		if err != nil {
			return nil, err
		}
		st, err := tc.Store(name)
		if err != nil {
			return nil, err
		}
		r := tableReader[K, A]{st: st, ks: ks, vs: as}
		var vbuf []byte
		var mm graph.Meta
		var nc change[A]
		var cache *updateCache[K, A]
		if o.cached {
			cache = newUpdateCache(tc, next)
		}
		return tableFn[K, V](func(k K, c *change[V], m *graph.Meta) {
			tc.Node = id
			oldAgg, oldTs, found, err := r.get(k)
			if err != nil {
				tc.Fail(name, err)
				return
			}
			ts := m.Timestamp
			agg, hasAgg := oldAgg, found
			if c.HasOld && found {
				agg = sub(k, c.Old, agg)
				ts = max(ts, oldTs)
			}
			if c.HasNew {
				if hasAgg {
					agg = add(k, c.New, agg)
				} else {
					agg, hasAgg = first(k, c.New), true
				}
				if found {
					ts = max(ts, oldTs)
				}
			}
			if hasAgg {
				if vbuf, err = appendTimestamped(vbuf[:0], ts, agg, as); err == nil {
					err = st.Put(r.kbuf, vbuf)
				}
			} else {
				err = st.Delete(r.kbuf)
			}
			if err != nil {
				tc.Fail(name, err)
				return
			}
			nc = change[A]{New: agg, HasNew: hasAgg, Old: oldAgg, HasOld: found}
			mm = graph.Meta{Timestamp: ts, Headers: m.Headers}
			if cache != nil {
				cache.put(r.kbuf, k, &nc, &mm)
				return
			}
			next(k, &nc, &mm)
		}), nil
	}
	return Table[K, A]{b: b, node: n, ks: ks, vs: as, store: name}
}

// GlobalTable is a table replicated in full on every instance: every
// partition of its topic, kept current on its own, readable by any task
// (stream–global table joins look keys up in it, mapped by any function of
// the stream record, so no co-partitioning is needed).
type GlobalTable[K, V any] struct {
	b     *Builder
	store string
	ks    serde.Serde[K]
	vs    serde.Serde[V]
}

// StoreName returns the name of the global table's store.
func (g GlobalTable[K, V]) StoreName() string { return g.store }

// SourceGlobalTable reads every partition of topic into a global store named
// by [Named] (default: the topic). The topic is its changelog. Before any
// task processes, the store is brought up to the topic's end.
func SourceGlobalTable[K, V any](b *Builder, topic string, ks serde.Serde[K], vs serde.Serde[V], opts ...Opt) GlobalTable[K, V] {
	o := collect(opts)
	name := o.name
	if name == "" {
		name = topic
	}
	if o.fromLatest {
		b.g.Errorf("kstream: global table %s (topic %s): FromLatest applies to Source only: a table reads its whole topic", name, topic)
		o.fromLatest = false
	}
	src := Source(b, topic, ks, vs, optFunc(func(x *options) { *x = o; x.name = "" })) // Source checks the options
	n := b.proc("global-table", options{name: name}, src.node)
	n.Stores = []string{name}
	b.g.AddStore(&graph.StoreSpec{KeyValue: true, Name: name, Changelog: graph.TopicRef{Name: topic}, Timestamped: true, FromSource: true, Global: true})
	n.Make = tableSourceMake(n, name, ks, vs)
	return GlobalTable[K, V]{b: b, store: name, ks: ks, vs: vs}
}
