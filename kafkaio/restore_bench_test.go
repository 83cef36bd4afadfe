package kafkaio_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreamgo/kstream/kafkaio"
)

// BenchmarkRestore measures how fast a task restores a store from its
// changelog, against a raw consume of the same changelog partition, in the
// same run: restore/s and raw/s per record, and their ratio. The restore is
// timed as RestoreProgress reports it, from the start of the store's restore
// to its end (the raw consume likewise from its client's creation to its
// last record); app-rec/s times it from the app's start instead (topic
// checks and group join included). With -benchtime
// Nx, N is the number of changelog records. Set KSTREAM_BROKERS to run it on
// a real broker instead of the embedded cluster.
func BenchmarkRestore(b *testing.B) {
	for _, persistent := range []bool{false, true} {
		b.Run(map[bool]string{false: "memory", true: "pebble"}[persistent], func(b *testing.B) {
			e, err := kafkaio.StartEmbedded(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			c := cluster{name: "embedded", brokers: e.Seeds()}
			n := max(b.N, 100_000)
			in, out, app := unique("in"), unique("out"), unique("restore")
			mustCreate(b, c, 1, in, out)
			changelog := app + "-group-counts-changelog"
			mustCreate(b, c, 1, changelog)
			recs := make([]rec, n)
			for i := range recs {
				v := binary.BigEndian.AppendUint64(nil, uint64(i))
				recs[i] = rec{key: []byte(fmt.Sprintf("key-%09d", i)), value: v, ts: int64(i + 1)}
			}
			produce(b, c, changelog, recs)

			// Raw consume of the same partition.
			began := time.Now()
			cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
				changelog: {0: kgo.NewOffset().AtStart()}}))
			if err != nil {
				b.Fatal(err)
			}
			got := 0
			for got < n {
				fs := cl.PollFetches(context.Background())
				got += fs.NumRecords()
			}
			raw := time.Since(began)
			cl.Close()

			// A count whose store restores from that changelog.
			b.ResetTimer()
			opts := appOpts(c, app, false)
			if persistent {
				opts = append(opts, kafkaio.StateDir(b.TempDir()))
			}
			a, err := kafkaio.NewApp(groupCount(b, in, out), opts...)
			if err != nil {
				b.Fatal(err)
			}
			began = time.Now()
			stop := runApp(b, a)
			waitFor(b, 5*time.Minute, "the restore", func() bool { return a.Stats().Restored >= int64(n) })
			fromStart := time.Since(began)
			b.StopTimer()
			waitFor(b, time.Minute, "the restore to finish", func() bool {
				p := a.RestoreProgress()
				return len(p) == 1 && p[0].Done
			})
			restore := a.RestoreProgress()[0].Took
			_ = stop()
			b.ReportMetric(float64(n)/restore.Seconds(), "restore-rec/s")
			b.ReportMetric(float64(n)/fromStart.Seconds(), "app-rec/s")
			b.ReportMetric(float64(n)/raw.Seconds(), "raw-rec/s")
			b.ReportMetric(raw.Seconds()/restore.Seconds(), "restore/raw")
		})
	}
}
