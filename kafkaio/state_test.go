package kafkaio_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/kafkaio"
	"github.com/kstreamgo/kstream/serde"
)

// TestPersistentStateRestore runs a counting app with a state directory
// through restarts: a clean restart replays nothing (after a run that
// wrote nothing too), a deleted state
// directory replays the whole changelog, and a corrupt checkpoint is
// detected and its task restored in full, with exact results every time.
func TestPersistentStateRestore(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c cluster) {
		for _, eos := range []bool{false, true} {
			t.Run(mode(eos), func(t *testing.T) { testPersistentStateRestore(t, c, eos) })
		}
	})
}

func testPersistentStateRestore(t *testing.T, c cluster, eos bool) {
	in, out, app := unique("in"), unique("out"), unique("persist")
	const parts = 3
	mustCreate(t, c, parts, in, out)
	topo := groupCount(t, in, out)
	changelog := app + "-group-counts-changelog"
	f := newFeeder(t, c, in, 50)
	feed, want := f.feed, f.want
	run := func(dir string) kafkaio.Stats {
		t.Helper()
		a, err := kafkaio.NewApp(topo, appOpts(c, app, eos, kafkaio.StateDir(dir), kafkaio.MemoryBudget(64<<20))...)
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
	// A run that writes nothing keeps where its stores were restored to.
	run(dir)
	if s := run(dir); s.Restored != 0 {
		t.Errorf("restart after a run that counted nothing: restored %d records, want 0", s.Restored)
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
	corruptCheckpoint(t, kafkaio.StateDBPath(dir, app), app+"/1_0")
	part0 := changelogRecords(0)
	feed(3000)
	if s := run(dir); s.Restored != part0 {
		t.Errorf("after corrupting task 1_0's checkpoint: restored %d records, want partition 0's %d", s.Restored, part0)
	}
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

// TestAppsShareStateDir runs two apps with a store of the same name, one
// after the other, in one StateDir: each keeps its own state. (When the
// database was shared, the second app, finding no checkpoint of its own,
// wiped the first one's store partitions, and the first app, trusting its
// checkpoint, then counted on from empty stores.)
func TestAppsShareStateDir(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c cluster) {
		dir := t.TempDir()
		const parts = 2
		type app struct {
			id     string
			topo   *kstream.Topology
			feeder *feeder
			out    string
		}
		var apps []*app
		for _, name := range []string{"share-a", "share-b"} {
			in, out := unique(name+"-in"), unique(name+"-out")
			mustCreate(t, c, parts, in, out)
			apps = append(apps, &app{id: unique(name), topo: groupCount(t, in, out), feeder: newFeeder(t, c, in, 10), out: out})
		}
		run := func(a *app) kafkaio.Stats {
			return runCounts(t, a.topo, appOpts(c, a.id, false, kafkaio.StateDir(dir)))
		}
		for i, a := range apps {
			a.feeder.feed(500 + 200*i) // other counts per key in each app
			run(a)
		}
		a := apps[0]
		a.feeder.feed(500)
		if s := run(a); s.Restored != 0 {
			t.Errorf("app %s restored %d records on its second run, want 0: its local state was intact", a.id, s.Restored)
		}
		for _, a := range apps {
			checkCounts(t, latestCounts(t, c, a.out, false), a.feeder.want, true)
		}
		for _, a := range apps {
			if _, err := os.Stat(filepath.Join(dir, a.id)); err != nil {
				t.Errorf("app %s has no directory of its own in the StateDir: %v", a.id, err)
			}
		}
	})
}

// TestLargePendingStateCommitsEarly runs a count with a state directory and
// a commit interval of an hour: once the tasks' uncommitted store writes
// pass the limit (2 KiB here, 32 MiB by default), the app commits anyway,
// so that its write batches stay bounded; the counts are exact.
func TestLargePendingStateCommitsEarly(t *testing.T) {
	defer kafkaio.SetMaxPendingState(2 << 10)()
	forEachCluster(t, func(t *testing.T, c cluster) {
		in, out, app := unique("pending-in"), unique("pending-out"), unique("pending")
		mustCreate(t, c, 1, in, out)
		a, err := kafkaio.NewApp(wordCount(t, in, out), kafkaio.AppID(app), kafkaio.Brokers(c.brokers...),
			kafkaio.StateDir(t.TempDir()), kafkaio.MemoryBudget(64<<20), kafkaio.CommitInterval(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		stop := runApp(t, a)
		want := map[string]int64{}
		var recs []rec
		for i := range 1000 { // about 100 bytes a key in the batch (Footprint)
			w := fmt.Sprintf("word%05d", i)
			recs = append(recs, rec{key: []byte(w), value: []byte(w)})
			want[w]++
		}
		produce(t, c, in, recs)
		// Only the limit can make the app commit within the hour.
		waitFor(t, time.Minute, "a commit of the pending writes", func() bool { return a.Stats().Commits >= 1 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		checkCounts(t, latestCounts(t, c, out, false), want, true)
	})
}

// TestLargeRestore restores a state DB from a changelog of more than
// state.LoaderCommitBytes, whose commits the DB ingests as sstables (one
// on another goroutine while the restore goes on), with each key written
// three times and some of them deleted last: the counts then continue
// from the last value of each key, and the deleted keys start over.
func TestLargeRestore(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c cluster) {
		in, out, app := unique("in"), unique("out"), unique("large")
		mustCreate(t, c, 1, in, out)
		changelog := app + "-group-counts-changelog"
		mustCreate(t, c, 1, changelog)
		const keys, rounds = 100_000, 3
		recs := make([]rec, 0, keys*rounds)
		for i := range keys * rounds {
			j := i % keys
			r := rec{key: []byte("g" + strconv.Itoa(j)), ts: int64(i + 1)}
			if i < keys*(rounds-1) || j%1000 != 0 {
				r.value = binary.BigEndian.AppendUint64(nil, uint64(i))
			}
			recs = append(recs, r)
		}
		produce(t, c, changelog, recs)

		a, err := kafkaio.NewApp(groupCount(t, in, out), appOpts(c, app, false, kafkaio.StateDir(t.TempDir()))...)
		if err != nil {
			t.Fatal(err)
		}
		stop := runApp(t, a)
		defer stop()
		waitFor(t, 2*time.Minute, "the restore", func() bool {
			p := a.RestoreProgress()
			return len(p) == 1 && p[0].Done
		})
		if p := a.RestoreProgress()[0]; p.Restored != keys*rounds {
			t.Errorf("restored %d records, want %d", p.Restored, keys*rounds)
		}
		want := map[string]int64{}
		var input []rec
		for _, j := range []int{0, 1, 999, 1000, 54_321, keys - 1} {
			g := "g" + strconv.Itoa(j)
			input = append(input, rec{key: []byte(strconv.Itoa(j)), value: []byte(g)})
			if j%1000 == 0 {
				want[g] = 1 // deleted by the changelog's last record
			} else {
				want[g] = int64(keys*(rounds-1)+j) + 1
			}
		}
		produce(t, c, in, input)
		waitFor(t, time.Minute, "the counts", func() bool { return len(latestCounts(t, c, out, false)) == len(want) })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		checkCounts(t, latestCounts(t, c, out, false), want, true)
	})
}
