package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// ErrCorruptCheckpoint is returned by DB.Checkpoint for a checkpoint record
// that fails its checksum or does not parse. The runtime must not trust such
// a checkpoint: it restores the task's stores from scratch instead.
var ErrCorruptCheckpoint = errors.New("state: corrupt checkpoint")

// checkpointVersion is the first byte of a checkpoint record.
const checkpointVersion = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeCheckpoint encodes offsets as a checkpoint record:
//
//	version  byte (checkpointVersion)
//	count    uvarint
//	count ×  { len uvarint, source [len]byte, offset varint }, sorted by source
//	crc      uint32 big-endian, CRC-32C of everything before it
func encodeCheckpoint(offsets map[string]int64) []byte {
	keys := make([]string, 0, len(offsets))
	size := 1 + binary.MaxVarintLen64 + 4
	for k := range offsets {
		keys = append(keys, k)
		size += 2*binary.MaxVarintLen64 + len(k)
	}
	slices.Sort(keys)
	b := make([]byte, 0, size)
	b = append(b, checkpointVersion)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendVarint(b, offsets[k])
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeCheckpoint decodes a record written by encodeCheckpoint. Every
// failure wraps ErrCorruptCheckpoint.
func decodeCheckpoint(b []byte) (map[string]int64, error) {
	if len(b) < 1+1+4 {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrCorruptCheckpoint, len(b))
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return nil, fmt.Errorf("%w: checksum %08x, want %08x", ErrCorruptCheckpoint, got, sum)
	}
	if body[0] != checkpointVersion {
		return nil, fmt.Errorf("%w: unsupported version %d", ErrCorruptCheckpoint, body[0])
	}
	body = body[1:]
	n, k := binary.Uvarint(body)
	// Each entry takes at least 2 bytes, which bounds n before allocating.
	if k <= 0 || n > uint64(len(body)-k)/2 {
		return nil, fmt.Errorf("%w: bad entry count", ErrCorruptCheckpoint)
	}
	body = body[k:]
	out := make(map[string]int64, n)
	for i := range n {
		l, k := binary.Uvarint(body)
		if k <= 0 || l > uint64(len(body)-k) {
			return nil, fmt.Errorf("%w: entry %d: bad source length", ErrCorruptCheckpoint, i)
		}
		body = body[k:]
		src := string(body[:l])
		body = body[l:]
		off, k := binary.Varint(body)
		if k <= 0 {
			return nil, fmt.Errorf("%w: entry %d: bad offset", ErrCorruptCheckpoint, i)
		}
		body = body[k:]
		if _, dup := out[src]; dup {
			return nil, fmt.Errorf("%w: entry %d: duplicate source %q", ErrCorruptCheckpoint, i, src)
		}
		out[src] = off
	}
	if len(body) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorruptCheckpoint, len(body))
	}
	return out, nil
}

// Checkpoint returns the last committed checkpoint of task (see
// Batch.SetCheckpoint), and whether there is one. A record that fails its
// checksum or does not parse returns an error wrapping ErrCorruptCheckpoint.
func (db *DB) Checkpoint(task string) (map[string]int64, bool, error) {
	if db.closed.Load() {
		return nil, false, ErrClosed
	}
	v, closer, err := db.pdb.Get(checkpointKey(task))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("state: reading checkpoint of task %q: %w", task, err)
	}
	offsets, derr := decodeCheckpoint(v)
	closer.Close()
	if derr != nil {
		return nil, false, fmt.Errorf("state: checkpoint of task %q: %w", task, derr)
	}
	return offsets, true, nil
}

// DeleteCheckpoint deletes the checkpoint of task, for example before its
// stores are wiped for a full restore. Deleting a missing checkpoint is not
// an error.
func (db *DB) DeleteCheckpoint(task string) error {
	if db.closed.Load() {
		return ErrClosed
	}
	if err := db.pdb.Delete(checkpointKey(task), pebble.NoSync); err != nil {
		return fmt.Errorf("state: deleting checkpoint of task %q: %w", task, err)
	}
	return nil
}
