package state

import (
	"encoding/binary"

	"github.com/kstreamgo/kstream/serde"
)

// Key layout of the Pebble database behind a DB. Every Pebble key starts
// with a namespace byte:
//
//	0x00 meta:       0x00 | name                                 (layout version)
//	0x01 store data: 0x01 | ordered(store name) | ordered(partition) | user key
//	0x02 checkpoint: 0x02 | ordered(task)
//
// ordered(name) is serde.AppendOrderedString: the name with every 0x00
// escaped as 0x00 0xFF and terminated by 0x00 0x01. That encoding is
// prefix-free (no encoded name is a prefix of another) and keeps names in
// byte order; the partition follows as 4 fixed big-endian bytes
// (serde.AppendOrderedInt32). So the prefix of one store partition is never
// a prefix of another's, and [prefix, PrefixEnd(prefix)) holds exactly the
// keys of that store partition: "a" and "ab", or partitions 1 and 256, can
// never see each other's keys.
const (
	nsMeta       byte = 0x00
	nsData       byte = 0x01
	nsCheckpoint byte = 0x02
)

// layoutKey holds the layout version of the database, layoutVersion.
var layoutKey = []byte("\x00kstream-state-layout")

// layoutVersion is the version of the key layout above. Open refuses a
// database written with another layout.
const layoutVersion = "1"

// storePrefix returns the key prefix of one partition of one store.
func storePrefix(name string, partition int32) []byte {
	p := make([]byte, 0, 1+len(name)+2+4)
	p = append(p, nsData)
	p = serde.AppendOrderedString(p, name)
	return serde.AppendOrderedInt32(p, partition)
}

// checkpointKey returns the key of a task's checkpoint record.
func checkpointKey(task string) []byte {
	k := make([]byte, 0, 1+len(task)+2)
	k = append(k, nsCheckpoint)
	return serde.AppendOrderedString(k, task)
}

// appendCacheKey appends the fastcache key of a user key of the store
// partition whose current cache epoch is epoch. The epoch is unique to one
// incarnation of one store partition within the process (see partState), so
// it stands for the whole Pebble prefix in a shorter form. The uvarint is
// self-delimiting, so two (epoch, key) pairs never give the same bytes.
func appendCacheKey[K []byte | string](dst []byte, epoch uint64, key K) []byte {
	dst = binary.AppendUvarint(dst, epoch)
	return append(dst, key...)
}
