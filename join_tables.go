package kstream

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/serde"
)

// Table–table joins: on the primary key (JoinTables, LeftJoinTables,
// OuterJoinTables) and on a foreign key extracted from the left value
// (JoinTablesFK, LeftJoinTablesFK). Both kinds follow Kafka Streams 4.x
// record for record: which updates produce output, with which old and new
// values, and with which timestamps.
//
// Every join is named with Named(name), which names:
//
//   - the result's store "name" (changelog "<appID>-name-changelog"): join
//     results are always materialized, so they can be queried and joined
//     again without another store;
//   - "name-left-store" / "name-right-store": a store materializing an input
//     table that has none (a Filter or MapTableValues result), since a join
//     looks the other side up by key;
//   - for foreign-key joins, the topics "<appID>-name-subscription-registration"
//     and "<appID>-name-subscription-response" and the store
//     "name-subscription-store".

// ---------------------------------------------------------------------------
// Primary-key joins

// JoinTables joins two tables on their key (inner join): the result holds
// joiner(k, v, vo) for every key present in both. An update on either side
// looks the key up in the other side's store; if the other side has the key,
// the result is updated (old and new joined values are forwarded, so table
// aggregations downstream work), and a delete on either side deletes the
// result. The result's timestamp is the larger of the update's and the
// other side's stored timestamp.
//
// As in Kafka Streams, an update is forwarded even when the joined value does
// not change, and a delete of a key that the updated side did not have is
// still forwarded as a delete (a tombstone from ToStream) when the other side
// has the key; an update whose key the other side lacks produces nothing.
//
// The tables must be co-partitioned: the join puts them in one sub-topology,
// and the runtime checks that their topics have equal partition counts.
// [Named] is required: it names the result's store (the result is always
// materialized, unlike in Kafka Streams, where it is on request) and, for an
// input without a store (a Filter or MapTableValues result), the store
// "<name>-left-store" or "<name>-right-store" the join materializes it in.
// vrSerde encodes the result in its store (nil: the built-in one, if any).
func JoinTables[K, V, VO, VR any](t Table[K, V], o Table[K, VO], joiner func(k K, v V, vo VO) VR, vrSerde serde.Serde[VR], opts ...Opt) Table[K, VR] {
	this := func(k K, c *change[V], r VO, found bool, out *change[VR]) bool {
		if !found {
			return false
		}
		*out = change[VR]{HasNew: c.HasNew, HasOld: c.HasOld}
		if c.HasNew {
			out.New = joiner(k, c.New, r)
		}
		if c.HasOld {
			out.Old = joiner(k, c.Old, r)
		}
		return true
	}
	other := func(k K, c *change[VO], l V, found bool, out *change[VR]) bool {
		if !found {
			return false
		}
		*out = change[VR]{HasNew: c.HasNew, HasOld: c.HasOld}
		if c.HasNew {
			out.New = joiner(k, l, c.New)
		}
		if c.HasOld {
			out.Old = joiner(k, l, c.Old)
		}
		return true
	}
	return tableTableJoin("table-join", joiner == nil, t, o, this, other, vrSerde, opts)
}

// LeftJoinTables joins two tables on their key, keeping every key of t: the
// result holds joiner(k, v, vo, true) where o has the key and
// joiner(k, v, zero, false) where it does not (ok says whether vo is real).
//
// Kafka Streams' rules, which this follows exactly:
//   - an update of t always updates the result (old and new joined values);
//     a delete of t deletes it; a delete of a key that neither table has
//     produces nothing;
//   - an update of o updates the result only where t has the key: the new
//     result is joiner(k, v, vo, true), or joiner(k, v, zero, false) for a
//     delete, so deleting the right row updates the result rather than
//     deleting it, and deleting a right row that did not exist still
//     forwards an update (with equal old and new values);
//   - the timestamp is the larger of the update's and the other side's
//     stored timestamp, or the update's where the other side lacks the key.
//
// Co-partitioning, naming and stores are as for [JoinTables].
func LeftJoinTables[K, V, VO, VR any](t Table[K, V], o Table[K, VO], joiner func(k K, v V, vo VO, ok bool) VR, vrSerde serde.Serde[VR], opts ...Opt) Table[K, VR] {
	this := func(k K, c *change[V], r VO, found bool, out *change[VR]) bool {
		if !found && !c.HasNew && !c.HasOld {
			return false
		}
		*out = change[VR]{HasNew: c.HasNew, HasOld: c.HasOld}
		if c.HasNew {
			out.New = joiner(k, c.New, r, found)
		}
		if c.HasOld {
			out.Old = joiner(k, c.Old, r, found)
		}
		return true
	}
	other := func(k K, c *change[VO], l V, found bool, out *change[VR]) bool {
		if !found {
			return false
		}
		*out = change[VR]{HasNew: true, HasOld: true}
		out.New = joiner(k, l, c.New, c.HasNew)
		out.Old = joiner(k, l, c.Old, c.HasOld)
		return true
	}
	return tableTableJoin("table-left-join", joiner == nil, t, o, this, other, vrSerde, opts)
}

// OuterJoinTables joins two tables on their key, keeping every key of either:
// the result holds joiner(k, v, vOK, vo, voOK), where vOK and voOK say which
// sides have the key (at least one does; a missing side is its zero value).
//
// Both sides follow the rule of the left side of [LeftJoinTables]: an update
// always updates the result, joined with the other side if present; a delete
// of a key the other side has updates the result to the other side alone, a
// delete of a key the other side lacks deletes the result, and a delete of a
// key neither side has produces nothing. The timestamp is the larger of the
// update's and the other side's stored timestamp, or the update's where the
// other side lacks the key.
//
// Co-partitioning, naming and stores are as for [JoinTables].
func OuterJoinTables[K, V, VO, VR any](t Table[K, V], o Table[K, VO], joiner func(k K, v V, vOK bool, vo VO, voOK bool) VR, vrSerde serde.Serde[VR], opts ...Opt) Table[K, VR] {
	this := func(k K, c *change[V], r VO, found bool, out *change[VR]) bool {
		if !found && !c.HasNew && !c.HasOld {
			return false
		}
		*out = change[VR]{HasNew: found || c.HasNew, HasOld: found || c.HasOld}
		if out.HasNew {
			out.New = joiner(k, c.New, c.HasNew, r, found)
		}
		if out.HasOld {
			out.Old = joiner(k, c.Old, c.HasOld, r, found)
		}
		return true
	}
	other := func(k K, c *change[VO], l V, found bool, out *change[VR]) bool {
		if !found && !c.HasNew && !c.HasOld {
			return false
		}
		*out = change[VR]{HasNew: found || c.HasNew, HasOld: found || c.HasOld}
		if out.HasNew {
			out.New = joiner(k, l, found, c.New, c.HasNew)
		}
		if out.HasOld {
			out.Old = joiner(k, l, found, c.Old, c.HasOld)
		}
		return true
	}
	return tableTableJoin("table-outer-join", joiner == nil, t, o, this, other, vrSerde, opts)
}

// tableJoinStep computes one side's output for an update of its table, given the
// other table's value for the key (found false: the other table lacks it).
// It returns false when the update produces no output.
type tableJoinStep[K, VIn, VOther, VR any] func(k K, c *change[VIn], other VOther, found bool, out *change[VR]) bool

// tableTableJoin builds a primary-key join as Kafka Streams does: a processor per
// side ("<name>-join-this" below t, "<name>-join-other" below o), each reading
// the other side's store, and a merge node "<name>" that materializes the
// result in store "<name>" and forwards it.
func tableTableJoin[K, V, VO, VR any](op string, nilJoiner bool, t Table[K, V], o Table[K, VO], this tableJoinStep[K, V, VO, VR], other tableJoinStep[K, VO, V, VR], vrSerde serde.Serde[VR], os []Opt) Table[K, VR] {
	b := t.b
	name := b.requireName(collect(os), op, t.node, 0)
	if o.b != b {
		b.g.Errorf("kstream: %s %s: table %s belongs to another Builder", op, name, o.node.Name)
		return Table[K, VR]{b: b, node: t.node, ks: t.ks}
	}
	if nilJoiner {
		b.g.Errorf("kstream: %s %s: the joiner is nil", op, name)
	}
	l := tableJoinInput(t, name, "left")
	r := tableJoinInput(o, name, "right")
	vrs := resolveSerde(b, vrSerde, name, "result value")

	thisN := b.proc(op+"-this", options{name: name + "-join-this"}, l.node)
	thisN.Stores = []string{r.store}
	otherN := b.proc(op+"-other", options{name: name + "-join-other"}, r.node)
	otherN.Stores = []string{l.store}
	merge := b.proc(op, options{name: name}, thisN, otherN)
	merge.Stores = []string{name}
	b.g.AddStore(&graph.StoreSpec{KeyValue: true, Name: name, Changelog: graph.TopicRef{Name: name + "-changelog", Internal: true}, Timestamped: true})

	thisN.Make = tableJoinSideMake(thisN, r.store, r.ks, r.vs, this)
	otherN.Make = tableJoinSideMake(otherN, l.store, l.ks, l.vs, other)
	merge.Make = tableMaterializeMake(merge, name, l.ks, vrs)
	return Table[K, VR]{b: b, node: merge, ks: l.ks, vs: vrs, store: name}
}

// tableJoinSideMake runs one side of a primary-key join: it looks each update's
// key up in the other side's store and forwards what step computes, stamped
// with the larger of the update's and the other value's timestamps.
func tableJoinSideMake[K, VIn, VOther, VR any](n *graph.Node, otherStore string, ks serde.Serde[K], vs serde.Serde[VOther], step tableJoinStep[K, VIn, VOther, VR]) graph.MakeFunc {
	id := int32(n.ID)
	return func(tc *graph.TaskContext, children []any) (any, error) {
		next, err := tableNext[K, VR](children)
		if err != nil {
			return nil, err
		}
		st, err := tc.Store(otherStore)
		if err != nil {
			return nil, err
		}
		other := tableReader[K, VOther]{st: st, ks: ks, vs: vs}
		var out change[VR]
		var mm graph.Meta
		return tableFn[K, VIn](func(k K, c *change[VIn], m *graph.Meta) {
			if m.NullKey {
				tc.Drop(n.Name)
				return
			}
			tc.Node = id
			ov, ots, found, err := other.get(k)
			if err != nil {
				tc.Fail(n.Name, err)
				return
			}
			if !step(k, c, ov, found, &out) {
				return
			}
			ts := m.Timestamp
			if found {
				ts = max(ts, ots)
			}
			mm = graph.Meta{Timestamp: ts, Headers: m.Headers}
			next(k, &out, &mm)
		}), nil
	}
}

// tableJoinInput returns t with resolved serdes and a store a join can read: its
// own, or, for a table without one, the store "<name>-<side>-store" filled by
// a node inserted below t.
func tableJoinInput[K, V any](t Table[K, V], name, side string) Table[K, V] {
	what := name + " (" + side + " side)"
	t.ks = resolveSerde(t.b, t.ks, what, "key")
	t.vs = resolveSerde(t.b, t.vs, what, "value")
	if t.store != "" {
		return t
	}
	store := name + "-" + side + "-store"
	n := t.b.proc("table-materialize", options{name: store}, t.node)
	n.Stores = []string{store}
	t.b.g.AddStore(&graph.StoreSpec{KeyValue: true, Name: store, Changelog: graph.TopicRef{Name: store + "-changelog", Internal: true}, Timestamped: true})
	n.Make = tableMaterializeMake(n, store, t.ks, t.vs)
	t.node, t.store = n, store
	return t
}

// tableMaterializeMake writes each table update to store (the new value with the
// update's timestamp, or a delete) and forwards the update unchanged.
func tableMaterializeMake[K, V any](n *graph.Node, store string, ks serde.Serde[K], vs serde.Serde[V]) graph.MakeFunc {
	return func(tc *graph.TaskContext, children []any) (any, error) {
		next, err := tableNext[K, V](children)
		if err != nil {
			return nil, err
		}
		st, err := tc.Store(store)
		if err != nil {
			return nil, err
		}
		var kbuf, vbuf []byte
		id := int32(n.ID)
		return tableFn[K, V](func(k K, c *change[V], m *graph.Meta) {
			if m.NullKey {
				tc.Drop(n.Name)
				return
			}
			tc.Node = id // for the serdes
			var err error
			if kbuf, err = ks.Append(kbuf[:0], k); err != nil {
				tc.Fail(n.Name, fmt.Errorf("encoding key: %w", err))
				return
			}
			if c.HasNew {
				if vbuf, err = appendTimestamped(vbuf[:0], m.Timestamp, c.New, vs); err != nil {
					tc.Fail(n.Name, fmt.Errorf("encoding value: %w", err))
					return
				}
				err = st.Put(kbuf, vbuf)
			} else {
				err = st.Delete(kbuf)
			}
			if err != nil {
				tc.Fail(n.Name, err)
				return
			}
			next(k, c, m)
		}), nil
	}
}

// ---------------------------------------------------------------------------
// Foreign-key joins (KIP-213)

// JoinTablesFK joins each row of t with the row of o whose key is the row's
// foreign key, fkFn(k, v) (inner join): the result, keyed like t, holds
// joiner(k, v, vo) for every row of t whose foreign key o has. fkFn returns
// ok=false for a row without a foreign key (Kafka Streams' null): an inner
// join drops such a row (counted as dropped by "<name>-subscription-send")
// and deletes its previous result, if any.
//
// The tables need not be co-partitioned. As in Kafka Streams, each row of t
// subscribes to its foreign key through the internal topic
// "<appID>-<name>-subscription-registration", keyed by the foreign key
// encoded with o's key serde (so o's topic must be partitioned by Kafka's
// default partitioner over those bytes, as a topic written with that serde
// is). o's side keeps the subscriptions in the store
// "<name>-subscription-store", keyed by (foreign key, primary key), and
// answers through "<appID>-<name>-subscription-response", to the partition
// of t's task that subscribed. An update of t is answered with o's current
// row; an update of o is sent to every row of t subscribed to its key. A row
// of t whose foreign key changes unsubscribes from the old one. Each
// subscription carries a 128-bit hash (the first half of SHA-256) of the
// serialized row of t, and a response whose hash no longer matches the row
// (it changed meanwhile) is discarded, as Kafka Streams does with murmur3.
//
// Output follows Kafka Streams 4.x exactly, surprises included:
//   - timestamps: a result caused by an update of t has the larger of that
//     update's timestamp and o's row's; one caused by an update of o has the
//     timestamp of o's update alone (not the larger of the two);
//   - an update of o is forwarded to its subscribers even when o's value did
//     not change; a delete of o's row deletes their results, and a delete
//     of a key o did not have still sends its subscribers a tombstone;
//   - an update of t whose foreign key changed to one o lacks deletes the
//     result (a tombstone even if there was none before); a new row whose
//     foreign key o lacks produces nothing;
//   - a delete of t's row deletes the result (a tombstone even if the row had
//     no match).
//
// The result is materialized in store "<name>" (changelog
// "<appID>-<name>-changelog") and forwards old and new values, so table
// aggregations downstream work. [Named] is required. A table without a store
// (a Filter or MapTableValues result) is materialized in
// "<name>-left-store" or "<name>-right-store", since both sides are read by
// key. vrSerde encodes the result (nil: the built-in one, if any).
func JoinTablesFK[K, V, KO, VO, VR any](t Table[K, V], o Table[KO, VO], fkFn func(k K, v V) (KO, bool), joiner func(k K, v V, vo VO) VR, vrSerde serde.Serde[VR], opts ...Opt) Table[K, VR] {
	var join func(K, V, VO, bool) VR
	if joiner != nil {
		join = func(k K, v V, vo VO, _ bool) VR { return joiner(k, v, vo) }
	}
	return joinTablesFK("table-fk-join", false, t, o, fkFn, join, vrSerde, opts)
}

// LeftJoinTablesFK is [JoinTablesFK] keeping every row of t: a row whose
// foreign key o lacks, or that has no foreign key (fkFn returns ok=false),
// yields joiner(k, v, zero, false); ok is true when vo is o's row.
//
// As in Kafka Streams, every update of t produces a result (after a round
// trip through the subscription topics; a row without a foreign key is
// answered at once, with the update's timestamp), a delete of t's row
// deletes the result, and a delete of o's row turns its subscribers' results
// into joiner(k, v, zero, false) with the delete's timestamp. Timestamps,
// topics, stores and naming are as for [JoinTablesFK].
func LeftJoinTablesFK[K, V, KO, VO, VR any](t Table[K, V], o Table[KO, VO], fkFn func(k K, v V) (KO, bool), joiner func(k K, v V, vo VO, ok bool) VR, vrSerde serde.Serde[VR], opts ...Opt) Table[K, VR] {
	return joinTablesFK("table-fk-left-join", true, t, o, fkFn, joiner, vrSerde, opts)
}

// Subscription instructions, as in Kafka Streams' SubscriptionWrapper.
const (
	// fkSubDeleteAndPropagate removes the subscription and answers with no
	// foreign value: the result is deleted.
	fkSubDeleteAndPropagate byte = iota + 1
	// fkSubDeleteNoPropagate removes the subscription of a row that moved to
	// another foreign key; no answer.
	fkSubDeleteNoPropagate
	// fkSubPropagateNullIfMissing subscribes and answers even when the
	// foreign row is missing (the result is then deleted, or left-joined).
	fkSubPropagateNullIfMissing
	// fkSubPropagateOnlyIfFound subscribes and answers only if the foreign
	// row exists.
	fkSubPropagateOnlyIfFound
)

// Record formats of the foreign-key join's internal topics and store. Keys
// are the foreign key (subscriptions) or the primary key (responses) as the
// tables' key serdes encode them; values:
//
//	subscription:  version(1) instruction(1) partition(4, big-endian) hashFlag(1) [hash(16)] primaryKey...
//	response:      version(1) flags(1: 1 = hash, 2 = foreign value) [hash(16)] [foreignValue...]
//	store value:   timestamp(8) partition(4) hashFlag(1) [hash(16)]
//
// The subscription store's key is the foreign key's bytes in the
// order-preserving, self-delimiting encoding of serde.AppendOrderedBytes,
// followed by the primary key's bytes, so the subscribers of one foreign key
// are one prefix range. The partition is that of t's task, which the
// response goes back to.
const (
	fkFormatVersion  = 1
	fkRespHasHash    = 1
	fkRespHasForeign = 2
	fkHashLen        = 16
)

var errBadFKRecord = errors.New("malformed foreign-key join record")

// fkValueHash is the hash a subscription carries of the serialized left value.
func fkValueHash(b []byte) (h [fkHashLen]byte) {
	s := sha256.Sum256(b)
	copy(h[:], s[:fkHashLen])
	return h
}

type fkSubscription struct {
	instruction byte
	partition   int32
	hasHash     bool
	hash        [fkHashLen]byte
	pk          []byte
}

func appendFKSubscription(dst []byte, instr byte, partition int32, hasHash bool, h *[fkHashLen]byte, pk []byte) []byte {
	dst = append(dst, fkFormatVersion, instr)
	dst = binary.BigEndian.AppendUint32(dst, uint32(partition))
	dst = appendFKHash(dst, hasHash, h)
	return append(dst, pk...)
}

func appendFKHash(dst []byte, hasHash bool, h *[fkHashLen]byte) []byte {
	if !hasHash {
		return append(dst, 0)
	}
	dst = append(dst, 1)
	return append(dst, h[:]...)
}

// parseFKHash reads a hash flag and hash; it returns the rest of b.
func parseFKHash(b []byte) (has bool, h [fkHashLen]byte, rest []byte, err error) {
	if len(b) < 1 || b[0] > 1 || b[0] == 1 && len(b) < 1+fkHashLen {
		return false, h, nil, errBadFKRecord
	}
	if b[0] == 0 {
		return false, h, b[1:], nil
	}
	copy(h[:], b[1:1+fkHashLen])
	return true, h, b[1+fkHashLen:], nil
}

func parseFKSubscription(b []byte) (s fkSubscription, err error) {
	if len(b) < 6 || b[0] != fkFormatVersion || b[1] < fkSubDeleteAndPropagate || b[1] > fkSubPropagateOnlyIfFound {
		return s, errBadFKRecord
	}
	s.instruction = b[1]
	s.partition = int32(binary.BigEndian.Uint32(b[2:6]))
	s.hasHash, s.hash, s.pk, err = parseFKHash(b[6:])
	return s, err
}

// parseFKStoredSubscription reads a subscription store value (after its
// timestamp): the subscriber's partition and hash.
func parseFKStoredSubscription(b []byte) (partition int32, hasHash bool, h [fkHashLen]byte, err error) {
	if len(b) < 4 {
		return 0, false, h, errBadFKRecord
	}
	partition = int32(binary.BigEndian.Uint32(b))
	hasHash, h, rest, err := parseFKHash(b[4:])
	if err == nil && len(rest) != 0 {
		err = errBadFKRecord
	}
	return partition, hasHash, h, err
}

type fkResponse struct {
	hasHash    bool
	hash       [fkHashLen]byte
	hasForeign bool
	foreign    []byte
}

func parseFKResponse(b []byte) (r fkResponse, err error) {
	if len(b) < 2 || b[0] != fkFormatVersion || b[1]&^(fkRespHasHash|fkRespHasForeign) != 0 {
		return r, errBadFKRecord
	}
	flags := b[1]
	b = b[2:]
	if flags&fkRespHasHash != 0 {
		if len(b) < fkHashLen {
			return r, errBadFKRecord
		}
		r.hasHash = true
		copy(r.hash[:], b[:fkHashLen])
		b = b[fkHashLen:]
	}
	if flags&fkRespHasForeign != 0 {
		r.hasForeign, r.foreign = true, b
	} else if len(b) != 0 {
		return r, errBadFKRecord
	}
	return r, nil
}

// fkSinkFn writes one record of bytes to a sink's topic (partition -1: by
// key).
type fkSinkFn = func(key, value []byte, partition int32, ts int64, headers []graph.Header)

func countFKSink(f fkSinkFn, n *int64) fkSinkFn {
	return func(key, value []byte, partition int32, ts int64, headers []graph.Header) {
		*n++
		f(key, value, partition, ts, headers)
	}
}

func fkSinkMake(n *graph.Node) graph.MakeFunc {
	return func(tc *graph.TaskContext, _ []any) (any, error) {
		topic := n.Topic.Resolve(tc.AppID)
		out := &tc.Out
		return fkSinkFn(func(key, value []byte, partition int32, ts int64, headers []graph.Header) {
			a := out.Arena()
			ks := len(a)
			a = append(a, key...)
			vs := len(a)
			a = append(a, value...)
			out.Add(a, topic, partition, ks, vs, vs, len(a), ts, headers)
		}), nil
	}
}

// fkSourceMake passes raw records to the source's one child.
func fkSourceMake(n *graph.Node) graph.MakeFunc {
	return func(_ *graph.TaskContext, children []any) (any, error) {
		return onlyChild(n, children, countRaw)
	}
}

// joinTablesFK builds a foreign-key join. Nodes, for name N:
//
//	t's side:  [N-left-store] -> N-subscription-send -> N-subscription-registration-sink
//	           N-subscription-response-source -> N-subscription-response-join -> N (result, store N)
//	           (left join: N-subscription-send -> N too, for rows without a foreign key)
//	o's side:  [N-right-store] -> N-foreign-join -> N-subscription-response-sink
//	           N-subscription-registration-source -> N-subscription-receive -> N-subscription-response-sink
func joinTablesFK[K, V, KO, VO, VR any](op string, left bool, t Table[K, V], o Table[KO, VO], fkFn func(K, V) (KO, bool), join func(K, V, VO, bool) VR, vrSerde serde.Serde[VR], os []Opt) Table[K, VR] {
	b := t.b
	name := b.requireName(collect(os), op, t.node, 0)
	if o.b != b {
		b.g.Errorf("kstream: %s %s: table %s belongs to another Builder", op, name, o.node.Name)
		return Table[K, VR]{b: b, node: t.node, ks: t.ks}
	}
	if fkFn == nil {
		b.g.Errorf("kstream: %s %s: the foreign-key function is nil", op, name)
	}
	if join == nil {
		b.g.Errorf("kstream: %s %s: the joiner is nil", op, name)
	}
	l := tableJoinInput(t, name, "left")
	r := tableJoinInput(o, name, "right")
	vrs := resolveSerde(b, vrSerde, name, "result value")
	subStore := name + "-subscription-store"

	send := b.proc(op+"-subscription-send", options{name: name + "-subscription-send"}, l.node)
	subTopic := graph.TopicRef{Name: name + "-subscription-registration", Internal: true}
	subSink := b.g.AddNode(&graph.Node{Op: "subscription-sink", Kind: graph.KindSink, Name: subTopic.Name + "-sink",
		Topic: subTopic, Repartition: true}, send)
	subSrc := b.g.AddNode(&graph.Node{Op: "subscription-source", Kind: graph.KindSource, Name: subTopic.Name + "-source",
		Topic: subTopic, Repartition: true})
	receive := b.proc(op+"-subscription-receive", options{name: name + "-subscription-receive"}, subSrc)
	receive.Stores = []string{subStore, r.store}
	b.g.AddStore(&graph.StoreSpec{Name: subStore, Changelog: graph.TopicRef{Name: subStore + "-changelog", Internal: true}, Timestamped: true})
	foreign := b.proc(op+"-foreign", options{name: name + "-foreign-join"}, r.node)
	foreign.Stores = []string{subStore}
	respTopic := graph.TopicRef{Name: name + "-subscription-response", Internal: true}
	respSink := b.g.AddNode(&graph.Node{Op: "response-sink", Kind: graph.KindSink, Name: respTopic.Name + "-sink",
		Topic: respTopic, Repartition: true}, receive, foreign)
	respSrc := b.g.AddNode(&graph.Node{Op: "response-source", Kind: graph.KindSource, Name: respTopic.Name + "-source",
		Topic: respTopic, Repartition: true})
	respJoin := b.proc(op+"-response", options{name: name + "-subscription-response-join"}, respSrc)
	respJoin.Stores = []string{l.store}
	parents := []*graph.Node{respJoin}
	if left {
		parents = append(parents, send)
	}
	result := b.proc(op, options{name: name}, parents...)
	result.Stores = []string{name}
	b.g.AddStore(&graph.StoreSpec{KeyValue: true, Name: name, Changelog: graph.TopicRef{Name: name + "-changelog", Internal: true}, Timestamped: true})

	send.Make = fkSubscriptionSendMake(send, left, l.ks, l.vs, r.ks, fkFn, join)
	subSink.Make = fkSinkMake(subSink)
	subSrc.Make = fkSourceMake(subSrc)
	receive.Make = fkSubscriptionReceiveMake(receive, subStore, r.store)
	foreign.Make = fkForeignJoinMake(foreign, subStore, r.ks, r.vs)
	respSink.Make = fkSinkMake(respSink)
	respSrc.Make = fkSourceMake(respSrc)
	respJoin.Make = fkResponseJoinMake(respJoin, left, l.store, l.ks, l.vs, r.vs, join)
	result.Make = tableSourceMake(result, name, l.ks, vrs)
	return Table[K, VR]{b: b, node: result, ks: l.ks, vs: vrs, store: name}
}

// fkSubscriptionSendMake turns updates of the left table into subscription
// records, with Kafka Streams' instructions (SubscriptionSendProcessorSupplier).
// In a left join, a row without a foreign key (and a deleted row) is answered
// at once: Kafka Streams sends it through the topics with a null key only to
// get an answer without a foreign value, which is known here.
func fkSubscriptionSendMake[K, V, KO, VO, VR any](n *graph.Node, left bool, ks serde.Serde[K], vs serde.Serde[V], fks serde.Serde[KO], fkFn func(K, V) (KO, bool), join func(K, V, VO, bool) VR) graph.MakeFunc {
	id := int32(n.ID)
	return func(tc *graph.TaskContext, children []any) (any, error) {
		var sink fkSinkFn
		var result streamFn[K, VR]
		for _, c := range children {
			c, cnt := uncount(c)
			switch f := c.(type) {
			case fkSinkFn:
				sink = f
				if cnt != nil {
					sink = countFKSink(f, cnt)
				}
			case streamFn[K, VR]:
				result = f
				if cnt != nil {
					result = countStream(f, cnt)
				}
			default:
				return nil, fmt.Errorf("kstream: internal error: node %s has a child executor of type %T", n.Name, c)
			}
		}
		if sink == nil || left && result == nil {
			return nil, fmt.Errorf("kstream: internal error: node %s is missing a child", n.Name)
		}
		var pk, vbuf, oldFK, newFK, sub []byte
		var hash [fkHashLen]byte
		var hasHash bool
		var mm graph.Meta
		send := func(fk []byte, instr byte, m *graph.Meta) {
			sub = appendFKSubscription(sub[:0], instr, tc.Partition, hasHash, &hash, pk)
			sink(fk, sub, -1, m.Timestamp, m.Headers)
		}
		return tableFn[K, V](func(k K, c *change[V], m *graph.Meta) {
			if m.NullKey || left && !c.HasNew && !c.HasOld {
				// No output for deletes of rows that did not exist.
				return
			}
			tc.Node = id
			var err error
			if pk, err = ks.Append(pk[:0], k); err != nil {
				tc.Fail(n.Name, fmt.Errorf("encoding key: %w", err))
				return
			}
			hasHash = c.HasNew
			if c.HasNew {
				if vbuf, err = vs.Append(vbuf[:0], c.New); err != nil {
					tc.Fail(n.Name, fmt.Errorf("encoding value: %w", err))
					return
				}
				hash = fkValueHash(vbuf)
			}
			var oldK, newK KO
			var oldOK, newOK bool
			if c.HasOld {
				oldK, oldOK = fkFn(k, c.Old)
			}
			if c.HasNew {
				newK, newOK = fkFn(k, c.New)
			}
			if oldOK {
				if oldFK, err = fks.Append(oldFK[:0], oldK); err != nil {
					tc.Fail(n.Name, fmt.Errorf("encoding foreign key: %w", err))
					return
				}
			}
			if newOK {
				if newFK, err = fks.Append(newFK[:0], newK); err != nil {
					tc.Fail(n.Name, fmt.Errorf("encoding foreign key: %w", err))
					return
				}
			}
			moved := oldOK && (!newOK || !bytes.Equal(oldFK, newFK))
			if left {
				if moved {
					send(oldFK, fkSubDeleteNoPropagate, m)
				}
				if newOK {
					send(newFK, fkSubPropagateNullIfMissing, m)
					return
				}
				mm = graph.Meta{Timestamp: m.Timestamp, Headers: m.Headers, Tombstone: !c.HasNew}
				var vr VR
				if c.HasNew {
					var zero VO
					vr = join(k, c.New, zero, false)
				}
				result(k, vr, &mm)
				return
			}
			switch {
			case c.HasNew && !newOK: // no foreign key: dropped, and any previous result deleted
				tc.Drop(n.Name)
				if oldOK {
					send(oldFK, fkSubDeleteAndPropagate, m)
				}
			case c.HasNew && moved:
				send(oldFK, fkSubDeleteNoPropagate, m)
				send(newFK, fkSubPropagateNullIfMissing, m)
			case c.HasNew: // a new row, or the same foreign key
				send(newFK, fkSubPropagateOnlyIfFound, m)
			case oldOK: // a delete
				send(oldFK, fkSubDeleteAndPropagate, m)
			}
		}), nil
	}
}

// fkSubscriptionReceiveMake applies subscriptions to the subscription store and
// answers them with the right table's row, as Kafka Streams'
// SubscriptionReceiveProcessorSupplier and SubscriptionJoinProcessorSupplier
// do: the response's timestamp is the larger of the subscription's and the
// row's. Nothing here decodes a key or value: they travel as bytes.
func fkSubscriptionReceiveMake(n *graph.Node, subStore, rightStore string) graph.MakeFunc {
	return func(tc *graph.TaskContext, children []any) (any, error) {
		sink, err := onlyChild(n, children, countFKSink)
		if err != nil {
			return nil, err
		}
		subs, err := tc.Store(subStore)
		if err != nil {
			return nil, err
		}
		right, err := tc.Store(rightStore)
		if err != nil {
			return nil, err
		}
		var skey, sval, resp []byte
		return func(r *graph.RawRecord) {
			if r.Key == nil {
				tc.Drop(n.Name)
				return
			}
			s, err := parseFKSubscription(r.Value)
			if err != nil {
				tc.FailDecode(n.Name, err)
				return
			}
			skey = serde.AppendOrderedBytes(skey[:0], r.Key)
			skey = append(skey, s.pk...)
			if s.instruction == fkSubDeleteAndPropagate || s.instruction == fkSubDeleteNoPropagate {
				err = subs.Delete(skey)
			} else {
				sval = binary.BigEndian.AppendUint64(sval[:0], uint64(r.Timestamp))
				sval = binary.BigEndian.AppendUint32(sval, uint32(s.partition))
				sval = appendFKHash(sval, s.hasHash, &s.hash)
				err = subs.Put(skey, sval)
			}
			if err != nil {
				tc.Fail(n.Name, err)
				return
			}
			if s.instruction == fkSubDeleteNoPropagate {
				return
			}
			stored, found, err := right.Get(r.Key)
			if err != nil {
				tc.Fail(n.Name, err)
				return
			}
			if found && len(stored) < 8 {
				tc.Fail(n.Name, errShortTimestamped)
				return
			}
			ts := r.Timestamp
			if found {
				ts = max(ts, int64(binary.BigEndian.Uint64(stored)))
			}
			switch {
			case s.instruction == fkSubDeleteAndPropagate:
				found = false
			case s.instruction == fkSubPropagateOnlyIfFound && !found:
				return
			}
			var fv []byte
			if found {
				fv = stored[8:]
			}
			resp = appendFKResponse(resp[:0], s.hasHash, &s.hash, found, fv)
			sink(s.pk, resp, s.partition, ts, r.Headers)
		}, nil
	}
}

func appendFKResponse(dst []byte, hasHash bool, h *[fkHashLen]byte, hasForeign bool, foreign []byte) []byte {
	var flags byte
	if hasHash {
		flags |= fkRespHasHash
	}
	if hasForeign {
		flags |= fkRespHasForeign
	}
	dst = append(dst, fkFormatVersion, flags)
	if hasHash {
		dst = append(dst, h[:]...)
	}
	if hasForeign {
		dst = append(dst, foreign...)
	}
	return dst
}

// fkForeignJoinMake sends each update of the right table to every left row
// subscribed to its key (a prefix scan of the subscription store), with the
// right update's timestamp, as Kafka Streams' ForeignTableJoinProcessorSupplier
// does.
func fkForeignJoinMake[KO, VO any](n *graph.Node, subStore string, fks serde.Serde[KO], vos serde.Serde[VO]) graph.MakeFunc {
	return func(tc *graph.TaskContext, children []any) (any, error) {
		sink, err := onlyChild(n, children, countFKSink)
		if err != nil {
			return nil, err
		}
		subs, err := tc.Store(subStore)
		if err != nil {
			return nil, err
		}
		var fk, lo, hi, fv, resp []byte
		id := int32(n.ID)
		return tableFn[KO, VO](func(k KO, c *change[VO], m *graph.Meta) {
			if m.NullKey {
				tc.Drop(n.Name)
				return
			}
			tc.Node = id // for the serdes
			var err error
			if fk, err = fks.Append(fk[:0], k); err != nil {
				tc.Fail(n.Name, fmt.Errorf("encoding key: %w", err))
				return
			}
			if c.HasNew {
				if fv, err = vos.Append(fv[:0], c.New); err != nil {
					tc.Fail(n.Name, fmt.Errorf("encoding value: %w", err))
					return
				}
			}
			// The encoding ends with 0x00 0x01: incrementing its last
			// byte gives the end of its prefix range.
			lo = serde.AppendOrderedBytes(lo[:0], fk)
			hi = append(hi[:0], lo...)
			hi[len(hi)-1]++
			var scanErr error
			err = subs.Range(lo, hi, func(key, value []byte) bool {
				if len(value) < 8 {
					scanErr = errShortTimestamped
					return false
				}
				partition, hasHash, hash, err := parseFKStoredSubscription(value[8:])
				if err != nil {
					scanErr = err
					return false
				}
				resp = appendFKResponse(resp[:0], hasHash, &hash, c.HasNew, fv)
				sink(key[len(lo):], resp, partition, m.Timestamp, m.Headers)
				return true
			})
			if err == nil {
				err = scanErr
			}
			if err != nil {
				tc.Fail(n.Name, fmt.Errorf("scanning subscriptions: %w", err))
			}
		}), nil
	}
}

// fkResponseJoinMake joins responses with the left table's current row, as
// Kafka Streams' ResponseJoinProcessorSupplier does: a response whose hash
// does not match the current row is stale and dropped (counted); one without
// a foreign value deletes the result of an inner join (and of a deleted row);
// the result's timestamp is the response's.
func fkResponseJoinMake[K, V, VO, VR any](n *graph.Node, left bool, leftStore string, ks serde.Serde[K], vs serde.Serde[V], vos serde.Serde[VO], join func(K, V, VO, bool) VR) graph.MakeFunc {
	id := int32(n.ID)
	return func(tc *graph.TaskContext, children []any) (any, error) {
		next, err := streamNext[K, VR](children)
		if err != nil {
			return nil, err
		}
		st, err := tc.Store(leftStore)
		if err != nil {
			return nil, err
		}
		var vbuf []byte
		var mm graph.Meta
		return func(r *graph.RawRecord) {
			tc.Node = id // for the serdes
			resp, err := parseFKResponse(r.Value)
			if err != nil || r.Key == nil {
				tc.FailDecode(n.Name, errBadFKRecord)
				return
			}
			stored, found, err := st.Get(r.Key)
			if err != nil {
				tc.Fail(n.Name, err)
				return
			}
			var lv V
			if found {
				if _, lv, err = decodeTimestamped(stored, vs); err != nil {
					tc.Fail(n.Name, fmt.Errorf("decoding stored value: %w", err))
					return
				}
			}
			if found != resp.hasHash {
				tc.Drop(n.Name)
				return
			}
			if found {
				// Hash the value as the subscription did, re-encoded: a
				// store restored from a source topic holds the producer's
				// bytes, which need not be the serde's.
				if vbuf, err = vs.Append(vbuf[:0], lv); err != nil {
					tc.Fail(n.Name, fmt.Errorf("encoding value: %w", err))
					return
				}
				if fkValueHash(vbuf) != resp.hash {
					tc.Drop(n.Name)
					return
				}
			}
			k, err := ks.Decode(r.Key)
			if err != nil {
				tc.FailDecode(n.Name, fmt.Errorf("key: %w", err))
				return
			}
			mm = graph.Meta{Timestamp: r.Timestamp, Headers: r.Headers}
			var vr VR
			if !found || !resp.hasForeign && !left {
				mm.Tombstone = true
			} else {
				var vo VO
				if resp.hasForeign {
					if vo, err = vos.Decode(resp.foreign); err != nil {
						tc.FailDecode(n.Name, fmt.Errorf("foreign value: %w", err))
						return
					}
				}
				vr = join(k, lv, vo, resp.hasForeign)
			}
			next(k, vr, &mm)
		}, nil
	}
}
