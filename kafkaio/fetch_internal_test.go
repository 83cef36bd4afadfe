package kafkaio

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kstreamgo/kstream/internal/graph"
)

// readRec is a record as a changelogReader or a consumer read it; the nil
// flags keep Kafka's nulls apart from empty bytes.
type readRec struct {
	key, value        string
	nilKey, nilValue  bool
	timestamp, offset int64
	headers           string
}

func (r readRec) String() string {
	return fmt.Sprintf("%d: %q(nil %v)=%q(nil %v) @%d %s", r.offset, r.key, r.nilKey, r.value, r.nilValue, r.timestamp, r.headers)
}

// readerClusters runs fn on an embedded cluster, and on the real broker of
// KSTREAM_BROKERS when it is set.
func readerClusters(t *testing.T, fn func(t *testing.T, brokers []string, e *Embedded)) {
	t.Run("embedded", func(t *testing.T) {
		e, err := StartEmbedded(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.Close)
		fn(t, e.Seeds(), e)
	})
	t.Run("kafka", func(t *testing.T) {
		addrs := os.Getenv("KSTREAM_BROKERS")
		if addrs == "" {
			t.Skip("KSTREAM_BROKERS is not set: no real broker (scripts/test.sh starts one)")
		}
		fn(t, strings.Split(addrs, ","), nil)
	})
}

func readerTopic(t *testing.T, brokers []string, name string) string {
	t.Helper()
	topic := fmt.Sprintf("%s-%d", name, time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := CreateTopics(ctx, brokers, 1, []string{topic}); err != nil {
		t.Fatal(err)
	}
	return topic
}

func readerClient(t *testing.T, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// readAll reads [from, end) with a changelogReader.
func readAll(t *testing.T, cl *kgo.Client, topic string, from, end int64) ([]readRec, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out []readRec
	rd := newChangelogReader(cl, topic, 0, from, end)
	for !rd.done() {
		err := rd.fetch(ctx, func(key, value, headers []byte, ts, offset int64) {
			hs, err := appendHeaders(nil, headers)
			if err != nil {
				t.Errorf("offset %d: %v", offset, err)
			}
			out = append(out, readRec{string(key), string(value), key == nil, value == nil, ts, offset, fmt.Sprint(hs)})
		})
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// consumeRange reads [from, end) with a read-committed franz-go consumer,
// the reference.
func consumeRange(t *testing.T, brokers []string, topic string, from, end int64) []readRec {
	t.Helper()
	cl := readerClient(t, brokers, kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(from)}}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out []readRec
	for {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset+1 >= end {
				done = true
			}
			if r.Offset < from || r.Offset >= end || r.Attrs.IsControl() {
				return
			}
			var hs []graph.Header
			for _, h := range r.Headers {
				hs = append(hs, graph.Header{Key: h.Key, Value: h.Value})
			}
			out = append(out, readRec{string(r.Key), string(r.Value), r.Key == nil, r.Value == nil, r.Timestamp.UnixMilli(), r.Offset, fmt.Sprint(hs)})
		})
		if done {
			return out
		}
	}
}

func lastStable(t *testing.T, cl *kgo.Client, topic string) int64 {
	t.Helper()
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := ends.Lookup(topic, 0)
	return o.Offset
}

// fillMixed writes what a changelog can hold: nulls and empty bytes,
// headers, every compression codec, and transactions, committed and aborted,
// interleaved. It returns the records produced, in order.
func fillMixed(t *testing.T, brokers []string, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	produce := func(cl *kgo.Client, recs ...*kgo.Record) {
		t.Helper()
		for _, r := range recs {
			r.Topic = topic
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	ts := time.UnixMilli(1_700_000_000_000)
	plain := readerClient(t, brokers, kgo.ProducerBatchCompression(kgo.NoCompression()))
	produce(plain,
		&kgo.Record{Key: []byte("a"), Value: []byte("1"), Timestamp: ts},
		&kgo.Record{Key: []byte("b"), Value: nil, Timestamp: ts.Add(time.Second)},     // tombstone
		&kgo.Record{Key: []byte("c"), Value: []byte{}, Timestamp: ts.Add(-time.Hour)}, // empty value
		&kgo.Record{Key: nil, Value: []byte("no key"), Timestamp: ts},
		&kgo.Record{Key: []byte{}, Value: []byte("empty key"), Timestamp: ts},
		&kgo.Record{Key: []byte("h"), Value: []byte("headers"), Timestamp: ts,
			Headers: []kgo.RecordHeader{{Key: "x", Value: []byte("y")}, {Key: "z"}}})
	for i, codec := range []kgo.CompressionCodec{kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()} {
		cl := readerClient(t, brokers, kgo.ProducerBatchCompression(codec), kgo.ProducerLinger(50*time.Millisecond))
		recs := make([]*kgo.Record, 200)
		for j := range recs {
			recs[j] = &kgo.Record{Key: []byte(fmt.Sprintf("codec%d-%03d", i, j)), Value: bytes.Repeat([]byte{byte('a' + j%26)}, 20+j%7),
				Timestamp: ts.Add(time.Duration(j) * time.Millisecond)}
		}
		produce(cl, recs...)
	}
	// Two transactional producers, their transactions open at once.
	txn := func(id string) *kgo.Client {
		return readerClient(t, brokers, kgo.TransactionalID(id+topic), kgo.ProducerBatchCompression(kgo.SnappyCompression()))
	}
	x, y := txn("x"), txn("y")
	for round := range 3 {
		for _, cl := range []*kgo.Client{x, y} {
			if err := cl.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
		}
		for j := range 4 {
			produce(x, &kgo.Record{Key: []byte(fmt.Sprintf("x%d-%d", round, j)), Value: []byte("x"), Timestamp: ts})
			produce(y, &kgo.Record{Key: []byte(fmt.Sprintf("y%d-%d", round, j)), Value: []byte("y"), Timestamp: ts})
			produce(plain, &kgo.Record{Key: []byte(fmt.Sprintf("p%d-%d", round, j)), Value: []byte("p"), Timestamp: ts})
		}
		// x commits rounds 0 and 2, y only round 1.
		if err := x.EndTransaction(ctx, kgo.TransactionEndTry(round != 1)); err != nil {
			t.Fatal(err)
		}
		if err := y.EndTransaction(ctx, kgo.TransactionEndTry(round == 1)); err != nil {
			t.Fatal(err)
		}
	}
	// Enough records after them for several fetches of 1 MiB.
	bulk := readerClient(t, brokers, kgo.ProducerLinger(10*time.Millisecond))
	recs := make([]*kgo.Record, 20000)
	for j := range recs {
		recs[j] = &kgo.Record{Key: []byte(fmt.Sprintf("bulk-%05d", j)), Value: bytes.Repeat([]byte{'v'}, 200), Timestamp: ts}
	}
	produce(bulk, recs...)
}

// TestChangelogReader reads a topic of every kind of record and batch, from
// several offsets to several ends, and checks that the reader returns what a
// read-committed franz-go consumer returns.
func TestChangelogReader(t *testing.T) {
	readerClusters(t, func(t *testing.T, brokers []string, _ *Embedded) {
		topic := readerTopic(t, brokers, "reader")
		fillMixed(t, brokers, topic)
		cl := readerClient(t, brokers)
		end := lastStable(t, cl, topic)
		all := consumeRange(t, brokers, topic, 0, end)
		var aborted, nulls, headers int
		for _, r := range all {
			if r.headers != "[]" {
				headers++
			}
			if r.nilValue || r.nilKey {
				nulls++
			}
			if strings.HasPrefix(r.key, "x1-") || strings.HasPrefix(r.key, "y0-") || strings.HasPrefix(r.key, "y2-") {
				aborted++
			}
		}
		if want := 6 + 4*200 + 3*4*2 + 20000; len(all) != want || aborted != 0 || nulls != 2 || headers != 1 {
			t.Fatalf("the reference consumer read %d records (want %d), %d aborted, %d nulls, %d with headers", len(all), want, aborted, nulls, headers)
		}
		// From the start, from inside a compressed batch, from inside the
		// transactions, near the end; to the end, and to offsets short of
		// it.
		mid := all[6+250].offset
		txnAt := all[6+800+5].offset
		for _, c := range [][2]int64{{0, end}, {mid, end}, {txnAt, end}, {end - 1, end}, {0, txnAt + 3}, {txnAt, all[len(all)-5000].offset}} {
			got, err := readAll(t, cl, topic, c[0], c[1])
			if err != nil {
				t.Fatalf("reading [%d, %d): %v", c[0], c[1], err)
			}
			want := consumeRange(t, brokers, topic, c[0], c[1])
			if len(got) != len(want) {
				t.Fatalf("reading [%d, %d): %d records, want %d", c[0], c[1], len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("reading [%d, %d): record %d is %v, want %v", c[0], c[1], i, got[i], want[i])
				}
			}
		}
	})
}

// TestChangelogReaderLogAppendTime reads a topic whose broker stamps the
// records: they carry the batch's append time, not the producer's (Kafka
// stamps them; the embedded cluster keeps the producer's time, and
// TestChangelogReaderDecode covers stamped batches too).
func TestChangelogReaderLogAppendTime(t *testing.T) {
	readerClusters(t, func(t *testing.T, brokers []string, e *Embedded) {
		topic := fmt.Sprintf("reader-appendtime-%d", time.Now().UnixNano())
		cl := readerClient(t, brokers, kgo.DefaultProduceTopic(topic))
		appendTime := "LogAppendTime"
		if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 1, -1, map[string]*string{"message.timestamp.type": &appendTime}, topic); err != nil {
			t.Fatal(err)
		}
		before := time.Now().Add(-time.Second).UnixMilli()
		for i := range 10 {
			r := &kgo.Record{Value: []byte(fmt.Sprint(i)), Timestamp: time.UnixMilli(1000)}
			if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		got, err := readAll(t, cl, topic, 0, 10)
		want := consumeRange(t, brokers, topic, 0, 10)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) || len(got) != 10 || e == nil && got[0].timestamp < before {
			t.Fatalf("read %v, %v; want %v, stamped after %d", got, err, want, before)
		}
	})
}

// TestChangelogReaderOutOfRange checks that reading from before the log
// start is errOutOfRange, which makes the restore start over, and that
// reading to past the log's end stops there.
func TestChangelogReaderOutOfRange(t *testing.T) {
	readerClusters(t, func(t *testing.T, brokers []string, _ *Embedded) {
		topic := readerTopic(t, brokers, "reader-range")
		cl := readerClient(t, brokers, kgo.DefaultProduceTopic(topic))
		for i := range 20 {
			if err := cl.ProduceSync(context.Background(), kgo.StringRecord(fmt.Sprint(i))).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		del := kadm.Offsets{}
		del.Add(kadm.Offset{Topic: topic, Partition: 0, At: 10})
		if res, err := kadm.NewClient(cl).DeleteRecords(context.Background(), del); err != nil || res.Error() != nil {
			t.Fatal(err, res.Error())
		}
		_, err := readAll(t, cl, topic, 5, 20)
		if !errors.Is(err, errOutOfRange) || !strings.Contains(err.Error(), topic+"/0 at offset 5") {
			t.Fatalf("reading from before the log start: %v, want errOutOfRange naming the partition and offset", err)
		}
		got, err := readAll(t, cl, topic, 10, 20)
		if err != nil || len(got) != 10 || got[0].offset != 10 || got[0].value != "10" {
			t.Fatalf("reading from the log start: %v, %v", got, err)
		}
		// An end offset past the log (which was truncated after it was
		// listed): the reader stops at the log's end, not waiting forever.
		got, err = readAll(t, cl, topic, 15, 30)
		if err != nil || len(got) != 5 || got[4].offset != 19 {
			t.Fatalf("reading to past the log's end: %v, %v", got, err)
		}
	})
}

// TestChangelogReaderLeaderMoves moves the partition to another broker while
// it is read, and injects retriable errors: the reader finds the new leader
// and reads on, skipping and repeating nothing.
func TestChangelogReaderLeaderMoves(t *testing.T) {
	e, err := StartEmbedded(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	brokers := e.Seeds()
	topic := readerTopic(t, brokers, "reader-move")
	cl := readerClient(t, brokers, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(10*time.Millisecond),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(64<<10))
	const n = 30000
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Value: []byte(fmt.Sprintf("%05d%s", i, bytes.Repeat([]byte{'v'}, 100)))}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// Every third fetch fails with a retriable error.
	var fetches atomic.Int32
	e.Cluster().ControlKey(kmsg.Fetch.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		e.Cluster().KeepControl()
		if fetches.Add(1)%3 != 0 {
			return nil, nil, false
		}
		fr := req.(*kmsg.FetchRequest)
		resp := fr.ResponseKind().(*kmsg.FetchResponse)
		for _, rt := range fr.Topics {
			st := kmsg.NewFetchResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewFetchResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, 6 // NOT_LEADER_OR_FOLLOWER
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rd := newChangelogReader(cl, topic, 0, 0, n)
	next, moves := 0, 0
	for !rd.done() {
		err := rd.fetch(ctx, func(_, value, _ []byte, _, offset int64) {
			if want := fmt.Sprintf("%05d", next); offset != int64(next) || string(value[:5]) != want {
				t.Fatalf("read offset %d value %q, want offset %d value %s", offset, value[:5], next, want)
			}
			next++
		})
		if err != nil {
			t.Fatal(err)
		}
		if leader := e.Cluster().LeaderFor(topic, 0); next < n && moves < 3 {
			if err := e.Cluster().MoveTopicPartition(topic, 0, (leader+1)%3); err != nil {
				t.Fatal(err)
			}
			moves++
		}
	}
	if next != n || moves != 3 || fetches.Load() < 6 {
		t.Fatalf("read %d of %d records, after %d moves and %d fetches", next, n, moves, fetches.Load())
	}
}

// recordBatch encodes a record batch (magic 2) of records with key k and values
// at offsets base...; a nil value is Kafka's null.
func recordBatch(base int64, attrs uint16, producer int64, k []byte, values ...[]byte) []byte {
	var recs []byte
	for i, v := range values {
		body := []byte{0}                          // attributes
		body = binary.AppendVarint(body, int64(i)) // timestamp delta
		body = binary.AppendVarint(body, int64(i)) // offset delta
		body = binary.AppendVarint(body, int64(len(k)))
		body = append(body, k...)
		if v == nil {
			body = binary.AppendVarint(body, -1)
		} else {
			body = binary.AppendVarint(body, int64(len(v)))
			body = append(body, v...)
		}
		body = binary.AppendVarint(body, 0) // headers
		recs = binary.AppendVarint(recs, int64(len(body)))
		recs = append(recs, body...)
	}
	b := binary.BigEndian.AppendUint64(nil, uint64(base))
	b = binary.BigEndian.AppendUint32(b, 0) // length: sealBatch
	b = binary.BigEndian.AppendUint32(b, 0) // leader epoch
	b = append(b, 2)
	b = binary.BigEndian.AppendUint32(b, 0) // CRC: sealBatch
	b = binary.BigEndian.AppendUint16(b, attrs)
	b = binary.BigEndian.AppendUint32(b, uint32(max(len(values)-1, 0)))
	b = binary.BigEndian.AppendUint64(b, 1000)
	b = binary.BigEndian.AppendUint64(b, 1000+uint64(len(values)))
	b = binary.BigEndian.AppendUint64(b, uint64(producer))
	b = binary.BigEndian.AppendUint16(b, 0) // producer epoch
	b = binary.BigEndian.AppendUint32(b, 0) // base sequence
	b = binary.BigEndian.AppendUint32(b, uint32(len(values)))
	return sealBatch(append(b, recs...))
}

// sealBatch sets a batch's length and CRC.
func sealBatch(b []byte) []byte {
	binary.BigEndian.PutUint32(b[batchLengthAt:], uint32(len(b)-batchLengthAt-4))
	binary.BigEndian.PutUint32(b[batchCRCAt:], crc32.Checksum(b[batchAttrsAt:], crc32c))
	return b
}

func decodeAll(r *changelogReader, batches []byte, aborts ...kmsg.FetchResponseTopicPartitionAbortedTransaction) ([]string, error) {
	var got []string
	err := r.decode(&kmsg.FetchResponseTopicPartition{RecordBatches: batches, AbortedTransactions: aborts}, func(_, v, _ []byte, _, off int64) {
		got = append(got, fmt.Sprintf("%d:%s", off, v))
	})
	return got, err
}

// TestChangelogReaderDecode checks the aborted-transaction filter and the
// errors for damaged batches, on batches built by hand.
func TestChangelogReaderDecode(t *testing.T) {
	// A transaction marker: key version 0 and type (0 abort, 1 commit).
	marker := func(base, producer int64, kind byte) []byte {
		return recordBatch(base, attrControl|attrTransactional, producer, []byte{0, 0, 0, kind}, []byte{0, 0, 0, 0, 0, 0})
	}
	k := []byte("k")
	var log []byte
	log = append(log, recordBatch(0, 0, -1, k, []byte("a"), []byte("b"))...)
	log = append(log, recordBatch(2, attrTransactional, 7, k, []byte("aborted1"))...)
	log = append(log, recordBatch(3, attrTransactional, 8, k, []byte("committed"))...)
	log = append(log, recordBatch(4, attrTransactional, 7, k, []byte("aborted2"))...)
	log = append(log, marker(5, 7, 0)...)
	log = append(log, marker(6, 8, 1)...)
	log = append(log, recordBatch(7, attrTransactional, 7, k, []byte("later"))...)
	log = append(log, marker(8, 7, 1)...)
	log = append(log, recordBatch(9, 0, -1, k, []byte("c"))...)
	aborts := []kmsg.FetchResponseTopicPartitionAbortedTransaction{{ProducerID: 7, FirstOffset: 2}}

	r := &changelogReader{topic: "t", next: 0, end: 100, aborted: map[int64]struct{}{}}
	got, err := decodeAll(r, log, aborts...)
	if want := "[0:a 1:b 3:committed 7:later 9:c]"; err != nil || fmt.Sprint(got) != want || r.next != 10 {
		t.Fatalf("decoded %v (next %d), %v; want %s", got, r.next, err, want)
	}
	// Read committed only through the aborted list: without it, the
	// aborted transaction's records are read.
	r = &changelogReader{topic: "t", next: 1, end: 8, aborted: map[int64]struct{}{}}
	if got, err := decodeAll(r, log); err != nil || fmt.Sprint(got) != "[1:b 2:aborted1 3:committed 4:aborted2 7:later]" || r.next != 8 {
		t.Fatalf("decoded %v (next %d), %v", got, r.next, err)
	}
	// A partial batch at the end is left for the next fetch.
	r = &changelogReader{topic: "t", next: 0, end: 100, aborted: map[int64]struct{}{}}
	if got, err := decodeAll(r, log[:len(log)-3], aborts...); err != nil || len(got) != 4 || r.next != 9 {
		t.Fatalf("decoded %v (next %d), %v", got, r.next, err)
	}
	// A batch the broker stamped: every record has its max timestamp.
	r = &changelogReader{topic: "t", next: 0, end: 100, aborted: map[int64]struct{}{}}
	var stamps []int64
	err = r.decode(&kmsg.FetchResponseTopicPartition{RecordBatches: recordBatch(0, attrLogAppendTime, -1, k, []byte("a"), []byte("b"))},
		func(_, _, _ []byte, ts, _ int64) { stamps = append(stamps, ts) })
	if err != nil || fmt.Sprint(stamps) != "[1002 1002]" {
		t.Fatalf("timestamps of a stamped batch: %v, %v; want its max timestamp, 1002", stamps, err)
	}
	for name, damage := range map[string]func([]byte) []byte{
		"crc":    func(b []byte) []byte { b[len(b)-2] ^= 1; return b },
		"magic":  func(b []byte) []byte { b[batchMagicAt] = 1; return sealBatch(b) },
		"count":  func(b []byte) []byte { binary.BigEndian.PutUint32(b[batchCountAt:], 5); return sealBatch(b) },
		"length": func(b []byte) []byte { b[batchHeaderLength] = 0x7e; return sealBatch(b) },
		"codec":  func(b []byte) []byte { b[batchAttrsAt+1] |= 2; return sealBatch(b) },
	} {
		b := damage(recordBatch(40, 0, -1, k, []byte("x"), []byte("y")))
		r := &changelogReader{topic: "t", next: 0, end: 100, aborted: map[int64]struct{}{}}
		r.dec = kgo.DefaultDecompressor(&r.buf)
		if _, err := decodeAll(r, b); !errors.Is(err, errCorruptBatch) || !strings.Contains(err.Error(), "40") {
			t.Errorf("%s: decoding a damaged batch: %v, want errCorruptBatch naming offset 40", name, err)
		}
	}
	// A fetch that holds less than one batch cannot move on: an error,
	// not a loop.
	r = &changelogReader{topic: "t", next: 0, end: 100, aborted: map[int64]struct{}{}}
	if _, err := decodeAll(r, log[:20]); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("a partial batch alone: %v, want an error", err)
	}
}

// TestChangelogReaderDecodeAllocs checks that decoding batches, snappy ones
// included, allocates nothing once the decompression buffer has grown.
func TestChangelogReaderDecodeAllocs(t *testing.T) {
	r := newChangelogReader(nil, "t", 0, 0, 1<<40)
	plain := recordBatch(0, 0, -1, []byte("k"), bytes.Repeat([]byte("v"), 50), []byte("w"))
	compressed := recordBatch(2, 0, -1, nil)
	binary.BigEndian.PutUint16(compressed[batchAttrsAt:], uint16(kgo.CodecSnappy))
	binary.BigEndian.PutUint32(compressed[batchLastDeltaAt:], 1)
	binary.BigEndian.PutUint32(compressed[batchCountAt:], 2)
	compressed = sealBatch(append(compressed, snappyBlock(recordBatch(2, 0, -1, []byte("k"), []byte("a"), []byte("b"))[batchHeaderLength:])...))
	part := &kmsg.FetchResponseTopicPartition{RecordBatches: append(plain, compressed...)}
	var n int
	emit := func(_, _, _ []byte, _, _ int64) { n++ }
	allocs := testing.AllocsPerRun(100, func() {
		r.next = 0
		if err := r.decode(part, emit); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 || n != 4*101 {
		t.Fatalf("decoding allocated %v times per call (want 0), emitted %d records (want %d)", allocs, n, 4*101)
	}
}

// FuzzChangelogReaderDecode feeds damaged batches, with their length and
// CRC made right so that they reach the record and header decoding: errors,
// never a panic.
func FuzzChangelogReaderDecode(f *testing.F) {
	f.Add(recordBatch(0, 0, -1, []byte("k"), []byte("a"), []byte("bc"), nil)[batchHeaderLength:], uint16(0), int32(3))
	f.Add(recordBatch(0, 0, -1, nil, []byte("abc"))[batchHeaderLength:], uint16(2), int32(1))
	f.Fuzz(func(t *testing.T, recs []byte, attrs uint16, count int32) {
		b := recordBatch(0, attrs&^attrControl, -1, nil)
		binary.BigEndian.PutUint32(b[batchCountAt:], uint32(count))
		b = sealBatch(append(b[:batchHeaderLength:batchHeaderLength], recs...))
		r := &changelogReader{topic: "t", next: 0, end: 1 << 40, aborted: map[int64]struct{}{}}
		r.dec = kgo.DefaultDecompressor(&r.buf)
		_ = r.decode(&kmsg.FetchResponseTopicPartition{RecordBatches: b}, func(_, _, headers []byte, _, _ int64) {
			_, _ = appendHeaders(nil, headers)
		})
	})
}

// snappyBlock compresses b as franz-go's producers do.
func snappyBlock(b []byte) []byte {
	c, err := kgo.DefaultCompressor(kgo.SnappyCompression())
	if err != nil {
		panic(err)
	}
	out, codec := c.Compress(new(bytes.Buffer), b)
	if codec != kgo.CodecSnappy {
		panic("not compressed with snappy")
	}
	return out
}
