package kafkaio

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kstreamgo/kstream/internal/graph"
)

// A restore reads its changelog partition with a changelogReader rather than
// a consumer: it sends Fetch requests itself, through a client's connection
// to the partition's leader, and decodes the record batches it gets back
// straight into key and value slices. A consumer builds a kgo.Record per
// record and allocates the decompressed bytes and the records of every batch
// anew; that cost 0.2 CPU seconds per million small records here, four times
// what this reader costs, and a restore spent more of its CPU reading the
// changelog than writing the store.

// Fetch sizes of a changelogReader: what Kafka's consumers fetch by default.
const (
	readerPartitionBytes = 1 << 20
	readerMaxWait        = 500 * time.Millisecond
)

// errOutOfRange reports that a changelog no longer holds the offset a restore
// reads from (its log start moved past it, or the log was truncated before
// it): the store can only be restored in full.
var errOutOfRange = errors.New("kafkaio: the changelog no longer holds the offset to restore from")

// errCorruptBatch reports a record batch that cannot be decoded.
var errCorruptBatch = errors.New("corrupt record batch")

// readerRetries bounds the consecutive retriable failures (a leader moving,
// a broker restarting) a changelogReader waits out: about two minutes.
const readerRetries = 125

// Record batch (magic 2) layout: the header's fields by their offsets.
const (
	batchLengthAt     = 8  // int32: the batch's length after this field
	batchMagicAt      = 16 // int8: 2
	batchCRCAt        = 17 // uint32: CRC-32C of the rest, from the attributes on
	batchAttrsAt      = 21 // int16
	batchLastDeltaAt  = 23 // int32: last offset - base offset
	batchBaseTimeAt   = 27 // int64
	batchMaxTimeAt    = 35 // int64
	batchProducerAt   = 43 // int64: -1 when none
	batchCountAt      = 57 // int32: records
	batchHeaderLength = 61

	attrCodec         = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// changelogReader reads one partition from an offset to an end offset,
// read-committed unless uncommitted is set: records of aborted transactions
// and control records are skipped. It is used by one goroutine at a time.
type changelogReader struct {
	cl       *kgo.Client
	topic    string
	p        int32
	next     int64 // the next offset to read
	end      int64 // read up to here (exclusive)
	id       [16]byte
	leader   int32 // -1: to look up
	dec      kgo.Decompressor
	buf      decompressBuf
	aborted  map[int64]struct{} // producers whose transaction the batches being read aborted
	failures int                // consecutive retriable failures
	// uncommitted reads the records of open and aborted transactions too
	// (read uncommitted), as an at-least-once app's consumers do.
	uncommitted bool
}

// emitFunc receives the records a changelogReader reads: key and value are
// nil for Kafka's nulls; headers is the record's encoded headers (see
// appendHeaders); all are valid only during the call.
type emitFunc func(key, value, headers []byte, ts, offset int64)

// decompressBuf hands a changelogReader's buffer to its decompressor, which
// decompresses into it while its capacity is enough.
type decompressBuf struct{ b []byte }

func (d *decompressBuf) GetDecompressBytes([]byte, kgo.CompressionCodecType) []byte { return d.b }
func (d *decompressBuf) PutDecompressBytes([]byte)                                  {}

func newChangelogReader(cl *kgo.Client, topic string, p int32, from, end int64) *changelogReader {
	r := &changelogReader{cl: cl, topic: topic, p: p, next: from, end: end, leader: -1, aborted: map[int64]struct{}{}}
	r.dec = kgo.DefaultDecompressor(&r.buf)
	return r
}

// done reports whether the reader has reached its end offset.
func (r *changelogReader) done() bool { return r.next >= r.end }

// fetch sends one Fetch request and passes every record it gets below the
// end offset to emit, in offset order. Retriable errors (a leader moving,
// a broker restarting) are retried here, up to readerRetries in a row; fetch
// returns the others, naming the topic, partition and offset. An offset the
// changelog no longer holds is errOutOfRange.
func (r *changelogReader) fetch(ctx context.Context, emit emitFunc) error {
	for {
		err := r.fetchOnce(ctx, emit)
		retriable := kerr.IsRetriable(err) || errors.Is(err, kerr.UnknownTopicID)
		if err == nil || !retriable || r.failures >= readerRetries {
			r.failures = 0
			if err != nil {
				err = fmt.Errorf("kafkaio: reading %s/%d at offset %d: %w", r.topic, r.p, r.next, err)
			}
			return err
		}
		// Look the leader up again, after a pause that grows to a second.
		r.leader = -1
		r.failures++
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafkaio: reading %s/%d at offset %d: %w (after %w)", r.topic, r.p, r.next, ctx.Err(), err)
		case <-time.After(min(time.Duration(r.failures)*50*time.Millisecond, time.Second)):
		}
	}
}

func (r *changelogReader) fetchOnce(ctx context.Context, emit emitFunc) error {
	if r.leader < 0 {
		if err := r.lookup(ctx); err != nil {
			return err
		}
	}
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis = int32(readerMaxWait / time.Millisecond)
	req.MinBytes = 1
	req.MaxBytes = readerPartitionBytes
	if !r.uncommitted {
		req.IsolationLevel = 1 // read committed
	}
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = r.topic, r.id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = r.p, r.next, readerPartitionBytes
	rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.LogStartOffset = -1, -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, r.cl.Broker(int(r.leader)))
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// A broker that is down or unreachable: retriable.
		return fmt.Errorf("%w: %w", kerr.LeaderNotAvailable, err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return fmt.Errorf("%w: a fetch response without the partition", kerr.UnknownServerError)
	}
	part := &resp.Topics[0].Partitions[0]
	switch err := kerr.ErrorForCode(part.ErrorCode); {
	case errors.Is(err, kerr.OffsetOutOfRange):
		return fmt.Errorf("%w (%s/%d at %d)", errOutOfRange, r.topic, r.p, r.next)
	case err != nil:
		return err
	}
	before := r.next
	if err := r.decode(part, emit); err != nil {
		return err
	}
	// Nothing left up to the last stable offset: the log holds less than
	// the end offset said (it was truncated).
	if r.next == before && len(part.RecordBatches) == 0 && part.LastStableOffset >= 0 && part.LastStableOffset <= r.next {
		r.end = r.next
	}
	if resp.ThrottleMillis > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(resp.ThrottleMillis) * time.Millisecond):
		}
	}
	return nil
}

// lookup finds the partition's leader and the topic's ID.
func (r *changelogReader) lookup(ctx context.Context) error {
	req := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(r.topic)
	req.Topics = append(req.Topics, mt)
	resp, err := req.RequestWith(ctx, r.cl)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %w", kerr.LeaderNotAvailable, err)
	}
	if len(resp.Topics) != 1 {
		return kerr.UnknownTopicOrPartition
	}
	t := &resp.Topics[0]
	if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
		return err
	}
	for i := range t.Partitions {
		if mp := &t.Partitions[i]; mp.Partition == r.p {
			if err := kerr.ErrorForCode(mp.ErrorCode); err != nil {
				return err
			}
			if mp.Leader < 0 {
				return kerr.LeaderNotAvailable
			}
			r.id, r.leader = t.TopicID, mp.Leader
			return nil
		}
	}
	return kerr.UnknownTopicOrPartition
}

// decode walks a response's record batches, skipping the aborted and the
// control ones, and moves r.next past each complete batch.
func (r *changelogReader) decode(part *kmsg.FetchResponseTopicPartition, emit emitFunc) error {
	// The aborted transactions the response lists, by first offset: a
	// producer's batches are aborted from its transaction's first offset
	// to its abort marker.
	pending := part.AbortedTransactions
	slices.SortFunc(pending, func(x, y kmsg.FetchResponseTopicPartitionAbortedTransaction) int {
		return cmp.Compare(x.FirstOffset, y.FirstOffset)
	})
	clear(r.aborted)
	bs := part.RecordBatches
	complete := false
	for len(bs) >= batchLengthAt+4 {
		n := int64(int32(binary.BigEndian.Uint32(bs[batchLengthAt:])))
		if n < 0 || int64(len(bs)) < batchLengthAt+4+n {
			break // a partial batch ends the response
		}
		b := bs[:batchLengthAt+4+n]
		bs = bs[len(b):]
		base := int64(binary.BigEndian.Uint64(b))
		if len(b) < batchHeaderLength {
			return fmt.Errorf("%w at offset %d: %d bytes", errCorruptBatch, base, len(b))
		}
		if magic := int8(b[batchMagicAt]); magic != 2 {
			return fmt.Errorf("%w at offset %d: magic %d (only 2, of Kafka 0.11 and later, is read)", errCorruptBatch, base, magic)
		}
		if crc32.Checksum(b[batchAttrsAt:], crc32c) != binary.BigEndian.Uint32(b[batchCRCAt:]) {
			return fmt.Errorf("%w at offset %d: its CRC does not match", errCorruptBatch, base)
		}
		complete = true
		last := base + int64(int32(binary.BigEndian.Uint32(b[batchLastDeltaAt:])))
		if last < r.next {
			continue // before the offset asked for
		}
		attrs := binary.BigEndian.Uint16(b[batchAttrsAt:])
		producer := int64(binary.BigEndian.Uint64(b[batchProducerAt:]))
		skip := attrs&attrControl != 0
		if producer >= 0 {
			for len(pending) > 0 && pending[0].FirstOffset <= last {
				r.aborted[pending[0].ProducerID] = struct{}{}
				pending = pending[1:]
			}
			_, aborted := r.aborted[producer]
			switch {
			case skip && aborted:
				abort, err := r.abortMarker(b)
				if err != nil {
					return err
				}
				if abort {
					delete(r.aborted, producer)
				}
			case attrs&attrTransactional != 0 && aborted:
				skip = true
			}
		}
		if !skip {
			if err := r.records(b, attrs, emit); err != nil {
				return err
			}
		}
		r.next = last + 1
		if r.done() {
			return nil
		}
	}
	if !complete && len(bs) > 0 {
		return fmt.Errorf("a record batch larger than the %d bytes fetched", len(bs))
	}
	return nil
}

// abortMarker reports whether a control batch is a transaction's abort
// marker (its record's key: version int16, type int16, 0 for abort).
func (r *changelogReader) abortMarker(b []byte) (bool, error) {
	abort := false
	err := r.walk(b, func(key, _, _ []byte, _, _ int64) {
		abort = len(key) >= 4 && binary.BigEndian.Uint16(key[2:]) == 0
	})
	return abort, err
}

// records passes a batch's records to emit, from r.next to r.end.
func (r *changelogReader) records(b []byte, attrs uint16, emit emitFunc) error {
	next, end := r.next, r.end
	// A batch the broker stamped: its append time, the batch's max
	// timestamp, is every record's.
	stamped := attrs&attrLogAppendTime != 0
	appended := int64(binary.BigEndian.Uint64(b[batchMaxTimeAt:]))
	return r.walk(b, func(key, value, headers []byte, ts, offset int64) {
		if offset >= next && offset < end {
			if stamped {
				ts = appended
			}
			emit(key, value, headers, ts, offset)
		}
	})
}

// walk decompresses a batch and decodes its records.
func (r *changelogReader) walk(b []byte, fn emitFunc) error {
	base := int64(binary.BigEndian.Uint64(b))
	baseTime := int64(binary.BigEndian.Uint64(b[batchBaseTimeAt:]))
	count := int32(binary.BigEndian.Uint32(b[batchCountAt:]))
	recs := b[batchHeaderLength:]
	if codec := kgo.CompressionCodecType(binary.BigEndian.Uint16(b[batchAttrsAt:]) & attrCodec); codec != kgo.CodecNone {
		out, err := r.dec.Decompress(recs, codec)
		if err != nil {
			return fmt.Errorf("%w at offset %d: decompressing: %w", errCorruptBatch, base, err)
		}
		if cap(out) > cap(r.buf.b) {
			r.buf.b = out[:0]
		}
		recs = out
	}
	for i := int32(0); i < count; i++ {
		var ok bool
		var rec []byte
		if rec, recs, ok = cutVarBytes(recs); !ok || len(rec) < 1 {
			return fmt.Errorf("%w at offset %d: record %d is cut short", errCorruptBatch, base, i)
		}
		rec = rec[1:] // attributes
		tsDelta, n := binary.Varint(rec)
		if n <= 0 {
			return fmt.Errorf("%w at offset %d: record %d: bad timestamp", errCorruptBatch, base, i)
		}
		rec = rec[n:]
		offDelta, n := binary.Varint(rec)
		if n <= 0 {
			return fmt.Errorf("%w at offset %d: record %d: bad offset", errCorruptBatch, base, i)
		}
		rec = rec[n:]
		var key, value []byte
		if key, rec, ok = cutVarBytes(rec); ok {
			value, rec, ok = cutVarBytes(rec)
		}
		if !ok {
			return fmt.Errorf("%w at offset %d: record %d: bad key or value", errCorruptBatch, base, i)
		}
		fn(key, value, rec, baseTime+tsDelta, base+offDelta)
	}
	return nil
}

// cutVarBytes cuts bytes prefixed by their zigzag varint length from b: nil
// for a length of -1 (Kafka's null), and ok false when b is too short.
func cutVarBytes(b []byte) (v, rest []byte, ok bool) {
	n, m := binary.Varint(b)
	switch {
	case m <= 0 || n < -1 || n > int64(len(b)-m):
		return nil, nil, false
	case n == -1:
		return nil, b[m:], true
	}
	return b[m : m+int(n) : m+int(n)], b[m+int(n):], true
}

// appendHeaders decodes a record's encoded headers (a varint count, then
// each key and value prefixed by its varint length) to dst.
func appendHeaders(dst []graph.Header, b []byte) ([]graph.Header, error) {
	n, m := binary.Varint(b)
	if m <= 0 || n < 0 || n > int64(len(b)) {
		return dst, fmt.Errorf("%w: bad header count", errCorruptBatch)
	}
	b = b[m:]
	for range n {
		var k, v []byte
		ok := false
		if k, b, ok = cutVarBytes(b); ok {
			v, b, ok = cutVarBytes(b)
		}
		if !ok || k == nil {
			return dst, fmt.Errorf("%w: bad header", errCorruptBatch)
		}
		dst = append(dst, graph.Header{Key: string(k), Value: v})
	}
	return dst, nil
}
