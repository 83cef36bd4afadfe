package state

import (
	"fmt"
	"testing"
	"time"
)

// restoreRounds loads rounds commits of the same 500 keys into partition 0
// of db with l, each commit ingested (the test lowers the thresholds), so
// that each one after the first lands in L0, over the keys of the others.
func restoreRounds(t *testing.T, db *DB, l *Loader, from, rounds int, commit func() error) {
	t.Helper()
	s := db.Store("s", 0)
	for round := from; round < from+rounds; round++ {
		for i := range 500 {
			if err := l.Put(s, fmt.Appendf(nil, "k%03d", i), fmt.Appendf(nil, "%d", round)); err != nil {
				t.Fatal(err)
			}
		}
		if err := commit(); err != nil {
			t.Fatal(err)
		}
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCompactionsWaitForRestores: while a loader restores (CommitAsync),
// the DB's compactions wait and its ingested tables pile up in L0, until
// the restore's last Commit, or until L0 holds restoreL0Sublevels
// sublevels; a loader's Close ends its restore too. Without the gate,
// Pebble compacts L0 from 4 sublevels on.
func TestCompactionsWaitForRestores(t *testing.T) {
	compactions := func(db *DB) int64 { return db.pdb.Metrics().Compact.Count }
	sublevels := func(db *DB) int32 { return db.pdb.Metrics().Levels[0].Sublevels }
	// open opens a DB whose loader commits are all ingested, and a loader.
	open := func(t *testing.T) (*DB, *Loader) {
		db := openDB(t, t.TempDir())
		db.ingester.large, db.ingester.empty = 1, 1
		l := db.NewLoader()
		t.Cleanup(func() { l.Close() })
		return db, l
	}
	// compactedRestoring waits for a compaction while l still restores.
	compactedRestoring := func(t *testing.T, db *DB, l *Loader, what string) {
		t.Helper()
		waitFor(t, what, func() bool { return compactions(db) > 0 })
		if !l.restoring {
			t.Fatal("the loader no longer restores")
		}
	}

	t.Run("until the last Commit", func(t *testing.T) {
		db, l := open(t)
		restoreRounds(t, db, l, 0, 10, l.CommitAsync)
		if err := l.wait(); err != nil { // the last CommitAsync applied
			t.Fatal(err)
		}
		// The first commit went to the bottom level, the 9 others to L0.
		time.Sleep(3 * gateTick) // time for compactions that should not run
		if n, sub := compactions(db), sublevels(db); n != 0 || sub != 9 {
			t.Fatalf("while restoring: %d compactions, %d L0 sublevels; want 0 and 9", n, sub)
		}
		restoreRounds(t, db, l, 10, 1, l.Commit)
		waitFor(t, "no compaction after the restore", func() bool { return compactions(db) > 0 && sublevels(db) < 4 })
		wantGet(t, db.Store("s", 0), "k123", "10", true)
	})

	t.Run("until L0 is deep", func(t *testing.T) {
		db, l := open(t)
		restoreRounds(t, db, l, 0, restoreL0Sublevels+1, l.CommitAsync)
		if err := l.wait(); err != nil {
			t.Fatal(err)
		}
		// Still restoring: the compactions run once L0 is that deep.
		compactedRestoring(t, db, l, fmt.Sprintf("no compaction with %d L0 sublevels", restoreL0Sublevels))
	})

	t.Run("until flushes make L0 deep", func(t *testing.T) {
		// A restore started, and other tasks' writes fill L0 meanwhile.
		db, l := open(t)
		restoreRounds(t, db, l, 0, 1, l.CommitAsync)
		for round := range restoreL0Sublevels + 1 {
			b := db.NewBatch()
			s := b.Store(db.Store("s", 1))
			for i := range 100 {
				if err := s.Put(fmt.Appendf(nil, "k%03d", i), fmt.Appendf(nil, "%d", round)); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Commit(); err != nil {
				t.Fatal(err)
			}
			b.Close()
			if err := db.pdb.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		compactedRestoring(t, db, l, fmt.Sprintf("no compaction with %d L0 sublevels from flushes", restoreL0Sublevels))
	})

	t.Run("until Close", func(t *testing.T) {
		db, l := open(t)
		restoreRounds(t, db, l, 0, 8, l.CommitAsync)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "no compaction after the loader's Close", func() bool { return compactions(db) > 0 && sublevels(db) < 4 })
	})

	t.Run("without a restore", func(t *testing.T) {
		db, l := open(t)
		restoreRounds(t, db, l, 0, 8, l.Commit) // not a restore
		waitFor(t, "no compaction of 7 L0 sublevels", func() bool { return compactions(db) > 0 && sublevels(db) < 4 })
	})
}
