package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// ingestDirName is the directory, inside the state directory, where a
// Loader writes the sstables it then hands to Pebble (which links them into
// its own files). Open empties it: a crash can leave a table behind.
const ingestDirName = "kstream-ingest"

// ingestMinBytes is the smallest Loader commit, in batch bytes, that is
// ingested. Below it, the fixed cost of an ingest (a file, synced, and a
// sync of Pebble's manifest: a few milliseconds) outweighs what it saves
// over a batch, whose records Pebble inserts into its memtable (about 0.5
// µs each) and flushes later. A restore of a partition of 60k records,
// about 2 MiB (BenchmarkRestore/pebble-16p in kafkaio), ran 10% faster
// ingested.
const ingestMinBytes = 1 << 20

// ingester writes a Loader's large commits as sstables and ingests them.
type ingester struct {
	fs   vfs.FS
	dir  string
	opts sstable.WriterOptions
	// min is the smallest commit, in batch bytes, that is ingested
	// (ingestMinBytes, changed by tests).
	min int
}

// newIngester prepares the ingest directory of a DB opened in dir with po.
func newIngester(pdb *pebble.DB, po *pebble.Options, dir string) (*ingester, error) {
	fs := po.FS
	if fs == nil {
		fs = vfs.Default
	}
	in := &ingester{
		fs:  fs,
		dir: fs.PathJoin(dir, ingestDirName),
		// Row blocks: 40% cheaper to write than the columnar blocks of
		// the DB's own format (see Loader), and every format since Pebble
		// v1 can ingest them.
		opts: po.MakeWriterOptions(0, min(pdb.TableFormat(), sstable.TableFormatPebblev4)),
		min:  ingestMinBytes,
	}
	if err := fs.RemoveAll(in.dir); err != nil {
		return nil, fmt.Errorf("state: emptying %s: %w", in.dir, err)
	}
	if err := fs.MkdirAll(in.dir, 0o755); err != nil {
		return nil, fmt.Errorf("state: creating %s: %w", in.dir, err)
	}
	return in, nil
}

// ingest writes recs, records of r sorted by key (the writes of one key in
// their order), into a new sstable, the last write of each key only, and
// has Pebble ingest it. Pebble gives every key of the table one sequence
// number, newer than anything committed before, and places the table in
// the lowest level where it overlaps nothing: a first load into an empty key
// range skips the memtables, the flushes and the compactions that a batch
// goes through.
func (in *ingester) ingest(pdb *pebble.DB, r *recordBuf, recs []loadRecord, seq uint64) (err error) {
	path := in.fs.PathJoin(in.dir, strconv.FormatUint(seq, 10)+".sst")
	f, err := in.fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	defer func() {
		if rerr := in.fs.Remove(path); err == nil && rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = rerr
		}
	}()
	w := sstable.NewWriter(objstorageprovider.NewFileWritable(f), in.opts)
	for i := range recs {
		rec := &recs[i]
		key := r.key(rec)
		// Equal keys are adjacent, with equal abbreviated keys: the last
		// one wins.
		if i+1 < len(recs) && recs[i+1].abbr == rec.abbr && bytes.Equal(key, r.key(&recs[i+1])) {
			continue
		}
		if rec.deleted {
			err = w.Delete(key)
		} else {
			err = w.Set(key, r.value(rec))
		}
		if err != nil {
			_ = w.Close()
			return err
		}
	}
	// Close syncs the file; Ingest links it into the DB and syncs the
	// manifest that lists it.
	if err := w.Close(); err != nil {
		return err
	}
	return pdb.Ingest(context.Background(), []string{path})
}
