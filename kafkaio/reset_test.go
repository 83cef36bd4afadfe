package kafkaio_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/kafkaio"
	"github.com/kstreamgo/kstream/serde"
	"github.com/kstreamgo/kstream/state"
)

// admin returns an admin client of c, closed with the test.
func admin(t testing.TB, c cluster) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// existingTopics returns those of topics that exist, sorted.
func existingTopics(t testing.TB, c cluster, topics ...string) []string {
	t.Helper()
	details, err := admin(t, c).ListTopics(context.Background(), topics...)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range details {
		if d.Err == nil {
			out = append(out, d.Topic)
		}
	}
	slices.Sort(out)
	return out
}

// groupOffsets returns the group's committed offsets as "topic/partition" ->
// offset.
func groupOffsets(t testing.TB, c cluster, group string) map[string]int64 {
	t.Helper()
	offs, err := admin(t, c).FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int64{}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil {
			m[o.Topic+"/"+strconv.Itoa(int(o.Partition))] = o.At
		}
	})
	return m
}

// endOffsets returns the end offsets of topic as "topic/partition" -> offset.
func endOffsets(t testing.TB, c cluster, topic string) map[string]int64 {
	t.Helper()
	ends, err := admin(t, c).ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Partition >= 0 {
			m[o.Topic+"/"+strconv.Itoa(int(o.Partition))] = o.Offset
		}
	})
	return m
}

// localState counts, in the closed state directory dir, the keys of store
// on partitions [0, parts) and the checkpoints of app's tasks of
// sub-topologies [0, subs).
func localState(t testing.TB, dir, app, store string, subs, parts int) (keys, checkpoints int) {
	t.Helper()
	db, err := state.Open(kafkaio.StateDBPath(dir, app), state.WithoutCache())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	}()
	for p := range parts {
		if err := db.Store(store, int32(p)).Range(nil, nil, func(_, _ []byte) bool { keys++; return true }); err != nil {
			t.Fatal(err)
		}
		for sub := range subs {
			if _, ok, err := db.Checkpoint(fmt.Sprintf("%s/%d_%d", app, sub, p)); err != nil {
				t.Fatal(err)
			} else if ok {
				checkpoints++
			}
		}
	}
	return keys, checkpoints
}

// runCounts runs an app until it has caught up, stops it, and returns its
// stats, with Restored the records its RestoreProgress says were restored.
func runCounts(t *testing.T, topo *kstream.Topology, opts []kafkaio.Opt) kafkaio.Stats {
	t.Helper()
	a, err := kafkaio.NewApp(topo, opts...)
	if err != nil {
		t.Fatal(err)
	}
	stop := runApp(t, a)
	waitFor(t, time.Minute, "tasks", func() bool { return a.Stats().Tasks > 0 })
	waitCaughtUp(t, a, 2*time.Minute)
	s := a.Stats()
	s.Restored = 0
	for _, p := range a.RestoreProgress() {
		s.Restored += p.Restored
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestResetReprocesses resets a stateful app (a repartitioning count with
// Pebble state): the internal topics are deleted, the input offsets go back
// to the start, the local state is removed, and a second run reprocesses
// every record into the same final counts, from empty stores.
func TestResetReprocesses(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c cluster) {
		in, out, app := unique("in"), unique("out"), unique("reset")
		const parts = 3
		mustCreate(t, c, parts, in, out)
		topo := groupCount(t, in, out)
		internal := topo.InternalTopics(app)
		f := newFeeder(t, c, in, 20)
		f.feed(2000)
		dir := t.TempDir()
		opts := appOpts(c, app, false, kafkaio.StateDir(dir))

		first := runCounts(t, topo, opts)
		checkCounts(t, latestCounts(t, c, out, false), f.want, true)
		outRecords := len(consumeAll(t, c, out, false))
		if got := existingTopics(t, c, internal...); !slices.Equal(got, internal) {
			t.Fatalf("internal topics before the reset: %v, want %v", got, internal)
		}
		ends := endOffsets(t, c, in)
		if keys, ckpts := localState(t, dir, app, "group-counts", 2, parts); keys == 0 || ckpts == 0 {
			t.Fatalf("before the reset: %d keys, %d checkpoints in the state directory, want some", keys, ckpts)
		}

		// The same options as NewApp's (CommitInterval is ignored).
		rep, err := kafkaio.Reset(context.Background(), topo, opts...)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Group != app || rep.DryRun || !rep.StateRemoved || rep.StateDir != dir {
			t.Errorf("report %+v: want group %s, no dry run, state removed from %s", rep, app, dir)
		}
		if !slices.Equal(rep.DeletedTopics, internal) {
			t.Errorf("deleted topics %v, want %v", rep.DeletedTopics, internal)
		}
		if len(rep.Offsets) != parts {
			t.Errorf("report lists %d offsets, want %d: %+v", len(rep.Offsets), parts, rep.Offsets)
		}
		for _, o := range rep.Offsets {
			key := o.Topic + "/" + strconv.Itoa(int(o.Partition))
			if o.Topic != in || o.New != 0 || o.Old != ends[key] || o.Intermediate {
				t.Errorf("offset %+v: want %s from its end %d to 0", o, key, ends[key])
			}
		}
		if got := existingTopics(t, c, internal...); len(got) != 0 {
			t.Errorf("internal topics %v still exist after the reset", got)
		}
		committed := groupOffsets(t, c, app)
		for p := range parts {
			if got, ok := committed[fmt.Sprintf("%s/%d", in, p)]; !ok || got != 0 {
				t.Errorf("group offset of %s/%d: %d (committed %v), want 0", in, p, got, ok)
			}
		}
		for k := range committed {
			if !strings.HasPrefix(k, in+"/") {
				t.Errorf("group %s still has an offset for %s", app, k)
			}
		}
		if keys, ckpts := localState(t, dir, app, "group-counts", 2, parts); keys != 0 || ckpts != 0 {
			t.Errorf("after the reset: %d keys, %d checkpoints left in the state directory, want none", keys, ckpts)
		}

		second := runCounts(t, topo, opts)
		if second.Processed < first.Processed || second.Processed == 0 {
			t.Errorf("the second run processed %d records, the first %d: want everything again", second.Processed, first.Processed)
		}
		if second.Restored != 0 {
			t.Errorf("the second run restored %d records, want 0 (empty state)", second.Restored)
		}
		checkCounts(t, latestCounts(t, c, out, false), f.want, true)
		if n := len(consumeAll(t, c, out, false)); n <= outRecords {
			t.Errorf("%d output records after the second run, %d after the first: want new output", n, outRecords)
		}
	})
}

// TestResetRefusesWhileRunning: with an instance running, Reset fails,
// names the group, and changes nothing.
func TestResetRefusesWhileRunning(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c cluster) {
		in, out, app := unique("in"), unique("out"), unique("reset-busy")
		mustCreate(t, c, 2, in, out)
		topo := groupCount(t, in, out)
		internal := topo.InternalTopics(app)
		newFeeder(t, c, in, 10).feed(500)
		a, err := kafkaio.NewApp(topo, appOpts(c, app, false)...)
		if err != nil {
			t.Fatal(err)
		}
		stop := runApp(t, a)
		waitFor(t, time.Minute, "tasks", func() bool { return a.Stats().Tasks > 0 })
		waitCaughtUp(t, a, 2*time.Minute)
		waitFor(t, time.Minute, "committed offsets", func() bool {
			got := groupOffsets(t, c, app)
			for k, end := range endOffsets(t, c, in) {
				if got[k] != end {
					return false
				}
			}
			return true
		})

		for _, dry := range []bool{false, true} {
			opts := appOpts(c, app, false)
			if dry {
				opts = append(opts, kafkaio.ResetDryRun())
			}
			_, err := kafkaio.Reset(context.Background(), topo, opts...)
			if err == nil || !strings.Contains(err.Error(), app) || !strings.Contains(err.Error(), "active member") {
				t.Fatalf("Reset (dry run %v) while an instance runs: %v, want an error naming group %s and its active members", dry, err, app)
			}
		}
		if got := existingTopics(t, c, internal...); !slices.Equal(got, internal) {
			t.Errorf("internal topics after a refused reset: %v, want %v", got, internal)
		}
		got := groupOffsets(t, c, app)
		for k, end := range endOffsets(t, c, in) {
			if got[k] != end {
				t.Errorf("group offset of %s after a refused reset: %d, want %d", k, got[k], end)
			}
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestResetToTime reprocesses only the records at or after a time.
func TestResetToTime(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c cluster) {
		in, out, app := unique("in"), unique("out"), unique("reset-time")
		const parts = 3
		mustCreate(t, c, parts, in, out)
		topo := groupCount(t, in, out)
		base := time.Now().Add(-2 * time.Hour).Truncate(time.Millisecond)
		cut := base.Add(time.Hour)
		var recs []rec
		all, after := map[string]int64{}, map[string]int64{}
		for i := range 600 {
			g := "g" + strconv.Itoa(i%6)
			ts := base.Add(time.Duration(i) * time.Second)
			if i >= 400 {
				ts = cut.Add(time.Duration(i-400) * time.Second)
				after[g]++
			}
			all[g]++
			recs = append(recs, rec{key: []byte(strconv.Itoa(i)), value: []byte(g), ts: ts.UnixMilli()})
		}
		produce(t, c, in, recs)
		before := map[int32]int64{} // per partition, the records before cut
		for _, r := range consumeAll(t, c, in, false) {
			if r.Timestamp.Before(cut) {
				before[r.Partition]++
			}
		}
		opts := appOpts(c, app, false)
		runCounts(t, topo, opts)
		checkCounts(t, latestCounts(t, c, out, false), all, true)

		rep, err := kafkaio.Reset(context.Background(), topo, append(opts, kafkaio.ResetToTime(cut))...)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range rep.Offsets {
			if o.New != before[o.Partition] {
				t.Errorf("offset %+v: want %d (the first record at or after %v)", o, before[o.Partition], cut)
			}
		}
		s := runCounts(t, topo, opts)
		// Processed counts the repartitioned records too: twice the input.
		if s.Processed != 2*int64(len(recs)-400) {
			t.Errorf("the second run processed %d records, want twice the %d at or after the time", s.Processed, len(recs)-400)
		}
		checkCounts(t, latestCounts(t, c, out, false), after, true)
	})
}

// TestResetDryRun reports what a reset would do and changes nothing.
func TestResetDryRun(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c cluster) {
		in, out, app := unique("in"), unique("out"), unique("reset-dry")
		const parts = 2
		mustCreate(t, c, parts, in, out)
		topo := groupCount(t, in, out)
		internal := topo.InternalTopics(app)
		newFeeder(t, c, in, 10).feed(500)
		dir := t.TempDir()
		opts := appOpts(c, app, false, kafkaio.StateDir(dir))
		runCounts(t, topo, opts)
		ends := endOffsets(t, c, in)
		committed := groupOffsets(t, c, app)
		keys, ckpts := localState(t, dir, app, "group-counts", 2, parts)

		rep, err := kafkaio.Reset(context.Background(), topo, append(opts, kafkaio.ResetDryRun())...)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.DryRun || !rep.StateRemoved || !slices.Equal(rep.DeletedTopics, internal) || len(rep.Offsets) != parts {
			t.Errorf("dry run report %+v: want a dry run deleting %v, removing the state, resetting %d partitions", rep, internal, parts)
		}
		for _, o := range rep.Offsets {
			if key := o.Topic + "/" + strconv.Itoa(int(o.Partition)); o.New != 0 || o.Old != ends[key] {
				t.Errorf("offset %+v: want %s from %d to 0", o, key, ends[key])
			}
		}
		if s := rep.String(); !strings.Contains(s, "dry run") || !strings.Contains(s, "would delete topic "+internal[0]) {
			t.Errorf("report text does not say what would be done:\n%s", s)
		}

		if got := existingTopics(t, c, internal...); !slices.Equal(got, internal) {
			t.Errorf("internal topics after a dry run: %v, want %v", got, internal)
		}
		if got := groupOffsets(t, c, app); !mapsEqual(got, committed) {
			t.Errorf("group offsets after a dry run: %v, want %v", got, committed)
		}
		if k, n := localState(t, dir, app, "group-counts", 2, parts); k != keys || n != ckpts || k == 0 {
			t.Errorf("after a dry run: %d keys, %d checkpoints, want %d and %d", k, n, keys, ckpts)
		}
	})
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestResetSharedStateDir: two apps share a state directory; resetting one
// keeps the other's stores and checkpoints, so that the other restarts
// without restoring anything.
func TestResetSharedStateDir(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c cluster) {
		inA, outA, appA := unique("in-a"), unique("out-a"), unique("reset-a")
		inB, outB, appB := unique("in-b"), unique("out-b"), unique("reset-b")
		const parts = 2
		mustCreate(t, c, parts, inA, outA, inB, outB)
		topoA, topoB := groupCount(t, inA, outA), wordCount(t, inB, outB)
		newFeeder(t, c, inA, 10).feed(300)
		var lines []rec
		for i := range 300 {
			lines = append(lines, rec{key: []byte(strconv.Itoa(i)), value: []byte("w" + strconv.Itoa(i%7) + " x")})
		}
		produce(t, c, inB, lines)
		dir := t.TempDir()
		optsA := appOpts(c, appA, false, kafkaio.StateDir(dir))
		optsB := appOpts(c, appB, false, kafkaio.StateDir(dir))
		runCounts(t, topoA, optsA)
		runCounts(t, topoB, optsB)
		keysB, ckptsB := localState(t, dir, appB, "counts", 2, parts)
		if keysB == 0 || ckptsB == 0 {
			t.Fatalf("app B: %d keys, %d checkpoints, want some", keysB, ckptsB)
		}

		rep, err := kafkaio.Reset(context.Background(), topoA, optsA...)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.StateRemoved {
			t.Errorf("report %+v: want the state removed", rep)
		}
		if k, n := localState(t, dir, appA, "group-counts", 2, parts); k != 0 || n != 0 {
			t.Errorf("app A after its reset: %d keys, %d checkpoints, want none", k, n)
		}
		if k, n := localState(t, dir, appB, "counts", 2, parts); k != keysB || n != ckptsB {
			t.Errorf("app B after A's reset: %d keys, %d checkpoints, want %d and %d", k, n, keysB, ckptsB)
		}
		if s := runCounts(t, topoB, optsB); s.Restored != 0 {
			t.Errorf("app B restored %d records after A's reset, want 0 (its state is intact)", s.Restored)
		}
	})
}

// TestResetTopics checks which topics a reset touches on a topology with a
// global table, a source table and a topic it both writes and reads: the
// global table's topic is not the group's and keeps no offset; the
// intermediate topic goes to its end; a never-run app can be reset.
func TestResetTopics(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c cluster) {
		customers, prices, orders, mid, out := unique("customers"), unique("prices"), unique("orders"), unique("mid"), unique("out")
		app := unique("reset-topics")
		mustCreate(t, c, 1, customers)
		mustCreate(t, c, 2, prices, orders, mid, out)
		for _, topic := range []string{customers, prices, orders, mid} {
			produce(t, c, topic, []rec{{key: []byte("a"), value: []byte("1")}, {key: []byte("b"), value: []byte("2")}, {key: []byte("c"), value: []byte("3")}})
		}
		b := kstream.NewBuilder()
		g := kstream.SourceGlobalTable(b, customers, serde.String, serde.String, kstream.Named("customers"))
		table := kstream.SourceTable(b, prices, serde.String, serde.String, kstream.Named("prices"))
		kstream.JoinGlobal(kstream.Source(b, orders, serde.String, serde.String), g,
			func(k, _ string) string { return k }, func(_, v, gv string) string { return v + gv }).
			To(mid, serde.String, serde.String)
		kstream.JoinTable(kstream.Source(b, mid, serde.String, serde.String), table,
			func(_, v, p string) string { return v + p }).To(out, serde.String, serde.String)
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		ends := endOffsets(t, c, mid)
		for _, dry := range []bool{true, false} {
			opts := appOpts(c, app, false)
			if dry {
				opts = append(opts, kafkaio.ResetDryRun())
			}
			rep, err := kafkaio.Reset(context.Background(), topo, opts...)
			if err != nil {
				t.Fatal(err)
			}
			var topics []string
			for _, o := range rep.Offsets {
				key := o.Topic + "/" + strconv.Itoa(int(o.Partition))
				if !slices.Contains(topics, o.Topic) {
					topics = append(topics, o.Topic)
				}
				switch {
				case o.Topic == mid && (!o.Intermediate || o.New != ends[key]):
					t.Errorf("offset %+v: want the intermediate topic at its end %d", o, ends[key])
				case o.Topic != mid && (o.Intermediate || o.New != 0):
					t.Errorf("offset %+v: want the input topic at 0", o)
				case o.Old != -1:
					t.Errorf("offset %+v: want no old offset (the app never ran)", o)
				}
			}
			want := []string{mid, orders, prices}
			slices.Sort(want)
			if !slices.Equal(topics, want) {
				t.Errorf("reset topics %v, want %v (not the global table's %s)", topics, want, customers)
			}
			if len(rep.DeletedTopics) != 0 {
				t.Errorf("deleted %v: the app never ran, it has no internal topic", rep.DeletedTopics)
			}
		}
		committed := groupOffsets(t, c, app)
		want := map[string]int64{}
		for _, topic := range []string{orders, prices} {
			for k := range endOffsets(t, c, topic) {
				want[k] = 0
			}
		}
		for k, end := range ends {
			want[k] = end
		}
		if !mapsEqual(committed, want) {
			t.Errorf("group offsets %v, want %v", committed, want)
		}
	})
}

// TestResetOptions: a misused option is a clear error, before anything
// connects.
func TestResetOptions(t *testing.T) {
	b := kstream.NewBuilder()
	kstream.Source(b, "in", serde.String, serde.String).To("out", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		opts []kafkaio.Opt
		want string
	}{
		{[]kafkaio.Opt{kafkaio.Brokers("127.0.0.1:1")}, "AppID is required"},
		{[]kafkaio.Opt{kafkaio.AppID("x")}, "Brokers is required"},
		{[]kafkaio.Opt{kafkaio.AppID("x"), kafkaio.Brokers("127.0.0.1:1"), kafkaio.ResetToTime(time.Time{})}, "ResetToTime"},
		{[]kafkaio.Opt{kafkaio.AppID("a/b"), kafkaio.Brokers("127.0.0.1:1")}, `AppID "a/b"`},
	} {
		if _, err := kafkaio.Reset(context.Background(), topo, tc.opts...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Reset: %v, want an error saying %q", err, tc.want)
		}
	}
	// NewApp refuses Reset's options, and app IDs that cannot name the
	// app's directory in StateDir.
	for _, tc := range []struct {
		opts []kafkaio.Opt
		want string
	}{
		{[]kafkaio.Opt{kafkaio.ResetDryRun()}, "options of Reset"},
		{[]kafkaio.Opt{kafkaio.ResetToTime(time.Now())}, "options of Reset"},
	} {
		opts := append([]kafkaio.Opt{kafkaio.AppID("x"), kafkaio.Brokers("127.0.0.1:1")}, tc.opts...)
		if _, err := kafkaio.NewApp(topo, opts...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewApp: %v, want an error saying %q", err, tc.want)
		}
	}
	for _, id := range []string{"..", ".", `a\b`, "a/b"} {
		if _, err := kafkaio.NewApp(topo, kafkaio.AppID(id), kafkaio.Brokers("127.0.0.1:1")); err == nil || !strings.Contains(err.Error(), "AppID") {
			t.Errorf("NewApp with AppID %q: %v, want an error naming AppID", id, err)
		}
	}
	if _, err := kafkaio.Reset(context.Background(), nil, kafkaio.AppID("x"), kafkaio.Brokers("127.0.0.1:1")); err == nil {
		t.Error("Reset of a nil topology: no error")
	}
}

// ExampleReset reprocesses an application's input from the start: a count
// runs, stops, is reset (a dry run first, which changes nothing), and runs
// again to the same counts.
func ExampleReset() {
	ctx := context.Background()
	cluster, err := kafkaio.StartEmbedded(ctx)
	if err != nil {
		panic(err)
	}
	defer cluster.Close()
	if err := kafkaio.CreateTopics(ctx, cluster.Seeds(), 1, []string{"clicks", "clicks-per-page"}); err != nil {
		panic(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.Seeds()...))
	if err != nil {
		panic(err)
	}
	for i, page := range []string{"home", "docs", "home"} {
		r := &kgo.Record{Topic: "clicks", Key: []byte(strconv.Itoa(i)), Value: []byte(page)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			panic(err)
		}
	}
	cl.Close()

	b := kstream.NewBuilder()
	clicks := kstream.Source(b, "clicks", serde.String, serde.String)
	kstream.GroupBy(clicks, func(_, page string) string { return page }, serde.String).
		Count(kstream.Named("pages")).ToStream().To("clicks-per-page", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		panic(err)
	}
	dir, err := os.MkdirTemp("", "example-reset")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	opts := []kafkaio.Opt{kafkaio.AppID("example-reset"), kafkaio.Brokers(cluster.Seeds()...),
		kafkaio.StateDir(dir), kafkaio.CommitInterval(100 * time.Millisecond)}
	run := func() {
		app, err := kafkaio.NewApp(topo, opts...)
		if err != nil {
			panic(err)
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- app.Run(runCtx) }()
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if lag, err := app.Lag(ctx); err == nil && lag == 0 && app.Stats().Processed >= 6 {
				break
			}
		}
		stop()
		if err := <-done; err != nil {
			panic(err)
		}
		fmt.Println("processed", app.Stats().Processed)
	}
	run()

	// A dry run says what a reset would do, and changes nothing.
	report, err := kafkaio.Reset(ctx, topo, append(opts, kafkaio.ResetDryRun())...)
	if err != nil {
		panic(err)
	}
	fmt.Println("dry run:", report.Offsets, report.DeletedTopics, report.StateRemoved)
	// No instance may run while the reset does it.
	report, err = kafkaio.Reset(ctx, topo, opts...)
	if err != nil {
		panic(err)
	}
	fmt.Println("reset:", report.Offsets, report.DeletedTopics, report.StateRemoved)
	run()
	// Output:
	// processed 6
	// dry run: [{clicks 0 3 0 false}] [example-reset-pages-changelog example-reset-pages-repartition] true
	// reset: [{clicks 0 3 0 false}] [example-reset-pages-changelog example-reset-pages-repartition] true
	// processed 6
}
