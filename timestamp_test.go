package kstream_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/kstest"
	"github.com/kstreamgo/kstream/serde"
)

// eventTime reads the event time of a value "name@ts"; "bad" values give
// -1, "panic" ones panic.
func eventTime(_ string, v string, _ int64) int64 {
	if v == "panic" {
		panic("unparsable event")
	}
	_, ts, ok := strings.Cut(v, "@")
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// ingestion is far ahead of every event time: the Kafka timestamps of the
// records, as a producer that does not set them gives.
const ingestion = 1_000_000

// TestTimestampFromWindows counts events per 10 ms tumbling window of their
// event time, read from the value, with final results only: windows, their
// closing (stream time) and the results' timestamps follow event time, not
// the records' Kafka timestamps.
func TestTimestampFromWindows(t *testing.T) {
	build := func(opts ...kstream.Opt) *kstream.Topology {
		b := kstream.NewBuilder()
		g := kstream.Source(b, "in", serde.String, serde.String, opts...).GroupByKey()
		toOut(kstream.WindowedBy(g, kstream.Tumbling(10*ms)).Count(kstream.Named("counts"), kstream.EmitOnWindowClose()))
		return mustBuild(t, b)
	}
	events := []string{"a@1", "a@4", "b@7", "a@12", "a@9", "b@15", "a@31"}
	run := func(topo *kstream.Topology) []wRec[int64] {
		d := kstest.NewDriver(t, topo, kstest.Partitions(1))
		in := kstest.Input(d, "in", serde.String, serde.String)
		for i, e := range events {
			in.PipeAt(ingestion+int64(i), e[:1], e)
		}
		return kstest.Output(d, "out", wSerde, serde.Int64).Records()
	}
	checkRecords(t, "event time", run(build(kstream.TimestampFrom(eventTime))), []wRec[int64]{
		// a@9 is late by event time (stream time 12 closed [0,10)): dropped.
		wrec[int64](4, "a", 0, 10, 2),
		wrec[int64](7, "b", 0, 10, 1),
		wrec[int64](12, "a", 10, 20, 1),
		wrec[int64](15, "b", 10, 20, 1),
	})
	// Without the option the Kafka timestamps rule: one open window.
	if got := run(build()); len(got) != 0 {
		t.Errorf("Kafka timestamps: %v, want no closed window", got)
	}
}

// TestTimestampFromRecords checks what the extracted timestamp applies to:
// output records and table updates carry it, a tombstone keeps its Kafka
// timestamp without calling the function, and a negative timestamp or a
// panic fails the record at the source node.
func TestTimestampFromRecords(t *testing.T) {
	calls := 0
	extract := func(k, v string, ts int64) int64 {
		calls++
		return eventTime(k, v, ts)
	}
	b := kstream.NewBuilder()
	kstream.Source(b, "in", serde.String, serde.String, kstream.Named("events"), kstream.TimestampFrom(extract)).
		To("out", nil, nil)
	kstream.SourceTable(b, "tin", serde.String, serde.String, kstream.Named("tbl"), kstream.TimestampFrom(eventTime)).
		ToStream().To("tout", nil, nil)
	d := kstest.NewDriver(t, mustBuild(t, b), kstest.Partitions(2))
	in := kstest.Input(d, "in", serde.String, serde.String)
	in.PipeAt(ingestion, "a", "x@5")
	in.PipeTombstoneAt(ingestion+1, "a")
	for _, bad := range []string{"bad", "panic"} {
		err := in.TryPipeRecord(rec(int64(ingestion+2), "b", bad))
		var re *kstream.RecordError
		if !errors.As(err, &re) || re.Node != "events" || re.Topic != "in" {
			t.Errorf("value %q: error %v, want a record error of node events", bad, err)
		}
	}
	checkRecords(t, "out", kstest.Output(d, "out", serde.String, serde.String).Records(), []strRec{
		rec(5, "a", "x@5"), tomb[string, string](ingestion+1, "a"),
	})
	checkEqual(t, "calls", calls, 3) // not for the tombstone
	tin := kstest.Input(d, "tin", serde.String, serde.String)
	tin.PipeAt(ingestion, "k", "v@20")
	tin.PipeAt(ingestion, "k", "w@21")
	checkRecords(t, "tout", kstest.Output(d, "tout", serde.String, serde.String).Records(), []strRec{
		rec(20, "k", "v@20"), rec(21, "k", "w@21"),
	})
}

// TestTimestampFromBuildErrors: the function must have the source's types,
// and the option belongs to sources only.
func TestTimestampFromBuildErrors(t *testing.T) {
	b := kstream.NewBuilder()
	s := kstream.Source(b, "in", serde.String, serde.Int64, kstream.Named("src"), kstream.TimestampFrom(eventTime))
	s.Filter(func(string, int64) bool { return true }, kstream.Named("keep"),
		kstream.TimestampFrom(func(string, int64, int64) int64 { return 0 })).
		To("out", nil, nil, kstream.Named("sink"), kstream.TimestampFrom(func(string, int64, int64) int64 { return 0 }))
	_, err := b.Build()
	for _, want := range []string{
		"source src (topic in): TimestampFrom takes a func(string, int64, int64) int64 for this source, not a func(string, string, int64) int64",
		"node keep (filter): TimestampFrom applies to sources only (Source, SourceTable, SourceGlobalTable)",
		"node sink (sink): TimestampFrom applies to sources only (Source, SourceTable, SourceGlobalTable)",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Build error %v, want it to contain %q", err, want)
		}
	}
}

// TestTimestampFromPunctuation: the task's stream time, which drives
// stream-time punctuations, follows the extracted timestamps.
func TestTimestampFromPunctuation(t *testing.T) {
	var fired []int64
	b := kstream.NewBuilder()
	s := kstream.Source(b, "in", serde.String, serde.String, kstream.TimestampFrom(eventTime))
	kstream.ProcessValues(s, func() kstream.FixedKeyProcessor[string, string, string] {
		return &fnFixedKeyProcessor[string, string, string]{init: func(ctx *kstream.FixedKeyContext[string, string]) error {
			ctx.Schedule(10*ms, kstream.StreamTime, func(ts int64) error {
				fired = append(fired, ts)
				return nil
			})
			return nil
		}}
	}, kstream.Named("tick")).To("out", nil, nil)
	d := kstest.NewDriver(t, mustBuild(t, b), kstest.Partitions(1))
	in := kstest.Input(d, "in", serde.String, serde.String)
	for i, e := range []string{"a@1", "a@12", "a@25"} {
		in.PipeAt(ingestion+int64(i), "a", e)
	}
	if len(fired) < 2 {
		t.Fatalf("stream-time punctuations fired at %v, want at least two", fired)
	}
	for _, ts := range fired {
		if ts > 25 {
			t.Errorf("stream-time punctuations fired at %v: stream time went past the largest event time, 25", fired)
			break
		}
	}
}

// TestTimestampFromElsewhere: every kind of operator other than a source
// rejects TimestampFrom at Build, with one error naming it.
func TestTimestampFromElsewhere(t *testing.T) {
	ts := kstream.TimestampFrom(eventTime)
	str := func(b *kstream.Builder, topic string) kstream.Stream[string, string] {
		return kstream.Source(b, topic, serde.String, serde.String)
	}
	tbl := func(b *kstream.Builder, topic string) kstream.Table[string, string] {
		return kstream.SourceTable(b, topic, serde.String, serde.String)
	}
	concat := func(_, v, w string) string { return v + w }
	for _, tc := range []struct {
		name, want string
		build      func(b *kstream.Builder)
	}{
		{"Filter", "(filter)", func(b *kstream.Builder) { str(b, "in").Filter(func(string, string) bool { return true }, ts) }},
		{"To", "(sink)", func(b *kstream.Builder) { str(b, "in").To("out", nil, nil, ts) }},
		{"GroupByKey", "GroupByKey", func(b *kstream.Builder) { str(b, "in").GroupByKey(ts).Count(kstream.Named("c")) }},
		{"GroupBy", "GroupBy", func(b *kstream.Builder) {
			kstream.GroupBy(str(b, "in"), func(_, v string) string { return v }, nil, ts).Count(kstream.Named("c"))
		}},
		{"Count", "count", func(b *kstream.Builder) { str(b, "in").GroupByKey().Count(kstream.Named("c"), ts) }},
		{"windowed Count", "count", func(b *kstream.Builder) {
			kstream.WindowedBy(str(b, "in").GroupByKey(), kstream.Tumbling(10*ms)).Count(kstream.Named("c"), ts)
		}},
		{"ToTable", "to-table", func(b *kstream.Builder) { str(b, "in").ToTable(kstream.Named("t"), ts) }},
		{"Repartition", "repartition", func(b *kstream.Builder) { str(b, "in").Repartition(kstream.Named("r"), ts) }},
		{"Join", "join", func(b *kstream.Builder) {
			kstream.Join(str(b, "l"), str(b, "r"), kstream.JoinWindow(10*ms, 10*ms), concat, kstream.Named("j"), ts)
		}},
		{"JoinTable", "join", func(b *kstream.Builder) { kstream.JoinTable(str(b, "l"), tbl(b, "r"), concat, kstream.Named("j"), ts) }},
		{"JoinTables", "join", func(b *kstream.Builder) {
			kstream.JoinTables(tbl(b, "l"), tbl(b, "r"), concat, serde.String, kstream.Named("j"), ts)
		}},
		{"GroupTableBy", "GroupTableBy", func(b *kstream.Builder) {
			kstream.GroupTableBy(tbl(b, "in"), func(k, v string) (string, string) { return v, k }, nil, nil, ts).Count(kstream.Named("c"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := kstream.NewBuilder()
			tc.build(b)
			_, err := b.Build()
			if err == nil {
				t.Fatal("Build succeeded")
			}
			var lines []string
			for _, l := range strings.Split(err.Error(), "\n") {
				if strings.Contains(l, "TimestampFrom") {
					lines = append(lines, l)
				}
			}
			if len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
				t.Errorf("Build errors about TimestampFrom: %q, want one naming %q", lines, tc.want)
			}
		})
	}
}

// TestTimestampFromSourceTableRestore: a source table with TimestampFrom
// keeps its event times through a restore from its topic, as a table–table
// join's result timestamp (the larger of its sides') shows, and a record
// that failed (a negative event time) stays out of it. (The Pebble store's
// checkpoint is current: only the in-memory one restores the topic.)
func TestTimestampFromSourceTableRestore(t *testing.T) {
	for _, persistent := range []bool{false, true} {
		b := kstream.NewBuilder()
		users := kstream.SourceTable(b, "users", serde.String, serde.String, kstream.Named("users"),
			kstream.TimestampFrom(eventTime))
		visits := kstream.SourceTable(b, "visits", serde.String, serde.String, kstream.Named("visits"))
		kstream.JoinTables(users, visits, func(_, u, v string) string { return u + "+" + v }, serde.String, kstream.Named("j")).
			ToStream().To("out", serde.String, serde.String)
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		opts := []kstest.Option{kstest.Partitions(2)}
		if persistent {
			opts = append(opts, kstest.StateDir(t.TempDir()))
		}
		d := kstest.NewDriver(t, topo, opts...)
		u := kstest.Input(d, "users", serde.String, serde.String)
		u.PipeAt(1_000_000, "a", "ann@100")
		// Event time -1: the record fails (and stays in the topic).
		if err := u.TryPipeRecord(kstream.Record[string, string]{Key: "b", Value: "bad", Timestamp: 1_000_000}); err == nil {
			t.Fatal("a negative event time did not fail the record")
		}
		d.Restart()
		v := kstest.Input(d, "visits", serde.String, serde.String)
		v.PipeAt(200, "a", "home")
		v.PipeAt(300, "b", "shop")
		got := map[string]int64{}
		for _, r := range kstest.Output(d, "out", serde.String, serde.String).Records() {
			got[r.Key] = r.Timestamp
		}
		// a: max(100, 200). b's user record failed, so it is not in the
		// table after the restore either.
		if len(got) != 1 || got["a"] != 200 {
			t.Errorf("persistent=%v: join timestamps after a restore %v, want a at 200 (the user's event time 100, not its Kafka time) and no b", persistent, got)
		}
	}
}
