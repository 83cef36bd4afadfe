package kafkaio_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
			e, err := kafkaio.StartEmbedded(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			c := cluster{name: "embedded", brokers: e.Seeds()}
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
