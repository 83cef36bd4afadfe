package state

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"maps"
	"math"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

func TestCheckpointRoundTrip(t *testing.T) {
	tests := []map[string]int64{
		{},
		{"in/0": 0},
		{"in/0": 42, "in/1": -1, "changelog-s/3": math.MaxInt64, "": math.MinInt64},
		{"t\x00/0": 7, "\xff": 1},
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			db := be.open(t)
			if _, ok, err := db.Checkpoint("none"); ok || err != nil {
				t.Errorf("Checkpoint of a task without one = %v, %v", ok, err)
			}
			for _, offsets := range tests {
				b := db.NewBatch()
				if err := b.SetCheckpoint("0_1", offsets); err != nil {
					t.Fatal(err)
				}
				if err := b.Commit(); err != nil {
					t.Fatal(err)
				}
				b.Close()
				got, ok, err := db.Checkpoint("0_1")
				if err != nil || !ok || !maps.Equal(got, offsets) || got == nil {
					t.Errorf("Checkpoint = %v, %v, %v; want %v", got, ok, err, offsets)
				}
			}
			// Tasks are separate, and separate from stores of the same name.
			mustPut(t, db.Store("0_1", 0), "k", "v")
			if _, ok, _ := db.Checkpoint("0_2"); ok {
				t.Error("task 0_2 has task 0_1's checkpoint")
			}
			if err := db.DeleteCheckpoint("0_1"); err != nil {
				t.Fatal(err)
			}
			if _, ok, err := db.Checkpoint("0_1"); ok || err != nil {
				t.Errorf("Checkpoint after DeleteCheckpoint = %v, %v", ok, err)
			}
			if err := db.DeleteCheckpoint("0_1"); err != nil {
				t.Errorf("deleting a missing checkpoint: %v", err)
			}
			wantGet(t, db.Store("0_1", 0), "k", "v", true)
		})
	}
}

// withCRC appends a valid checksum to body, to build records that pass the
// checksum but not the parser.
func withCRC(body ...byte) []byte {
	return binary.BigEndian.AppendUint32(body, crc32.Checksum(body, castagnoli))
}

func TestCheckpointCorruption(t *testing.T) {
	good := encodeCheckpoint(map[string]int64{"in/0": 12345, "in/1": 6})
	flip := func(i int) []byte {
		b := append([]byte(nil), good...)
		b[i] ^= 0x10
		return b
	}
	tests := []struct {
		name string
		rec  []byte
	}{
		{"garbage", []byte("this is not a checkpoint")},
		{"empty", []byte{}},
		{"short", []byte{1, 0, 0}},
		{"truncated", good[:len(good)-1]},
		{"truncated-body", good[1:]},
		{"flipped-version", flip(0)},
		{"flipped-offset", flip(8)},
		{"flipped-crc", flip(len(good) - 1)},
		{"extended", append(append([]byte(nil), good...), 0)},
		{"version-2", withCRC(2, 0)},
		{"count-too-large", withCRC(1, 5, 1, 'a', 2)},
		{"length-too-large", withCRC(1, 1, 9, 'a', 2)},
		{"no-offset", withCRC(1, 1, 1, 'a')},
		{"trailing", withCRC(1, 1, 1, 'a', 2, 0)},
		{"duplicate", withCRC(1, 2, 1, 'a', 2, 1, 'a', 4)},
		{"bad-varint", withCRC(1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)},
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			db := be.open(t)
			for _, tt := range tests {
				if err := db.pdb.Set(checkpointKey("task"), tt.rec, pebble.NoSync); err != nil {
					t.Fatal(err)
				}
				got, ok, err := db.Checkpoint("task")
				if !errors.Is(err, ErrCorruptCheckpoint) || ok || got != nil {
					t.Errorf("%s: Checkpoint = %v, %v, %v; want ErrCorruptCheckpoint", tt.name, got, ok, err)
				}
			}
			if err := db.pdb.Set(checkpointKey("task"), good, pebble.NoSync); err != nil {
				t.Fatal(err)
			}
			if got, ok, err := db.Checkpoint("task"); err != nil || !ok || got["in/0"] != 12345 {
				t.Errorf("good record: %v, %v, %v", got, ok, err)
			}
		})
	}
}

func FuzzDecodeCheckpoint(f *testing.F) {
	f.Add(encodeCheckpoint(map[string]int64{"a/0": 1, "b/1": -5}))
	f.Add(withCRC(1, 0))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, rec []byte) {
		m, err := decodeCheckpoint(rec)
		if err != nil {
			if !errors.Is(err, ErrCorruptCheckpoint) {
				t.Fatalf("error %v does not wrap ErrCorruptCheckpoint", err)
			}
			return
		}
		// Whatever decodes re-encodes to the same bytes: the encoding is
		// canonical (sorted, minimal varints are checked by the CRC only).
		m2, err := decodeCheckpoint(encodeCheckpoint(m))
		if err != nil || !maps.Equal(m, m2) {
			t.Fatalf("re-encoding %v: %v, %v", m, m2, err)
		}
	})
}
