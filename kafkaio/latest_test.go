package kafkaio_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/kafkaio"
	"github.com/kstreamgo/kstream/serde"
)

// TestFromLatest checks kstream.FromLatest: a new application skips the
// history of its source topic, but not the records of its repartition
// topic, and once it has committed, a restart goes on from its offsets,
// with the records produced while it was down.
func TestFromLatest(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c cluster) {
		in, out, appID := unique("in"), unique("out"), unique("latest")
		mustCreate(t, c, 3, in, out)
		batch := func(value string, from, n int) []rec {
			var recs []rec
			for i := from; i < from+n; i++ {
				recs = append(recs, rec{key: []byte(strconv.Itoa(i)), value: []byte(value)})
			}
			return recs
		}
		produce(t, c, in, batch("old", 0, 300))
		b := kstream.NewBuilder()
		kstream.GroupBy(kstream.Source(b, in, serde.String, serde.String, kstream.FromLatest()),
			func(_, v string) string { return v }, serde.String).
			Count(kstream.Named("latest-counts")).ToStream().To(out, serde.String, serde.Int64)
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		run := func() (*kafkaio.App, func() error) {
			app, err := kafkaio.NewApp(topo, appOpts(c, appID, false)...)
			if err != nil {
				t.Fatal(err)
			}
			stop := runApp(t, app)
			waitFor(t, time.Minute, "the app to run its tasks", func() bool {
				return app.State() == kafkaio.StateRunning && app.Stats().Tasks == 6
			})
			return app, stop
		}
		app, stop := run()
		time.Sleep(time.Second) // the consumer has found the end of each partition
		produce(t, c, in, batch("new", 300, 200))
		waitCaughtUp(t, app, time.Minute)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if got := latestCounts(t, c, out, false); len(got) != 1 || got["new"] != 200 {
			t.Fatalf("counts %v, want new=200 only: the history is skipped, the new records all counted", got)
		}

		produce(t, c, in, batch("new", 500, 50)) // while the app is down
		app, stop = run()
		waitCaughtUp(t, app, time.Minute)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if got := latestCounts(t, c, out, false); len(got) != 1 || got["new"] != 250 {
			t.Fatalf("counts %v after a restart, want new=250: a committed app goes on from its offsets", got)
		}
	})
}

// TestClientResetOffsetRefused checks that a reset offset given to the
// clients, which would apply to internal topics too, is refused.
func TestClientResetOffsetRefused(t *testing.T) {
	c := embedded(t)
	in, out := unique("in"), unique("out")
	mustCreate(t, c, 1, in, out)
	app, err := kafkaio.NewApp(groupCount(t, in, out), appOpts(c, unique("reset"), false,
		kafkaio.ClientOpts(kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd())))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := app.Run(ctx); err == nil || !strings.Contains(err.Error(), "kstream.FromLatest") {
		t.Fatalf("Run: %v, want an error pointing to kstream.FromLatest", err)
	}
}
