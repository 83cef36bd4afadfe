package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
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

// A Loader's commit is ingested when it holds at least ingestBytes (batch
// bytes), or at least ingestEmptyBytes of partitions that hold no key yet.
// Below these sizes a batch costs less: an ingest has a fixed cost (a file,
// synced, and a sync of Pebble's manifest: a few milliseconds), and each
// sstable ingested over existing keys lands in L0, so that small ones mean
// many compactions (1M records of 100-byte values in commits of 2 MiB,
// ingested: 1.3 M records/s against 2.6 M/s in commits of 8 MiB). A table
// of keys new to the DB goes to the bottom level, and is never compacted:
// a restore of 16 partitions of 60k records each, about 2 MiB
// (BenchmarkRestore/pebble-16p in kafkaio), ran 1.5x as fast ingested.
const (
	ingestBytes      = LoaderCommitBytes / 2
	ingestEmptyBytes = 1 << 20
)

// ingester writes a Loader's large commits as sstables and ingests them.
type ingester struct {
	fs   vfs.FS
	dir  string
	opts sstable.WriterOptions
	// large and empty are ingestBytes and ingestEmptyBytes (changed by
	// tests).
	large, empty int
	// hook, when set (by tests), runs once a commit's tables are written,
	// before the commit waits for the one before it.
	hook func(seq uint64) error
	// splitAt is the size, in records, from which a partition's records
	// are written as two tables: splitRecords when Go may run two
	// goroutines at once, else 0 (never; changed by tests).
	splitAt int
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
		opts:  po.MakeWriterOptions(0, min(pdb.TableFormat(), sstable.TableFormatPebblev4)),
		large: ingestBytes,
		empty: ingestEmptyBytes,
	}
	if runtime.GOMAXPROCS(0) > 1 {
		in.splitAt = splitRecords
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
// their order), into new sstables, one per partition of parts, the last
// write of each key only, and has Pebble ingest them, atomically. Pebble
// gives every key of the tables one sequence number, newer than anything
// committed before, and places each table in the lowest level where it
// overlaps no key (splitting a table there whose bounds only overlap it:
// see Open): a first load into an empty key range skips the memtables, the
// flushes and the compactions that a batch goes through.
func (in *ingester) ingest(pdb *pebble.DB, r *recordBuf, recs []loadRecord, parts []*partState, seq uint64, before func() error) (err error) {
	var paths []string
	defer func() {
		for _, path := range paths {
			if rerr := in.fs.Remove(path); err == nil && rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				err = rerr
			}
		}
	}()
	for len(recs) > 0 {
		// The records of one partition, its keys under its prefix.
		prefix := r.key(&recs[0])
		for _, p := range parts {
			if bytes.HasPrefix(prefix, p.prefix) {
				prefix = p.prefix
				break
			}
		}
		n := 1
		for n < len(recs) && bytes.HasPrefix(r.key(&recs[n]), prefix) {
			n++
		}
		part := recs[:n]
		recs = recs[n:]
		// A large partition's records go to two tables side by side,
		// written at once.
		var rest []loadRecord
		if in.splitAt > 0 && len(part) >= in.splitAt {
			part, rest = halve(r, part)
		}
		var errc chan error
		if len(rest) > 0 {
			f, err := in.create(seq, &paths)
			if err != nil {
				return err
			}
			errc = make(chan error, 1)
			go func() { errc <- in.write(f, r, rest) }()
		}
		f, err := in.create(seq, &paths)
		if err == nil {
			err = in.write(f, r, part)
		}
		if errc != nil {
			err = errors.Join(err, <-errc)
		}
		if err != nil {
			return err
		}
	}
	if in.hook != nil {
		if err := in.hook(seq); err != nil {
			return err
		}
	}
	if err := before(); err != nil {
		return err
	}
	// Ingest links the tables into the DB and syncs the manifest that
	// lists them.
	return pdb.Ingest(context.Background(), paths)
}

// create creates the next sstable file of ingest number seq, and adds its
// path to paths.
func (in *ingester) create(seq uint64, paths *[]string) (vfs.File, error) {
	path := in.fs.PathJoin(in.dir, strconv.FormatUint(seq, 10)+"-"+strconv.Itoa(len(*paths))+".sst")
	f, err := in.fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, err
	}
	*paths = append(*paths, path)
	return f, nil
}

// splitRecords is the size, in records, from which the ingester writes a
// partition's records as two sstables on two goroutines (when Go may run
// two at once). The table writing is most of a loader's commit, and a restore's
// commits run one at a time, after each other: split, the 4M-record restore
// of internal/bench ran at 0.75-0.84x a raw consume instead of 0.70-0.76x
// (-repeat 5, alternated).
const splitRecords = 1 << 16

// halve splits recs, sorted by key, in two near its middle, between two
// keys (rest is empty when the second half holds only the middle key).
func halve(r *recordBuf, recs []loadRecord) (first, rest []loadRecord) {
	h := max(1, len(recs)/2)
	for h < len(recs) && recs[h].abbr == recs[h-1].abbr && bytes.Equal(r.key(&recs[h]), r.key(&recs[h-1])) {
		h++
	}
	return recs[:h], recs[h:]
}

// write writes the last write of each key of recs into an sstable in f,
// which it syncs and closes.
func (in *ingester) write(f vfs.File, r *recordBuf, recs []loadRecord) error {
	w := sstable.NewWriter(objstorageprovider.NewFileWritable(f), in.opts)
	for i := range recs {
		rec := &recs[i]
		key := r.key(rec)
		// Equal keys are adjacent, with equal abbreviated keys: the last
		// one wins.
		if i+1 < len(recs) && recs[i+1].abbr == rec.abbr && bytes.Equal(key, r.key(&recs[i+1])) {
			continue
		}
		var err error
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
	return w.Close()
}
