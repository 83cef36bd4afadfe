package kstream_test

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/kstest"
	"github.com/kstreamgo/kstream/serde"
)

type (
	strRec = kstream.Record[string, string]
	i64Rec = kstream.Record[string, int64]
)

func i64(ts int64, k string, v int64, hs ...kstream.Header) i64Rec { return rec(ts, k, v, hs...) }

func checkStore[V any](t testing.TB, d *kstest.Driver, store string, vs serde.Serde[V], want map[string]V, absent ...string) {
	t.Helper()
	sv := kstest.Store(d, store, serde.String, vs)
	for _, k := range slices.Sorted(maps.Keys(want)) {
		got, ok := sv.Get(k)
		if !ok {
			t.Errorf("store %s: key %q missing, want %v", store, k, want[k])
		} else {
			checkEqual(t, fmt.Sprintf("store %s key %q", store, k), got, want[k])
		}
	}
	for _, k := range absent {
		if got, ok := sv.Get(k); ok {
			t.Errorf("store %s: key %q = %v, want absent", store, k, got)
		}
	}
}

func TestSourceTable(t *testing.T) {
	for _, parts := range partitionCounts {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			b := kstream.NewBuilder()
			tbl := kstream.SourceTable(b, "users", serde.String, serde.String, kstream.Named("users-store"))
			if got := tbl.StoreName(); got != "users-store" {
				t.Errorf("StoreName() = %q", got)
			}
			tbl.ToStream().To("out", serde.String, serde.String)
			d := kstest.NewDriver(t, mustBuild(t, b), kstest.Partitions(parts))
			pipeAll(t, d, serde.String, serde.String, []pipe[string, string]{
				inTo("users", rec(1, "u1", "alice", hdr("h", "1"))),
				inTo("users", rec(2, "u2", "bob")),
				inTo("users", rec(3, "u1", "alicia")),
				inTo("users", tomb[string, string](4, "u2")),
				inTo("users", tomb[string, string](5, "u3")), // never existed
				{Record: rec(6, "", "nobody"), Topic: "users", NullKey: true},
				inTo("users", rec(7, "u4", "dave")),
			})
			checkRecords(t, "out", kstest.Output(d, "out", serde.String, serde.String).Records(), []strRec{
				rec(1, "u1", "alice", hdr("h", "1")),
				rec(2, "u2", "bob"),
				rec(3, "u1", "alicia"),
				tomb[string, string](4, "u2"),
				tomb[string, string](5, "u3"),
				rec(7, "u4", "dave"),
			})
			checkStore(t, d, "users-store", serde.String, map[string]string{"u1": "alicia", "u4": "dave"}, "u2", "u3", "")
			if got := d.Dropped("users-store"); got != 1 {
				t.Errorf("null keys dropped by the table: %d, want 1", got)
			}
			// The source topic is the changelog: no other topic is written.
			checkEqual(t, "topics", d.Topics(), []string{"out", "users"})
			// A restart restores the table from its source topic, skipping
			// the null key the table dropped.
			d.Restart()
			checkStore(t, d, "users-store", serde.String, map[string]string{"u1": "alicia", "u4": "dave"}, "u2", "u3", "")
		})
	}
}

func TestSourceTableDefaultStoreName(t *testing.T) {
	b := kstream.NewBuilder()
	tbl := kstream.SourceTable(b, "users", serde.String, serde.String)
	checkEqual(t, "StoreName", tbl.StoreName(), "users")
	d := kstest.NewDriver(t, mustBuild(t, b))
	kstest.Input(d, "users", serde.String, serde.String).PipeAt(1, "u", "v")
	checkStore(t, d, "users", serde.String, map[string]string{"u": "v"})
}

func TestToTable(t *testing.T) {
	t.Run("same key", func(t *testing.T) {
		b := kstream.NewBuilder()
		s := kstream.Source(b, "in", serde.String, serde.String)
		s.ToTable(kstream.Named("latest")).ToStream().To("out", serde.String, serde.String)
		topo := mustBuild(t, b)
		checkEqual(t, "internal topics", topo.InternalTopics("kstest"), []string{"kstest-latest-changelog"})
		d := kstest.NewDriver(t, topo, kstest.Partitions(2))
		pipeAll(t, d, serde.String, serde.String, []pipe[string, string]{
			in(rec(1, "a", "1")),
			in(rec(2, "a", "2")),
			in(tomb[string, string](3, "a")),
			in(rec(4, "b", "3")),
		})
		checkRecords(t, "out", kstest.Output(d, "out", serde.String, serde.String).Records(), []strRec{
			rec(1, "a", "1"), rec(2, "a", "2"), tomb[string, string](3, "a"), rec(4, "b", "3"),
		})
		checkStore(t, d, "latest", serde.String, map[string]string{"b": "3"}, "a")
		checkRecords(t, "changelog", kstest.Output(d, "kstest-latest-changelog", serde.String, serde.String).Records(), []strRec{
			rec(1, "a", "1"), rec(2, "a", "2"), tomb[string, string](3, "a"), rec(4, "b", "3"),
		})
	})
	t.Run("re-keyed", func(t *testing.T) {
		for _, parts := range []int{1, 4} {
			b := kstream.NewBuilder()
			s := kstream.Source(b, "in", serde.String, serde.String)
			// Key "user", value "page": the table holds each page's last visitor.
			byPage := kstream.Map(s, func(user, page string) (string, string) { return page, user })
			byPage.ToTable(kstream.Named("last-visitor")).ToStream().To("out", serde.String, serde.String)
			topo := mustBuild(t, b)
			checkEqual(t, "internal topics", topo.InternalTopics("kstest"),
				[]string{"kstest-last-visitor-changelog", "kstest-last-visitor-repartition"})
			d := kstest.NewDriver(t, topo, kstest.Partitions(parts))
			pipeAll(t, d, serde.String, serde.String, []pipe[string, string]{
				in(rec(1, "u1", "home")),
				in(rec(2, "u2", "home")),
				in(rec(3, "u3", "cart")),
				in(rec(4, "u1", "cart")),
			})
			checkRecords(t, "out", kstest.Output(d, "out", serde.String, serde.String).Records(), []strRec{
				rec(1, "home", "u1"), rec(2, "home", "u2"), rec(3, "cart", "u3"), rec(4, "cart", "u1"),
			})
			checkRecords(t, "repartition", kstest.Output(d, "kstest-last-visitor-repartition", serde.String, serde.String).Records(), []strRec{
				rec(1, "home", "u1"), rec(2, "home", "u2"), rec(3, "cart", "u3"), rec(4, "cart", "u1"),
			})
			checkStore(t, d, "last-visitor", serde.String, map[string]string{"home": "u2", "cart": "u1"})
		}
	})
}

func TestTableFilter(t *testing.T) {
	for _, parts := range partitionCounts {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			var calls []string
			b := kstream.NewBuilder()
			prices := kstream.SourceTable(b, "prices", serde.String, serde.Int64, kstream.Named("prices"))
			expensive := prices.Filter(func(k string, v int64) bool {
				calls = append(calls, fmt.Sprintf("%s=%d", k, v))
				return v >= 100
			})
			if got := expensive.StoreName(); got != "" {
				t.Errorf("filtered table StoreName() = %q, want \"\"", got)
			}
			expensive.ToStream().To("out", serde.String, serde.Int64)
			d := kstest.NewDriver(t, mustBuild(t, b), kstest.Partitions(parts))
			pipeAll(t, d, serde.String, serde.Int64, []pipe[string, int64]{
				inTo("prices", i64(1, "tv", 500)),
				inTo("prices", i64(2, "pen", 2)),  // never passed: nothing to delete, nothing forwarded
				inTo("prices", i64(3, "tv", 50)),  // was in, now fails: a delete
				inTo("prices", i64(4, "tv", 600)), // in again
				inTo("prices", tomb[string, int64](5, "tv")),
				inTo("prices", i64(6, "pen", 200)), // now passes
			})
			checkRecords(t, "out", kstest.Output(d, "out", serde.String, serde.Int64).Records(), []i64Rec{
				i64(1, "tv", 500),
				tomb[string, int64](3, "tv"),
				i64(4, "tv", 600),
				tomb[string, int64](5, "tv"),
				i64(6, "pen", 200),
			})
			// The predicate sees new and old values, never a tombstone's zero value.
			checkEqual(t, "predicate calls", calls, []string{
				"tv=500", "pen=2", "tv=50", "tv=500", "tv=600", "tv=50", "tv=600", "pen=200", "pen=2",
			})
		})
	}
}

func TestMapTableValues(t *testing.T) {
	b := kstream.NewBuilder()
	names := kstream.SourceTable(b, "names", serde.String, serde.String)
	lens := kstream.MapTableValues(names, func(k, v string) int64 { return int64(len(k) + len(v)) }, nil)
	lens.ToStream().To("out", nil, nil) // serdes from the table: String and the built-in Int64
	d := kstest.NewDriver(t, mustBuild(t, b))
	pipeAll(t, d, serde.String, serde.String, []pipe[string, string]{
		inTo("names", rec(1, "a", "xyz", hdr("h", "1"))),
		inTo("names", rec(2, "bb", "")),
		inTo("names", tomb[string, string](3, "a")),
		inTo("names", rec(4, "a", "q")),
	})
	checkRecords(t, "out", kstest.Output(d, "out", serde.String, serde.Int64).Records(), []i64Rec{
		i64(1, "a", 4, hdr("h", "1")), i64(2, "bb", 2), tomb[string, int64](3, "a"), i64(4, "a", 2),
	})
}

func TestGroupByKeyAggregations(t *testing.T) {
	for _, parts := range partitionCounts {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			b := kstream.NewBuilder()
			s := kstream.Source(b, "in", serde.String, serde.String)
			g := s.GroupByKey()
			g.Count(kstream.Named("count")).ToStream().To("count-out", serde.String, serde.Int64)
			g.Reduce(func(acc, v string) string { return acc + "+" + v }, kstream.Named("reduce")).
				ToStream().To("reduce-out", serde.String, serde.String)
			kstream.Aggregate(g, func() int64 { return 100 }, func(k, v string, a int64) int64 {
				return a + int64(len(v))
			}, serde.Int64, kstream.Named("aggregate")).ToStream().To("aggregate-out", serde.String, serde.Int64)
			topo := mustBuild(t, b)
			checkEqual(t, "internal topics", topo.InternalTopics("app"),
				[]string{"app-aggregate-changelog", "app-count-changelog", "app-reduce-changelog"})
			d := kstest.NewDriver(t, topo, kstest.Partitions(parts))
			pipeAll(t, d, serde.String, serde.String, []pipe[string, string]{
				in(rec(10, "a", "x", hdr("h", "1"))),
				in(rec(11, "b", "yy")),
				in(tomb[string, string](12, "a")),
				nullKey[string](13, "zzz"),
				in(rec(14, "a", "www")),
				in(rec(15, "", "empty")), // an empty key is a key, not a null key
			})
			checkRecords(t, "count", kstest.Output(d, "count-out", serde.String, serde.Int64).Records(), []i64Rec{
				i64(10, "a", 1, hdr("h", "1")), i64(11, "b", 1), i64(14, "a", 2), i64(15, "", 1),
			})
			checkRecords(t, "reduce", kstest.Output(d, "reduce-out", serde.String, serde.String).Records(), []strRec{
				rec(10, "a", "x", hdr("h", "1")), rec(11, "b", "yy"), rec(14, "a", "x+www"), rec(15, "", "empty"),
			})
			checkRecords(t, "aggregate", kstest.Output(d, "aggregate-out", serde.String, serde.Int64).Records(), []i64Rec{
				i64(10, "a", 101, hdr("h", "1")), i64(11, "b", 102), i64(14, "a", 104), i64(15, "", 105),
			})
			for _, node := range []string{"count", "reduce", "aggregate"} {
				if got := d.Dropped(node); got != 2 {
					t.Errorf("Dropped(%q) = %d, want 2 (a tombstone and a null key)", node, got)
				}
			}
			checkStore(t, d, "count", serde.Int64, map[string]int64{"a": 2, "b": 1, "": 1})
			checkStore(t, d, "reduce", serde.String, map[string]string{"a": "x+www", "b": "yy", "": "empty"})
			checkStore(t, d, "aggregate", serde.Int64, map[string]int64{"a": 104, "b": 102, "": 105})
			// The changelog holds the aggregates with their timestamps.
			checkRecords(t, "count changelog", kstest.Output(d, "kstest-count-changelog", serde.String, serde.Int64).Records(), []i64Rec{
				i64(10, "a", 1), i64(11, "b", 1), i64(14, "a", 2), i64(15, "", 1),
			})
		})
	}
}

// An aggregation downstream of a key change repartitions; tombstones are
// dropped by the re-keying operator, null keys get a key from it.
func TestGroupByKeyAfterMap(t *testing.T) {
	b := kstream.NewBuilder()
	s := kstream.Source(b, "in", serde.String, serde.String)
	kstream.Map(s, func(k, v string) (string, string) { return v, k }, kstream.Named("swap")).
		GroupByKey(kstream.Named("by-value")).
		Count(kstream.Named("counts")).
		ToStream().To("out", serde.String, serde.Int64)
	topo := mustBuild(t, b)
	checkEqual(t, "internal topics", topo.InternalTopics("kstest"),
		[]string{"kstest-by-value-repartition", "kstest-counts-changelog"})
	d := kstest.NewDriver(t, topo, kstest.Partitions(3))
	pipeAll(t, d, serde.String, serde.String, []pipe[string, string]{
		in(rec(1, "k1", "x")),
		in(tomb[string, string](2, "k2")),
		nullKey[string](3, "x"),
		in(rec(4, "k3", "y")),
	})
	checkRecords(t, "out", kstest.Output(d, "out", serde.String, serde.Int64).Records(), []i64Rec{
		i64(1, "x", 1), i64(3, "x", 2), i64(4, "y", 1),
	})
	checkEqual(t, "dropped by the map", d.Dropped("swap"), int64(1))
	checkEqual(t, "dropped by the count", d.Dropped("counts"), int64(0))
}

// GroupBy repartitions: counts are the same for any number of partitions.
func TestGroupByRepartition(t *testing.T) {
	type visit struct {
		user, page string
	}
	var visits []visit
	for i := range 200 {
		visits = append(visits, visit{"user-" + strconv.Itoa(i%17), "page-" + strconv.Itoa(i*i%23)})
	}
	want := map[string]int64{}
	for _, v := range visits {
		want[v.page]++
	}
	run := func(t *testing.T, parts int) map[string]int64 {
		b := kstream.NewBuilder()
		s := kstream.Source(b, "visits", serde.String, serde.String)
		kstream.GroupBy(s, func(_, page string) string { return page }, serde.String, kstream.Named("by-page")).
			Count(kstream.Named("page-counts")).
			ToStream().To("out", serde.String, serde.Int64)
		topo := mustBuild(t, b)
		checkEqual(t, "internal topics", topo.InternalTopics("kstest"),
			[]string{"kstest-by-page-repartition", "kstest-page-counts-changelog"})
		d := kstest.NewDriver(t, topo, kstest.Partitions(parts))
		in := kstest.Input(d, "visits", serde.String, serde.String)
		for i, v := range visits {
			in.PipeAt(int64(i), v.user, v.page)
		}
		out := kstest.Output(d, "out", serde.String, serde.Int64).Records()
		// Per page, the counts go 1, 2, 3... with the timestamp of the visit counted.
		next := map[string]int64{}
		for i, r := range out {
			next[r.Key]++
			if r.Value != next[r.Key] || r.Timestamp != int64(i) {
				t.Fatalf("partitions=%d: output %d is %s, want value %d at %d", parts, i, fmtRecord(r), next[r.Key], i)
			}
		}
		checkStore(t, d, "page-counts", serde.Int64, want)
		return next
	}
	for _, parts := range []int{1, 3, 8} {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			checkEqual(t, "final counts", run(t, parts), want)
		})
	}
}

// parseRegion splits "region:amount".
func parseRegion(v string) (string, int64) {
	region, amount, _ := strings.Cut(v, ":")
	n, _ := strconv.ParseInt(amount, 10, 64)
	return region, n
}

// regionMoves is a table of user -> "region:amount": u1 moves from eu to us,
// u2 leaves, u3's amount changes within its group.
var regionMoves = []pipe[string, string]{
	inTo("users", rec(100, "u1", "eu:10")),
	inTo("users", rec(110, "u2", "eu:20")),
	inTo("users", rec(120, "u3", "us:5")),
	inTo("users", rec(130, "u1", "us:7")),          // moves: eu loses 10, us gains 7
	inTo("users", tomb[string, string](140, "u2")), // leaves eu
	inTo("users", rec(150, "u3", "us:6")),          // same group: one combined update
	inTo("users", tomb[string, string](160, "u9")), // an unknown user: nothing
	inTo("users", rec(90, "u4", "eu:1")),           // out of order: timestamps stay the max
}

func TestGroupTableBy(t *testing.T) {
	for _, parts := range []int{1, 4} {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			b := kstream.NewBuilder()
			users := kstream.SourceTable(b, "users", serde.String, serde.String)
			// One grouping, two aggregations: they share its repartition topic.
			g := kstream.GroupTableBy(users, func(_, v string) (string, int64) { return parseRegion(v) },
				serde.String, serde.Int64, kstream.Named("by-region"))
			g.Count(kstream.Named("users-per-region")).ToStream().To("count", serde.String, serde.Int64)
			g.Reduce(func(a, v int64) int64 { return a + v }, func(a, v int64) int64 { return a - v },
				kstream.Named("amount-per-region")).ToStream().To("sum", serde.String, serde.Int64)
			// A second grouping: the aggregate is the sorted list of the group's users.
			members := kstream.GroupTableBy(users, func(user, v string) (string, string) {
				region, _ := parseRegion(v)
				return region, user
			}, nil, nil)
			kstream.AggregateTable(members, func() string { return "" },
				func(_, user, acc string) string {
					l := append(strings.Fields(acc), user)
					slices.Sort(l)
					return strings.Join(l, " ")
				},
				func(_, user, acc string) string {
					return strings.Join(slices.DeleteFunc(strings.Fields(acc), func(u string) bool { return u == user }), " ")
				}, serde.String, kstream.Named("members")).ToStream().To("members", serde.String, serde.String)
			topo := mustBuild(t, b)
			checkEqual(t, "internal topics", topo.InternalTopics("kstest"), []string{
				"kstest-amount-per-region-changelog", "kstest-by-region-repartition",
				"kstest-members-changelog", "kstest-members-repartition",
				"kstest-users-per-region-changelog",
			})
			d := kstest.NewDriver(t, topo, kstest.Partitions(parts))
			pipeAll(t, d, serde.String, serde.String, regionMoves)
			checkRecords(t, "count", kstest.Output(d, "count", serde.String, serde.Int64).Records(), []i64Rec{
				i64(100, "eu", 1),
				i64(110, "eu", 2),
				i64(120, "us", 1),
				i64(130, "eu", 1), // the subtraction from the old group first
				i64(130, "us", 2), // then the addition to the new one
				i64(140, "eu", 0), // an empty group keeps its zero count, as in Kafka Streams
				i64(150, "us", 2), // one combined record: -1 +1
				i64(140, "eu", 1), // u4 at 90: the aggregate's timestamp (140) is larger
			})
			checkRecords(t, "sum", kstest.Output(d, "sum", serde.String, serde.Int64).Records(), []i64Rec{
				i64(100, "eu", 10),
				i64(110, "eu", 30),
				i64(120, "us", 5),
				i64(130, "eu", 20),
				i64(130, "us", 12),
				i64(140, "eu", 0),
				i64(150, "us", 13),
				i64(140, "eu", 1),
			})
			checkRecords(t, "members", kstest.Output(d, "members", serde.String, serde.String).Records(), []strRec{
				rec(100, "eu", "u1"),
				rec(110, "eu", "u1 u2"),
				rec(120, "us", "u3"),
				rec(130, "eu", "u2"),
				rec(130, "us", "u1 u3"),
				rec(140, "eu", ""),
				rec(150, "us", "u1 u3"),
				rec(140, "eu", "u4"),
			})
			// The regrouping topic carries the subtraction and the addition
			// as separate records when the group changes.
			if got := len(kstest.Output(d, "kstest-by-region-repartition", serde.String, serde.Bytes).Records()); got != 8 {
				t.Errorf("regrouping records: %d, want 8", got)
			}
			checkStore(t, d, "users-per-region", serde.Int64, map[string]int64{"eu": 1, "us": 2})
			checkStore(t, d, "amount-per-region", serde.Int64, map[string]int64{"eu": 1, "us": 13})
			checkStore(t, d, "members", serde.String, map[string]string{"eu": "u4", "us": "u1 u3"})
		})
	}
}

// An unnamed grouped table regroups once per aggregation, through topics
// named after each aggregation.
func TestGroupedTableTwoAggregationsUnnamed(t *testing.T) {
	b := kstream.NewBuilder()
	users := kstream.SourceTable(b, "users", serde.String, serde.String)
	g := kstream.GroupTableBy(users, func(_, v string) (string, int64) { return parseRegion(v) }, nil, nil)
	g.Count(kstream.Named("n")).ToStream().To("count", serde.String, serde.Int64)
	kstream.AggregateTable(g, func() int64 { return 0 },
		func(_ string, v, a int64) int64 { return a + v }, func(_ string, v, a int64) int64 { return a - v },
		serde.Int64, kstream.Named("sum")).ToStream().To("sum", serde.String, serde.Int64)
	topo := mustBuild(t, b)
	checkEqual(t, "internal topics", topo.InternalTopics("kstest"), []string{
		"kstest-n-changelog", "kstest-n-repartition", "kstest-sum-changelog", "kstest-sum-repartition",
	})
	d := kstest.NewDriver(t, topo, kstest.Partitions(2))
	pipeAll(t, d, serde.String, serde.String, regionMoves[:4])
	checkRecords(t, "count", kstest.Output(d, "count", serde.String, serde.Int64).Records(), []i64Rec{
		i64(100, "eu", 1), i64(110, "eu", 2), i64(120, "us", 1), i64(130, "eu", 1), i64(130, "us", 2),
	})
	checkRecords(t, "sum", kstest.Output(d, "sum", serde.String, serde.Int64).Records(), []i64Rec{
		i64(100, "eu", 10), i64(110, "eu", 30), i64(120, "us", 5), i64(130, "eu", 20), i64(130, "us", 12),
	})
}

// A grouped stream named with GroupByKey(Named) shares one repartition topic
// among its aggregations, as Kafka Streams does.
func TestGroupedStreamTwoAggregations(t *testing.T) {
	b := kstream.NewBuilder()
	s := kstream.Source(b, "in", serde.String, serde.String)
	g := kstream.SelectKey(s, func(_, v string) string { return v }).GroupByKey(kstream.Named("by-value"))
	g.Count(kstream.Named("c")).ToStream().To("count", serde.String, serde.Int64)
	g.Reduce(func(a, v string) string { return a + v }, kstream.Named("r")).ToStream().To("reduce", serde.String, serde.String)
	topo := mustBuild(t, b)
	checkEqual(t, "internal topics", topo.InternalTopics("kstest"), []string{
		"kstest-by-value-repartition", "kstest-c-changelog", "kstest-r-changelog",
	})
	d := kstest.NewDriver(t, topo, kstest.Partitions(2))
	in := kstest.Input(d, "in", serde.String, serde.String)
	in.PipeAt(1, "k1", "x")
	in.PipeAt(2, "k2", "x")
	checkRecords(t, "count", kstest.Output(d, "count", serde.String, serde.Int64).Records(), []i64Rec{i64(1, "x", 1), i64(2, "x", 2)})
	checkRecords(t, "reduce", kstest.Output(d, "reduce", serde.String, serde.String).Records(), []strRec{rec(1, "x", "x"), rec(2, "x", "xx")})

	// Unnamed groupings repartition once per aggregation, through topics
	// named after each aggregation.
	b = kstream.NewBuilder()
	s = kstream.Source(b, "in", serde.String, serde.String)
	g = kstream.SelectKey(s, func(_, v string) string { return v }).GroupByKey()
	g.Count(kstream.Named("c")).ToStream().To("count", serde.String, serde.Int64)
	g.Reduce(func(a, v string) string { return a + v }, kstream.Named("r")).ToStream().To("reduce", serde.String, serde.String)
	topo = mustBuild(t, b)
	checkEqual(t, "internal topics", topo.InternalTopics("kstest"), []string{
		"kstest-c-changelog", "kstest-c-repartition", "kstest-r-changelog", "kstest-r-repartition",
	})
	d = kstest.NewDriver(t, topo, kstest.Partitions(2))
	in = kstest.Input(d, "in", serde.String, serde.String)
	in.PipeAt(1, "k1", "x")
	in.PipeAt(2, "k2", "x")
	checkRecords(t, "count", kstest.Output(d, "count", serde.String, serde.Int64).Records(), []i64Rec{i64(1, "x", 1), i64(2, "x", 2)})
	checkRecords(t, "reduce", kstest.Output(d, "reduce", serde.String, serde.String).Records(), []strRec{rec(1, "x", "x"), rec(2, "x", "xx")})
}

func TestAggregationTimestamps(t *testing.T) {
	b := kstream.NewBuilder()
	s := kstream.Source(b, "in", serde.String, serde.String)
	s.GroupByKey().Count(kstream.Named("c")).ToStream().To("out", serde.String, serde.Int64)
	d := kstest.NewDriver(t, mustBuild(t, b))
	pipeAll(t, d, serde.String, serde.String, []pipe[string, string]{
		in(rec(10, "a", "")),
		in(rec(30, "a", "")),
		in(rec(20, "a", "")), // older than the aggregate: the output keeps 30
		in(rec(5, "b", "")),  // another key has its own maximum
		in(rec(40, "a", "")),
	})
	out := kstest.Output(d, "out", serde.String, serde.Int64)
	checkRecords(t, "out", out.Records(), []i64Rec{
		i64(10, "a", 1), i64(30, "a", 2), i64(30, "a", 3), i64(5, "b", 1), i64(40, "a", 4),
	})
	// The changelog carries the same timestamps, so a restore keeps them.
	checkRecords(t, "changelog", kstest.Output(d, "kstest-c-changelog", serde.String, serde.Int64).Records(), []i64Rec{
		i64(10, "a", 1), i64(30, "a", 2), i64(30, "a", 3), i64(5, "b", 1), i64(40, "a", 4),
	})
	d.Restart()
	kstest.Input(d, "in", serde.String, serde.String).PipeAt(35, "a", "")
	checkRecords(t, "after restart", out.Records(), []i64Rec{i64(40, "a", 5)})
}

func TestRestart(t *testing.T) {
	words := strings.Fields("a b c a b a d e f a g h b")
	for _, parts := range []int{1, 3} {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			b := kstream.NewBuilder()
			s := kstream.Source(b, "in", serde.String, serde.String)
			kstream.SelectKey(s, func(_, v string) string { return v }).
				GroupByKey().Count(kstream.Named("counts")).
				ToStream().To("out", serde.String, serde.Int64)
			d := kstest.NewDriver(t, mustBuild(t, b), kstest.Partitions(parts))
			in := kstest.Input(d, "in", serde.String, serde.String)
			for i, w := range words {
				in.PipeAt(int64(i), strconv.Itoa(i), w)
			}
			out := kstest.Output(d, "out", serde.String, serde.Int64)
			before := kstest.LatestByKey(out)
			want := map[string]int64{"a": 4, "b": 3, "c": 1, "d": 1, "e": 1, "f": 1, "g": 1, "h": 1}
			checkEqual(t, "counts before the restart", before, want)
			checkStore(t, d, "counts", serde.Int64, want)

			d.Restart()
			checkStore(t, d, "counts", serde.Int64, want)
			if got := out.Records(); len(got) != 0 {
				t.Errorf("the restart produced output: %v", got)
			}
			in.PipeAt(100, "x", "a")
			in.PipeAt(101, "y", "z")
			checkRecords(t, "after the restart", out.Records(), []i64Rec{i64(100, "a", 5), i64(101, "z", 1)})

			d.Restart() // twice: the changelog now holds the counts of both runs
			in.PipeAt(102, "x", "a")
			checkRecords(t, "after the second restart", out.Records(), []i64Rec{i64(102, "a", 6)})
		})
	}
}

// After a restart, a table aggregation subtracts the value restored from the
// source table's topic.
func TestRestartGroupTableBy(t *testing.T) {
	b := kstream.NewBuilder()
	users := kstream.SourceTable(b, "users", serde.String, serde.String)
	kstream.GroupTableBy(users, func(_, v string) (string, int64) { return parseRegion(v) }, nil, nil,
		kstream.Named("by-region")).
		Count(kstream.Named("per-region")).ToStream().To("count", serde.String, serde.Int64)
	d := kstest.NewDriver(t, mustBuild(t, b), kstest.Partitions(3))
	pipeAll(t, d, serde.String, serde.String, regionMoves[:3])
	out := kstest.Output(d, "count", serde.String, serde.Int64)
	out.Records()
	d.Restart()
	checkStore(t, d, "users", serde.String, map[string]string{"u1": "eu:10", "u2": "eu:20", "u3": "us:5"})
	checkStore(t, d, "per-region", serde.Int64, map[string]int64{"eu": 2, "us": 1})
	pipeAll(t, d, serde.String, serde.String, regionMoves[3:5])
	checkRecords(t, "count", out.Records(), []i64Rec{
		i64(130, "eu", 1), i64(130, "us", 2), i64(140, "eu", 0),
	})
}

// A Process node's store survives a restart.
func TestRestartProcessStore(t *testing.T) {
	b := kstream.NewBuilder()
	s := kstream.Source(b, "in", serde.String, serde.String)
	kstream.Process(s, newCounter, kstream.Named("counter"), kstream.WithStores("seen")).
		To("out", serde.String, serde.Int64)
	d := kstest.NewDriver(t, mustBuild(t, b), kstest.Partitions(2))
	in := kstest.Input(d, "in", serde.String, serde.String)
	in.PipeAt(1, "a", "")
	in.PipeAt(2, "a", "")
	in.PipeAt(3, "b", "")
	d.Restart()
	in.PipeAt(4, "a", "")
	in.PipeAt(5, "b", "")
	checkRecords(t, "out", kstest.Output(d, "out", serde.String, serde.Int64).Records(), []i64Rec{
		i64(1, "a", 1), i64(2, "a", 2), i64(3, "b", 1), i64(4, "a", 3), i64(5, "b", 2),
	})
}

// TestSourceTableRestoreSkipsFailedRecords: a record of a source table's
// topic that failed to decode (the policy skipped it) stays out of the table
// after a restore from the topic, as it was before: the key keeps its
// previous value, instead of holding bytes that fail every read (Kafka
// Streams' KAFKA-8037).
func TestSourceTableRestoreSkipsFailedRecords(t *testing.T) {
	b := kstream.NewBuilder()
	kstream.SourceTable(b, "prices", serde.String, serde.Int64, kstream.Named("prices"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := kstest.NewDriver(t, topo, kstest.Partitions(2))
	kstest.Input(d, "prices", serde.String, serde.Int64).PipeAt(1, "apple", 3)
	bad := kstest.Input(d, "prices", serde.String, serde.String) // not an int64
	if err := bad.TryPipeRecord(kstream.Record[string, string]{Key: "apple", Value: "three", Timestamp: 2}); err == nil {
		t.Fatal("an undecodable value did not fail")
	}
	if err := bad.TryPipeRecord(kstream.Record[string, string]{Key: "pear", Value: "four", Timestamp: 3}); err == nil {
		t.Fatal("an undecodable value did not fail")
	}
	store := kstest.Store(d, "prices", serde.String, serde.Int64)
	for round := range 2 {
		if v, ok := store.Get("apple"); !ok || v != 3 {
			t.Errorf("round %d: apple = %d, %v; want 3", round, v, ok)
		}
		if v, ok := store.Get("pear"); ok {
			t.Errorf("round %d: pear = %d, want none", round, v)
		}
		d.Restart() // the in-memory store restores the whole topic
	}
}
