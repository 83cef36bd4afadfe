package kstream_test

import (
	"strings"
	"testing"
	"time"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/serde"
)

// TestMisplacedOptions: Cached, Retention, EmitOnWindowClose and WithStores
// on an operator that would ignore them are Build errors naming the
// operator; where they apply they build.
func TestMisplacedOptions(t *testing.T) {
	src := func(b *kstream.Builder) kstream.Stream[string, string] {
		return kstream.Source(b, "in", serde.String, serde.String)
	}
	keep := func(string, string) bool { return true }
	checkBuildErrors(t, []buildErrorCase{
		{"cached on filter", func(b *kstream.Builder) {
			src(b).Filter(keep, kstream.Named("f"), kstream.Cached())
		}, []string{"node f (filter)", "Cached applies to aggregations only"}},
		{"cached on map", func(b *kstream.Builder) {
			kstream.Map(src(b), func(k, v string) (string, string) { return k, v }, kstream.Named("m"), kstream.Cached())
		}, []string{"node m (map)", "Cached applies to"}},
		{"cached on source", func(b *kstream.Builder) {
			kstream.Source(b, "in", serde.String, serde.String, kstream.Cached())
		}, []string{"topic in", "Cached applies to"}},
		{"cached on source table", func(b *kstream.Builder) {
			kstream.SourceTable(b, "in", serde.String, serde.String, kstream.Named("t"), kstream.Cached())
		}, []string{"topic in", "Cached applies to"}},
		{"cached on to-table", func(b *kstream.Builder) {
			src(b).ToTable(kstream.Named("t"), kstream.Cached())
		}, []string{"to-table", "Cached applies to"}},
		{"cached on suppress", func(b *kstream.Builder) {
			src(b).GroupByKey().Count(kstream.Named("c")).Suppress(kstream.UntilTimeLimit(time.Second), kstream.Named("s"), kstream.Cached())
		}, []string{"suppress", "Cached applies to"}},
		{"cached on group-by-key", func(b *kstream.Builder) {
			src(b).GroupByKey(kstream.Cached()).Count(kstream.Named("c"))
		}, []string{"GroupByKey", "Cached applies to"}},
		{"cached on a stream-table join", func(b *kstream.Builder) {
			tbl := kstream.SourceTable(b, "tbl", serde.String, serde.String, kstream.Named("tbl"))
			kstream.JoinTable(src(b), tbl, func(_, v, vt string) string { return v + vt }, kstream.Named("j"), kstream.Cached())
		}, []string{"j", "Cached applies to"}},
		{"retention on count", func(b *kstream.Builder) {
			src(b).GroupByKey().Count(kstream.Named("c"), kstream.Retention(time.Hour))
		}, []string{"count", "Retention applies to windowed and session aggregations only"}},
		{"retention on cogroup", func(b *kstream.Builder) {
			c := kstream.Cogroup(src(b).GroupByKey(), func(_, v, a string) string { return a + v })
			kstream.AggregateCogrouped(c, func() string { return "" }, serde.String, kstream.Named("cg"), kstream.Retention(time.Hour))
		}, []string{"cogroup-aggregate", "Retention applies to"}},
		{"emit on close on count", func(b *kstream.Builder) {
			src(b).GroupByKey().Count(kstream.Named("c"), kstream.EmitOnWindowClose())
		}, []string{"count", "EmitOnWindowClose applies to windowed and session aggregations only"}},
		{"emit on close on filter", func(b *kstream.Builder) {
			src(b).Filter(keep, kstream.Named("f"), kstream.EmitOnWindowClose())
		}, []string{"node f (filter)", "EmitOnWindowClose applies to"}},
		{"stores on map-values", func(b *kstream.Builder) {
			kstream.MapValues(src(b), func(v string) string { return v }, kstream.Named("mv"), kstream.WithStores("s"))
		}, []string{"node mv (map-values)", "WithStores applies to Process and ProcessValues only"}},
		{"stores on count", func(b *kstream.Builder) {
			src(b).GroupByKey().Count(kstream.Named("c"), kstream.WithStores("s"))
		}, []string{"count", "WithStores applies to"}},
		{"stores on sink", func(b *kstream.Builder) {
			src(b).To("out", nil, nil, kstream.WithStores("s"))
		}, []string{"sink", "WithStores applies to"}},
		{"from latest on filter", func(b *kstream.Builder) {
			src(b).Filter(keep, kstream.Named("f"), kstream.FromLatest())
		}, []string{"node f (filter)", "FromLatest applies to Source only"}},
		{"from latest on source table", func(b *kstream.Builder) {
			kstream.SourceTable(b, "tbl", serde.String, serde.String, kstream.FromLatest())
		}, []string{"source table tbl (topic tbl)", "FromLatest applies to Source only"}},
		{"from latest on global table", func(b *kstream.Builder) {
			kstream.SourceGlobalTable(b, "glob", serde.String, serde.String, kstream.FromLatest())
		}, []string{"global table glob (topic glob)", "FromLatest applies to Source only"}},
		{"from latest on repartition", func(b *kstream.Builder) {
			src(b).Repartition(kstream.Named("r"), kstream.FromLatest())
		}, []string{"FromLatest applies to Source only"}},
	})

	// Where they apply.
	b := kstream.NewBuilder()
	s := src(b).Merge(kstream.Source(b, "recent", serde.String, serde.String, kstream.FromLatest()))
	g := s.GroupByKey()
	g.Count(kstream.Named("count"), kstream.Cached())
	kstream.Aggregate(g, func() int64 { return 0 }, func(_, _ string, a int64) int64 { return a + 1 }, serde.Int64,
		kstream.Named("agg"), kstream.Cached())
	kstream.GroupTableBy(s.ToTable(kstream.Named("tbl")), func(k, v string) (string, string) { return v, k }, nil, nil).
		Count(kstream.Named("table-count"), kstream.Cached())
	kstream.WindowedBy(g, kstream.Tumbling(10*time.Millisecond)).Count(kstream.Named("win"),
		kstream.Cached(), kstream.Retention(time.Minute), kstream.EmitOnWindowClose())
	kstream.SessionWindowedBy(g, 10*time.Millisecond).Count(kstream.Named("ses"),
		kstream.Retention(time.Minute), kstream.EmitOnWindowClose())
	c := kstream.Cogroup(g, func(_, v, a string) string { return a + v })
	kstream.AggregateCogrouped(c, func() string { return "" }, serde.String, kstream.Named("cg"), kstream.Cached())
	kstream.AggregateCogroupedWindowed(c, kstream.Tumbling(10*time.Millisecond), func() string { return "" }, serde.String,
		kstream.Named("cgw"), kstream.Retention(time.Minute), kstream.EmitOnWindowClose())
	kstream.Process(s, func() kstream.Processor[string, string, string, string] { return &dedup{} },
		kstream.Named("dedup"), kstream.WithStores("seen-keys"))
	kstream.ProcessValues(s, func() kstream.FixedKeyProcessor[string, string, string] { return &normalize{} },
		kstream.Named("normalize"), kstream.WithStores("other"))
	if _, err := b.Build(); err != nil {
		t.Errorf("Build: %v", err)
	}
}

// TestFromLatestDescribed checks that Describe shows which sources start
// at the end of their topics.
func TestFromLatestDescribed(t *testing.T) {
	b := kstream.NewBuilder()
	kstream.Source(b, "recent", serde.String, serde.String, kstream.FromLatest()).
		Merge(kstream.Source(b, "all", serde.String, serde.String)).To("out", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := topo.Describe()
	if !strings.Contains(d, "(topic: recent, from latest)") || !strings.Contains(d, "(topic: all)\n") {
		t.Fatalf("Describe does not tell the sources apart:\n%s", d)
	}
}
