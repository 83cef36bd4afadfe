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
//
// The -16p variants spread the changelog over 16 partitions (16 tasks,
// restored concurrently); their restore is timed from the first store
// partition's start to the last one's end, and the raw consume reads all 16.
func BenchmarkRestore(b *testing.B) {
	for _, parts := range []int32{1, 16} {
		for _, persistent := range []bool{false, true} {
			name := map[bool]string{false: "memory", true: "pebble"}[persistent]
			if parts > 1 {
				name += fmt.Sprintf("-%dp", parts)
			}
			b.Run(name, func(b *testing.B) { benchRestore(b, parts, persistent) })
		}
	}
}

func benchRestore(b *testing.B, parts int32, persistent bool) {
	{
		{
			e, err := kafkaio.StartEmbedded(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			c := cluster{name: "embedded", brokers: e.Seeds()}
			n := max(b.N, 100_000)
			in, out, app := unique("in"), unique("out"), unique("restore")
			mustCreate(b, c, parts, in, out)
			changelog := app + "-group-counts-changelog"
			mustCreate(b, c, parts, changelog)
			recs := make([]rec, n)
			for i := range recs {
				v := binary.BigEndian.AppendUint64(nil, uint64(i))
				recs[i] = rec{key: []byte(fmt.Sprintf("key-%09d", i)), value: v, ts: int64(i + 1)}
			}
			produce(b, c, changelog, recs)

			// Raw consume of the same partition.
			began := time.Now()
			offsets := map[int32]kgo.Offset{}
			for p := range parts {
				offsets[p] = kgo.NewOffset().AtStart()
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
				changelog: offsets}))
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
				done := 0
				for _, e := range p {
					if e.Done {
						done++
					}
				}
				return done == int(parts)
			})
			var first, last time.Time
			for _, e := range a.RestoreProgress() {
				if first.IsZero() || e.Started.Before(first) {
					first = e.Started
				}
				if end := e.Started.Add(e.Took); end.After(last) {
					last = end
				}
			}
			restore := last.Sub(first)
			_ = stop()
			b.ReportMetric(float64(n)/restore.Seconds(), "restore-rec/s")
			b.ReportMetric(float64(n)/fromStart.Seconds(), "app-rec/s")
			b.ReportMetric(float64(n)/raw.Seconds(), "raw-rec/s")
			b.ReportMetric(raw.Seconds()/restore.Seconds(), "restore/raw")
		}
	}
}
