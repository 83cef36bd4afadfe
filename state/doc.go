// Package state holds kstream's state stores: a byte-level, ordered [Store]
// interface; an in-memory backend ([NewMemory]); the persistent backend, a
// [DB] of one Pebble database with one fastcache in front of it; and typed
// views over any of them ([KV]).
//
// Stores are byte-level so that one backend serves every typed store of a
// process, and ordered so that range scans work on keys encoded with the
// order-preserving codecs of package serde. Every store a topology uses is
// backed by a changelog topic; the runtime wraps each task's store so that
// writes are recorded there.
//
// # The persistent DB
//
// A process opens one [DB] per state directory with [Open]. It holds every
// partition of every store of the process's tasks, each under its own key
// prefix ([DB.Store] returns a [Store] view of one), and one memory budget
// ([MemoryBudget]) bounds it, however many stores and partitions there are.
//
// Reads go to the fastcache first and to Pebble on a miss, which fills the
// cache; the cache is never the store of record, and every write updates or
// deletes its entry. Pebble is tuned for point reads (bloom filters on every
// level; see [Open]).
//
// # Task commits
//
// A task writes through a [Batch], its write buffer: [Batch.Store] returns a
// view of a store partition whose writes go into the batch and whose reads
// see them first. At commit, the runtime records the task's checkpoint in the
// batch ([Batch.SetCheckpoint]: the offsets of its changelogs and inputs) and
// applies the batch with [Batch.Commit]: the store writes and the checkpoint
// are applied in one atomic Pebble commit, so local state never gets ahead of
// its checkpoint. Under exactly-once the batch is committed only after the
// Kafka transaction commits, and [Batch.Discard] drops it when the
// transaction aborts. On restart, [DB.Checkpoint] says where to resume the
// changelog; a checkpoint that fails its checksum is reported as
// [ErrCorruptCheckpoint], and a full restore starts with [DB.DeleteCheckpoint]
// and [DB.DropPartition], in that order.
//
// Pebble runs without its write-ahead log, as RocksDB does under Kafka
// Streams: a crash loses the commits since the last flush of the memtables,
// whole, and recovery replays them from the changelogs. Commits start a
// flush every [FlushInterval] (30 s by default), and Close flushes.
//
// # Restores
//
// A restore writes through a [Loader] rather than a Batch: [Loader.Put] and
// [Loader.Delete] only buffer the changelog's records, and [Loader.Commit]
// sorts them and applies them with the task's checkpoint
// ([Loader.SetCheckpoint]), without filling the cache (it makes the cache
// entries of the partitions written unreachable instead). A small commit
// is one atomic Pebble batch; a large one is written to sstables that
// Pebble ingests, then the checkpoint is committed, so its
// records may survive a crash without their checkpoint, and the next
// restore replays them to the same state. Commit every [LoaderCommitBytes],
// with [Loader.CommitAsync] until the last commit, which writes the
// sstable while the next records load.
//
// # Point reads
//
// A view's Get returns a slice the caller owns, which costs an allocation
// even on a cache hit. The views and [Memory] also implement
// [AppendGetter], whose GetAppend appends the value to a caller's buffer.
//
// # Iteration
//
// [Store.Range] calls a function for each entry of a key range, in byte
// order, and releases its Pebble iterator before it returns, whether the
// function stopped the scan or not. [KV.Range] and [KV.Entries] are Go
// iterators over decoded entries; their errors are reported by [KV.Err]
// after the loop:
//
//	for word, n := range counts.Range("a", "m") {
//		...
//	}
//	if err := counts.Err(); err != nil {
//		...
//	}
package state
