package state

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"unsafe"

	"github.com/cockroachdb/pebble/v2"
)

// recordBuf buffers writes of Pebble keys in an arena, one loadRecord each,
// and writes them into a Pebble batch in key order. The Loader buffers
// every record of a restore in one; the Batch, the last write of each key.
type recordBuf struct {
	arena []byte       // the Pebble key and value of each record
	recs  []loadRecord // one per record, in arrival order
	tmp   []loadRecord // scratch space of the sort
	lcp   int          // length of the prefix shared by every Pebble key in recs
	size  int          // Pebble batch size of recs
	// arenaHint and recsHint are the sizes of the buffers that the last
	// reset dropped: the next write allocates them at once.
	arenaHint, recsHint int
}

// loadRecord locates a buffered record in recordBuf.arena: its Pebble key is
// arena[off:off+klen] and its value the vlen bytes after it.
type loadRecord struct {
	abbr    uint64 // the 8 key bytes after the common prefix, big-endian, zero-padded
	off     uint32
	klen    uint32
	vlen    uint32
	deleted bool
}

// maxRecordBytes bounds the bytes a recordBuf holds: its offsets are 32-bit.
const maxRecordBytes = 1 << 31

// errRecordBytes is the error of a write past maxRecordBytes.
var errRecordBytes = fmt.Errorf("more than %d bytes written since the last commit", maxRecordBytes)

// add appends a record of the Pebble key prefix+key (value is nil for a
// deletion) and returns its index in recs.
func (r *recordBuf) add(prefix, key, value []byte, deleted bool) (int, error) {
	if r.arena == nil && r.arenaHint > 0 {
		r.arena = make([]byte, 0, r.arenaHint+r.arenaHint/8)
		r.arenaHint = 0
	}
	if r.recs == nil && r.recsHint > 0 {
		r.recs = make([]loadRecord, 0, r.recsHint+r.recsHint/8)
		r.recsHint = 0
	}
	off := len(r.arena)
	klen := len(prefix) + len(key)
	if off+klen+len(value) > maxRecordBytes {
		return 0, errRecordBytes
	}
	r.arena = append(append(append(r.arena, prefix...), key...), value...)
	full := r.arena[off : off+klen]
	if len(r.recs) == 0 {
		r.lcp = klen
	} else {
		first := r.arena[r.recs[0].off:][:r.lcp]
		r.lcp = commonPrefix(first, full)
	}
	r.recs = append(r.recs, loadRecord{off: uint32(off), klen: uint32(klen), vlen: uint32(len(value)), deleted: deleted})
	r.size += batchRecordSize(klen, len(value), deleted)
	return len(r.recs) - 1, nil
}

// key returns the Pebble key of a record.
func (r *recordBuf) key(rec *loadRecord) []byte { return r.arena[rec.off : rec.off+rec.klen] }

// value returns the value of a record (empty for a deletion).
func (r *recordBuf) value(rec *loadRecord) []byte {
	return r.arena[rec.off+rec.klen : rec.off+rec.klen+rec.vlen]
}

// write appends recs, records of the buffer, to pb in their order.
func (r *recordBuf) write(pb *pebble.Batch, recs []loadRecord) error {
	for i := range recs {
		rec := &recs[i]
		key := r.key(rec)
		var err error
		if rec.deleted {
			op := pb.DeleteDeferred(len(key))
			copy(op.Key, key)
			err = op.Finish()
		} else {
			op := pb.SetDeferred(len(key), int(rec.vlen))
			copy(op.Key, key)
			copy(op.Value, r.value(rec))
			err = op.Finish()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// sort orders recs, records of the buffer, by Pebble key, then by
// arrival. It computes each record's abbreviated key, the 8 key bytes after the prefix that all keys
// share, sorts by it with a stable radix sort (which keeps the arrival order
// of equal keys), then orders the runs of equal abbreviated keys by the rest
// of their keys, stably.
func (r *recordBuf) sort(recs []loadRecord) {
	lcp, arena := uint32(r.lcp), r.arena
	sorted := true
	var prev uint64
	for i := range recs {
		rec := &recs[i]
		var b [8]byte
		copy(b[:], arena[rec.off+lcp:rec.off+rec.klen])
		rec.abbr = binary.BigEndian.Uint64(b[:])
		if rec.abbr < prev {
			sorted = false
		}
		prev = rec.abbr
	}
	if !sorted {
		r.tmp = radixSort(recs, r.tmp)
	}
	// Runs of equal abbreviated keys: keys longer than lcp+8 that differ
	// after it, and repeated keys.
	for i := 0; i < len(recs); {
		j := i + 1
		for j < len(recs) && recs[j].abbr == recs[i].abbr {
			j++
		}
		if j-i > 1 {
			slices.SortStableFunc(recs[i:j], func(a, b loadRecord) int {
				return bytes.Compare(arena[a.off+lcp:a.off+a.klen], arena[b.off+lcp:b.off+b.klen])
			})
		}
		i = j
	}
}

// radixSort sorts recs by abbr, stably, with tmp as scratch space (grown as
// needed and returned for reuse): one pass per byte of abbr, least
// significant first, skipping the bytes that all records share.
func radixSort(recs, tmp []loadRecord) []loadRecord {
	if cap(tmp) < len(recs) {
		tmp = make([]loadRecord, len(recs))
	}
	tmp = tmp[:len(recs)]
	var counts [8][256]int
	for i := range recs {
		a := recs[i].abbr
		for b := range 8 {
			counts[b][byte(a>>(8*b))]++
		}
	}
	src, dst := recs, tmp
	for b := range 8 {
		c := &counts[b]
		if c[byte(src[0].abbr>>(8*b))] == len(src) {
			continue // every record has the same byte here
		}
		pos := 0
		for i, n := range c {
			c[i] = pos
			pos += n
		}
		shift := 8 * b
		for i := range src {
			k := byte(src[i].abbr >> shift)
			dst[c[k]] = src[i]
			c[k]++
		}
		src, dst = dst, src
	}
	if &src[0] != &recs[0] {
		copy(recs, src)
	}
	return tmp
}

// commonPrefix returns the length of the longest common prefix of a and b.
func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for ; i+8 <= n; i += 8 {
		if x := binary.LittleEndian.Uint64(a[i:]) ^ binary.LittleEndian.Uint64(b[i:]); x != 0 {
			return i + bits.TrailingZeros64(x)/8
		}
	}
	for ; i < n && a[i] == b[i]; i++ {
	}
	return i
}

// batchRecordSize is the size of a record in a Pebble batch: its kind, the
// key and the value (not for a deletion), each after its uvarint length.
func batchRecordSize(klen, vlen int, deleted bool) int {
	n := 1 + uvarintLen(klen) + klen
	if !deleted {
		n += uvarintLen(vlen) + vlen
	}
	return n
}

func uvarintLen(n int) int { return (bits.Len64(uint64(n)|1) + 6) / 7 }

// batchSlack is more than the room Pebble reserves, beyond a record's
// encoded size, when it appends the record to a batch.
const batchSlack = 32

// batchHeaderLen is the size of a Pebble batch's header: a sequence number
// and a count.
const batchHeaderLen = 12

// maxRetainedRecords bounds the buffers a recordBuf keeps between commits,
// so that the loaders of tasks that are done restoring, and the batches of
// tasks that wrote a lot once, hold little memory; buffers of
// LoaderCommitBytes are allocated again for each commit (a few percent of
// its cost).
const maxRetainedRecords = 1 << 20

// reset empties the buffer, keeping its buffers unless they grew large.
func (r *recordBuf) reset() { r.empty(maxRetainedRecords) }

// empty empties the buffer, keeping each of its buffers if it holds at most
// keep bytes.
func (r *recordBuf) empty(keep int) {
	if cap(r.arena) > keep {
		r.arena, r.arenaHint = nil, len(r.arena)
	}
	if cap(r.recs)*int(unsafe.Sizeof(loadRecord{})) > keep {
		r.recs, r.tmp, r.recsHint = nil, nil, len(r.recs)
	}
	r.arena, r.recs = r.arena[:0], r.recs[:0]
	r.lcp, r.size = 0, 0
}

// release drops the buffers.
func (r *recordBuf) release() { *r = recordBuf{} }

// checkpoints are the task checkpoints set since the last commit of a
// Loader or a Batch, one per task: its Pebble key and encoded offsets.
type checkpoints struct {
	recs [][2][]byte
	size int // Pebble batch size of recs
}

// set records task's checkpoint, replacing the one set before.
func (c *checkpoints) set(task string, offsets map[string]int64) {
	k, v := checkpointKey(task), encodeCheckpoint(offsets)
	for i := range c.recs {
		if old := &c.recs[i]; bytes.Equal(old[0], k) {
			c.size += len(v) - len(old[1]) + uvarintLen(len(v)) - uvarintLen(len(old[1]))
			old[1] = v
			return
		}
	}
	c.recs = append(c.recs, [2][]byte{k, v})
	c.size += batchRecordSize(len(k), len(v), false)
}

// write appends the checkpoints to pb.
func (c *checkpoints) write(pb *pebble.Batch) error {
	for _, r := range c.recs {
		if err := pb.Set(r[0], r[1], nil); err != nil {
			return err
		}
	}
	return nil
}

func (c *checkpoints) reset() {
	clear(c.recs)
	c.recs, c.size = c.recs[:0], 0
}
