package kafkaio_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/kstreamgo/kstream/kafkaio"
	"github.com/kstreamgo/kstream/serde"
)

// TestPersistentStateRestore runs a counting app with a state directory
// through restarts: a clean restart replays nothing, a deleted state
// directory replays the whole changelog, and a corrupt checkpoint is
// detected and its task restored in full, with exact results every time.
func TestPersistentStateRestore(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c cluster) {
		in, out, app := unique("in"), unique("out"), unique("persist")
		const parts = 3
		mustCreate(t, c, parts, in, out)
		topo := groupCount(t, in, out)
		changelog := app + "-group-counts-changelog"
		f := newFeeder(t, c, in, 50)
		feed, want := f.feed, f.want
		run := func(dir string) kafkaio.Stats {
			t.Helper()
			a, err := kafkaio.NewApp(topo, appOpts(c, app, true, kafkaio.StateDir(dir), kafkaio.MemoryBudget(64<<20))...)
			if err != nil {
				t.Fatal(err)
			}
			stop := runApp(t, a)
			waitFor(t, time.Minute, "tasks", func() bool { return a.Stats().Tasks > 0 })
			waitCaughtUp(t, a, 2*time.Minute)
			s := a.Stats()
			// The progress of every store partition restore is exposed.
			var restored int64
			for _, p := range a.RestoreProgress() {
				if !p.Done || p.Remaining != 0 || p.Store != "group-counts" || p.Topic != changelog {
					t.Errorf("restore progress %+v: want a finished restore of group-counts from %s", p, changelog)
				}
				restored += p.Restored
			}
			if restored != s.Restored {
				t.Errorf("restore progress sums to %d records, stats say %d", restored, s.Restored)
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			checkCounts(t, latestCounts(t, c, out, true), want, true)
			return s
		}
		changelogRecords := func(p int32) int64 {
			var n int64
			for _, r := range consumeAll(t, c, changelog, true) {
				if p < 0 || r.Partition == p {
					n++
				}
			}
			return n
		}

		dir := t.TempDir()
		feed(3000)
		run(dir)
		feed(3000)
		if s := run(dir); s.Restored != 0 {
			t.Errorf("clean restart: restored %d records, want 0 (the checkpoints are current)", s.Restored)
		}

		// A lost state directory: a full restore.
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		total := changelogRecords(-1)
		feed(3000)
		if s := run(dir); s.Restored != total {
			t.Errorf("after deleting the state directory: restored %d records, want the whole changelog: %d", s.Restored, total)
		}

		// A corrupt checkpoint: detected, and that task restored in full.
		corruptCheckpoint(t, filepath.Join(dir, "pebble"), app+"/1_0")
		part0 := changelogRecords(0)
		feed(3000)
		if s := run(dir); s.Restored != part0 {
			t.Errorf("after corrupting task 1_0's checkpoint: restored %d records, want partition 0's %d", s.Restored, part0)
		}
	})
}

// corruptCheckpoint overwrites the checkpoint record of task in a closed
// state directory with garbage.
func corruptCheckpoint(t *testing.T, dir, task string) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	suffix := serde.AppendOrderedString(nil, task)
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	var key []byte
	for it.First(); it.Valid(); it.Next() {
		if k := it.Key(); len(k) == len(suffix)+1 && bytes.HasSuffix(k, suffix) {
			key = append([]byte(nil), k...)
		}
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if key == nil {
		t.Fatalf("no checkpoint of %s in %s", task, dir)
	}
	if err := db.Set(key, []byte("not a checkpoint"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}
