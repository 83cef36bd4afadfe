package kafkaio_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/kafkaio"
	"github.com/kstreamgo/kstream/serde"
)

func wordCount(t testing.TB, in, out string) *kstream.Topology {
	t.Helper()
	b := kstream.NewBuilder()
	lines := kstream.Source(b, in, serde.String, serde.String)
	words := kstream.FlatMap(lines, func(_ string, line string, emit func(string, string)) {
		for _, w := range strings.Fields(strings.ToLower(line)) {
			emit(w, w)
		}
	})
	words.GroupByKey().Count(kstream.Named("counts")).ToStream().To(out, serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// latestCounts reads the output topic's final value per key.
func latestCounts(t testing.TB, c cluster, topic string, readCommitted bool) map[string]int64 {
	t.Helper()
	m := map[string]int64{}
	for _, r := range consumeAll(t, c, topic, readCommitted) {
		v, err := serde.Int64.Decode(r.Value)
		if err != nil {
			t.Fatalf("%s/%d@%d: %v", topic, r.Partition, r.Offset, err)
		}
		m[string(r.Key)] = v
	}
	return m
}

func runApp(t testing.TB, app *kafkaio.App) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- app.Run(ctx) }()
	var once bool
	var err error
	stop = func() error {
		if !once {
			once = true
			cancel()
			select {
			case err = <-errc:
			case <-time.After(time.Minute):
				err = fmt.Errorf("app did not stop")
			}
		}
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func TestWordCountEndToEnd(t *testing.T) {
	for _, eos := range []bool{false, true} {
		t.Run(map[bool]string{false: "at-least-once", true: "exactly-once"}[eos], func(t *testing.T) {
			forEachCluster(t, func(t *testing.T, c cluster) {
				in, out, app := unique("lines"), unique("word-counts"), unique("wc")
				mustCreate(t, c, 3, in, out)
				lines := []string{"the quick brown fox", "the lazy dog", "The Fox"}
				var recs []rec
				want := map[string]int64{}
				for i := range 300 {
					line := lines[i%len(lines)]
					recs = append(recs, rec{key: []byte(fmt.Sprint(i)), value: []byte(line)})
					for _, w := range strings.Fields(strings.ToLower(line)) {
						want[w]++
					}
				}
				produce(t, c, in, recs)
				opts := []kafkaio.Opt{kafkaio.AppID(app), kafkaio.Brokers(c.brokers...), kafkaio.CommitInterval(100 * time.Millisecond)}
				if eos {
					opts = append(opts, kafkaio.ExactlyOnce())
				}
				a, err := kafkaio.NewApp(wordCount(t, in, out), opts...)
				if err != nil {
					t.Fatal(err)
				}
				stop := runApp(t, a)
				var got map[string]int64
				waitFor(t, 60*time.Second, "final counts", func() bool {
					got = latestCounts(t, c, out, eos)
					return maps.Equal(got, want)
				})
				if err := stop(); err != nil {
					t.Fatal(err)
				}
				if eos {
					// Read committed, every count appears exactly once per increment.
					n := len(consumeAll(t, c, out, true))
					var total int64
					for _, v := range want {
						total += v
					}
					if int64(n) != total {
						t.Fatalf("exactly-once: %d output records, want %d (one per word)", n, total)
					}
				}
			})
		})
	}
}
