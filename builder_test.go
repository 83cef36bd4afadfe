package kstream_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/serde"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestBuildErrors(t *testing.T) {
	b := kstream.NewBuilder()
	s := kstream.Source(b, "in", serde.String, serde.String) // SOURCE-0000000000
	// A stateful node without a name.
	s.GroupByKey().Count()
	// A struct key through a repartition, without WithSerdes.
	kstream.Map(s, func(k, v string) (point, string) { return point{}, v }, kstream.Named("to-point")).
		GroupByKey().Count(kstream.Named("per-point"))
	// Two nodes with one name.
	s.Filter(func(string, string) bool { return true }, kstream.Named("dup"))
	kstream.MapValues(s, func(v string) string { return v }, kstream.Named("dup"))
	// Two sources on one topic.
	kstream.Source(b, "in", serde.String, serde.Int64, kstream.Named("second-source"))

	topo, err := b.Build()
	if err == nil {
		t.Fatalf("Build succeeded:\n%s", topo.Describe())
	}
	if topo != nil {
		t.Errorf("Build returned a topology with its error")
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("Build error %T is not an errors.Join of the problems", err)
	}
	want := []string{
		"kstream: the count operator after node SOURCE-0000000000 needs kstream.Named: it creates a store and internal topics, whose names must be stable",
		"kstream: node per-point-repartition-sink: no key serde for type kstream_test.point: set one with WithSerdes or pass one to the operator",
		`kstream: name "dup" is used by two nodes (filter and map-values)`,
		"kstream: topic in is read by two sources (SOURCE-0000000000 and second-source)",
	}
	var got []string
	for _, e := range joined.Unwrap() {
		got = append(got, e.Error())
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			t.Errorf("Build error lacks %q", w)
		}
	}
	t.Logf("Build errors:\n%s", err)
	if len(got) != len(want) {
		t.Errorf("Build returned %d errors, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	// Build again: the errors stay, and Build says it was called twice.
	if _, err2 := b.Build(); err2 == nil || !strings.Contains(err2.Error(), "Build called twice") {
		t.Errorf("second Build: %v", err2)
	}
}

func TestBuildErrorsFixed(t *testing.T) {
	// The same topology, fixed, builds.
	b := kstream.NewBuilder()
	s := kstream.Source(b, "in", serde.String, serde.String)
	s.GroupByKey().Count(kstream.Named("counts"))
	kstream.Map(s, func(k, v string) (point, string) { return point{}, v }, kstream.Named("to-point")).
		WithSerdes(serde.JSON[point](), nil).
		GroupByKey().Count(kstream.Named("per-point"))
	s.Filter(func(string, string) bool { return true }, kstream.Named("dup"))
	kstream.MapValues(s, func(v string) string { return v }, kstream.Named("not-dup"))
	if _, err := b.Build(); err != nil {
		t.Fatal(err)
	}
}

func TestBuildErrorsMore(t *testing.T) {
	tests := []struct {
		name  string
		build func(b *kstream.Builder)
		want  string
	}{
		{"empty source topic", func(b *kstream.Builder) {
			kstream.Source(b, "", serde.String, serde.String)
		}, "kstream: source SOURCE-0000000000: empty topic name"},
		{"nil source serde", func(b *kstream.Builder) {
			kstream.Source[string, string](b, "in", nil, serde.String)
		}, "kstream: source SOURCE-0000000000 (topic in): key and value serdes are required"},
		{"sink without serde", func(b *kstream.Builder) {
			s := kstream.Source(b, "in", serde.String, serde.String)
			kstream.MapValues(s, func(string) point { return point{} }).To("out", nil, nil)
		}, "kstream: node SINK-0000000002: no value serde for type kstream_test.point: set one with WithSerdes or pass one to the operator"},
		{"unnamed repartition", func(b *kstream.Builder) {
			kstream.Source(b, "in", serde.String, serde.String).Repartition()
		}, "kstream: the repartition operator after node SOURCE-0000000000 needs kstream.Named"},
		{"unnamed to-table", func(b *kstream.Builder) {
			kstream.Source(b, "in", serde.String, serde.String).ToTable()
		}, "kstream: the to-table operator after node SOURCE-0000000000 needs kstream.Named"},
		{"unnamed table aggregation", func(b *kstream.Builder) {
			t := kstream.SourceTable(b, "in", serde.String, serde.String)
			kstream.GroupTableBy(t, func(k, v string) (string, string) { return v, k }, nil, nil).Count()
		}, "kstream: the table-count operator needs kstream.Named"},
		{"two stores with one name", func(b *kstream.Builder) {
			s := kstream.Source(b, "in", serde.String, serde.String)
			s.GroupByKey().Count(kstream.Named("c"))
			s.GroupByKey().Count(kstream.Named("c"))
		}, `store "c" is defined twice`},
		{"node and store with one name", func(b *kstream.Builder) {
			s := kstream.Source(b, "in", serde.String, serde.String)
			s.GroupByKey().Count(kstream.Named("c"))
			s.Filter(func(string, string) bool { return true }, kstream.Named("c-x"))
			s.Peek(func(string, string) {}, kstream.Named("x"))
			kstream.Process(s, newCounter, kstream.Named("p"), kstream.WithStores("x"))
		}, `kstream: name "x" is used by a store and by node x`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := kstream.NewBuilder()
			tt.build(b)
			_, err := b.Build()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Build error = %v\nwant one containing %q", err, tt.want)
			}
		})
	}
}

// goldenTopology has a source, a filter, a map, a grouping with a
// repartition, a count, a table turned back into a stream, and a sink.
func goldenTopology(t *testing.T) *kstream.Topology {
	b := kstream.NewBuilder()
	clicks := kstream.Source(b, "clicks", serde.String, serde.String, kstream.Named("clicks-source"))
	valid := clicks.Filter(func(_, page string) bool { return page != "" }, kstream.Named("valid-clicks"))
	byPage := kstream.Map(valid, func(user, page string) (string, string) { return page, user }, kstream.Named("by-page"))
	counts := byPage.GroupByKey(kstream.Named("pages")).Count(kstream.Named("page-counts"))
	counts.ToStream(kstream.Named("page-count-updates")).To("page-counts", serde.String, serde.Int64, kstream.Named("page-counts-sink"))
	return mustBuild(t, b)
}

func TestDescribeGolden(t *testing.T) {
	got := goldenTopology(t).Describe()
	path := filepath.Join("testdata", "describe.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestDescribeGolden -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("Describe() differs from %s (run with -update if the change is intended):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
	// Describe is stable.
	if again := goldenTopology(t).Describe(); again != got {
		t.Errorf("Describe() of the same topology differs between builds:\n%s\n%s", got, again)
	}
}

func TestMermaid(t *testing.T) {
	m := goldenTopology(t).Mermaid()
	if !strings.HasPrefix(m, "flowchart ") {
		t.Errorf("Mermaid() does not start with a flowchart:\n%s", m)
	}
	for _, s := range []string{
		"clicks-source", "valid-clicks", "by-page", "pages-repartition-sink", "pages-repartition-source",
		"page-counts", "page-count-updates", "page-counts-sink",
		`"clicks"`, `"<appID>-pages-repartition"`, `"page-counts"`,
		"Sub-topology 0", "Sub-topology 1",
	} {
		if !strings.Contains(m, s) {
			t.Errorf("Mermaid() lacks %q:\n%s", s, m)
		}
	}
	t.Logf("\n%s", m)
}

func TestInternalTopics(t *testing.T) {
	topo := goldenTopology(t)
	checkEqual(t, "InternalTopics(app)", topo.InternalTopics("app"), []string{"app-page-counts-changelog", "app-pages-repartition"})
	checkEqual(t, "InternalTopics(other)", topo.InternalTopics("other"), []string{"other-page-counts-changelog", "other-pages-repartition"})

	b := kstream.NewBuilder()
	kstream.Source(b, "in", serde.String, serde.String).To("out", nil, nil)
	if got := mustBuild(t, b).InternalTopics("app"); len(got) != 0 {
		t.Errorf("a stateless topology has internal topics %q", got)
	}
}
