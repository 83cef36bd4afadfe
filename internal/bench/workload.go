package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The filter of both implementations drops the keys ending in dropSuffix:
// one record in dropEvery.
const (
	dropSuffix = "#x"
	dropEvery  = 1000
)

var dropSuffixBytes = []byte(dropSuffix)

// keep is the filter predicate of both implementations.
func keep(key []byte) bool { return !bytes.HasSuffix(key, dropSuffixBytes) }

// appendKey appends the key of record i: "user-<i>", with dropSuffix for one
// record in dropEvery.
func appendKey(dst []byte, i int) []byte {
	dst = append(dst, "user-"...)
	dst = strconv.AppendInt(dst, int64(i), 10)
	if i%dropEvery == dropEvery-1 {
		dst = append(dst, dropSuffix...)
	}
	return dst
}

// kept returns how many of the records 0..n-1 pass the filter.
func kept(n int) int64 { return int64(n - n/dropEvery) }

// valuePool is random bytes that values are sliced from: values do not
// compress much, as with real payloads.
func valuePool(size int) []byte {
	r := rand.New(rand.NewChaCha8([32]byte{'k', 's', 't', 'r', 'e', 'a', 'm'}))
	b := make([]byte, 1<<20+size)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// newProducer returns a client producing keyed records to the partitions
// Java's default partitioner would pick (murmur2 of the key).
func newProducer(brokers []string, extra ...kgo.Opt) (*kgo.Client, error) {
	opts := append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil))}, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("bench: producer: %w", err)
	}
	return cl, nil
}

// prefill writes n records to topic, timestamped with their produce time,
// counting them in done. It returns how many pass the filter.
func prefill(ctx context.Context, brokers []string, topic string, n, valueSize int, done *atomic.Int64) (int64, error) {
	pool := valuePool(valueSize)
	err := produceN(ctx, brokers, topic, n, done, nil, func(buf []byte, i int) ([]byte, int, []byte) {
		start := len(buf)
		buf = appendKey(buf, i)
		return buf, len(buf) - start, poolValue(pool, i, valueSize)
	})
	return kept(n), err
}

// poolValue returns value i of size bytes, sliced from pool (see valuePool).
func poolValue(pool []byte, i, size int) []byte {
	off := (i * 4099) % (len(pool) - size)
	return pool[off : off+size : off+size]
}

// users is how many distinct keys the windowed and join scenarios have.
const users = 10_000

// appendUser appends the key of record i of the windowed and join
// scenarios: "user-<i mod users>", so that every user has the same number
// of records (give or take one), at regular intervals.
func appendUser(dst []byte, i int) []byte {
	dst = append(dst, "user-"...)
	return strconv.AppendInt(dst, int64(i%users), 10)
}

// produceUsers writes records 0..n-1 keyed by appendUser with values of
// valueSize bytes to topic, counting them in done; at as in produceN.
func produceUsers(ctx context.Context, brokers []string, topic string, n, valueSize int, done *atomic.Int64, at func(i int) time.Time) error {
	pool := valuePool(valueSize)
	return produceN(ctx, brokers, topic, n, done, at, func(buf []byte, i int) ([]byte, int, []byte) {
		start := len(buf)
		buf = appendUser(buf, i)
		return buf, len(buf) - start, poolValue(pool, i, valueSize)
	})
}

// produceN writes records 0..n-1 of rec to topic, counting them in done. rec
// appends record i's key to buf, and returns buf, the key's length and the
// value (which may follow the key in buf); buf is new for each chunk of
// records. at, if not nil, returns record i's timestamp; otherwise the
// producer stamps records with their produce time.
func produceN(ctx context.Context, brokers []string, topic string, n int, done *atomic.Int64, at func(i int) time.Time,
	rec func(buf []byte, i int) (out []byte, keyLen int, value []byte)) error {
	cl, err := newProducer(brokers)
	if err != nil {
		return err
	}
	defer cl.Close()
	var firstErr atomic.Pointer[error]
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			firstErr.CompareAndSwap(nil, &err)
		}
		done.Add(1)
	}
	const chunk = 4096
	for i := 0; i < n; i += chunk {
		m := min(chunk, n-i)
		recs := make([]kgo.Record, m)
		buf := make([]byte, 0, m*32)
		for j := range recs {
			start := len(buf)
			var klen int
			var v []byte
			buf, klen, v = rec(buf, i+j)
			recs[j] = kgo.Record{Topic: topic, Key: buf[start : start+klen : start+klen], Value: v}
			if at != nil {
				recs[j].Timestamp = at(i + j)
			}
			cl.Produce(ctx, &recs[j], promise)
		}
		if p := firstErr.Load(); p != nil {
			return fmt.Errorf("bench: producing to %s: %w", topic, *p)
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("bench: producing to %s: %w", topic, err)
	}
	if p := firstErr.Load(); p != nil {
		return fmt.Errorf("bench: producing to %s: %w", topic, *p)
	}
	return nil
}

// The latency scenario's values start with the send time in nanoseconds
// and a warm-up flag.
func stampValue(v []byte, sent time.Time, warm bool) {
	binary.BigEndian.PutUint64(v, uint64(sent.UnixNano()))
	v[8] = 0
	if warm {
		v[8] = 1
	}
}

func readStamp(v []byte) (sentNanos int64, warm, ok bool) {
	if len(v) < 9 {
		return 0, false, false
	}
	return int64(binary.BigEndian.Uint64(v)), v[8] == 1, true
}
