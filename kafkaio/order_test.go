package kafkaio_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/kafkaio"
	"github.com/kstreamgo/kstream/serde"
)

// TestBacklogInTimeOrder fills two topics, then starts an app that merges
// them: the task reading both must interleave them by timestamp, as Kafka
// Streams does, however its polls split them (small polls here, so it waits
// for one input while holding the other's records back). Without that, a
// poll bringing one topic's backlog first would push stream time past the
// other's records: the merged output would be out of order, and a join
// would drop them as late (TestJoinsOverBacklog).
func TestBacklogInTimeOrder(t *testing.T) {
	forEachGuarantee(t, func(t *testing.T, c cluster, eos bool) {
		left, right, out, appID := unique("left"), unique("right"), unique("merged"), unique("order")
		mustCreate(t, c, 1, left, right, out)
		const n = 3000
		base := time.Now().Add(-time.Hour).UnixMilli()
		var l, r []rec
		for i := range n {
			l = append(l, rec{key: []byte("k"), value: []byte(strconv.Itoa(2 * i)), ts: base + int64(2*i)})
			r = append(r, rec{key: []byte("k"), value: []byte(strconv.Itoa(2*i + 1)), ts: base + int64(2*i+1)})
		}
		produce(t, c, left, l)
		produce(t, c, right, r)
		runToEnd(t, mergeTopo(t, left, right, out), appOpts(c, appID, eos, kafkaio.MaxBatch(250))...)
		got := consumeAll(t, c, out, eos)
		if len(got) != 2*n {
			t.Fatalf("%d records merged, want %d", len(got), 2*n)
		}
		for i, r := range got {
			if want := strconv.Itoa(i); string(r.Value) != want || r.Timestamp.UnixMilli() != base+int64(i) {
				t.Fatalf("merged record %d is %s at %d, want %s at %d: the inputs were not interleaved by time",
					i, r.Value, r.Timestamp.UnixMilli()-base, want, i)
			}
		}
	})
}

// TestJoinsOverBacklog starts joins on topics filled beforehand, as after
// downtime: a stream-stream join with a narrow window and no grace, and a
// stream-table join whose table records come 1 ms before the stream's.
// Every record finds its match, as in Kafka Streams; processing one topic's
// backlog before the other's dropped nearly all of the stream-stream
// join's records as late, and left the stream-table join's table empty.
func TestJoinsOverBacklog(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c cluster) {
		left, right, table := unique("left"), unique("right"), unique("table")
		streamOut, tableOut, appID := unique("joined"), unique("enriched"), unique("joins")
		mustCreate(t, c, 2, left, right, table, streamOut, tableOut)
		const n = 2000
		base := time.Now().Add(-time.Hour).UnixMilli()
		var l, r, tb []rec
		for i := range n {
			k := []byte(fmt.Sprint("k", i%40))
			l = append(l, rec{key: k, value: []byte(fmt.Sprint("l", i)), ts: base + int64(i)*10})
			r = append(r, rec{key: k, value: []byte(fmt.Sprint("r", i)), ts: base + int64(i)*10 + 1})
			tb = append(tb, rec{key: k, value: []byte(fmt.Sprint("t", i)), ts: base + int64(i)*10 - 1})
		}
		produce(t, c, table, tb)
		produce(t, c, left, l)
		produce(t, c, right, r)

		b := kstream.NewBuilder()
		ls := kstream.Source(b, left, serde.String, serde.String)
		kstream.Join(ls, kstream.Source(b, right, serde.String, serde.String),
			kstream.JoinWindow(2*time.Millisecond, 2*time.Millisecond),
			func(_, v, vo string) string { return v + "+" + vo }, kstream.Named("pairs")).
			To(streamOut, serde.String, serde.String)
		kstream.JoinTable(ls, kstream.SourceTable(b, table, serde.String, serde.String, kstream.Named("latest")),
			func(_, v, vt string) string { return v + "+" + vt }).
			To(tableOut, serde.String, serde.String)
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		runToEnd(t, topo, appOpts(c, appID, false, kafkaio.MaxBatch(300))...)
		check := func(topic string, want func(i int) string) {
			t.Helper()
			var got, exp []string
			for _, r := range consumeAll(t, c, topic, false) {
				got = append(got, string(r.Value))
			}
			for i := range n {
				exp = append(exp, want(i))
			}
			slices.Sort(got)
			slices.Sort(exp)
			if !slices.Equal(got, exp) {
				t.Errorf("%s: %d results, want %d (first %v)", topic, len(got), len(exp), got[:min(len(got), 5)])
			}
		}
		check(streamOut, func(i int) string { return fmt.Sprintf("l%d+r%d", i, i) })
		check(tableOut, func(i int) string { return fmt.Sprintf("l%d+t%d", i, i) })
	})
}

// TestMaxTaskIdleWaitsForProducers checks MaxTaskIdle(d > 0): a stream
// record whose table input is caught up waits (up to d) for table records,
// produced later: the one with an earlier timestamp updates the table
// before the stream record joins it, and the one with a later timestamp
// ends the wait (and waits in turn for the stream).
func TestMaxTaskIdleWaitsForProducers(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c cluster) {
		stream, table, out, appID := unique("clicks"), unique("users"), unique("enriched"), unique("idle")
		mustCreate(t, c, 1, stream, table, out)
		b := kstream.NewBuilder()
		kstream.JoinTable(kstream.Source(b, stream, serde.String, serde.String),
			kstream.SourceTable(b, table, serde.String, serde.String, kstream.Named("users")),
			func(_, v, vt string) string { return v + "+" + vt }).
			To(out, serde.String, serde.String)
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		app, err := kafkaio.NewApp(topo, appOpts(c, appID, false, kafkaio.MaxTaskIdle(20*time.Second))...)
		if err != nil {
			t.Fatal(err)
		}
		runApp(t, app)
		waitFor(t, time.Minute, "the app to run", func() bool { return app.State() == kafkaio.StateRunning && app.Stats().Tasks > 0 })
		now := time.Now().UnixMilli()
		produce(t, c, stream, []rec{{key: []byte("u1"), value: []byte("click"), ts: now}})
		time.Sleep(time.Second)
		if p := app.Stats().Processed; p != 0 {
			t.Fatalf("processed %d records before the table's record came: want the stream record waiting", p)
		}
		produce(t, c, table, []rec{{key: []byte("u1"), value: []byte("ann"), ts: now - 1}, {key: []byte("u2"), value: []byte("bob"), ts: now + 1}})
		var got []*kgo.Record
		waitFor(t, 15*time.Second, "the joined record", func() bool {
			got = consumeAll(t, c, out, false)
			return len(got) > 0
		})
		if len(got) != 1 || string(got[0].Value) != "click+ann" {
			t.Fatalf("output %v, want one click+ann", got)
		}
		if p := app.Stats().Processed; p != 2 {
			t.Fatalf("processed %d records, want 2 (bob waits for the stream)", p)
		}
	})
}

// TestShutdownWhileHoldingBack stops an app whose task holds records back
// waiting for its other input: the records must not be committed as
// processed. The next run processes them once the other input has data.
func TestShutdownWhileHoldingBack(t *testing.T) {
	forEachGuarantee(t, func(t *testing.T, c cluster, eos bool) {
		left, right, out, appID := unique("left"), unique("right"), unique("merged"), unique("held")
		mustCreate(t, c, 1, left, right, out)
		const n = 500
		base := time.Now().Add(-time.Hour).UnixMilli()
		var l []rec
		for i := range n {
			l = append(l, rec{key: []byte("k"), value: []byte(strconv.Itoa(i)), ts: base + int64(i)})
		}
		produce(t, c, left, l)
		// Waiting a minute for the right topic, the app holds the
		// left records back past several commit intervals.
		app, err := kafkaio.NewApp(mergeTopo(t, left, right, out), appOpts(c, appID, eos, kafkaio.MaxTaskIdle(time.Minute))...)
		if err != nil {
			t.Fatal(err)
		}
		stop := runApp(t, app)
		waitFor(t, time.Minute, "the app to run", func() bool { return app.State() == kafkaio.StateRunning && app.Stats().Tasks > 0 })
		time.Sleep(time.Second)
		if p := app.Stats().Processed; p != 0 {
			t.Fatalf("processed %d records while waiting for the right topic", p)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if o := committedOffset(t, c, appID, left); o > 0 {
			t.Fatalf("committed offset %d of %s: records held back were committed as processed", o, left)
		}
		if got := consumeAll(t, c, out, eos); len(got) != 0 {
			t.Fatalf("%d records out before the restart", len(got))
		}

		produce(t, c, right, []rec{{key: []byte("k"), value: []byte("right"), ts: base + n}})
		runToEnd(t, mergeTopo(t, left, right, out), appOpts(c, appID, eos)...)
		got := consumeAll(t, c, out, eos)
		if len(got) != n+1 {
			t.Fatalf("%d records out, want %d", len(got), n+1)
		}
		for i, r := range got[:n] {
			if string(r.Value) != strconv.Itoa(i) {
				t.Fatalf("record %d is %s", i, r.Value)
			}
		}
	})
}

// runToEnd runs an app of topo until its group has no lag, and stops it.
func runToEnd(t *testing.T, topo *kstream.Topology, opts ...kafkaio.Opt) {
	t.Helper()
	app, err := kafkaio.NewApp(topo, opts...)
	if err != nil {
		t.Fatal(err)
	}
	stop := runApp(t, app)
	waitCaughtUp(t, app, time.Minute)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// mergeTopo merges topics left and right into out.
func mergeTopo(t *testing.T, left, right, out string) *kstream.Topology {
	t.Helper()
	b := kstream.NewBuilder()
	kstream.Source(b, left, serde.String, serde.String).
		Merge(kstream.Source(b, right, serde.String, serde.String)).
		To(out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// committedOffset returns the group's committed offset of partition 0 of
// topic, -1 if none.
func committedOffset(t *testing.T, c cluster, group, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	offs, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup(topic, 0); ok && o.Err == nil {
		return o.At
	}
	return -1
}

// TestRebalanceWhileHoldingBack moves tasks that hold records back to
// another instance: the first instance waits a minute for an input, a
// second instance (not waiting) joins and takes some tasks, then the first
// stops and the second takes the rest. The offsets the first committed on
// revoke and on shutdown stop at the records it held back, so the second
// processes every record.
func TestRebalanceWhileHoldingBack(t *testing.T) {
	forEachGuarantee(t, func(t *testing.T, c cluster, eos bool) {
		left, right, out, appID := unique("left"), unique("right"), unique("merged"), unique("moved")
		mustCreate(t, c, 4, left, right, out)
		const n = 2000
		var l []rec
		want := map[string]bool{}
		for i := range n {
			v := strconv.Itoa(i)
			l = append(l, rec{key: []byte("k" + strconv.Itoa(i%97)), value: []byte(v)})
			want[v] = true
		}
		produce(t, c, left, l)
		first, err := kafkaio.NewApp(mergeTopo(t, left, right, out), appOpts(c, appID, eos, kafkaio.MaxTaskIdle(time.Minute))...)
		if err != nil {
			t.Fatal(err)
		}
		stopFirst := runApp(t, first)
		waitFor(t, time.Minute, "the first instance to hold its tasks", func() bool {
			return first.State() == kafkaio.StateRunning && first.Stats().Tasks == 4
		})
		time.Sleep(500 * time.Millisecond)
		if p := first.Stats().Processed; p != 0 {
			t.Fatalf("the first instance processed %d records while waiting", p)
		}
		second, err := kafkaio.NewApp(mergeTopo(t, left, right, out), appOpts(c, appID, eos)...)
		if err != nil {
			t.Fatal(err)
		}
		runApp(t, second)
		waitFor(t, time.Minute, "the second instance to take tasks", func() bool {
			return second.State() == kafkaio.StateRunning && second.Stats().Tasks > 0 && first.Stats().Tasks < 4
		})
		if err := stopFirst(); err != nil {
			t.Fatal(err)
		}
		if p := first.Stats().Processed; p != 0 {
			t.Fatalf("the first instance processed %d records", p)
		}
		waitCaughtUp(t, second, time.Minute)
		seen := map[string]bool{}
		got := consumeAll(t, c, out, eos)
		for _, r := range got {
			seen[string(r.Value)] = true
		}
		if len(seen) != len(want) {
			t.Fatalf("%d of %d records out: the first instance's commits covered records it held back", len(seen), len(want))
		}
		if eos && len(got) != n {
			t.Fatalf("exactly-once: %d records out, want %d", len(got), n)
		}
	})
}

// TestChildProcessKilledJoin kills exactly-once instances of a
// stream-stream join, in child processes, at several points while they
// work through a backlog of both inputs in small polls, holding one input's
// records back while they wait for the other's; a last instance finishes.
// The read-committed output has each pair exactly once: no join lost to
// the order of the inputs, none lost or repeated by the kills.
func TestChildProcessKilledJoin(t *testing.T) {
	if os.Getenv("KSTREAM_CHILD_APP") != "" {
		runChildApp(t, joinTopo(t, os.Getenv("KSTREAM_CHILD_IN"), os.Getenv("KSTREAM_CHILD_IN2"), os.Getenv("KSTREAM_CHILD_OUT"), 10*time.Millisecond))
		return
	}
	if testing.Short() {
		t.Skip("-short: kills child processes")
	}
	forEachCluster(t, func(t *testing.T, c cluster) {
		left, right, out, app := unique("left"), unique("right"), unique("pairs"), unique("killed-join")
		mustCreate(t, c, 4, left, right, out)
		const n = 8000
		base := time.Now().Add(-time.Hour).UnixMilli()
		var l, r []rec
		want := map[string]bool{}
		for i := range n {
			k := []byte(fmt.Sprint("k", i%100))
			l = append(l, rec{key: k, value: []byte(fmt.Sprint("l", i)), ts: base + int64(i)*10})
			r = append(r, rec{key: k, value: []byte(fmt.Sprint("r", i)), ts: base + int64(i)*10 + 1})
			want[fmt.Sprintf("l%d+r%d", i, i)] = true
		}
		produce(t, c, left, l)
		produce(t, c, right, r)
		dir := t.TempDir()
		env := append(os.Environ(), "KSTREAM_CHILD_APP="+app, "KSTREAM_CHILD_IN="+left, "KSTREAM_CHILD_IN2="+right,
			"KSTREAM_CHILD_OUT="+out, "KSTREAM_CHILD_BROKERS="+strings.Join(c.brokers, ","), "KSTREAM_CHILD_DIR="+dir)
		killChildren(t, c, "TestChildProcessKilledJoin", env, dir, out, n)
		runToEnd(t, joinTopo(t, left, right, out, 0), childOpts(app, c.brokers, dir)...) // a last instance finishes
		got := consumeAll(t, c, out, true)
		seen := map[string]int{}
		for _, r := range got {
			seen[string(r.Value)]++
		}
		for v, k := range seen {
			if !want[v] || k != 1 {
				t.Fatalf("output %s %d times; want each pair once", v, k)
			}
		}
		if len(got) != n {
			t.Fatalf("%d pairs out, want %d", len(got), n)
		}
	})
}

// joinTopo joins left and right records within 2 ms (no grace) into out;
// with throttle > 0, it sleeps that long every 100 records.
func joinTopo(t *testing.T, left, right, out string, throttle time.Duration) *kstream.Topology {
	t.Helper()
	b := kstream.NewBuilder()
	var seen atomic.Int64
	slow := func(string, string) {
		if throttle > 0 && seen.Add(1)%100 == 0 {
			time.Sleep(throttle)
		}
	}
	kstream.Join(kstream.Source(b, left, serde.String, serde.String).Peek(slow),
		kstream.Source(b, right, serde.String, serde.String).Peek(slow),
		kstream.JoinWindow(2*time.Millisecond, 2*time.Millisecond),
		func(_, v, vo string) string { return v + "+" + vo }, kstream.Named("pairs")).
		To(out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// TestHeldRecordsPaused checks that a task waiting for an input pauses the
// partitions of which it holds its cap of records back, and loses none of
// them: franz-go drops what it buffered of a paused partition and fetches
// it again on resume. With MaxTaskIdle(2s), each wait for the empty right
// topic ends after 2 s, and the records come out in order.
func TestHeldRecordsPaused(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c cluster) {
		left, right, out, appID := unique("left"), unique("right"), unique("merged"), unique("paused")
		mustCreate(t, c, 1, left, right, out)
		const n = 12_000 // more than a task holds back: 10,000 with MaxBatch(500)
		base := time.Now().Add(-time.Hour).UnixMilli()
		var l []rec
		for i := range n {
			l = append(l, rec{key: []byte("k"), value: []byte(strconv.Itoa(i)), ts: base + int64(i)})
		}
		produce(t, c, left, l)
		var logs syncBuffer
		app, err := kafkaio.NewApp(mergeTopo(t, left, right, out), appOpts(c, appID, false, kafkaio.MaxBatch(500),
			kafkaio.MaxTaskIdle(2*time.Second), kafkaio.Logger(slog.New(slog.NewTextHandler(&logs, nil))))...)
		if err != nil {
			t.Fatal(err)
		}
		stop := runApp(t, app)
		var got []*kgo.Record
		maxPaused := 0
		waitFor(t, time.Minute, "every record out", func() bool {
			maxPaused = max(maxPaused, app.Stats().PausedPartitions)
			got = consumeAll(t, c, out, false)
			return len(got) >= n
		})
		st := app.Stats()
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("%d records out, want %d", len(got), n)
		}
		// One partition (left's) paused while the task held its cap, none
		// once it stopped waiting; and the waits for the empty right topic
		// ended in enforced processing.
		if maxPaused != 1 || st.PausedPartitions != 0 {
			t.Errorf("paused partitions: at most %d while running, %d at the end; want 1 and 0", maxPaused, st.PausedPartitions)
		}
		if st.EnforcedProcessing == 0 {
			t.Errorf("no enforced processing counted")
		}
		for i, r := range got {
			if string(r.Value) != strconv.Itoa(i) {
				t.Fatalf("record %d is %s", i, r.Value)
			}
		}
		if !strings.Contains(logs.String(), "pausing their partitions") {
			t.Fatalf("the task did not pause the partition it held 10,000 records of; log:\n%s", logs.String())
		}
	})
}

// syncBuffer is a bytes.Buffer that goroutines may write concurrently.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
