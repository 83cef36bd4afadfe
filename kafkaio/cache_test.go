package kafkaio_test

import (
	"testing"
	"time"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/kafkaio"
	"github.com/kstreamgo/kstream/serde"
)

// TestCachedCount counts 4,000 records over 40 keys with kstream.Cached and
// a one-second commit interval: the counts are exact, and the output holds
// far fewer records than the input (one per key per commit), under
// at-least-once and exactly-once.
func TestCachedCount(t *testing.T) {
	for _, eos := range []bool{false, true} {
		t.Run(map[bool]string{false: "alos", true: "eos"}[eos], func(t *testing.T) {
			forEachCluster(t, func(t *testing.T, c cluster) {
				in, out, app := unique("in"), unique("out"), unique("cached")
				mustCreate(t, c, 2, in, out)
				b := kstream.NewBuilder()
				kstream.GroupBy(kstream.Source(b, in, serde.String, serde.String), func(_, v string) string { return v }, serde.String).
					Count(kstream.Named("counts"), kstream.Cached()).ToStream().To(out, serde.String, serde.Int64)
				topo, err := b.Build()
				if err != nil {
					t.Fatal(err)
				}
				f := newFeeder(t, c, in, 40)
				f.feed(4000)
				a, err := kafkaio.NewApp(topo, appOpts(c, app, eos, kafkaio.CommitInterval(time.Second))...)
				if err != nil {
					t.Fatal(err)
				}
				stop := runApp(t, a)
				waitCaughtUp(t, a, 2*time.Minute)
				if err := stop(); err != nil {
					t.Fatal(err)
				}
				recs := consumeAll(t, c, out, eos)
				checkCounts(t, latestCounts(t, c, out, eos), f.want, true)
				if len(recs) >= 4000/4 {
					t.Errorf("%d output records for 4000 inputs over 40 keys: the cache did not compact", len(recs))
				}
				t.Logf("%d output records", len(recs))
			})
		})
	}
}
