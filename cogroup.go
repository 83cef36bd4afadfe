package kstream

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/serde"
)

// Cogrouped is several grouped streams with the same key type K, each with
// its own value type and aggregator, that update one aggregate of type A per
// key, in one store: Kafka Streams' CogroupedKStream. Make it with
// [Cogroup], add streams with [CogroupWith], and aggregate it with
// [AggregateCogrouped], [AggregateCogroupedWindowed] or
// [AggregateCogroupedSession].
//
// A Cogrouped is a value: CogroupWith returns a new one and leaves its
// argument as it was, so one Cogrouped can start several. The zero Cogrouped
// holds no stream; only CogroupWith accepts it (as [Cogroup]).
//
// The aggregation reads every cogrouped stream in one sub-topology, since
// they update one store: its input topics must be co-partitioned (the same
// partition count, records partitioned by the same key bytes), as for joins.
// A grouped stream whose key changed upstream, or made by [GroupBy], is
// repartitioned first, as for [Aggregate]: through its grouping's topic
// "<appID>-<grouping name>-repartition" when the grouping is [Named] (shared
// with the grouping's other aggregations), else through
// "<appID>-<name>-cogroup-<i>-repartition", name being the aggregation's and
// i the stream's position in the Cogrouped, from 0.
type Cogrouped[K, A any] struct {
	b      *Builder
	inputs []cogroupInput[K, A]
}

// cogroupInput is one stream of a Cogrouped, with its value type erased.
type cogroupInput[K, A any] struct {
	stream    *graph.Node // the grouped stream's node
	gname     string      // the grouping's name ("" if unnamed)
	repart    bool        // the aggregation repartitions the stream
	ks        serde.Serde[K]
	nilAgg    bool
	aggregate func(c *cogroupCore[K, A], i int, ks serde.Serde[K]) (*graph.Node, serde.Serde[K])
}

// cogroupFold folds one record's value into an aggregate: the value of a
// record of any of the cogrouped streams, as the aggregation's shared
// executor sees it.
type cogroupFold[K, A any] = func(k K, a A) A

// cogroupCore is what the nodes of one cogrouped aggregation share: its name
// and the maker of the executor that all of its inputs feed in each task.
// That executor is an aggregation (non-windowed, windowed or session) whose
// records carry a cogroupFold as their value.
type cogroupCore[K, A any] struct {
	name  string
	make  graph.MakeFunc
	tasks sjTaskStates[streamFn[K, cogroupFold[K, A]]]
}

// shared returns the task's shared executor, making it for the first input.
// children are the first input's: the aggregation's result node.
func (c *cogroupCore[K, A]) shared(tc *graph.TaskContext, children []any) (streamFn[K, cogroupFold[K, A]], error) {
	p, err := c.tasks.get(tc, func() (*streamFn[K, cogroupFold[K, A]], error) {
		ex, err := c.make(tc, children)
		if err != nil {
			return nil, err
		}
		fn, ok := ex.(streamFn[K, cogroupFold[K, A]])
		if !ok {
			return nil, fmt.Errorf("kstream: internal error: cogroup %s: executor is %T", c.name, ex)
		}
		return &fn, nil
	})
	if err != nil {
		return nil, err
	}
	return *p, nil
}

// cogroupSlot holds the value of the record an input is folding, so that its
// fold, a method value made once per task, allocates nothing per record.
type cogroupSlot[K, V, A any] struct {
	agg func(K, V, A) A
	cur V
}

func (s *cogroupSlot[K, V, A]) fold(k K, a A) A { return s.agg(k, s.cur, a) }

// Cogroup starts a cogrouped aggregation with the grouped stream g, whose
// records agg folds into the aggregate (Kafka Streams' KGroupedStream.cogroup).
// Add more streams with [CogroupWith], then aggregate with
// [AggregateCogrouped], [AggregateCogroupedWindowed] or
// [AggregateCogroupedSession].
func Cogroup[K, V, A any](g Grouped[K, V], agg func(K, V, A) A) Cogrouped[K, A] {
	if g.s.b == nil {
		return Cogrouped[K, A]{}
	}
	return Cogrouped[K, A]{b: g.s.b, inputs: []cogroupInput[K, A]{cogroupInputOf(g, agg)}}
}

// CogroupWith returns c with one more grouped stream, g, whose records agg
// folds into the shared aggregate (Kafka Streams' CogroupedKStream.cogroup).
// Each stream may have its own value type. A stream of another Builder is a
// Build error, and so is a stream cogrouped twice (its records would be
// folded twice; Kafka Streams keeps the last aggregator given for one
// KGroupedStream).
func CogroupWith[K, V, A any](c Cogrouped[K, A], g Grouped[K, V], agg func(K, V, A) A) Cogrouped[K, A] {
	if c.b == nil {
		return Cogroup(g, agg)
	}
	if g.s.b != c.b {
		what := "a zero Grouped"
		if g.s.node != nil {
			what = "the grouped stream after node " + g.s.node.Name
		}
		c.b.g.Errorf("kstream: CogroupWith: %s belongs to another Builder than the Cogrouped (first stream after node %s)", what, c.inputs[0].stream.Name)
		return c
	}
	for _, in := range c.inputs {
		if in.stream == g.s.node {
			c.b.g.Errorf("kstream: CogroupWith: the stream after node %s is cogrouped twice", g.s.node.Name)
			return c
		}
	}
	c.inputs = append(slices.Clip(c.inputs), cogroupInputOf(g, agg))
	return c
}

func cogroupInputOf[K, V, A any](g Grouped[K, V], agg func(K, V, A) A) cogroupInput[K, A] {
	in := cogroupInput[K, A]{stream: g.s.node, gname: g.name, repart: g.repartition || g.s.keyChanged, ks: g.s.ks, nilAgg: agg == nil}
	in.aggregate = func(c *cogroupCore[K, A], i int, ks serde.Serde[K]) (*graph.Node, serde.Serde[K]) {
		g := g
		if g.s.ks == nil {
			g.s.ks = ks // another stream's key serde serves this one
		}
		node := c.name + "-cogroup-agg-" + strconv.Itoa(i)
		src, ks := groupedInputAs(g, c.name+"-cogroup-"+strconv.Itoa(i), node)
		n := g.s.b.proc("cogroup-agg", options{name: node}, src.node)
		n.Stores = []string{c.name}
		n.Make = func(tc *graph.TaskContext, children []any) (any, error) {
			shared, err := c.shared(tc, children)
			if err != nil {
				return nil, err
			}
			slot := &cogroupSlot[K, V, A]{agg: agg}
			fold := slot.fold
			return streamFn[K, V](func(k K, v V, m *graph.Meta) {
				slot.cur = v
				shared(k, fold, m)
				var zero V
				slot.cur = zero
			}), nil
		}
		return n, ks
	}
	return in
}

// AggregateCogrouped folds the records of every stream of c into one
// aggregate per key, starting from init(), each stream with its own
// aggregator (Kafka Streams' CogroupedKStream.aggregate): every record
// updates the key's aggregate and forwards it, stamped with the larger of
// the record's timestamp and the aggregate's, as [Aggregate] does. Records
// with a null key and tombstones are dropped and counted (under the
// aggregation's name), as Kafka Streams does.
//
// AggregateCogrouped requires [Named]: the name names the result node, the
// store and its changelog "<appID>-<name>-changelog", and the nodes
// "<name>-cogroup-agg-<i>" that fold each stream in. aSerde encodes the
// aggregate (nil: the built-in one, if any). [Cached] holds updates back as
// for Aggregate.
func AggregateCogrouped[K, A any](c Cogrouped[K, A], init func() A, aSerde serde.Serde[A], opts ...Opt) Table[K, A] {
	if c.b == nil {
		return Table[K, A]{}
	}
	o := collect(opts)
	core, ks, as, merge := cogroupNodes(c, "cogroup-aggregate", init, aSerde, o, false)
	first, agg := cogroupFns[K](init)
	core.make = streamAggMake(merge, core.name, ks, as, first, agg, o.cached)
	merge.Make = func(_ *graph.TaskContext, children []any) (any, error) { return tableNext[K, A](children) }
	return Table[K, A]{b: c.b, node: merge, ks: ks, vs: as, store: core.name}
}

// AggregateCogroupedWindowed is [AggregateCogrouped] in windows w: tumbling
// or hopping windows ([Tumbling], [Hopping]) or sliding windows ([Sliding]),
// as [WindowedBy] then [AggregateWindowed] (Kafka Streams'
// CogroupedKStream.windowedBy(...).aggregate). Windows, grace, lateness,
// [Retention], [EmitOnWindowClose] and [Cached] work exactly as for
// AggregateWindowed, with one stream time per aggregation and task: the
// largest timestamp among the records of all the streams. (Kafka Streams
// gives each stream's processor its own stream time, so a record of one
// stream can update a window that the records of another have closed; and it
// offers no emit strategy on cogrouped windows, only suppress.) The result
// is keyed by [Windowed] keys, materialized in a window store named by
// [Named] (required).
func AggregateCogroupedWindowed[K, A any](c Cogrouped[K, A], w Windows, init func() A, aSerde serde.Serde[A], opts ...Opt) Table[Windowed[K], A] {
	if c.b == nil {
		return Table[Windowed[K], A]{}
	}
	var spec windowSpec
	if w == nil {
		spec.err = "nil window specification"
	} else {
		spec = w.windowSpec()
	}
	op := "cogroup-windowed-aggregate"
	minimum, what := spec.size+spec.grace, "the window size plus the grace period"
	if spec.kind == kindSliding {
		op = "cogroup-sliding-windowed-aggregate"
		minimum, what = 2*spec.diff+spec.grace, "twice the time difference plus the grace period"
	}
	o := collect(opts)
	core, ks, as, merge := cogroupNodes(c, op, init, aSerde, o, true)
	if spec.err != "" {
		c.b.g.Errorf("kstream: %s %s: %s", op, core.name, spec.err)
	}
	first, agg := cogroupFns[K](init)
	wa := &windowAgg[K, cogroupFold[K, A], A]{node: merge, name: core.name, ks: ks, as: as, first: first, agg: agg, spec: spec,
		retention:   windowRetention(c.b, o, op, core.name, spec.err, minimum, what),
		emitOnClose: hasEmitOnClose(opts), cached: o.cached}
	if spec.kind == kindSliding {
		core.make = wa.makeSliding
	} else {
		core.make = wa.makeTime
	}
	merge.Make = func(_ *graph.TaskContext, children []any) (any, error) { return tableNext[Windowed[K], A](children) }
	return Table[Windowed[K], A]{b: c.b, node: merge, ks: windowedKeySerde(ks), vs: as, store: core.name}
}

// AggregateCogroupedSession is [AggregateCogrouped] in session windows of
// inactivity gap gap and grace period grace, as [SessionWindowedBy] (with
// [SessionGrouped.Grace]) then [AggregateSession] (Kafka Streams'
// CogroupedKStream.windowedBy(SessionWindows).aggregate): for each record,
// the aggregate starts from init(), the sessions the record merges are
// folded in with merge(key, aggregate, session aggregate), oldest first, and
// then the record with its stream's aggregator. Sessions, merges, lateness,
// [Retention], [EmitOnWindowClose] and [Cached] work exactly as for
// AggregateSession, with one stream time per aggregation and task (see
// [AggregateCogroupedWindowed]). gap must be positive, grace not negative.
func AggregateCogroupedSession[K, A any](c Cogrouped[K, A], gap, grace time.Duration, init func() A, merge func(K, A, A) A, aSerde serde.Serde[A], opts ...Opt) Table[Windowed[K], A] {
	if c.b == nil {
		return Table[Windowed[K], A]{}
	}
	const op = "cogroup-session-windowed-aggregate"
	var specErr string
	gapMs := millis("session inactivity gap", gap, &specErr)
	if specErr == "" && gapMs <= 0 {
		specErr = fmt.Sprintf("session inactivity gap %v must be positive", gap)
	}
	graceMs := graceMillis(grace, &specErr)
	o := collect(opts)
	core, ks, as, mn := cogroupNodes(c, op, init, aSerde, o, true)
	if specErr != "" {
		c.b.g.Errorf("kstream: %s %s: %s", op, core.name, specErr)
	}
	if merge == nil {
		c.b.g.Errorf("kstream: %s %s: the session merger is nil", op, core.name)
	}
	ops := sessionOps[K, cogroupFold[K, A], A]{
		start: func() (A, bool) { return init(), true },
		merge: func(k K, a A, _ bool, b A) A { return merge(k, a, b) },
		add:   func(k K, f cogroupFold[K, A], a A, _ bool) A { return f(k, a) },
	}
	wa := &windowAgg[K, cogroupFold[K, A], A]{node: mn, name: core.name, ks: ks, as: as, session: ops,
		spec: windowSpec{size: gapMs, grace: graceMs}, emitOnClose: hasEmitOnClose(opts), cached: o.cached,
		retention: windowRetention(c.b, o, op, core.name, specErr, gapMs+graceMs, "the inactivity gap plus the grace period")}
	core.make = wa.makeSession
	mn.Make = func(_ *graph.TaskContext, children []any) (any, error) { return tableNext[Windowed[K], A](children) }
	return Table[Windowed[K], A]{b: c.b, node: mn, ks: windowedKeySerde(ks), vs: as, store: core.name}
}

// cogroupFns returns the first and agg functions of the shared executor: a
// record's value is the fold of its stream.
func cogroupFns[K, A any](init func() A) (first func(K, cogroupFold[K, A]) A, agg func(K, cogroupFold[K, A], A) A) {
	first = func(k K, f cogroupFold[K, A]) A { return f(k, init()) }
	agg = func(k K, f cogroupFold[K, A], a A) A { return f(k, a) }
	return first, agg
}

// cogroupNodes checks a cogrouped aggregation and adds its nodes and store:
// one node per stream, which folds the stream's records in (after its
// repartition, if any), and the result node, named by the aggregation's
// name, which the caller gives its executor. It returns the key and
// aggregate serdes (nil when missing: a Build error says so).
func cogroupNodes[K, A any](c Cogrouped[K, A], op string, init func() A, aSerde serde.Serde[A], o options, windowed bool) (*cogroupCore[K, A], serde.Serde[K], serde.Serde[A], *graph.Node) {
	b := c.b
	allow := allowCached
	if windowed {
		allow = allowWindowed
	}
	name := b.requireName(o, op, c.inputs[0].stream, allow)
	core := &cogroupCore[K, A]{name: name}
	if init == nil {
		b.g.Errorf("kstream: %s %s: the initializer is nil", op, name)
	}
	// Repartition topics: each must be new. (A named grouping's topic is
	// shared with its other aggregations, but two groupings of one name
	// would write one topic.)
	topics := map[string]int{}
	var fallback serde.Serde[K]
	for i, in := range c.inputs {
		if in.nilAgg {
			b.g.Errorf("kstream: %s %s: the aggregator of stream %d (after node %s) is nil", op, name, i, in.stream.Name)
		}
		if fallback == nil {
			fallback = in.ks
		}
		if !in.repart {
			continue
		}
		topic := name + "-cogroup-" + strconv.Itoa(i)
		if in.gname != "" {
			topic = in.gname
		}
		if j, dup := topics[topic]; dup {
			b.g.Errorf("kstream: %s %s: streams %d (after node %s) and %d (after node %s) would both repartition through topic <appID>-%s-repartition: name their groupings apart",
				op, name, j, c.inputs[j].stream.Name, i, in.stream.Name, topic)
		}
		topics[topic] = i
	}
	parents := make([]*graph.Node, 0, len(c.inputs))
	var ks serde.Serde[K]
	for i, in := range c.inputs {
		n, iks := in.aggregate(core, i, fallback)
		parents = append(parents, n)
		if ks == nil {
			ks = iks
		}
	}
	as := resolveSerde(b, aSerde, name, "aggregate value")
	merge := b.proc(op, options{name: name}, parents...)
	merge.Stores = []string{name}
	b.g.AddStore(&graph.StoreSpec{KeyValue: !windowed, Windowed: windowed, Name: name,
		Changelog: graph.TopicRef{Name: name + "-changelog", Internal: true}, Timestamped: true})
	return core, ks, as, merge
}
