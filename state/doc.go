// Package state holds kstream's state stores: a byte-level, ordered [Store]
// interface, an in-memory backend ([NewMemory]), and typed views over it
// ([KV]).
//
// Stores are byte-level so that one backend serves every typed store of a
// process, and ordered so that range scans work on keys encoded with the
// order-preserving codecs of package serde. Every store a topology uses is
// backed by a changelog topic; the runtime wraps each task's store so that
// writes are recorded there.
package state
