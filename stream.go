package kstream

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/serde"
	"github.com/kstreamgo/kstream/state"
)

// Stream is a typed record stream: a handle on a node of the topology being
// built. Operators return new handles; the zero Stream is not usable.
type Stream[K, V any] struct {
	b    *Builder
	node *graph.Node
	ks   serde.Serde[K]
	vs   serde.Serde[V]
	// keyChanged marks a stream whose keys changed since it was last
	// partitioned: a grouping or ToTable downstream repartitions it.
	keyChanged bool
}

func (s Stream[K, V]) with(n *graph.Node) Stream[K, V] {
	s.node = n
	return s
}

// proc appends a processor node named by o (or a generated name).
func (b *Builder) proc(op string, o options, parents ...*graph.Node) *graph.Node {
	n := b.g.AddNode(&graph.Node{Op: op, Kind: graph.KindProcessor, Name: o.name, UserNamed: o.name != ""}, parents...)
	b.sourceOnly(o, n)
	return n
}

// sourceOnly records a Build error for the options of o that only sources
// take, or that only stateful operators take, given to node n (Process and
// ProcessValues nodes take WithStores).
func (b *Builder) sourceOnly(o options, n *graph.Node) {
	var allow optAllow
	if n.Op == "process" || n.Op == "process-values" {
		allow = allowStores
	}
	b.notSource(o, "node "+n.Name+" ("+n.Op+")", allow)
}

// notSource records a Build error for the options of o that only sources
// take, given to the operator what, and for those that it does not take
// among the options that only some operators take (allow lists those it
// does).
func (b *Builder) notSource(o options, what string, allow optAllow) {
	if o.timestamp != nil {
		b.g.Errorf("kstream: %s: TimestampFrom applies to sources only (Source, SourceTable, SourceGlobalTable)", what)
	}
	b.notSink(o, what)
	b.misplaced(o, what, allow)
}

// misplaced records a Build error for each option of o that the operator
// what does not take, among those that only some operators take: allow
// lists the ones it takes. An option that an operator would ignore is a
// mistake to report, not to pass over.
func (b *Builder) misplaced(o options, what string, allow optAllow) {
	if o.cached && allow&allowCached == 0 {
		b.g.Errorf("kstream: %s: Cached applies to aggregations only (Count, Reduce, Aggregate and their windowed, session, table and cogrouped forms)", what)
	}
	if o.retentionSet && allow&allowRetention == 0 {
		b.g.Errorf("kstream: %s: Retention applies to windowed and session aggregations only", what)
	}
	if o.emitOnClose && allow&allowEmitOnClose == 0 {
		b.g.Errorf("kstream: %s: EmitOnWindowClose applies to windowed and session aggregations only", what)
	}
	if len(o.stores) > 0 && allow&allowStores == 0 {
		b.g.Errorf("kstream: %s: WithStores applies to Process and ProcessValues only", what)
	}
	if o.fromLatest && allow&allowFromLatest == 0 {
		b.g.Errorf("kstream: %s: FromLatest applies to Source only", what)
	}
}

// notSink records a Build error for a PartitionWith or PartitionsWith
// among the options of o, given to the operator what, which is not a sink.
func (b *Builder) notSink(o options, what string) {
	if p := o.partitioner; p != nil {
		b.g.Errorf("kstream: %s: %s applies to To, ToFunc and Repartition only", what, p.name())
	}
}

// partitionsFunc is the form of a sink's partitioner: PartitionsWith's
// function, or PartitionWith's wrapped to append its one partition.
type partitionsFunc[K, V any] func(dst []int32, topic string, k K, v V, numPartitions int32) []int32

// sinkPartitioner is the partitioner of a sink node, from a PartitionWith
// or a PartitionsWith (opt, for error messages); fn is nil without one.
type sinkPartitioner[K, V any] struct {
	fn  partitionsFunc[K, V]
	opt string
}

// partitioner returns the partitioner that a PartitionWith or a
// PartitionsWith among the options of o gives the sink node n of a stream of
// K and V, and o without it, for the checks of other options. A function of
// other types, a nil one, or both options is a Build error.
func partitioner[K, V any](b *Builder, o options, n *graph.Node) (sinkPartitioner[K, V], options) {
	p := o.partitioner
	o.partitioner = nil
	if p == nil {
		return sinkPartitioner[K, V]{}, o
	}
	if p.both {
		b.g.Errorf("kstream: node %s (%s): PartitionWith and PartitionsWith both given: a sink takes one partitioner", n.Name, n.Op)
		return sinkPartitioner[K, V]{}, o
	}
	sp := sinkPartitioner[K, V]{opt: p.name()}
	if p.multi {
		if fn, ok := typedPartitioner[func([]int32, string, K, V, int32) []int32](b, p, n); ok {
			sp.fn = fn
		}
	} else if fn, ok := typedPartitioner[func(string, K, V, int32) int32](b, p, n); ok {
		sp.fn = func(dst []int32, topic string, k K, v V, count int32) []int32 {
			return append(dst, fn(topic, k, v, count))
		}
	}
	return sp, o
}

// typedPartitioner returns the function of p, of type F for the stream of
// sink node n, or false after recording a Build error for a function of
// another type or a nil one.
func typedPartitioner[F any](b *Builder, p *partitionerOpt, n *graph.Node) (F, bool) {
	fn, ok := p.fn.(F)
	switch {
	case !ok:
		b.g.Errorf("kstream: node %s (%s): %s takes a %T for this stream, not a %T", n.Name, n.Op, p.name(), fn, p.fn)
	case p.isNil:
		b.g.Errorf("kstream: node %s (%s): %s was given a nil function", n.Name, n.Op, p.name())
	}
	return fn, ok && !p.isNil
}

// requireName returns the name a stateful operator was given, or records a
// Build error and returns a generated placeholder.
func (b *Builder) requireName(o options, op string, parent *graph.Node, allow optAllow) string {
	after := ""
	if parent != nil {
		after = " after node " + parent.Name
	}
	b.notSource(o, "the "+op+" operator"+after, allow)
	if o.name != "" {
		return o.name
	}
	b.g.Errorf("kstream: the %s operator%s needs kstream.Named: it creates a store and internal topics, whose names must be stable", op, after)
	return op + "-unnamed-" + strconv.Itoa(len(b.g.Nodes))
}

// Source reads topic as a stream, decoding keys with ks and values with vs.
// A record with a null value arrives as a tombstone; one with a null key has
// K's zero value and is dropped by aggregations.
func Source[K, V any](b *Builder, topic string, ks serde.Serde[K], vs serde.Serde[V], opts ...Opt) Stream[K, V] {
	o := collect(opts)
	n := b.g.AddNode(&graph.Node{Op: "source", Kind: graph.KindSource, Name: o.name, UserNamed: o.name != "",
		Topic: graph.TopicRef{Name: topic}})
	if topic == "" {
		b.g.Errorf("kstream: source %s: empty topic name", n.Name)
	}
	if ks == nil || vs == nil {
		b.g.Errorf("kstream: source %s (topic %s): key and value serdes are required", n.Name, topic)
	}
	b.notSink(o, "source "+n.Name+" (topic "+topic+")")
	b.misplaced(o, "source "+n.Name+" (topic "+topic+")", allowFromLatest)
	n.FromLatest = o.fromLatest
	var extract func(K, V, int64) int64
	if o.timestamp != nil {
		var ok bool
		if extract, ok = o.timestamp.(func(K, V, int64) int64); !ok {
			var want func(K, V, int64) int64
			b.g.Errorf("kstream: source %s (topic %s): TimestampFrom takes a %T for this source, not a %T", n.Name, topic, want, o.timestamp)
		}
		n.ExtractsTime = extract != nil
	}
	n.Make = sourceMake(n, ks, vs, extract)
	return Stream[K, V]{b: b, node: n, ks: ks, vs: vs}
}

// sourceMake decodes raw records and passes them to the node's children,
// with the timestamp extract gives when it is set.
func sourceMake[K, V any](n *graph.Node, ks serde.Serde[K], vs serde.Serde[V], extract func(K, V, int64) int64) graph.MakeFunc {
	id := int32(n.ID)
	return func(tc *graph.TaskContext, children []any) (any, error) {
		next, err := streamNext[K, V](children)
		if err != nil {
			return nil, err
		}
		st := inlineStep[K, V](children)
		var m graph.Meta
		return func(r *graph.RawRecord) {
			var k K
			var v V
			var err error
			tc.Node = graph.Decoding(id)
			m.NullKey = r.Key == nil
			if !m.NullKey {
				if k, err = ks.Decode(r.Key); err != nil {
					tc.FailDecode(n.Name, fmt.Errorf("key: %w", err))
					return
				}
			}
			m.Tombstone = r.Value == nil
			if !m.Tombstone {
				if v, err = vs.Decode(r.Value); err != nil {
					tc.FailDecode(n.Name, fmt.Errorf("value: %w", err))
					return
				}
			}
			tc.Node = id
			m.Timestamp = r.Timestamp
			if extract != nil {
				if !m.Tombstone {
					if m.Timestamp = extract(k, v, r.Timestamp); m.Timestamp < 0 {
						tc.Fail(n.Name, fmt.Errorf("TimestampFrom returned a negative timestamp, %d", m.Timestamp))
						return
					}
				}
				tc.ObserveExtracted(m.Timestamp)
			}
			m.Headers = r.Headers
			if st == nil || m.Tombstone {
				next(k, v, &m)
				return
			}
			// The only child is a step: run it here (see stepExec).
			tc.Node = st.id
			if st.keep != nil {
				if st.keep(k, v) == st.not {
					return
				}
			} else if st.each(k, v); st.next == nil {
				return
			}
			st.next(k, v, &m)
		}, nil
	}
}

// WithSerdes returns the stream with serdes for later repartitions and stores;
// nil keeps the current one.
func (s Stream[K, V]) WithSerdes(ks serde.Serde[K], vs serde.Serde[V]) Stream[K, V] {
	if ks != nil {
		s.ks = ks
	}
	if vs != nil {
		s.vs = vs
	}
	return s
}

// Filter keeps the records for which pred returns true. Tombstones pass
// through without calling pred: a delete stays a delete.
func (s Stream[K, V]) Filter(pred func(K, V) bool, opts ...Opt) Stream[K, V] {
	return s.filter("filter", pred, false, opts)
}

// FilterNot keeps the records for which pred returns false. Tombstones pass
// through without calling pred.
func (s Stream[K, V]) FilterNot(pred func(K, V) bool, opts ...Opt) Stream[K, V] {
	return s.filter("filter-not", pred, true, opts)
}

func (s Stream[K, V]) filter(op string, pred func(K, V) bool, not bool, os []Opt) Stream[K, V] {
	n := s.b.proc(op, collect(os), s.node)
	id := int32(n.ID)
	n.Make = func(tc *graph.TaskContext, children []any) (any, error) {
		next, err := streamNext[K, V](children)
		if err != nil {
			return nil, err
		}
		return &stepExec[K, V]{tc: tc, id: id, keep: pred, not: not, next: next, run: func(k K, v V, m *graph.Meta) {
			if !m.Tombstone {
				tc.Node = id
				if pred(k, v) == not {
					return
				}
			}
			next(k, v, m)
		}}, nil
	}
	return s.with(n)
}

// Peek calls fn for each record and passes the record on. fn is not called
// for tombstones (use [Process] to see them).
func (s Stream[K, V]) Peek(fn func(K, V), opts ...Opt) Stream[K, V] {
	n := s.b.proc("peek", collect(opts), s.node)
	n.Make = peekMake(n, fn)
	return s.with(n)
}

// Foreach calls fn for each record; it ends the stream. fn is not called for
// tombstones.
func (s Stream[K, V]) Foreach(fn func(K, V), opts ...Opt) {
	n := s.b.proc("foreach", collect(opts), s.node)
	n.Make = peekMake(n, fn)
}

func peekMake[K, V any](n *graph.Node, fn func(K, V)) graph.MakeFunc {
	id := int32(n.ID)
	return func(tc *graph.TaskContext, children []any) (any, error) {
		if len(children) == 0 { // Foreach: nothing to pass the record to
			return &stepExec[K, V]{tc: tc, id: id, each: fn, run: func(k K, v V, m *graph.Meta) {
				if !m.Tombstone {
					tc.Node = id
					fn(k, v)
				}
			}}, nil
		}
		next, err := streamNext[K, V](children)
		if err != nil {
			return nil, err
		}
		return &stepExec[K, V]{tc: tc, id: id, each: fn, next: next, run: func(k K, v V, m *graph.Meta) {
			if !m.Tombstone {
				tc.Node = id
				fn(k, v)
			}
			next(k, v, m)
		}}, nil
	}
}

// passMake returns the children's executors combined: a node that only
// routes (merge, branch outputs) costs nothing per record.
func passMake[K, V any](_ *graph.TaskContext, children []any) (any, error) {
	return streamNext[K, V](children)
}

// Merge returns one stream of the records of s and others, each keeping its
// order. The result needs a repartition before a grouping if any input does.
func (s Stream[K, V]) Merge(others ...Stream[K, V]) Stream[K, V] {
	parents := []*graph.Node{s.node}
	out := s
	for _, o := range others {
		if o.b != s.b {
			s.b.g.Errorf("kstream: Merge: stream %s belongs to another Builder", o.node.Name)
			continue
		}
		parents = append(parents, o.node)
		out.keyChanged = out.keyChanged || o.keyChanged
		if out.ks == nil {
			out.ks = o.ks
		}
		if out.vs == nil {
			out.vs = o.vs
		}
	}
	n := s.b.proc("merge", options{}, parents...)
	n.Make = passMake[K, V]
	out.node = n
	return out
}

// Branch splits the stream: each record goes to the first stream whose
// predicate returns true, and the last stream (one more than preds) receives
// the records no predicate matched. Tombstones go to every branch, since a
// delete concerns every view of a key.
func (s Stream[K, V]) Branch(preds ...func(K, V) bool) []Stream[K, V] {
	n := s.b.proc("branch", options{}, s.node)
	id := int32(n.ID)
	outs := make([]Stream[K, V], len(preds)+1)
	for i := range outs {
		c := s.b.proc("branch-"+strconv.Itoa(i), options{}, n)
		c.Make = passMake[K, V]
		outs[i] = s.with(c)
	}
	n.Make = func(tc *graph.TaskContext, children []any) (any, error) {
		fns, err := childFns(children, countStream[K, V])
		if err != nil {
			return nil, err
		}
		if len(fns) != len(preds)+1 {
			return nil, fmt.Errorf("kstream: internal error: branch %s has %d outputs, want %d", n.Name, len(fns), len(preds)+1)
		}
		rest := fns[len(preds)]
		return streamFn[K, V](func(k K, v V, m *graph.Meta) {
			if m.Tombstone {
				for _, f := range fns {
					f(k, v, m)
				}
				return
			}
			tc.Node = id
			for i, p := range preds {
				if p(k, v) {
					fns[i](k, v, m)
					return
				}
			}
			rest(k, v, m)
		}), nil
	}
	return outs
}

// To writes the stream to topic, partitioned by key as Kafka's default
// partitioner does, or as a [PartitionWith] or [PartitionsWith] among opts
// says. Nil serdes fall back to the stream's own (WithSerdes) or the
// built-in ones.
func (s Stream[K, V]) To(topic string, ks serde.Serde[K], vs serde.Serde[V], opts ...Opt) {
	o := collect(opts)
	n := s.b.g.AddNode(&graph.Node{Op: "sink", Kind: graph.KindSink, Name: o.name, UserNamed: o.name != "",
		Topic: graph.TopicRef{Name: topic}}, s.node)
	part, o := partitioner[K, V](s.b, o, n)
	s.b.sourceOnly(o, n)
	if topic == "" {
		s.b.g.Errorf("kstream: sink %s: empty topic name", n.Name)
	}
	ks, vs = s.sinkSerdes(n, ks, vs)
	n.Make = sinkMake(n, ks, vs, part)
}

// sinkSerdes returns the serdes of sink node n: ks and vs, or when nil the
// stream's own (WithSerdes) or the built-in ones.
func (s Stream[K, V]) sinkSerdes(n *graph.Node, ks serde.Serde[K], vs serde.Serde[V]) (serde.Serde[K], serde.Serde[V]) {
	if ks == nil {
		ks = resolveSerde(s.b, s.ks, n.Name, "key")
	}
	if vs == nil {
		vs = resolveSerde(s.b, s.vs, n.Name, "value")
	}
	return ks, vs
}

// ToFunc writes each record to the topic that topicOf names for it (Kafka
// Streams' to with a TopicNameExtractor), partitioned as To does (by key, or
// by a [PartitionWith] or [PartitionsWith] among opts).
// topicOf sees the whole record, tombstones included (Tombstone set); an
// empty name fails the record. The topics must exist: the runtime does not
// create them, and a record for a missing topic is a production error,
// handled by the runtime's policy. Nil serdes fall back as for To.
func (s Stream[K, V]) ToFunc(topicOf func(Record[K, V]) string, ks serde.Serde[K], vs serde.Serde[V], opts ...Opt) {
	o := collect(opts)
	part := o.partitioner
	o.partitioner = nil
	n := s.b.proc("sink-func", o, s.node)
	fn, _ := partitioner[K, V](s.b, options{partitioner: part}, n)
	ks, vs = s.sinkSerdes(n, ks, vs)
	id := int32(n.ID)
	n.Make = func(tc *graph.TaskContext, _ []any) (any, error) {
		e := &sinkEncoder[K, V]{n: n, ks: ks, vs: vs, tc: tc, part: fn}
		return streamFn[K, V](func(k K, v V, m *graph.Meta) {
			tc.Node = id
			topic := topicOf(Record[K, V]{Key: k, Value: v, Timestamp: m.Timestamp,
				Headers: fromGraphHeaders(m.Headers), Tombstone: m.Tombstone})
			if topic == "" {
				tc.Fail(n.Name, errors.New("the topic function returned an empty topic name"))
				return
			}
			e.write(topic, k, v, m)
		}), nil
	}
}

// sinkMake makes the executor of a sink node writing to its topic, placing
// records with part when it has a function (PartitionWith, PartitionsWith).
func sinkMake[K, V any](n *graph.Node, ks serde.Serde[K], vs serde.Serde[V], part sinkPartitioner[K, V]) graph.MakeFunc {
	return func(tc *graph.TaskContext, _ []any) (any, error) {
		topic := n.Topic.Resolve(tc.AppID)
		e := &sinkEncoder[K, V]{n: n, ks: ks, vs: vs, tc: tc, part: part}
		return streamFn[K, V](func(k K, v V, m *graph.Meta) { e.write(topic, k, v, m) }), nil
	}
}

// sinkEncoder encodes records into a task's output buffer for a sink node.
type sinkEncoder[K, V any] struct {
	n  *graph.Node
	ks serde.Serde[K]
	vs serde.Serde[V]
	tc *graph.TaskContext
	// part places the records (PartitionWith, PartitionsWith); without a
	// function, by key. partTopic is the last topic it placed records in,
	// and partCount that topic's partition count (0: not looked up yet).
	part      sinkPartitioner[K, V]
	partTopic string
	partCount int32
	// dst is the slice given to part.fn, with room for partCount
	// partitions; uniq holds the partitions of a result with duplicates, and
	// seen (a bit per partition, all clear between records) finds them.
	dst  []int32
	uniq []int32
	seen []uint64
}

// byKey is the partitions of a record partitioned by key.
var byKey = []int32{-1}

// partitions returns the partitions that e.part chooses for a record of
// topic, each once (byKey for partitioning by key; none to drop the
// record), or false after recording a production error.
func (e *sinkEncoder[K, V]) partitions(topic string, k K, v V) ([]int32, bool) {
	if e.partCount == 0 || topic != e.partTopic {
		if !e.lookUp(topic) {
			return nil, false
		}
	}
	n := e.partCount
	ps := e.part.fn(e.dst[:0], topic, k, v, n)
	if len(ps) == 1 { // PartitionWith's case, and a common one
		if ps[0] >= n {
			e.outOfRange(topic, ps[0])
			return nil, false
		}
		if ps[0] < 0 {
			return byKey, true
		}
		return ps, true
	}
	negative, dup := 0, false
	for i, p := range ps {
		switch {
		case p < 0:
			negative++
		case p >= n:
			e.clearSeen(ps[:i])
			e.outOfRange(topic, p)
			return nil, false
		case e.seen[p>>6]&(1<<(p&63)) != 0:
			dup = true
		default:
			e.seen[p>>6] |= 1 << (p & 63)
		}
	}
	e.clearSeen(ps)
	switch {
	case negative == len(ps):
		if negative == 0 {
			return nil, true
		}
		return byKey, true
	case negative > 0:
		e.tc.FailProduce(e.n.Name, fmt.Errorf("%s returned partitions %v for topic %s: a negative partition (by key) cannot go with others", e.part.opt, ps, topic))
		return nil, false
	case !dup:
		return ps, true
	}
	u := e.uniq[:0]
	for _, p := range ps {
		if e.seen[p>>6]&(1<<(p&63)) == 0 {
			e.seen[p>>6] |= 1 << (p & 63)
			u = append(u, p)
		}
	}
	e.clearSeen(u)
	e.uniq = u
	return u, true
}

// lookUp finds the partition count of topic for e.part, and sizes the
// buffers for it, or returns false after recording a production error.
func (e *sinkEncoder[K, V]) lookUp(topic string) bool {
	if e.tc.Partitions == nil {
		e.tc.FailProduce(e.n.Name, fmt.Errorf("%s needs the partition count of topic %s, and the runtime does not tell it", e.part.opt, topic))
		return false
	}
	n, err := e.tc.Partitions(topic)
	if err == nil && n <= 0 {
		err = fmt.Errorf("it has %d partitions", n)
	}
	if err != nil {
		e.tc.FailProduce(e.n.Name, fmt.Errorf("finding the partition count of topic %s for %s: %w", topic, e.part.opt, err))
		return false
	}
	e.partTopic, e.partCount = topic, n
	if cap(e.dst) < int(n) {
		e.dst = make([]int32, 0, n)
		e.uniq = make([]int32, 0, n)
	}
	if words := int(n+63) / 64; len(e.seen) < words {
		e.seen = make([]uint64, words)
	}
	return true
}

// outOfRange records the production error of a partition p that topic does
// not have.
func (e *sinkEncoder[K, V]) outOfRange(topic string, p int32) {
	e.tc.FailProduce(e.n.Name, fmt.Errorf("%s returned partition %d for topic %s, which has %d partitions", e.part.opt, p, topic, e.partCount))
}

// clearSeen clears the bits of the partitions ps in e.seen (negative ones
// have none).
func (e *sinkEncoder[K, V]) clearSeen(ps []int32) {
	for _, p := range ps {
		if p >= 0 {
			e.seen[p>>6] &^= 1 << (p & 63)
		}
	}
}

// write encodes a record into the output buffer for topic: once, with an
// output record per partition that e.part chooses, all referring to those
// bytes.
func (e *sinkEncoder[K, V]) write(topic string, k K, v V, m *graph.Meta) {
	e.tc.Node = int32(e.n.ID) // for the partitioner and the serdes
	parts := byKey
	if e.part.fn != nil {
		var ok bool
		if parts, ok = e.partitions(topic, k, v); !ok {
			return
		}
		if len(parts) == 0 {
			e.tc.Drop(e.n.Name)
			return
		}
	}
	out := &e.tc.Out
	a := out.Arena()
	kStart, kEnd, vStart, vEnd := -1, -1, -1, -1
	var err error
	if !m.NullKey {
		kStart = len(a)
		if a, err = e.ks.Append(a, k); err != nil {
			e.tc.Fail(e.n.Name, fmt.Errorf("encoding key for topic %s: %w", topic, err))
			return
		}
		kEnd = len(a)
	}
	if !m.Tombstone {
		vStart = len(a)
		if a, err = e.vs.Append(a, v); err != nil {
			e.tc.Fail(e.n.Name, fmt.Errorf("encoding value for topic %s: %w", topic, err))
			return
		}
		vEnd = len(a)
	}
	for _, p := range parts {
		out.Add(a, topic, p, kStart, kEnd, vStart, vEnd, m.Timestamp, m.Headers)
	}
}

// Repartition writes the stream through the internal topic
// "<appID>-<name>-repartition" and reads it back, so that records are
// partitioned by their current key, or as a [PartitionWith] or
// [PartitionsWith] among opts says. It requires [Named].
func (s Stream[K, V]) Repartition(opts ...Opt) Stream[K, V] {
	o := collect(opts)
	part := o.partitioner
	o.partitioner = nil
	name := s.b.requireName(o, "repartition", s.node, 0)
	return repartitionWith(s, name, part)
}

// repartition inserts a sink and a source around the internal topic
// "<name>-repartition".
func repartition[K, V any](s Stream[K, V], name string) Stream[K, V] {
	return repartitionWith(s, name, nil)
}

// repartitionWith is repartition with the PartitionWith or PartitionsWith
// option part (nil: by key), checked against K and V.
func repartitionWith[K, V any](s Stream[K, V], name string, part *partitionerOpt) Stream[K, V] {
	topic := graph.TopicRef{Name: name + "-repartition", Internal: true}
	sink := s.b.g.AddNode(&graph.Node{Op: "repartition-sink", Kind: graph.KindSink, Name: topic.Name + "-sink",
		Topic: topic, Repartition: true}, s.node)
	fn, _ := partitioner[K, V](s.b, options{partitioner: part}, sink)
	ks := resolveSerde(s.b, s.ks, sink.Name, "key")
	vs := resolveSerde(s.b, s.vs, sink.Name, "value")
	sink.Make = sinkMake(sink, ks, vs, fn)
	src := s.b.g.AddNode(&graph.Node{Op: "repartition-source", Kind: graph.KindSource, Name: topic.Name + "-source",
		Topic: topic, Repartition: true})
	src.Make = sourceMake(src, ks, vs, nil)
	return Stream[K, V]{b: s.b, node: src, ks: ks, vs: vs}
}

// Map transforms each record's key and value. The key may change, so a
// grouping downstream repartitions. Tombstones are dropped and counted: a
// delete cannot be re-keyed without a value.
func Map[K, V, KR, VR any](s Stream[K, V], fn func(K, V) (KR, VR), opts ...Opt) Stream[KR, VR] {
	n := s.b.proc("map", collect(opts), s.node)
	id := int32(n.ID)
	n.Make = func(tc *graph.TaskContext, children []any) (any, error) {
		next, err := streamNext[KR, VR](children)
		if err != nil {
			return nil, err
		}
		var mm graph.Meta
		run := func(k K, v V, m *graph.Meta) {
			if m.Tombstone {
				tc.Drop(n.Name)
				return
			}
			tc.Node = id
			kr, vr := fn(k, v)
			if m.NullKey {
				mm = graph.Meta{Timestamp: m.Timestamp, Headers: m.Headers}
				m = &mm
			}
			next(kr, vr, m)
		}
		if st := inlineStep[KR, VR](children); st != nil {
			return mapThen(id, fn, st, run), nil
		}
		return streamFn[K, V](run), nil
	}
	return Stream[KR, VR]{b: s.b, node: n, keyChanged: true}
}

// mapThen returns the executor of a Map (node id) whose only child is the
// step st, run in the Map's frame; tombstones and null keys go to run, the
// Map's executor on its own. Each kind of step (stepExec.shape) gets a
// function of its own, free of tests of the others: 12% of the chain's time
// in BenchmarkStatelessChain.
func mapThen[K, V, KR, VR any](id int32, fn func(K, V) (KR, VR), st *stepExec[KR, VR], run streamFn[K, V]) streamFn[K, V] {
	tc, sid := st.tc, st.id
	switch st.shape() {
	case stepFilter:
		keep, not, next := st.keep, st.not, st.next
		return func(k K, v V, m *graph.Meta) {
			if m.Tombstone || m.NullKey {
				run(k, v, m)
				return
			}
			tc.Node = id
			kr, vr := fn(k, v)
			tc.Node = sid
			if keep(kr, vr) != not {
				next(kr, vr, m)
			}
		}
	case stepForeach:
		each := st.each
		return func(k K, v V, m *graph.Meta) {
			if m.Tombstone || m.NullKey {
				run(k, v, m)
				return
			}
			tc.Node = id
			kr, vr := fn(k, v)
			tc.Node = sid
			each(kr, vr)
		}
	}
	each, next := st.each, st.next // Peek
	return func(k K, v V, m *graph.Meta) {
		if m.Tombstone || m.NullKey {
			run(k, v, m)
			return
		}
		tc.Node = id
		kr, vr := fn(k, v)
		tc.Node = sid
		each(kr, vr)
		next(kr, vr, m)
	}
}

// MapValues transforms each record's value, keeping its key (no repartition).
// Tombstones pass through without calling fn.
func MapValues[K, V, VR any](s Stream[K, V], fn func(V) VR, opts ...Opt) Stream[K, VR] {
	n := s.b.proc("map-values", collect(opts), s.node)
	id := int32(n.ID)
	n.Make = func(tc *graph.TaskContext, children []any) (any, error) {
		next, err := streamNext[K, VR](children)
		if err != nil {
			return nil, err
		}
		run := func(k K, v V, m *graph.Meta) {
			if m.Tombstone {
				var zero VR
				next(k, zero, m)
				return
			}
			tc.Node = id
			next(k, fn(v), m)
		}
		if st := inlineStep[K, VR](children); st != nil {
			return mapValuesThen(id, fn, st, run), nil
		}
		return streamFn[K, V](run), nil
	}
	return Stream[K, VR]{b: s.b, node: n, ks: s.ks, keyChanged: s.keyChanged}
}

// mapValuesThen returns the executor of a MapValues (node id) whose only
// child is the step st, run in the MapValues' frame; tombstones go to run,
// the MapValues' executor on its own. As in mapThen, each kind of step gets
// a function of its own.
func mapValuesThen[K, V, VR any](id int32, fn func(V) VR, st *stepExec[K, VR], run streamFn[K, V]) streamFn[K, V] {
	tc, sid := st.tc, st.id
	switch st.shape() {
	case stepFilter:
		keep, not, next := st.keep, st.not, st.next
		return func(k K, v V, m *graph.Meta) {
			if m.Tombstone {
				run(k, v, m)
				return
			}
			tc.Node = id
			vr := fn(v)
			tc.Node = sid
			if keep(k, vr) != not {
				next(k, vr, m)
			}
		}
	case stepForeach:
		each := st.each
		return func(k K, v V, m *graph.Meta) {
			if m.Tombstone {
				run(k, v, m)
				return
			}
			tc.Node = id
			vr := fn(v)
			tc.Node = sid
			each(k, vr)
		}
	}
	each, next := st.each, st.next // Peek
	return func(k K, v V, m *graph.Meta) {
		if m.Tombstone {
			run(k, v, m)
			return
		}
		tc.Node = id
		vr := fn(v)
		tc.Node = sid
		each(k, vr)
		next(k, vr, m)
	}
}

// SelectKey sets each record's key to fn(key, value). A grouping downstream
// repartitions. Tombstones are dropped and counted.
func SelectKey[K, V, KR any](s Stream[K, V], fn func(K, V) KR, opts ...Opt) Stream[KR, V] {
	n := s.b.proc("select-key", collect(opts), s.node)
	id := int32(n.ID)
	n.Make = func(tc *graph.TaskContext, children []any) (any, error) {
		next, err := streamNext[KR, V](children)
		if err != nil {
			return nil, err
		}
		var mm graph.Meta
		return streamFn[K, V](func(k K, v V, m *graph.Meta) {
			if m.Tombstone {
				tc.Drop(n.Name)
				return
			}
			tc.Node = id
			kr := fn(k, v)
			if m.NullKey {
				mm = graph.Meta{Timestamp: m.Timestamp, Headers: m.Headers}
				m = &mm
			}
			next(kr, v, m)
		}), nil
	}
	return Stream[KR, V]{b: s.b, node: n, vs: s.vs, keyChanged: true}
}

// FlatMap turns each record into zero or more records, emitted through emit;
// each keeps the input's timestamp and headers. A grouping downstream
// repartitions. Tombstones are dropped and counted.
func FlatMap[K, V, KR, VR any](s Stream[K, V], fn func(k K, v V, emit func(KR, VR)), opts ...Opt) Stream[KR, VR] {
	n := s.b.proc("flat-map", collect(opts), s.node)
	id := int32(n.ID)
	n.Make = func(tc *graph.TaskContext, children []any) (any, error) {
		next, err := streamNext[KR, VR](children)
		if err != nil {
			return nil, err
		}
		var mm graph.Meta
		emit := func(kr KR, vr VR) {
			next(kr, vr, &mm)
			tc.Node = id
		}
		return streamFn[K, V](func(k K, v V, m *graph.Meta) {
			if m.Tombstone {
				tc.Drop(n.Name)
				return
			}
			mm = graph.Meta{Timestamp: m.Timestamp, Headers: m.Headers}
			tc.Node = id
			fn(k, v, emit)
		}), nil
	}
	return Stream[KR, VR]{b: s.b, node: n, keyChanged: true}
}

// FlatMapValues turns each record's value into zero or more values, emitted
// through emit, keeping the key. Tombstones pass through without calling fn.
func FlatMapValues[K, V, VR any](s Stream[K, V], fn func(v V, emit func(VR)), opts ...Opt) Stream[K, VR] {
	n := s.b.proc("flat-map-values", collect(opts), s.node)
	id := int32(n.ID)
	n.Make = func(tc *graph.TaskContext, children []any) (any, error) {
		next, err := streamNext[K, VR](children)
		if err != nil {
			return nil, err
		}
		var curK K
		var cur *graph.Meta
		emit := func(vr VR) {
			next(curK, vr, cur)
			tc.Node = id
		}
		return streamFn[K, V](func(k K, v V, m *graph.Meta) {
			if m.Tombstone {
				var zero VR
				next(k, zero, m)
				return
			}
			curK, cur = k, m
			tc.Node = id
			fn(v, emit)
			cur = nil
		}), nil
	}
	return Stream[K, VR]{b: s.b, node: n, ks: s.ks, keyChanged: s.keyChanged}
}

// PunctuationType says which clock drives a punctuation.
type PunctuationType uint8

const (
	// StreamTime punctuations follow the task's stream time (the largest
	// record timestamp seen): they fire at multiples of the interval as
	// records arrive, never without records.
	StreamTime PunctuationType = iota
	// WallClockTime punctuations follow the system clock (kstest's fake
	// clock under test), firing one interval after being scheduled, then
	// every interval.
	WallClockTime
)

// Cancellable stops a scheduled punctuation.
type Cancellable interface {
	// Cancel stops the punctuation; it does not fire again.
	Cancel()
}

// Processor is the low-level API: it receives each record of a stream, may
// read and write the stores connected to it, forward any number of records,
// and schedule punctuations. A Processor is created per task (partition), so
// it may keep per-partition state in its fields.
type Processor[K, V, KR, VR any] interface {
	// Init is called once per task before the first record; keep ctx.
	Init(ctx *ProcessorContext[KR, VR]) error
	// Process handles one record. An error fails the record, as the
	// runtime's error policy says.
	Process(rec Record[K, V]) error
	// Close is called when the task closes.
	Close() error
}

// ProcessorContext is a [Processor]'s view of its task.
type ProcessorContext[K, V any] struct {
	procContext
	next streamFn[K, V]
	mm   graph.Meta
}

// procContext is what [ProcessorContext] and [FixedKeyContext] share: the
// task and the node, and the methods that read them, promoted to both.
type procContext struct {
	tc   *graph.TaskContext
	node *graph.Node
}

// Forward sends rec to the processor's successors. Call it from Process or
// from a punctuation.
func (c *ProcessorContext[K, V]) Forward(rec Record[K, V]) {
	c.mm = graph.Meta{Timestamp: rec.Timestamp, Headers: toGraphHeaders(rec.Headers), Tombstone: rec.Tombstone}
	c.next(rec.Key, rec.Value, &c.mm)
	c.tc.Node = int32(c.node.ID)
}

// Store returns the task's instance of a store connected with [WithStores].
// Wrap it with state.NewKV for typed access. Writes are recorded in the
// store's changelog.
func (c *procContext) Store(name string) (state.Store, error) {
	for _, s := range c.node.Stores {
		if s == name {
			return c.tc.Store(name)
		}
	}
	return nil, fmt.Errorf("kstream: node %s: store %q is not connected (add kstream.WithStores(%q))", c.node.Name, name, name)
}

// Schedule calls fn every interval, on stream time or on wall-clock time; fn
// receives the time in milliseconds. An error from fn fails the task as a
// processing error of this node.
func (c *procContext) Schedule(interval time.Duration, typ PunctuationType, fn func(ts int64) error) Cancellable {
	id := int32(c.node.ID)
	return c.tc.Schedule(c.node.Name, interval.Milliseconds(), typ == WallClockTime, func(ts int64) {
		c.tc.Node = id
		if err := fn(ts); err != nil {
			c.tc.Fail(c.node.Name, err)
		}
	})
}

// StreamTime returns the task's stream time: the largest record timestamp
// seen, or -1 before the first record.
func (c *procContext) StreamTime() int64 { return c.tc.StreamTime }

// WallClock returns the runtime's current wall-clock time in milliseconds.
func (c *procContext) WallClock() int64 { return c.tc.WallClock }

// Partition returns the task's partition.
func (c *procContext) Partition() int32 { return c.tc.Partition }

// Topic returns the topic of the record being processed ("" in a punctuation).
func (c *procContext) Topic() string { return c.tc.Topic }

// Offset returns the offset of the record being processed (-1 in a
// punctuation).
func (c *procContext) Offset() int64 { return c.tc.Offset }

// AppID returns the application ID.
func (c *procContext) AppID() string { return c.tc.AppID }

// Process runs a [Processor] created by supplier for each task. Stores named
// with [WithStores] are created if new and connected. The processor may change
// keys, so a grouping downstream repartitions.
func Process[K, V, KR, VR any](s Stream[K, V], supplier func() Processor[K, V, KR, VR], opts ...Opt) Stream[KR, VR] {
	o := collect(opts)
	n := s.b.proc("process", o, s.node)
	id := int32(n.ID)
	s.b.connectStores(n, o.stores)
	n.Make = func(tc *graph.TaskContext, children []any) (any, error) {
		next, err := streamNext[KR, VR](children)
		if err != nil {
			return nil, err
		}
		p := supplier()
		ctx := &ProcessorContext[KR, VR]{procContext: procContext{tc: tc, node: n}, next: next}
		if err := openProcessor(tc, n, p, func() error { return p.Init(ctx) }); err != nil {
			return nil, err
		}
		return streamFn[K, V](func(k K, v V, m *graph.Meta) {
			tc.Node = id
			err := p.Process(Record[K, V]{Key: k, Value: v, Timestamp: m.Timestamp,
				Headers: fromGraphHeaders(m.Headers), Tombstone: m.Tombstone})
			if err != nil {
				tc.Fail(n.Name, err)
			}
		}), nil
	}
	return Stream[KR, VR]{b: s.b, node: n, keyChanged: true}
}

// connectStores connects the stores named with [WithStores] to the node n of
// a Process or ProcessValues, creating those named for the first time.
func (b *Builder) connectStores(n *graph.Node, names []string) {
	for _, name := range names {
		if name == "" {
			b.g.Errorf("kstream: node %s: a store connected with WithStores needs a name (an operator built on Process takes it from kstream.Named)", n.Name)
			continue
		}
		if b.g.Store(name) == nil {
			b.g.AddStore(&graph.StoreSpec{KeyValue: true, Name: name, Changelog: graph.TopicRef{Name: name + "-changelog", Internal: true}})
		}
		n.Stores = append(n.Stores, name)
	}
}

// openProcessor checks the processor p that a supplier returned for node n,
// runs its Init (init) and has the task close it.
func openProcessor(tc *graph.TaskContext, n *graph.Node, p interface{ Close() error }, init func() error) error {
	if p == nil {
		return fmt.Errorf("kstream: node %s: the processor supplier returned nil", n.Name)
	}
	// Init runs inside Make, for which the runtime set tc.Node to n: its
	// errors and panics name n.
	if err := init(); err != nil {
		return fmt.Errorf("kstream: node %s: init: %w", n.Name, err)
	}
	tc.OnClose(func() (err error) {
		defer func() {
			if v := recover(); v != nil { // a revoke must not end the process
				err = fmt.Errorf("kstream: node %s: close: %w", n.Name, graph.Recovered(v))
			}
		}()
		if err := p.Close(); err != nil {
			return fmt.Errorf("kstream: node %s: close: %w", n.Name, err)
		}
		return nil
	})
	return nil
}

// FixedKeyRecord is a record whose key cannot be changed: what a
// [FixedKeyProcessor] receives and forwards. Its value, timestamp, headers
// and tombstone marker may be changed ([WithValue] also changes the value's
// type), but its key, read with Key, stays the one the record arrived with,
// a Kafka null key included.
//
// Only the runtime sets the key, so a record forwarded must come from
// Process: the record received (possibly modified, or kept from an earlier
// Process call and forwarded from a punctuation), or [WithValue] of it. A
// FixedKeyRecord built as a literal has K's zero value as its key.
type FixedKeyRecord[K, V any] struct {
	Value V
	// Timestamp is in milliseconds since the Unix epoch, as Kafka stores it.
	Timestamp int64
	Headers   []Header
	// Tombstone marks a record whose value is Kafka's null: a delete for
	// tables and compacted topics. Value is then V's zero value.
	Tombstone bool

	key     K
	nullKey bool // a Kafka null key, kept as it was
}

// Key returns the record's key; K's zero value for a Kafka null key, which
// stays null when the record is forwarded.
func (r FixedKeyRecord[K, V]) Key() K { return r.key }

// Time returns the record's timestamp as a time.Time.
func (r FixedKeyRecord[K, V]) Time() time.Time { return time.UnixMilli(r.Timestamp) }

// WithValue returns rec with the value v, of any type: the same key,
// timestamp and headers, and Tombstone false.
func WithValue[K, V, VR any](rec FixedKeyRecord[K, V], v VR) FixedKeyRecord[K, VR] {
	return FixedKeyRecord[K, VR]{Value: v, Timestamp: rec.Timestamp, Headers: rec.Headers, key: rec.key, nullKey: rec.nullKey}
}

// FixedKeyProcessor is the low-level API of [ProcessValues]: a [Processor]
// that cannot change keys. It receives each record of a stream, may read and
// write the stores connected to it, forward any number of records with the
// input's key, and schedule punctuations. A FixedKeyProcessor is created per
// task (partition), so it may keep per-partition state in its fields.
type FixedKeyProcessor[K, V, VR any] interface {
	// Init is called once per task before the first record; keep ctx.
	Init(ctx *FixedKeyContext[K, VR]) error
	// Process handles one record. An error fails the record, as the
	// runtime's error policy says.
	Process(rec FixedKeyRecord[K, V]) error
	// Close is called when the task closes.
	Close() error
}

// FixedKeyContext is a [FixedKeyProcessor]'s view of its task. It has the
// methods of [ProcessorContext], but its Forward takes a [FixedKeyRecord].
type FixedKeyContext[K, V any] struct {
	procContext
	next streamFn[K, V]
	mm   graph.Meta
}

// Forward sends rec to the processor's successors, with the key rec arrived
// with. Call it from Process or from a punctuation; rec must come from
// Process (see [FixedKeyRecord]).
func (c *FixedKeyContext[K, V]) Forward(rec FixedKeyRecord[K, V]) {
	c.mm = graph.Meta{Timestamp: rec.Timestamp, Headers: toGraphHeaders(rec.Headers), Tombstone: rec.Tombstone, NullKey: rec.nullKey}
	c.next(rec.key, rec.Value, &c.mm)
	c.tc.Node = int32(c.node.ID)
}

// ProcessValues runs a [FixedKeyProcessor] created by supplier for each task:
// Kafka Streams' processValues. Stores named with [WithStores] are created if
// new and connected, as for [Process]. The processor receives every record,
// tombstones included, and cannot change keys, so unlike Process it does not
// make a grouping or join downstream repartition (one still does if the keys
// changed before ProcessValues). It can change values, timestamps and
// headers.
func ProcessValues[K, V, VR any](s Stream[K, V], supplier func() FixedKeyProcessor[K, V, VR], opts ...Opt) Stream[K, VR] {
	o := collect(opts)
	n := s.b.proc("process-values", o, s.node)
	id := int32(n.ID)
	s.b.connectStores(n, o.stores)
	n.Make = func(tc *graph.TaskContext, children []any) (any, error) {
		next, err := streamNext[K, VR](children)
		if err != nil {
			return nil, err
		}
		p := supplier()
		ctx := &FixedKeyContext[K, VR]{procContext: procContext{tc: tc, node: n}, next: next}
		if err := openProcessor(tc, n, p, func() error { return p.Init(ctx) }); err != nil {
			return nil, err
		}
		return streamFn[K, V](func(k K, v V, m *graph.Meta) {
			tc.Node = id
			err := p.Process(FixedKeyRecord[K, V]{Value: v, Timestamp: m.Timestamp,
				Headers: fromGraphHeaders(m.Headers), Tombstone: m.Tombstone, key: k, nullKey: m.NullKey})
			if err != nil {
				tc.Fail(n.Name, err)
			}
		}), nil
	}
	return Stream[K, VR]{b: s.b, node: n, ks: s.ks, keyChanged: s.keyChanged}
}
