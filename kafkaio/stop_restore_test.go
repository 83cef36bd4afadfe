package kafkaio_test

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kstreamgo/kstream/kafkaio"
)

// TestStopDuringRestore stops an instance while it restores the tasks it was
// just given, after it polled their input: the records it polled and never
// processed must not be committed (franz-go's uncommitted offsets are those
// polled, and a transaction's end commits them). The embedded cluster
// stalls the changelog fetches, which holds the instance in its restore.
func TestStopDuringRestore(t *testing.T) {
	for _, eos := range []bool{false, true} {
		t.Run(mode(eos), func(t *testing.T) {
			c, e := embeddedCluster(t)
			in, out, app := unique("in"), unique("out"), unique("stop-restore")
			mustCreate(t, c, 2, in, out)
			recs, want := groupInput(4000, 40)
			produce(t, c, in, recs[:2000])
			topo := groupCount(t, in, out)
			start := func() (*kafkaio.App, func() error) {
				a, err := kafkaio.NewApp(topo, appOpts(c, app, eos, kafkaio.StateDir(t.TempDir()))...)
				if err != nil {
					t.Fatal(err)
				}
				return a, runApp(t, a)
			}
			inputOffsets := func() map[string]int64 {
				m := map[string]int64{}
				for k, v := range groupOffsets(t, c, app) {
					if strings.HasPrefix(k, in+"/") {
						m[k] = v
					}
				}
				return m
			}

			// The first instance counts the first half.
			a, stop := start()
			waitCaughtUp(t, a, time.Minute)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			before := inputOffsets()

			// The second, with no local state, restores the counts from
			// their changelog, whose fetches fail until stall is cleared.
			changelog := app + "-group-counts-changelog"
			topics, err := admin(t, c).ListTopics(context.Background(), changelog)
			if err != nil || topics.Error() != nil {
				t.Fatal(err, topics.Error())
			}
			id := topics[changelog].ID
			var stall atomic.Bool
			stall.Store(true)
			e.Cluster().ControlKey(kmsg.Fetch.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
				e.Cluster().KeepControl()
				if !stall.Load() {
					return nil, nil, false
				}
				for _, rt := range req.(*kmsg.FetchRequest).Topics {
					if rt.TopicID == id || rt.Topic == changelog {
						return nil, errors.New("stalled"), true
					}
				}
				return nil, nil, false
			})
			produce(t, c, in, recs[2000:])
			b, stop := start()
			waitFor(t, time.Minute, "the restore to begin", func() bool { return len(b.RestoreProgress()) > 0 })
			time.Sleep(200 * time.Millisecond)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if after := inputOffsets(); !maps.Equal(after, before) {
				t.Errorf("an instance stopped during its restore committed input offsets %v; before it: %v", after, before)
			}
			if s := b.Stats(); s.Processed != 0 {
				t.Errorf("the instance stopped during its restore processed %d records", s.Processed)
			}

			// A third instance counts everything: exactly once, or at
			// least once.
			stall.Store(false)
			a, stop = start()
			waitCaughtUp(t, a, time.Minute)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			checkCounts(t, latestCounts(t, c, out, eos), want, eos)
		})
	}
}

// TestRestoreOutOfRange restarts an instance on its state directory and
// answers the first fetch of its changelog with OFFSET_OUT_OF_RANGE, as
// Kafka does when retention or a recreated topic removed the offsets after
// the checkpoint: the instance wipes the store, restores it in full, and
// counts on exactly.
func TestRestoreOutOfRange(t *testing.T) {
	c, e := embeddedCluster(t)
	in, out, app := unique("in"), unique("out"), unique("out-of-range")
	mustCreate(t, c, 1, in, out)
	recs, want := groupInput(2000, 20)
	produce(t, c, in, recs[:1000])
	topo := groupCount(t, in, out)
	dir := t.TempDir()
	var logs syncBuffer
	start := func() (*kafkaio.App, func() error) {
		a, err := kafkaio.NewApp(topo, appOpts(c, app, true, kafkaio.StateDir(dir),
			kafkaio.Logger(slog.New(slog.NewTextHandler(&logs, nil))))...)
		if err != nil {
			t.Fatal(err)
		}
		return a, runApp(t, a)
	}
	a, stop := start()
	waitCaughtUp(t, a, time.Minute)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	changelog := app + "-group-counts-changelog"
	topics, err := admin(t, c).ListTopics(context.Background(), changelog)
	if err != nil || topics.Error() != nil {
		t.Fatal(err, topics.Error())
	}
	id := topics[changelog].ID
	var answered, always atomic.Bool
	e.Cluster().ControlKey(kmsg.Fetch.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		e.Cluster().KeepControl()
		fr := req.(*kmsg.FetchRequest)
		if len(fr.Topics) != 1 || fr.Topics[0].TopicID != id && fr.Topics[0].Topic != changelog || answered.Swap(true) && !always.Load() {
			return nil, nil, false // the first fetch of the changelog only, unless always
		}
		resp := fr.ResponseKind().(*kmsg.FetchResponse)
		st := kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = fr.Topics[0].Topic, fr.Topics[0].TopicID
		sp := kmsg.NewFetchResponseTopicPartition()
		sp.Partition, sp.ErrorCode = fr.Topics[0].Partitions[0].Partition, 1 // OFFSET_OUT_OF_RANGE
		st.Partitions = append(st.Partitions, sp)
		resp.Topics = append(resp.Topics, st)
		return resp, nil, true
	})
	produce(t, c, in, recs[1000:])
	a, stop = start()
	waitCaughtUp(t, a, time.Minute)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if !answered.Load() || !strings.Contains(logs.String(), "restoring the task in full") {
		t.Fatalf("no out-of-range answer, or no full restore after it (answered %v); logs:\n%s", answered.Load(), logs.String())
	}
	var full bool
	for _, p := range a.RestoreProgress() {
		full = full || p.Store == "group-counts" && p.Done && p.Restored > 0 && p.Remaining == 0
	}
	if !full || a.Stats().Restored == 0 {
		t.Errorf("restore progress %+v, stats %+v: want a full restore", a.RestoreProgress(), a.Stats())
	}
	checkCounts(t, latestCounts(t, c, out, true), want, true)

	// A changelog that never holds the offsets asked for: the instance
	// gives up after a few full restores, with an error.
	always.Store(true)
	a, stop = start()
	select {
	case <-a.Done():
	case <-time.After(time.Minute):
		t.Fatal("an instance whose changelog is always out of range did not stop")
	}
	if err := stop(); err == nil || !strings.Contains(err.Error(), "no longer holds the offset") {
		t.Errorf("Run returned %v, want the out-of-range error", err)
	}
}

// TestStopDuringRestoreMidTransaction is TestStopDuringRestore under
// exactly-once, with an open transaction: the instance processes a stream
// in transactions, takes over a stopped instance's tasks, stops while their
// restore is stalled, and ends its transaction. The transaction must commit
// the offsets of what it processed only, not of the records the last poll
// returned: a third instance then counts every record exactly once.
func TestStopDuringRestoreMidTransaction(t *testing.T) {
	c, e := embeddedCluster(t)
	in, out, app := unique("in"), unique("out"), unique("stop-txn")
	mustCreate(t, c, 4, in, out)
	recs, want := groupInput(20000, 50)
	topo := groupCount(t, in, out)
	start := func() (*kafkaio.App, func() error) {
		a, err := kafkaio.NewApp(topo, appOpts(c, app, true, kafkaio.StateDir(t.TempDir()), kafkaio.WarmupReplicas(0))...)
		if err != nil {
			t.Fatal(err)
		}
		return a, runApp(t, a)
	}
	var stall atomic.Bool
	changelog := app + "-group-counts-changelog"
	e.Cluster().ControlKey(kmsg.Fetch.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		e.Cluster().KeepControl()
		if !stall.Load() {
			return nil, nil, false
		}
		for _, rt := range req.(*kmsg.FetchRequest).Topics {
			if rt.Topic == changelog || e.Cluster().TopicIDInfo(rt.TopicID) != nil && e.Cluster().TopicIDInfo(rt.TopicID).Topic == changelog {
				return nil, errors.New("stalled"), true
			}
		}
		return nil, nil, false
	})

	a, stopA := start()
	b, stopB := start()
	waitFor(t, time.Minute, "both instances to own tasks", func() bool { return a.Stats().Tasks > 0 && b.Stats().Tasks > 0 })
	// The input arrives as a stream, in small rounds.
	pcl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer pcl.Close()
	produced := make(chan error, 1)
	go func() {
		for i := 0; i < len(recs); i += 500 {
			var batch []*kgo.Record
			for _, r := range recs[i:min(i+500, len(recs))] {
				batch = append(batch, &kgo.Record{Topic: in, Key: r.key, Value: r.value})
			}
			if err := pcl.ProduceSync(context.Background(), batch...).FirstErr(); err != nil {
				produced <- err
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		produced <- nil
	}()
	waitFor(t, time.Minute, "instance b to process", func() bool { return b.Stats().Processed > 2000 })
	// a stops: b takes its tasks over, and their restore stalls.
	stall.Store(true)
	if err := stopA(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "b's restore to begin", func() bool {
		for _, p := range b.RestoreProgress() {
			if !p.Done {
				return true
			}
		}
		return false
	})
	time.Sleep(200 * time.Millisecond)
	if err := stopB(); err != nil {
		t.Fatal(err)
	}
	stall.Store(false)
	if err := <-produced; err != nil {
		t.Fatal(err)
	}

	c3, stop := start()
	waitCaughtUp(t, c3, time.Minute)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, latestCounts(t, c, out, true), want, true)
}
