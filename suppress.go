package kstream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"reflect"
	"time"

	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/serde"
	"github.com/kstreamgo/kstream/state"
)

// Suppression says how [Table.Suppress] holds a table's updates back: Kafka
// Streams' Suppressed.untilTimeLimit with its BufferConfig. Make it with
// [UntilTimeLimit]; bound its buffer with [Suppression.MaxRecords] and
// [Suppression.MaxBytes], and choose what a full buffer does with
// [Suppression.EmitEarlyWhenFull] (the default) or
// [Suppression.ShutDownWhenFull]. Each method returns a modified copy.
//
// The zero Suppression is UntilTimeLimit(0) with an unbounded buffer: it
// forwards every update at once.
type Suppression struct {
	limit      int64 // milliseconds
	maxRecords int64 // 0: no bound
	maxBytes   int64 // 0: no bound
	shutDown   bool
	err        string // the first invalid setting ("" if valid)
}

// UntilTimeLimit holds each key's updates until stream time has advanced d
// past the timestamp of the key's first held update, then forwards only the
// key's latest update (Kafka Streams' Suppressed.untilTimeLimit(d,
// BufferConfig.unbounded())): a rate limit of about one update per key per d
// of event time. The buffer is unbounded unless bounded with
// [Suppression.MaxRecords] or [Suppression.MaxBytes]. d must not be negative
// and must be a whole number of milliseconds, or [Table.Suppress] reports a
// Build error naming the node. A d of 0 forwards every update at once.
func UntilTimeLimit(d time.Duration) Suppression {
	var s Suppression
	s.limit = millis("suppression time limit", d, &s.err)
	if s.err == "" && s.limit < 0 {
		s.err = fmt.Sprintf("suppression time limit %v must not be negative", d)
	}
	return s
}

// MaxRecords bounds the buffer to n keys (Kafka Streams'
// BufferConfig.maxRecords): when an update makes it hold more, the buffer is
// full (see [Suppression.EmitEarlyWhenFull] and
// [Suppression.ShutDownWhenFull]). n must be positive, or [Table.Suppress]
// reports a Build error naming the node.
func (s Suppression) MaxRecords(n int64) Suppression {
	if n <= 0 && s.err == "" {
		s.err = fmt.Sprintf("suppression buffer bound of %d records must be positive", n)
	}
	s.maxRecords = n
	return s
}

// MaxBytes bounds the buffer to n bytes (Kafka Streams'
// BufferConfig.maxBytes): when an update makes it hold more, the buffer is
// full (see [Suppression.EmitEarlyWhenFull] and
// [Suppression.ShutDownWhenFull]). A held key counts 28 bytes, plus the
// encoded key, its latest value, the value it replaces (the one forwarded as
// the old value) and the latest update's header keys and values. That is
// about Kafka Streams' estimate, which also counts the source topic's name
// and the old value of the latest update when it differs from the first's,
// so a bound close to the buffer's size may fill at a slightly different
// record. n must be positive, or [Table.Suppress] reports a Build error
// naming the node.
func (s Suppression) MaxBytes(n int64) Suppression {
	if n <= 0 && s.err == "" {
		s.err = fmt.Sprintf("suppression buffer bound of %d bytes must be positive", n)
	}
	s.maxBytes = n
	return s
}

// EmitEarlyWhenFull makes a full buffer forward held keys before their time
// limit, earliest buffer time first, until it is within its bounds again
// (Kafka Streams' BufferConfig.emitEarlyWhenFull). This is the default, as
// in Kafka Streams, whose maxRecords and maxBytes buffers emit early unless
// told to shut down.
func (s Suppression) EmitEarlyWhenFull() Suppression {
	s.shutDown = false
	return s
}

// ShutDownWhenFull makes an update that would leave the buffer over its
// bounds (once the keys whose time limit it reached are forwarded) a
// processing error of the suppression node (Kafka Streams'
// BufferConfig.shutDownWhenFull, which throws a StreamsException and stops
// the application): the runtime's processing error policy handles it
// (kafkaio fails by default; kstest's TryPipeRecord returns it). The failed
// update is not buffered, and nothing it would have forwarded is. Use it
// where forwarding an intermediate update early would be wrong.
func (s Suppression) ShutDownWhenFull() Suppression {
	s.shutDown = true
	return s
}

// Suppress rate-limits the table's updates, as Kafka Streams'
// KTable.suppress(Suppressed.untilTimeLimit(...)): each key's update is held
// in a buffer, and updates of a held key replace its latest value. On every
// update it receives, the node advances its stream time (the largest
// timestamp among the updates it has received, as in Kafka Streams, where
// each suppression tracks its own), then forwards, in order of buffer time
// and then encoded key bytes, every held key whose buffer time is at most
// stream time minus the limit. A key's buffer time is the timestamp of its
// first held update: later updates do not postpone it. Each forwarded update
// carries the key's latest value (a delete when the latest update was one),
// the timestamp and headers of its latest update, and as its old value the
// value that downstream last saw for the key (the old value of the first
// held update), so that downstream table aggregations subtract what they
// added. Deletes are held and forwarded like other updates: a key added and
// deleted within the limit comes out as a delete (a tombstone after
// [Table.ToStream]), as in Kafka Streams. Held keys come out only as updates
// arrive, checked after each (no punctuation, as in Kafka Streams): a
// partition that receives no more updates keeps its last keys held. An unbounded buffer holds at most the keys
// updated within one limit of stream time; see [Suppression] for bounds.
//
// Suppress requires [Named]: the name names the node and its buffer, a
// store with the changelog topic "<appID>-<name>-changelog" from which a
// restarted task restores the held updates and the stream time. The table's
// key and value serdes encode the buffer (built-in types have theirs; any
// other type needs them from upstream or [Stream.WithSerdes]). The result
// is not materialized: [Table.StoreName] is "". It applies to any table,
// windowed results included (the limit then applies to each window's
// updates, by record time; use [EmitOnWindowClose] for final results).
//
// Two differences from Kafka Streams (4.4), both for correctness. Kafka
// Streams forwards as the old value the old value of the key's latest held
// update, a value downstream never saw when the key was updated more than
// once within the limit: a regrouped aggregation downstream then subtracts
// from the wrong group (differential scenario suppress-regroup). And Kafka
// Streams keeps stream time in memory, restarting it from nothing, so after
// a restart held keys wait until a record reaches their time again; kstream
// restores it, so a restart changes nothing in the output. The buffer's
// changelog records are kstream's own layout, not Kafka Streams'.
func (t Table[K, V]) Suppress(s Suppression, opts ...Opt) Table[K, V] {
	o := collect(opts)
	name := t.b.requireName(o, "suppress", t.node, 0)
	if s.err != "" {
		t.b.g.Errorf("kstream: suppress %s: %s", name, s.err)
	}
	ks := resolveSerde(t.b, t.ks, name, "key")
	vs := resolveSerde(t.b, t.vs, name, "value")
	n := t.b.proc("suppress", options{name: name}, t.node)
	n.Stores = []string{name}
	t.b.g.AddStore(&graph.StoreSpec{Name: name, Changelog: graph.TopicRef{Name: name + "-changelog", Internal: true}})
	id := int32(n.ID)
	n.Make = func(tc *graph.TaskContext, children []any) (any, error) {
		next, err := tableNext[K, V](children)
		if err != nil {
			return nil, err
		}
		st, err := tc.Store(name)
		if err != nil {
			return nil, err
		}
		x := &suppressTask[K, V]{tc: tc, name: name, id: id, ks: ks, vs: vs, st: st, next: next, cfg: s,
			streamTime: -1}
		x.held.init(keepsKeys(ks))
		return tableFn[K, V](x.process), nil
	}
	return Table[K, V]{b: t.b, node: n, ks: ks, vs: vs}
}

// The buffer's store holds three kinds of keys:
//
//	suppressMeta                          -> stream time (8 bytes, big-endian)
//	suppressIndex, key                    -> buffer time (serde.AppendOrderedInt64)
//	suppressData, buffer time (ordered), key -> held update (see appendHeld)
//
// The data keys sort by buffer time and then key bytes: the order of
// eviction. The store is what a restarted task restores from; a running
// task finds held keys through an index of its own (heldIndex), rebuilt
// from the data keys before the task's first update, and reads the store
// only for the held updates themselves. The index keys are written and
// deleted with the data keys, as they always were, so that the changelog's
// layout does not change; nothing reads them.
const (
	suppressMeta  = 0x00
	suppressIndex = 0x01
	suppressData  = 0x02
)

// The store keys and bounds that do not change (stores copy what they
// keep, and never modify the slices they get).
var (
	suppressMetaKey = []byte{suppressMeta}
	suppressIndexLo = []byte{suppressIndex}
	suppressDataLo  = []byte{suppressData}
	suppressDataHi  = []byte{suppressData + 1}
)

// suppressOverhead is what a held key counts in the buffer's size besides
// its key, values and headers: the buffer time and timestamp (8 bytes each),
// and 12 bytes that Kafka Streams counts for the record's offset and
// partition.
const suppressOverhead = 28

// Held update flags.
const (
	heldNew   = 1 // the latest update has a value (else it is a delete)
	heldPrior = 2 // the key had a value before its first held update
)

var errBadHeld = errors.New("malformed suppression buffer entry")

// suppressTask is a suppression's state in one task.
type suppressTask[K, V any] struct {
	tc   *graph.TaskContext
	name string
	id   int32
	ks   serde.Serde[K]
	vs   serde.Serde[V]
	st   state.Store
	next tableFn[K, V]
	cfg  Suppression

	recovered  bool
	streamTime int64 // largest timestamp received, -1 before any
	count      int64 // keys held
	bytes      int64 // their size (heldSize)
	held       heldIndex[K]

	kbuf, ikey, dkey, hbuf, nbuf, pbuf, vbuf, tbuf []byte
	c                                              change[V]
	mm                                             graph.Meta
}

func (x *suppressTask[K, V]) fail(what string, err error) {
	x.tc.Fail(x.name, fmt.Errorf("%s: %w", what, err))
}

func (x *suppressTask[K, V]) process(k K, c *change[V], m *graph.Meta) {
	if m.NullKey {
		x.tc.Drop(x.name)
		return
	}
	x.tc.Node = x.id // for the serdes
	if !x.recovered && !x.recover() {
		return
	}
	var err error
	if x.kbuf, err = x.ks.Append(x.kbuf[:0], k); err != nil {
		x.fail("encoding key", err)
		return
	}
	hash := x.held.hash(x.kbuf)
	slot, found := x.held.find(x.kbuf, hash)
	// The prior value: the one downstream last saw, kept from the key's
	// first held update.
	var prior []byte
	hasPrior := false
	btime := m.Timestamp
	var oldSize int64
	if found {
		e := &x.held.slots[slot]
		btime, oldSize = e.btime, e.size
		x.dkey = appendDataKey(x.dkey[:0], btime, x.kbuf)
		var ok bool
		if x.hbuf, ok, err = state.GetAppend(x.st, x.hbuf[:0], x.dkey); err != nil || !ok {
			if err == nil {
				err = errBadHeld
			}
			x.fail("reading the buffer", err)
			return
		}
		h, err := parseHeld(x.hbuf)
		if err != nil {
			x.fail("reading the buffer", err)
			return
		}
		prior, hasPrior = h.prior, h.flags&heldPrior != 0
	} else {
		x.dkey = appendDataKey(x.dkey[:0], btime, x.kbuf)
		if c.HasOld {
			if x.pbuf, err = x.vs.Append(x.pbuf[:0], c.Old); err != nil {
				x.fail("encoding old value", err)
				return
			}
			prior, hasPrior = x.pbuf, true
		}
	}
	x.nbuf = x.nbuf[:0]
	if c.HasNew {
		if x.nbuf, err = x.vs.Append(x.nbuf, c.New); err != nil {
			x.fail("encoding value", err)
			return
		}
	}
	x.vbuf = appendHeld(x.vbuf[:0], c.HasNew, x.nbuf, hasPrior, prior, m.Timestamp, m.Headers)
	hsize := 0
	for _, h := range m.Headers {
		hsize += len(h.Key) + len(h.Value)
	}
	newSize := heldSize(len(x.kbuf), held{new: x.nbuf, prior: prior, hsize: hsize})

	streamTime := max(x.streamTime, m.Timestamp)
	expiry := streamTime - x.cfg.limit
	if expiry > streamTime { // overflow
		expiry = math.MinInt64
	}
	count, size := x.count, x.bytes-oldSize+newSize
	if !found {
		count++
	}
	if x.cfg.shutDown && x.cfg.over(count, size) {
		// Would the buffer still be over its bounds once the keys whose
		// time limit this update reaches are forwarded? Then fail before
		// changing anything.
		ec, eb := x.held.expiring(expiry)
		if btime <= expiry {
			if found {
				eb += newSize - oldSize
			} else {
				ec, eb = ec+1, eb+newSize
			}
		}
		if x.cfg.over(count-ec, size-eb) {
			x.tc.Fail(x.name, fmt.Errorf("suppression buffer full (ShutDownWhenFull): the update of a key would leave %d keys (bound %s) and %d bytes (bound %s) held",
				count-ec, bound(x.cfg.maxRecords), size-eb, bound(x.cfg.maxBytes)))
			return
		}
	}
	if !found {
		x.ikey = append(append(x.ikey[:0], suppressIndex), x.kbuf...)
		x.tbuf = serde.AppendOrderedInt64(x.tbuf[:0], btime)
		if err = x.st.Put(x.ikey, x.tbuf); err != nil {
			x.fail("writing the buffer", err)
			return
		}
	}
	if err = x.st.Put(x.dkey, x.vbuf); err != nil {
		x.fail("writing the buffer", err)
		return
	}
	if found {
		x.held.slots[slot].size = newSize
	} else {
		x.held.add(x.kbuf, hash, btime, newSize, k)
	}
	x.count, x.bytes = count, size
	if streamTime > x.streamTime {
		x.streamTime = streamTime
		x.tbuf = binary.BigEndian.AppendUint64(x.tbuf[:0], uint64(streamTime))
		if err = x.st.Put(suppressMetaKey, x.tbuf); err != nil {
			x.fail("writing the buffer", err)
			return
		}
	}
	x.evict(expiry)
}

func bound(n int64) string {
	if n == 0 {
		return "none"
	}
	return fmt.Sprint(n)
}

// over reports whether a buffer holding count keys of size bytes is over
// the bounds.
func (s Suppression) over(count, size int64) bool {
	return (s.maxRecords > 0 && count > s.maxRecords) || (s.maxBytes > 0 && size > s.maxBytes)
}

// evict forwards, in order, the held keys whose buffer time is at most
// expiry, then, while the buffer is over its bounds (emit early), the
// earliest others.
func (x *suppressTask[K, V]) evict(expiry int64) bool {
	for {
		slot, ok := x.held.first()
		if !ok || (x.held.slots[slot].btime > expiry && !x.cfg.over(x.count, x.bytes)) {
			return true
		}
		if !x.emit(slot) {
			return false
		}
	}
}

// emit forwards the held update of the earliest held key, slot (see
// heldIndex.first), and deletes it from the buffer.
func (x *suppressTask[K, V]) emit(slot uint32) bool {
	e := x.held.slots[slot]
	kb := x.held.key(slot) // valid until the index removes the key
	x.tc.Node = x.id
	x.dkey = appendDataKey(x.dkey[:0], e.btime, kb)
	var ok bool
	var err error
	if x.hbuf, ok, err = state.GetAppend(x.st, x.hbuf[:0], x.dkey); err != nil || !ok {
		if err == nil {
			err = errBadHeld
		}
		x.fail("reading the buffer", err)
		return false
	}
	h, err := parseHeld(x.hbuf)
	if err != nil {
		x.fail("reading the buffer", err)
		return false
	}
	var k K
	if x.held.keepKeys {
		k = x.held.keys[slot]
	} else if k, err = x.ks.Decode(kb); err != nil {
		x.fail("decoding buffered key", err)
		return false
	}
	x.c = change[V]{}
	if h.flags&heldNew != 0 {
		if x.c.New, err = x.vs.Decode(h.new); err != nil {
			x.fail("decoding buffered value", err)
			return false
		}
		x.c.HasNew = true
	}
	if h.flags&heldPrior != 0 {
		if x.c.Old, err = x.vs.Decode(h.prior); err != nil {
			x.fail("decoding buffered old value", err)
			return false
		}
		x.c.HasOld = true
	}
	headers, err := decodeHeaders(h.headers)
	if err != nil {
		x.fail("reading the buffer", err)
		return false
	}
	x.ikey = append(append(x.ikey[:0], suppressIndex), kb...)
	if err = x.st.Delete(x.ikey); err == nil {
		err = x.st.Delete(x.dkey)
	}
	if err != nil {
		x.fail("writing the buffer", err)
		return false
	}
	x.held.removeFirst(slot)
	x.count--
	x.bytes -= e.size
	x.mm = graph.Meta{Timestamp: h.ts, Headers: headers, Tombstone: !x.c.HasNew}
	x.next(k, &x.c, &x.mm)
	var zero V
	x.c.New, x.c.Old = zero, zero
	return true
}

// recover reads the stream time and the held keys from the store, before
// the task's first update (the store is restored from its changelog after
// the executor is made), and builds the index of the held keys. If it
// fails, the next update tries again: the index is never out of step with
// the store.
//
// The executor, and so the index, lives as long as the task: the runtimes
// recreate their tasks, and with them the executors, whenever the stores go
// back to an earlier state (kafkaio after an aborted transaction, and when a
// task moves; kstest's Restart), and restore the stores before the first
// update.
func (x *suppressTask[K, V]) recover() bool {
	b, found, err := x.st.Get(suppressMetaKey)
	if err != nil {
		x.fail("reading the buffer", err)
		return false
	}
	if found {
		if len(b) != 8 {
			x.fail("reading the buffer", errBadHeld)
			return false
		}
		x.streamTime = int64(binary.BigEndian.Uint64(b))
	}
	x.held.reset()
	x.count, x.bytes = 0, 0
	var bad error
	err = x.st.Range(suppressDataLo, suppressDataHi, func(k, v []byte) bool {
		h, err := parseHeld(v)
		if err != nil || len(k) < 9 {
			bad = errBadHeld
			return false
		}
		btime, _, _ := serde.DecodeOrderedInt64(k[1:])
		kb := k[9:]
		var key K
		if x.held.keepKeys {
			if key, err = x.ks.Decode(kb); err != nil {
				bad = fmt.Errorf("decoding buffered key: %w", err)
				return false
			}
		}
		size := heldSize(len(kb), h)
		x.held.add(kb, x.held.hash(kb), btime, size, key)
		x.count++
		x.bytes += size
		return true
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		x.held.reset()
		x.count, x.bytes = 0, 0
		x.fail("reading the buffer", err)
		return false
	}
	x.recovered = true
	return true
}

// keepsKeys reports whether the buffer may forward the key of a held key's
// first update instead of decoding its bytes: when the key serde decodes to
// the very value it encoded (strings), so that the key costs no allocation.
func keepsKeys[K any](ks serde.Serde[K]) bool {
	t := reflect.TypeOf(ks)
	return t != nil && (t == reflect.TypeOf(serde.String) || t == reflect.TypeOf(serde.OrderedString))
}

// heldIndex is a task's index of the keys its buffer holds, kept in step
// with the store's data keys: a hash table from the encoded key to its
// entry (buffer time and size), and the entries in the order of the data
// keys (buffer time, then key bytes; heldIndex.less), the order of
// eviction. That order is a queue of the keys added in order (usually all:
// buffer time is record time) and a min-heap of the others. The keys' bytes
// are copied into an arena, so that a new key costs no allocation once the
// index has grown.
type heldIndex[K any] struct {
	seed     maphash.Seed
	table    []uint32 // open addressing, linear probing: slot+1, 0 if empty
	slots    []heldEntry
	free     []uint32 // slots to reuse
	queue    []uint32 // slots, in order from qhead
	qhead    int
	heap     []uint32 // slots, a min-heap
	arena    []byte   // the keys' bytes
	spare    []byte   // the next arena, when compacting
	garbage  int      // bytes of the arena no key holds
	keepKeys bool     // keys holds each entry's key (see keepsKeys)
	keys     []K
}

// heldEntry is a held key.
type heldEntry struct {
	btime int64
	size  int64 // heldSize
	hash  uint64
	off   int // of the key's bytes in the arena
	n     int // their length
}

// heldTableMin is the smallest size of the index's hash table.
const heldTableMin = 16

func (ix *heldIndex[K]) init(keepKeys bool) {
	ix.seed = maphash.MakeSeed()
	ix.keepKeys = keepKeys
	ix.reset()
}

// reset empties the index.
func (ix *heldIndex[K]) reset() {
	ix.table = make([]uint32, heldTableMin)
	ix.slots, ix.free, ix.heap, ix.keys = ix.slots[:0], ix.free[:0], ix.heap[:0], nil
	ix.queue, ix.qhead = ix.queue[:0], 0
	ix.arena, ix.garbage = ix.arena[:0], 0
}

func (ix *heldIndex[K]) hash(key []byte) uint64 { return maphash.Bytes(ix.seed, key) }

// key returns the bytes of the key of slot, valid until a key is removed.
func (ix *heldIndex[K]) key(slot uint32) []byte {
	e := &ix.slots[slot]
	return ix.arena[e.off : e.off+e.n : e.off+e.n]
}

// lookup returns the table position of key (hashed to h) and its slot, or
// the position where it would go.
func (ix *heldIndex[K]) lookup(key []byte, h uint64) (pos int, slot uint32, ok bool) {
	mask := len(ix.table) - 1
	for pos = int(h) & mask; ; pos = (pos + 1) & mask {
		t := ix.table[pos]
		if t == 0 {
			return pos, 0, false
		}
		e := &ix.slots[t-1]
		if e.hash == h && string(ix.arena[e.off:e.off+e.n]) == string(key) {
			return pos, t - 1, true
		}
	}
}

// find returns the slot of key, hashed to h.
func (ix *heldIndex[K]) find(key []byte, h uint64) (uint32, bool) {
	_, slot, ok := ix.lookup(key, h)
	return slot, ok
}

// add adds a key that the index does not hold.
func (ix *heldIndex[K]) add(key []byte, h uint64, btime, size int64, k K) {
	if 2*(ix.len()+1) > len(ix.table) {
		ix.grow()
	}
	var slot uint32
	if n := len(ix.free); n > 0 {
		slot = ix.free[n-1]
		ix.free = ix.free[:n-1]
	} else {
		slot = uint32(len(ix.slots))
		ix.slots = append(ix.slots, heldEntry{})
		if ix.keepKeys {
			var zero K
			ix.keys = append(ix.keys, zero)
		}
	}
	ix.slots[slot] = heldEntry{btime: btime, size: size, hash: h, off: len(ix.arena), n: len(key)}
	ix.arena = append(ix.arena, key...)
	if ix.keepKeys {
		ix.keys[slot] = k
	}
	pos, _, _ := ix.lookup(key, h)
	ix.table[pos] = slot + 1
	if n := len(ix.queue); n == ix.qhead || ix.less(ix.queue[n-1], slot) {
		ix.queue = append(ix.queue, slot)
		return
	}
	ix.heap = append(ix.heap, slot)
	ix.up(len(ix.heap) - 1)
}

// len returns the number of keys held.
func (ix *heldIndex[K]) len() int { return len(ix.queue) - ix.qhead + len(ix.heap) }

// first returns the slot of the earliest key, if any.
func (ix *heldIndex[K]) first() (uint32, bool) {
	if ix.qhead < len(ix.queue) {
		q := ix.queue[ix.qhead]
		if len(ix.heap) > 0 && ix.less(ix.heap[0], q) {
			return ix.heap[0], true
		}
		return q, true
	}
	if len(ix.heap) > 0 {
		return ix.heap[0], true
	}
	return 0, false
}

// grow doubles the hash table.
func (ix *heldIndex[K]) grow() {
	old := ix.table
	ix.table = make([]uint32, 2*len(old))
	mask := len(ix.table) - 1
	for _, t := range old {
		if t == 0 {
			continue
		}
		pos := int(ix.slots[t-1].hash) & mask
		for ix.table[pos] != 0 {
			pos = (pos + 1) & mask
		}
		ix.table[pos] = t
	}
}

// removeFirst removes the earliest key, slot (returned by first).
func (ix *heldIndex[K]) removeFirst(slot uint32) {
	e := &ix.slots[slot]
	pos, _, ok := ix.lookup(ix.arena[e.off:e.off+e.n], e.hash)
	if ok {
		ix.unlink(pos)
	}
	if ix.qhead < len(ix.queue) && ix.queue[ix.qhead] == slot {
		ix.qhead++
		if ix.qhead == len(ix.queue) {
			ix.queue, ix.qhead = ix.queue[:0], 0
		} else if ix.qhead >= 1024 && 2*ix.qhead >= len(ix.queue) {
			ix.queue = ix.queue[:copy(ix.queue, ix.queue[ix.qhead:])]
			ix.qhead = 0
		}
	} else {
		last := len(ix.heap) - 1
		ix.heap[0] = ix.heap[last]
		ix.heap = ix.heap[:last]
		if last > 0 {
			ix.down(0)
		}
	}
	ix.garbage += e.n
	*e = heldEntry{}
	if ix.keepKeys {
		var zero K
		ix.keys[slot] = zero
	}
	ix.free = append(ix.free, slot)
	if ix.garbage > 4096 && 2*ix.garbage > len(ix.arena) {
		ix.compact()
	}
}

// unlink empties the table cell pos, moving back the cells after it that
// their probe would no longer reach (deletion without tombstones).
func (ix *heldIndex[K]) unlink(pos int) {
	mask := len(ix.table) - 1
	i := pos
	ix.table[i] = 0
	for j := (i + 1) & mask; ix.table[j] != 0; j = (j + 1) & mask {
		home := int(ix.slots[ix.table[j]-1].hash) & mask
		// The cell j may move to i unless its home is in (i, j],
		// cyclically.
		if (i < j && (home <= i || home > j)) || (i > j && home <= i && home > j) {
			ix.table[i], ix.table[j] = ix.table[j], 0
			i = j
		}
	}
}

// compact copies the held keys' bytes into a new arena.
func (ix *heldIndex[K]) compact() {
	a := ix.spare[:0]
	for _, slots := range [2][]uint32{ix.queue[ix.qhead:], ix.heap} {
		for _, slot := range slots {
			e := &ix.slots[slot]
			off := len(a)
			a = append(a, ix.arena[e.off:e.off+e.n]...)
			e.off = off
		}
	}
	ix.arena, ix.spare, ix.garbage = a, ix.arena[:0], 0
}

// less orders slots as their data keys sort: by buffer time, then key
// bytes.
func (ix *heldIndex[K]) less(a, b uint32) bool {
	ea, eb := &ix.slots[a], &ix.slots[b]
	if ea.btime != eb.btime {
		return ea.btime < eb.btime
	}
	return bytes.Compare(ix.arena[ea.off:ea.off+ea.n], ix.arena[eb.off:eb.off+eb.n]) < 0
}

func (ix *heldIndex[K]) up(i int) {
	h := ix.heap
	for i > 0 {
		p := (i - 1) / 2
		if !ix.less(h[i], h[p]) {
			return
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (ix *heldIndex[K]) down(i int) {
	h := ix.heap
	n := len(h)
	for {
		c := 2*i + 1
		if c >= n {
			return
		}
		if r := c + 1; r < n && ix.less(h[r], h[c]) {
			c = r
		}
		if !ix.less(h[c], h[i]) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

// expiring returns the number and size of the held keys whose buffer time
// is at most expiry: the queue's up to the first later one, and the heap's
// from its root down to the first later one on each path.
func (ix *heldIndex[K]) expiring(expiry int64) (count, size int64) {
	for _, slot := range ix.queue[ix.qhead:] {
		e := &ix.slots[slot]
		if e.btime > expiry {
			break
		}
		count++
		size += e.size
	}
	var walk func(i int)
	walk = func(i int) {
		if i >= len(ix.heap) {
			return
		}
		e := &ix.slots[ix.heap[i]]
		if e.btime > expiry {
			return
		}
		count++
		size += e.size
		walk(2*i + 1)
		walk(2*i + 2)
	}
	walk(0)
	return count, size
}

func appendDataKey(dst []byte, btime int64, key []byte) []byte {
	dst = append(dst, suppressData)
	dst = serde.AppendOrderedInt64(dst, btime)
	return append(dst, key...)
}

// held is a parsed buffer entry; its slices point into the entry.
type held struct {
	flags      byte
	new, prior []byte
	ts         int64
	headers    []byte // count, then each header (see appendHeld)
	hsize      int    // the header keys' and values' bytes
}

// appendHeld encodes a held update: flags, the new value and the prior value
// (each a uvarint length, then the bytes), the timestamp (8 bytes,
// big-endian), the header count (uvarint), then each header: its key
// (uvarint length, bytes) and value (uvarint length+1, 0 for nil, bytes).
func appendHeld(dst []byte, hasNew bool, nv []byte, hasPrior bool, pv []byte, ts int64, headers []graph.Header) []byte {
	var flags byte
	if hasNew {
		flags |= heldNew
	}
	if hasPrior {
		flags |= heldPrior
	}
	dst = append(dst, flags)
	dst = binary.AppendUvarint(dst, uint64(len(nv)))
	dst = append(dst, nv...)
	dst = binary.AppendUvarint(dst, uint64(len(pv)))
	dst = append(dst, pv...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(ts))
	dst = binary.AppendUvarint(dst, uint64(len(headers)))
	for _, h := range headers {
		dst = binary.AppendUvarint(dst, uint64(len(h.Key)))
		dst = append(dst, h.Key...)
		if h.Value == nil {
			dst = binary.AppendUvarint(dst, 0)
			continue
		}
		dst = binary.AppendUvarint(dst, uint64(len(h.Value))+1)
		dst = append(dst, h.Value...)
	}
	return dst
}

// lenPrefixed reads a uvarint length and that many bytes.
func lenPrefixed(b []byte) (v, rest []byte, ok bool) {
	n, w := binary.Uvarint(b)
	if w <= 0 || uint64(len(b)-w) < n {
		return nil, nil, false
	}
	return b[w : w+int(n)], b[w+int(n):], true
}

func parseHeld(b []byte) (held, error) {
	var h held
	if len(b) < 1 {
		return h, errBadHeld
	}
	h.flags = b[0]
	var ok bool
	if h.new, b, ok = lenPrefixed(b[1:]); !ok {
		return h, errBadHeld
	}
	if h.prior, b, ok = lenPrefixed(b); !ok {
		return h, errBadHeld
	}
	if len(b) < 8 {
		return h, errBadHeld
	}
	h.ts = int64(binary.BigEndian.Uint64(b))
	h.headers = b[8:]
	// Size the headers, checking their layout.
	b = h.headers
	n, w := binary.Uvarint(b)
	if w <= 0 {
		return h, errBadHeld
	}
	b = b[w:]
	for range n {
		var k []byte
		if k, b, ok = lenPrefixed(b); !ok {
			return h, errBadHeld
		}
		vl, w := binary.Uvarint(b)
		if w <= 0 || (vl > 0 && uint64(len(b)-w) < vl-1) {
			return h, errBadHeld
		}
		b = b[w:]
		if vl > 0 {
			b = b[vl-1:]
			h.hsize += int(vl - 1)
		}
		h.hsize += len(k)
	}
	if len(b) != 0 {
		return h, errBadHeld
	}
	return h, nil
}

// decodeHeaders returns the headers of a parsed entry, copied (nil if none):
// forwarded records may keep them.
func decodeHeaders(b []byte) ([]graph.Header, error) {
	n, w := binary.Uvarint(b)
	if w <= 0 {
		return nil, errBadHeld
	}
	if n == 0 {
		return nil, nil
	}
	b = b[w:]
	hs := make([]graph.Header, 0, min(n, 1024))
	for range n {
		k, rest, ok := lenPrefixed(b)
		if !ok {
			return nil, errBadHeld
		}
		b = rest
		vl, w := binary.Uvarint(b)
		if w <= 0 {
			return nil, errBadHeld
		}
		b = b[w:]
		h := graph.Header{Key: string(k)}
		if vl > 0 {
			if uint64(len(b)) < vl-1 {
				return nil, errBadHeld
			}
			h.Value = append([]byte{}, b[:vl-1]...)
			b = b[vl-1:]
		}
		hs = append(hs, h)
	}
	return hs, nil
}

// heldSize is what a held key counts toward MaxBytes.
func heldSize(keyLen int, h held) int64 {
	return int64(suppressOverhead + keyLen + len(h.new) + len(h.prior) + h.hsize)
}
