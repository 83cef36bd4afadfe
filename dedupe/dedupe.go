package dedupe

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"time"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/serde"
	"github.com/kstreamgo/kstream/state"
)

// The store holds two key spaces:
//
//	'i' id               -> 8-byte timestamp (serde's ordered int64) of the record that passed
//	't' timestamp(8) id  -> 0x01: the time index, in expiry order
//
// The time index makes expiry a range scan over what expired, not a scan of
// every ID. A time-index key whose ID entry holds another timestamp is stale
// (a write that failed halfway): expiry deletes it and leaves the ID alone.
//
// The time index's value is a format version rather than empty, so that no
// reader or transport along the changelog can take it for Kafka's null (a
// delete): an index entry lost in a restore would keep its ID forever.
const (
	idSpace   = 'i'
	timeSpace = 't'
	tsLen     = 8
	version   = 1
)

// expireChunk is how many expired IDs one range scan collects before they
// are deleted: it bounds the memory an expiry after a long pause needs.
const expireChunk = 1024

// Bounds of the expiry interval (retention/10), in milliseconds.
const (
	minExpiryInterval = 1
	maxExpiryInterval = 60_000
)

// ByID passes on each record of s unless a record of the same task (input
// partition) with the same ID, as idFn returns it, passed within retention
// before it; the store and its changelog "<appID>-<name>-changelog" remember
// the IDs.
//
// Precisely, let now be the task's stream time (the largest record timestamp
// it has seen, this record's included) and t0 the timestamp of the record
// that passed with the ID:
//
//   - The record is a duplicate, and dropped, if t0 >= now - retention. For
//     records in timestamp order now is the record's own timestamp t1, so
//     this reads t1 - t0 <= retention (both ends included). An earlier
//     timestamp than t0 is a duplicate too.
//   - Otherwise it passes, unchanged (key, value, timestamp, headers), and
//     its ID is remembered at its own timestamp: retention counts from the
//     record that passed, and dropped duplicates do not extend it.
//   - A record whose timestamp is older than now - retention is dropped if
//     its ID is remembered (the first rule), and otherwise passes without
//     being remembered: its ID may have been seen and already forgotten, and
//     ByID never drops a record it cannot prove a duplicate.
//   - A tombstone passes without calling idFn and is not remembered: a
//     delete is not an event, and dropping one would lose it.
//   - An empty ID means the record has none: it passes and is not
//     remembered.
//
// Because the rule uses stream time, the result does not depend on when
// expiry runs: a punctuation every retention/10 of stream time (at least
// 1 ms, at most one minute) deletes the IDs older than now - retention, so
// the store holds two entries per ID that passed within retention plus one
// interval. Retention is in whole milliseconds, like record timestamps.
//
// State is per task: duplicates are found only within one partition, which
// is where a producer's retries land (same key, same partition). Records
// whose duplicates may arrive on other partitions must be repartitioned by
// ID first (see the package documentation).
//
// ByID is a stateful operator: it needs a [kstream.Named] among opts, which
// names the node, its store and the changelog; like the name of every
// stateful operator it must be unique in the topology and stable across
// versions of the application. Without one, Build fails. A nil idFn or a
// negative retention is reported when the task is created (by
// kstest.NewDriver, or by kafkaio's App.Run at its first assignment), as an
// error naming the node. opts are passed to the [kstream.Process] node.
//
// The returned stream is that of a Process node: it has no serdes (set them
// with WithSerdes where a later step needs them) and counts as re-keyed, so
// a GroupByKey after it repartitions. Dropped duplicates are not counted:
// the public Processor API has no counter.
//
// A store error, or an entry that does not decode, fails the record (the
// error names the node and the ID), and the runtime's error policy applies.
func ByID[K, V any](s kstream.Stream[K, V], idFn func(K, V) string, retention time.Duration, opts ...kstream.Opt) kstream.Stream[K, V] {
	name := kstream.NameOf(opts...)
	all := append(slices.Clone(opts), kstream.WithStores(name)) // an empty name fails Build
	return kstream.Process(s, func() kstream.Processor[K, V, K, V] {
		return &processor[K, V]{name: name, idFn: idFn, retention: retention}
	}, all...)
}

// processor is ByID's per-task processor.
type processor[K, V any] struct {
	name      string
	idFn      func(K, V) string
	retention time.Duration

	ctx *kstream.ProcessorContext[K, V]
	st  state.Store
	ag  state.AppendGetter // st, if it appends values to a buffer (see read)
	ret int64              // retention in milliseconds
	// floor is the cutoff of the last expiry: no index entry is below it.
	floor int64
	mark  [1]byte // the time index's value: version

	// Buffers reused by every record and expiry.
	ikey []byte // idSpace + id
	tkey []byte // timeSpace + timestamp + id
	val  []byte // a timestamp, read or to write
	lo   []byte // the bounds of an expiry scan
	hi   []byte
	exp  []byte // time-index keys collected by an expiry scan, end to end
	ends []int  // where each of them ends in exp
}

func (p *processor[K, V]) Init(ctx *kstream.ProcessorContext[K, V]) error {
	switch {
	case p.idFn == nil:
		return fmt.Errorf("dedupe: ByID %q: idFn is nil", p.name)
	case p.retention < 0:
		return fmt.Errorf("dedupe: ByID %q: negative retention %v", p.name, p.retention)
	}
	st, err := ctx.Store(p.name)
	if err != nil {
		return err
	}
	p.ctx, p.st, p.ret = ctx, st, p.retention.Milliseconds()
	p.mark[0] = version
	p.floor = math.MinInt64
	p.ag, _ = st.(state.AppendGetter)
	ctx.Schedule(expiryInterval(p.ret), kstream.StreamTime, p.expire)
	return nil
}

// expiryInterval is retention/10, clamped to [1 ms, 1 min].
func expiryInterval(ret int64) time.Duration {
	return time.Duration(min(max(ret/10, minExpiryInterval), maxExpiryInterval)) * time.Millisecond
}

// cutoff returns now - ret, saturating: IDs remembered at a timestamp below
// it are expired.
func cutoff(now, ret int64) int64 {
	if now < math.MinInt64+ret {
		return math.MinInt64
	}
	return now - ret
}

func (p *processor[K, V]) Process(rec kstream.Record[K, V]) error {
	if rec.Tombstone {
		p.ctx.Forward(rec)
		return nil
	}
	id := p.idFn(rec.Key, rec.Value)
	if id == "" {
		p.ctx.Forward(rec)
		return nil
	}
	// Stream time includes the record's timestamp when the record comes
	// from a source; a record forwarded by a wall-clock punctuation
	// upstream may be ahead of it.
	low := cutoff(max(p.ctx.StreamTime(), rec.Timestamp), p.ret)
	p.ikey = append(append(p.ikey[:0], idSpace), id...)
	t0, found, err := p.get(p.ikey)
	if err != nil {
		return p.fail("reading", id, err)
	}
	if found && t0 >= low {
		return nil // a duplicate
	}
	if rec.Timestamp >= low {
		if err := p.remember(id, rec.Timestamp, t0, found); err != nil {
			return err
		}
	}
	p.ctx.Forward(rec)
	return nil
}

// remember records that id passed at ts, replacing its expired entry at old
// if found. The time index is written first and the old index entry deleted
// last, so that a write failing halfway leaves at worst a stale index entry,
// which expiry removes, never an ID that no index entry expires.
func (p *processor[K, V]) remember(id string, ts, old int64, found bool) error {
	p.val = serde.AppendOrderedInt64(p.val[:0], ts)
	p.tkey = append(append(append(p.tkey[:0], timeSpace), p.val...), id...)
	if err := p.st.Put(p.tkey, p.mark[:]); err != nil {
		return p.fail("writing", id, err)
	}
	if err := p.st.Put(p.ikey, p.val); err != nil {
		return p.fail("writing", id, err)
	}
	if found && old != ts {
		p.tkey = append(serde.AppendOrderedInt64(append(p.tkey[:0], timeSpace), old), id...)
		if err := p.st.Delete(p.tkey); err != nil {
			return p.fail("writing", id, err)
		}
	}
	return nil
}

// get returns the timestamp remembered under the ID key k.
func (p *processor[K, V]) get(k []byte) (int64, bool, error) {
	v, found, err := p.read(k)
	if err != nil || !found {
		return 0, false, err
	}
	if len(v) != tsLen {
		return 0, false, fmt.Errorf("corrupt entry: %d bytes, want %d", len(v), tsLen)
	}
	ts, _, err := serde.DecodeOrderedInt64(v)
	return ts, true, err
}

// read returns the value of k, in p.val when the store appends values to a
// buffer (no allocation), else as the store's Get returns it; either way
// valid until the next read or write.
func (p *processor[K, V]) read(k []byte) (v []byte, found bool, err error) {
	if p.ag == nil {
		return p.st.Get(k)
	}
	p.val, found, err = p.ag.GetAppend(p.val[:0], k)
	return p.val, found, err
}

func (p *processor[K, V]) fail(doing, id string, err error) error {
	return fmt.Errorf("dedupe: %s ID %q in store %q: %w", doing, id, p.name, err)
}

// expire deletes the IDs remembered at a timestamp below now - retention,
// scanning the time index up to there, expireChunk keys at a time.
//
// A scan starts where the last one ended (floor), not at the start of the
// index: the index entries below floor are deleted, and an LSM store such
// as Pebble would step over the tombstones of every one of them until a
// compaction drops them. Nothing is written below floor afterwards, since
// a record older than the cutoff is not remembered and stream time does not
// go back; a restarted task starts with an unknown floor, and scans from the
// start once.
func (p *processor[K, V]) expire(now int64) error {
	upTo := cutoff(now, p.ret)
	if upTo <= p.floor {
		return nil
	}
	p.hi = serde.AppendOrderedInt64(append(p.hi[:0], timeSpace), upTo)
	p.lo = serde.AppendOrderedInt64(append(p.lo[:0], timeSpace), p.floor)
	for {
		p.exp, p.ends = p.exp[:0], p.ends[:0]
		err := p.st.Range(p.lo, p.hi, func(k, _ []byte) bool {
			p.exp = append(p.exp, k...)
			p.ends = append(p.ends, len(p.exp))
			return len(p.ends) < expireChunk
		})
		if err != nil {
			return fmt.Errorf("dedupe: expiring IDs in store %q: %w", p.name, err)
		}
		start := 0
		for _, end := range p.ends {
			if err := p.forget(p.exp[start:end]); err != nil {
				return fmt.Errorf("dedupe: expiring IDs in store %q: %w", p.name, err)
			}
			start = end
		}
		if len(p.ends) < expireChunk {
			break
		}
		// Go on after the last key deleted, not over its tombstone.
		last := p.exp[:start]
		if n := len(p.ends); n > 1 {
			last = last[p.ends[n-2]:]
		}
		p.lo = append(append(p.lo[:0], last...), 0)
	}
	p.floor = upTo
	return nil
}

// forget deletes the time-index key tk and its ID's entry, if that entry
// still holds tk's timestamp. The ID goes first: should the second delete
// fail, the index entry stays for the next expiry to find.
func (p *processor[K, V]) forget(tk []byte) error {
	if len(tk) > 1+tsLen {
		ts := tk[1 : 1+tsLen]
		p.ikey = append(append(p.ikey[:0], idSpace), tk[1+tsLen:]...)
		v, found, err := p.read(p.ikey)
		if err != nil {
			return err
		}
		if found && bytes.Equal(v, ts) {
			if err := p.st.Delete(p.ikey); err != nil {
				return err
			}
		}
	}
	return p.st.Delete(tk)
}

func (p *processor[K, V]) Close() error { return nil }
