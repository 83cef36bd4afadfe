package kstream_test

import (
	"fmt"
	"strings"
	"testing"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/kstest"
	"github.com/kstreamgo/kstream/serde"
)

// Table–table joins. The expected sequences follow Kafka Streams 4.x
// (KTableKTableInnerJoin, KTableKTableLeftJoin/RightJoin,
// KTableKTableOuterJoin, and the foreign-key join processors), including
// updates whose joined value does not change and tombstones for keys that
// had no result.

// tjPKTopology joins the source tables "left" and "right" (stores L and R)
// with join, and writes the result to "out".
func tjPKTopology(t *testing.T, join func(l, r kstream.Table[string, string]) kstream.Table[string, string]) *kstream.Topology {
	t.Helper()
	b := kstream.NewBuilder()
	l := kstream.SourceTable(b, "left", serde.String, serde.String, kstream.Named("L"))
	r := kstream.SourceTable(b, "right", serde.String, serde.String, kstream.Named("R"))
	j := join(l, r)
	if got := j.StoreName(); got != "j" {
		t.Errorf("StoreName() = %q, want j", got)
	}
	j.ToStream().To("out", serde.String, serde.String)
	// Counting the result's rows checks the old values it forwards: a
	// missing or wrong old value would leave the count off.
	kstream.GroupTableBy(j, func(k, v string) (string, string) { return "rows", k }, serde.String, serde.String).
		Count(kstream.Named("rows"))
	topo := mustBuild(t, b)
	if n := len(topo.Graph().SubTopologies); n != 2 { // the join, and the count after its repartition
		t.Errorf("%d sub-topologies, want 2 (both tables in one):\n%s", n, topo.Describe())
	}
	return topo
}

func tjLeft(r strRec) pipe[string, string]  { return inTo("left", r) }
func tjRight(r strRec) pipe[string, string] { return inTo("right", r) }

func tjTomb(ts int64, k string) strRec { return tomb[string, string](ts, k) }

func TestJoinTables(t *testing.T) {
	for _, parts := range partitionCounts {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			topo := tjPKTopology(t, func(l, r kstream.Table[string, string]) kstream.Table[string, string] {
				return kstream.JoinTables(l, r, func(k, v, vo string) string { return v + "+" + vo }, serde.String, kstream.Named("j"))
			})
			d := kstest.NewDriver(t, topo, kstest.Partitions(parts))
			pipeAll(t, d, serde.String, serde.String, []pipe[string, string]{
				tjLeft(rec(1, "a", "l1")),    // no right row: nothing
				tjRight(rec(5, "a", "r1")),   // joins; max(5, 1)
				tjLeft(rec(3, "a", "l2")),    // joins; max(3, 5)
				tjRight(rec(2, "b", "rb")),   // no left row: nothing
				tjLeft(rec(4, "b", "lb")),    // joins; max(4, 2)
				tjLeft(rec(6, "a", "l2")),    // same value: forwarded all the same
				tjRight(tjTomb(7, "a")),      // right delete: the result is deleted
				tjLeft(tjTomb(8, "a")),       // right gone: nothing
				tjRight(tjTomb(9, "a")),      // neither side: nothing
				tjLeft(tjTomb(10, "c")),      // neither side: nothing
				tjLeft(tjTomb(11, "b")),      // left delete: the result is deleted
				tjLeft(tjTomb(12, "b")),      // delete of a missing left row, right present: a tombstone again
				tjRight(rec(13, "b", "rb2")), // no left row: nothing
				tjLeft(rec(14, "c", "lc")),
				tjRight(rec(15, "c", "rc")),
			})
			checkRecords(t, "out", kstest.Output(d, "out", serde.String, serde.String).Records(), []strRec{
				rec(5, "a", "l1+r1"),
				rec(5, "a", "l2+r1"),
				rec(4, "b", "lb+rb"),
				rec(6, "a", "l2+r1"),
				tjTomb(7, "a"),
				tjTomb(11, "b"),
				tjTomb(12, "b"),
				rec(15, "c", "lc+rc"),
			})
			checkStore(t, d, "j", serde.String, map[string]string{"c": "lc+rc"}, "a", "b")
			checkStore(t, d, "rows", serde.Int64, map[string]int64{"rows": 1})
		})
	}
}

func TestLeftJoinTables(t *testing.T) {
	for _, parts := range partitionCounts {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			topo := tjPKTopology(t, func(l, r kstream.Table[string, string]) kstream.Table[string, string] {
				return kstream.LeftJoinTables(l, r, func(k, v, vo string, ok bool) string {
					if !ok {
						if vo != "" {
							t.Errorf("joiner for %s: missing right value is %q, want the zero value", k, vo)
						}
						vo = "null"
					}
					return v + "+" + vo
				}, serde.String, kstream.Named("j"))
			})
			d := kstest.NewDriver(t, topo, kstest.Partitions(parts))
			pipeAll(t, d, serde.String, serde.String, []pipe[string, string]{
				tjLeft(rec(1, "a", "l1")),  // no right row: joined with none
				tjRight(rec(5, "a", "r1")), // max(5, 1)
				tjLeft(rec(3, "a", "l2")),  // max(3, 5)
				tjRight(tjTomb(7, "a")),    // right delete: an update, not a delete
				tjRight(tjTomb(8, "a")),    // delete of a missing right row: the same update again
				tjRight(rec(9, "b", "rb")), // no left row: nothing
				tjLeft(tjTomb(10, "a")),    // left delete: the result is deleted
				tjLeft(tjTomb(11, "a")),    // neither side: nothing
				tjLeft(tjTomb(12, "b")),    // delete of a missing left row, right present: a tombstone
				tjLeft(rec(13, "b", "lb")), // max(13, 9)
				tjLeft(rec(14, "c", "lc")), // stays unmatched
			})
			checkRecords(t, "out", kstest.Output(d, "out", serde.String, serde.String).Records(), []strRec{
				rec(1, "a", "l1+null"),
				rec(5, "a", "l1+r1"),
				rec(5, "a", "l2+r1"),
				rec(7, "a", "l2+null"),
				rec(8, "a", "l2+null"),
				tjTomb(10, "a"),
				tjTomb(12, "b"),
				rec(13, "b", "lb+rb"),
				rec(14, "c", "lc+null"),
			})
			checkStore(t, d, "j", serde.String, map[string]string{"b": "lb+rb", "c": "lc+null"}, "a")
			checkStore(t, d, "rows", serde.Int64, map[string]int64{"rows": 2})
		})
	}
}

func TestOuterJoinTables(t *testing.T) {
	side := func(v string, ok bool) string {
		if !ok {
			return "-"
		}
		return v
	}
	for _, parts := range partitionCounts {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			topo := tjPKTopology(t, func(l, r kstream.Table[string, string]) kstream.Table[string, string] {
				return kstream.OuterJoinTables(l, r, func(k, v string, vOK bool, vo string, voOK bool) string {
					if !vOK && !voOK {
						t.Errorf("joiner for %s called with neither side", k)
					}
					return side(v, vOK) + "/" + side(vo, voOK)
				}, serde.String, kstream.Named("j"))
			})
			d := kstest.NewDriver(t, topo, kstest.Partitions(parts))
			pipeAll(t, d, serde.String, serde.String, []pipe[string, string]{
				tjLeft(rec(1, "a", "l1")),
				tjRight(rec(2, "b", "r1")),
				tjRight(rec(5, "a", "ra")), // max(5, 1)
				tjLeft(rec(3, "a", "l2")),  // max(3, 5)
				tjLeft(tjTomb(6, "a")),     // right remains
				tjRight(tjTomb(7, "a")),    // nothing remains: deleted
				tjRight(tjTomb(8, "a")),    // neither side: nothing
				tjLeft(tjTomb(9, "b")),     // delete of a missing left row: an update, max(9, 2)
				tjRight(tjTomb(10, "b")),   // deleted
				tjLeft(rec(11, "c", "lc")),
				tjLeft(tjTomb(12, "z")), // neither side: nothing
			})
			checkRecords(t, "out", kstest.Output(d, "out", serde.String, serde.String).Records(), []strRec{
				rec(1, "a", "l1/-"),
				rec(2, "b", "-/r1"),
				rec(5, "a", "l1/ra"),
				rec(5, "a", "l2/ra"),
				rec(6, "a", "-/ra"),
				tjTomb(7, "a"),
				rec(9, "b", "-/r1"),
				tjTomb(10, "b"),
				rec(11, "c", "lc/-"),
			})
			checkStore(t, d, "j", serde.String, map[string]string{"c": "lc/-"}, "a", "b")
			checkStore(t, d, "rows", serde.Int64, map[string]int64{"rows": 1})
		})
	}
}

// TestJoinTablesMaterializesInputs joins a filtered table and a mapped one,
// which have no store: the join materializes them in "<name>-left-store" and
// "<name>-right-store", which survive a restart.
func TestJoinTablesMaterializesInputs(t *testing.T) {
	for _, parts := range partitionCounts {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			b := kstream.NewBuilder()
			l := kstream.SourceTable(b, "left", serde.String, serde.String, kstream.Named("L")).
				Filter(func(_, v string) bool { return v != "hidden" })
			r := kstream.MapTableValues(kstream.SourceTable(b, "right", serde.String, serde.String, kstream.Named("R")),
				func(_, v string) int64 { return int64(len(v)) }, nil)
			j := kstream.JoinTables(l, r, func(k, v string, n int64) string { return fmt.Sprintf("%s:%d", v, n) },
				serde.String, kstream.Named("j"))
			j.ToStream().To("out", serde.String, serde.String)
			topo := mustBuild(t, b)
			checkEqual(t, "internal topics", topo.InternalTopics("kstest"),
				[]string{"kstest-j-changelog", "kstest-j-left-store-changelog", "kstest-j-right-store-changelog"})
			for _, want := range []string{"Processor: j-left-store (table-materialize, stores: [j-left-store])",
				"Processor: j-join-this (table-join-this, stores: [j-right-store])",
				"Processor: j-join-other (table-join-other, stores: [j-left-store])",
				"Processor: j (table-join, stores: [j])"} {
				if !strings.Contains(topo.Describe(), want) {
					t.Errorf("Describe() lacks %q:\n%s", want, topo.Describe())
				}
			}
			d := kstest.NewDriver(t, topo, kstest.Partitions(parts))
			out := kstest.Output(d, "out", serde.String, serde.String)
			pipeAll(t, d, serde.String, serde.String, []pipe[string, string]{
				tjLeft(rec(1, "a", "x")),
				tjLeft(rec(2, "b", "hidden")), // filtered out: a delete, right missing: nothing
				tjRight(rec(3, "a", "four")),
				tjRight(rec(4, "b", "22")), // b is not in the filtered table
			})
			checkRecords(t, "out", out.Records(), []strRec{rec(3, "a", "x:4")})
			checkStore(t, d, "j-left-store", serde.String, map[string]string{"a": "x"}, "b")
			checkStore(t, d, "j-right-store", serde.Int64, map[string]int64{"a": 4, "b": 2})

			d.Restart()
			pipeAll(t, d, serde.String, serde.String, []pipe[string, string]{
				tjRight(rec(5, "a", "fiver")), // finds a in the restored left store
				tjLeft(rec(6, "b", "y")),      // finds b in the restored right store
				tjLeft(rec(7, "a", "hidden")), // filtered: the result is deleted
			})
			checkRecords(t, "out after restart", out.Records(), []strRec{
				rec(5, "a", "x:5"),
				rec(6, "b", "y:2"),
				tjTomb(7, "a"),
			})
			checkStore(t, d, "j", serde.String, map[string]string{"b": "y:2"}, "a")
		})
	}
}

// TestJoinTablesRestart restarts between updates: the result's store is
// restored from its changelog, so the old values it forwards stay right.
func TestJoinTablesRestart(t *testing.T) {
	topo := tjPKTopology(t, func(l, r kstream.Table[string, string]) kstream.Table[string, string] {
		return kstream.LeftJoinTables(l, r, func(_, v, vo string, ok bool) string {
			if !ok {
				return v
			}
			return v + "+" + vo
		}, serde.String, kstream.Named("j"))
	})
	d := kstest.NewDriver(t, topo, kstest.Partitions(3))
	out := kstest.Output(d, "out", serde.String, serde.String)
	pipeAll(t, d, serde.String, serde.String, []pipe[string, string]{
		tjLeft(rec(1, "a", "l1")), tjLeft(rec(2, "b", "l2")), tjRight(rec(3, "a", "r1")),
	})
	d.Restart()
	pipeAll(t, d, serde.String, serde.String, []pipe[string, string]{
		tjRight(rec(4, "b", "r2")), tjLeft(tjTomb(5, "a")), tjRight(tjTomb(6, "b")),
	})
	checkRecords(t, "out", out.Records(), []strRec{
		rec(1, "a", "l1"), rec(2, "b", "l2"), rec(3, "a", "l1+r1"),
		rec(4, "b", "l2+r2"), tjTomb(5, "a"), rec(6, "b", "l2"),
	})
	checkStore(t, d, "j", serde.String, map[string]string{"b": "l2"}, "a")
	checkStore(t, d, "rows", serde.Int64, map[string]int64{"rows": 1})
}

type fkResult struct{ Name string }

func TestJoinTablesBuildErrors(t *testing.T) {
	type point struct{ X, Y int }
	tests := []struct {
		name  string
		build func(b *kstream.Builder)
		want  []string
	}{{
		name: "unnamed",
		build: func(b *kstream.Builder) {
			l := kstream.SourceTable(b, "left", serde.String, serde.String)
			r := kstream.SourceTable(b, "right", serde.String, serde.String)
			kstream.JoinTables(l, r, func(_, v, vo string) string { return v + vo }, serde.String)
		},
		want: []string{"table-join operator after node left needs kstream.Named"},
	}, {
		name: "unnamed outer",
		build: func(b *kstream.Builder) {
			l := kstream.SourceTable(b, "left", serde.String, serde.String)
			r := kstream.SourceTable(b, "right", serde.String, serde.String)
			kstream.OuterJoinTables(l, r, func(_, v string, _ bool, vo string, _ bool) string { return v + vo }, serde.String)
		},
		want: []string{"table-outer-join operator after node left needs kstream.Named"},
	}, {
		name: "other builder",
		build: func(b *kstream.Builder) {
			l := kstream.SourceTable(b, "left", serde.String, serde.String)
			r := kstream.SourceTable(kstream.NewBuilder(), "right", serde.String, serde.String)
			kstream.LeftJoinTables(l, r, func(_, v, vo string, _ bool) string { return v + vo }, serde.String, kstream.Named("j"))
		},
		want: []string{"table-left-join j: table right belongs to another Builder"},
	}, {
		name: "input to materialize without a serde",
		build: func(b *kstream.Builder) {
			l := kstream.SourceTable(b, "left", serde.String, serde.String)
			pts := kstream.MapTableValues(kstream.SourceTable(b, "right", serde.String, serde.String),
				func(_, v string) point { return point{len(v), 0} }, nil)
			kstream.JoinTables(l, pts, func(_, v string, p point) string { return v }, serde.String, kstream.Named("j"))
		},
		want: []string{"node j (right side): no value serde for type kstream_test.point"},
	}, {
		name: "result without a serde",
		build: func(b *kstream.Builder) {
			l := kstream.SourceTable(b, "left", serde.String, serde.String)
			r := kstream.SourceTable(b, "right", serde.String, serde.String)
			kstream.JoinTables(l, r, func(_, v, vo string) point { return point{} }, nil, kstream.Named("j"))
		},
		want: []string{"node j: no result value serde for type kstream_test.point"},
	}, {
		name: "nil joiner",
		build: func(b *kstream.Builder) {
			l := kstream.SourceTable(b, "left", serde.String, serde.String)
			r := kstream.SourceTable(b, "right", serde.String, serde.String)
			kstream.OuterJoinTables[string, string, string, string](l, r, nil, serde.String, kstream.Named("j"))
		},
		want: []string{"table-outer-join j: the joiner is nil"},
	}, {
		name: "fk nil functions",
		build: func(b *kstream.Builder) {
			l := kstream.SourceTable(b, "left", serde.String, serde.String)
			r := kstream.SourceTable(b, "right", serde.String, serde.String)
			kstream.JoinTablesFK[string, string, string, string, string](l, r, nil, nil, serde.String, kstream.Named("fk"))
		},
		want: []string{"table-fk-join fk: the foreign-key function is nil", "table-fk-join fk: the joiner is nil"},
	}, {
		name: "fk unnamed",
		build: func(b *kstream.Builder) {
			l := kstream.SourceTable(b, "left", serde.String, serde.String)
			r := kstream.SourceTable(b, "right", serde.String, serde.String)
			kstream.JoinTablesFK(l, r, func(_, v string) (string, bool) { return v, true },
				func(_, v, vo string) string { return v + vo }, serde.String)
		},
		want: []string{"table-fk-join operator after node left needs kstream.Named"},
	}, {
		name: "fk other builder",
		build: func(b *kstream.Builder) {
			l := kstream.SourceTable(b, "left", serde.String, serde.String)
			r := kstream.SourceTable(kstream.NewBuilder(), "right", serde.String, serde.String)
			kstream.LeftJoinTablesFK(l, r, func(_, v string) (string, bool) { return v, true },
				func(_, v, vo string, _ bool) string { return v + vo }, serde.String, kstream.Named("fk"))
		},
		want: []string{"table-fk-left-join fk: table right belongs to another Builder"},
	}, {
		name: "fk result without a serde",
		build: func(b *kstream.Builder) {
			l := kstream.SourceTable(b, "left", serde.String, serde.String)
			r := kstream.SourceTable(b, "right", serde.String, serde.String)
			kstream.JoinTablesFK(l, r, func(_, v string) (string, bool) { return v, true },
				func(_, v, vo string) fkResult { return fkResult{} }, nil, kstream.Named("fk"))
		},
		want: []string{"node fk: no result value serde for type kstream_test.fkResult"},
	}, {
		name: "fk name taken",
		build: func(b *kstream.Builder) {
			l := kstream.SourceTable(b, "left", serde.String, serde.String, kstream.Named("fk"))
			r := kstream.SourceTable(b, "right", serde.String, serde.String)
			kstream.JoinTablesFK(l, r, func(_, v string) (string, bool) { return v, true },
				func(_, v, vo string) string { return v + vo }, serde.String, kstream.Named("fk"))
		},
		want: []string{`store "fk" is defined twice`},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := kstream.NewBuilder()
			tt.build(b)
			_, err := b.Build()
			if err == nil {
				t.Fatalf("Build succeeded, want errors %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Build error:\n%v\nlacks %q", err, w)
				}
			}
		})
	}
}

// Foreign-key joins: orders ("<product>:<quantity>", keyed by order ID)
// refer to products (keyed by product ID). An order without a product
// (":<quantity>") has no foreign key.

func tjProductOf(_ string, order string) (string, bool) {
	p, _, _ := strings.Cut(order, ":")
	return p, p != ""
}

func tjOrder(r strRec) pipe[string, string]   { return inTo("orders", r) }
func tjProduct(r strRec) pipe[string, string] { return inTo("products", r) }

// tjFKTopology joins orders with products, writes the result to "out", and
// counts the result's rows in store "rows".
func tjFKTopology(t *testing.T, join func(orders, products kstream.Table[string, string]) kstream.Table[string, string]) *kstream.Topology {
	t.Helper()
	b := kstream.NewBuilder()
	orders := kstream.SourceTable(b, "orders", serde.String, serde.String)
	products := kstream.SourceTable(b, "products", serde.String, serde.String)
	j := join(orders, products)
	j.ToStream().To("out", serde.String, serde.String)
	kstream.GroupTableBy(j, func(k, v string) (string, string) { return "rows", k }, serde.String, serde.String).
		Count(kstream.Named("rows"))
	return mustBuild(t, b)
}

func tjInnerFK(orders, products kstream.Table[string, string]) kstream.Table[string, string] {
	return kstream.JoinTablesFK(orders, products, tjProductOf,
		func(k, o, p string) string { return k + "=" + o + "@" + p }, serde.String, kstream.Named("fk"))
}

func TestJoinTablesFK(t *testing.T) {
	for _, parts := range partitionCounts {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			topo := tjFKTopology(t, tjInnerFK)
			checkEqual(t, "internal topics", topo.InternalTopics("app"), []string{
				"app-fk-changelog",
				"app-fk-subscription-registration",
				"app-fk-subscription-response",
				"app-fk-subscription-store-changelog",
				"app-rows-changelog",
				"app-rows-repartition",
			})
			d := kstest.NewDriver(t, topo, kstest.Partitions(parts))
			pipeAll(t, d, serde.String, serde.String, []pipe[string, string]{
				tjOrder(rec(1, "o1", "p1:1")),      // p1 missing: nothing
				tjProduct(rec(2, "p1", "apple")),   // o1 joins, with p1's timestamp
				tjOrder(rec(3, "o2", "p1:2")),      // max(3, 2)
				tjProduct(rec(4, "p1", "APPLE")),   // fans out to o1 and o2
				tjProduct(rec(5, "p2", "pear")),    // no subscriber
				tjOrder(rec(3, "o1", "p2:1")),      // moves to p2: max(3, 5)
				tjProduct(rec(6, "p1", "apple6")),  // o1 left p1: only o2
				tjOrder(rec(7, "o2", "p3:2")),      // moves to missing p3: a tombstone
				tjOrder(rec(8, "o2", "p3:9")),      // same missing p3: nothing
				tjProduct(rec(9, "p3", "plum")),    // o2 joins
				tjProduct(tjTomb(10, "p3")),        // o2's result deleted
				tjOrder(tjTomb(11, "o1")),          // deleted: max(11, 5)
				tjProduct(rec(12, "p2", "pear2")),  // o1 gone: no subscriber
				tjOrder(rec(13, "o4", ":1")),       // no foreign key: dropped
				tjOrder(rec(14, "o2", ":2")),       // loses its foreign key: result deleted (it had none)
				tjProduct(tjTomb(15, "p4")),        // no subscriber
				tjOrder(rec(16, "o5", "p5:1")),     // p5 missing: nothing
				tjProduct(tjTomb(17, "p5")),        // p5 deleted, never existed: o5 gets a tombstone
				tjOrder(rec(18, "o6", "p2:6")),     // max(18, 12)
				tjProduct(rec(15, "p2", "pear15")), // the product's timestamp alone, not max(15, 18)
			})
			checkRecords(t, "out", kstest.Output(d, "out", serde.String, serde.String).Records(), []strRec{
				rec(2, "o1", "o1=p1:1@apple"),
				rec(3, "o2", "o2=p1:2@apple"),
				rec(4, "o1", "o1=p1:1@APPLE"),
				rec(4, "o2", "o2=p1:2@APPLE"),
				rec(5, "o1", "o1=p2:1@pear"),
				rec(6, "o2", "o2=p1:2@apple6"),
				tjTomb(7, "o2"),
				rec(9, "o2", "o2=p3:9@plum"),
				tjTomb(10, "o2"),
				tjTomb(11, "o1"),
				tjTomb(14, "o2"),
				tjTomb(17, "o5"),
				rec(18, "o6", "o6=p2:6@pear2"),
				rec(15, "o6", "o6=p2:6@pear15"),
			})
			if got := d.Dropped("fk-subscription-send"); got != 2 {
				t.Errorf("rows without a foreign key dropped: %d, want 2", got)
			}
			checkStore(t, d, "fk", serde.String, map[string]string{"o6": "o6=p2:6@pear15"}, "o1", "o2", "o4", "o5")
			checkStore(t, d, "rows", serde.Int64, map[string]int64{"rows": 1})
		})
	}
}

func TestLeftJoinTablesFK(t *testing.T) {
	for _, parts := range partitionCounts {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			topo := tjFKTopology(t, func(orders, products kstream.Table[string, string]) kstream.Table[string, string] {
				// A mapped right table has no store: the join materializes it.
				upper := kstream.MapTableValues(products, func(_, v string) string { return strings.ToUpper(v) }, serde.String)
				return kstream.LeftJoinTablesFK(orders, upper, tjProductOf, func(k, o, p string, ok bool) string {
					if !ok {
						if p != "" {
							t.Errorf("joiner for %s: missing product is %q, want the zero value", k, p)
						}
						p = "-"
					}
					return o + "@" + p
				}, serde.String, kstream.Named("fk"))
			})
			if !strings.Contains(topo.Describe(), "Processor: fk-right-store (table-materialize, stores: [fk-right-store])") {
				t.Errorf("the mapped products table is not materialized:\n%s", topo.Describe())
			}
			d := kstest.NewDriver(t, topo, kstest.Partitions(parts))
			pipeAll(t, d, serde.String, serde.String, []pipe[string, string]{
				tjOrder(rec(1, "o1", "p1:1")),     // p1 missing: joined with none
				tjProduct(rec(2, "p1", "apple")),  // fans out to o1
				tjOrder(rec(3, "o2", ":5")),       // no foreign key: joined with none
				tjOrder(rec(4, "o1", ":1")),       // loses its foreign key
				tjProduct(rec(5, "p1", "apple5")), // no subscriber left
				tjOrder(rec(6, "o2", "p1:5")),     // gains one: max(6, 5)
				tjProduct(tjTomb(7, "p1")),        // o2 joined with none
				tjOrder(tjTomb(8, "o2")),          // deleted
				tjOrder(tjTomb(9, "o9")),          // never existed: nothing
				tjOrder(tjTomb(10, "o1")),         // deleted (had no foreign key)
				tjOrder(rec(11, "o3", "p2:3")),    // p2 missing
			})
			checkRecords(t, "out", kstest.Output(d, "out", serde.String, serde.String).Records(), []strRec{
				rec(1, "o1", "p1:1@-"),
				rec(2, "o1", "p1:1@APPLE"),
				rec(3, "o2", ":5@-"),
				rec(4, "o1", ":1@-"),
				rec(6, "o2", "p1:5@APPLE5"),
				rec(7, "o2", "p1:5@-"),
				tjTomb(8, "o2"),
				tjTomb(10, "o1"),
				rec(11, "o3", "p2:3@-"),
			})
			checkStore(t, d, "fk", serde.String, map[string]string{"o3": "p2:3@-"}, "o1", "o2", "o9")
			checkStore(t, d, "rows", serde.Int64, map[string]int64{"rows": 1})
		})
	}
}

// TestJoinTablesFKStaleResponse updates one order twice in one step (a
// FlatMapValues before the table), so the first subscription's response
// arrives after the row changed again: its hash no longer matches, and it is
// dropped rather than joined with the row's new value.
func TestJoinTablesFKStaleResponse(t *testing.T) {
	for _, parts := range partitionCounts {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			b := kstream.NewBuilder()
			batches := kstream.Source(b, "order-batches", serde.String, serde.String)
			orders := kstream.FlatMapValues(batches, func(v string, emit func(string)) {
				for _, o := range strings.Split(v, ",") {
					emit(o)
				}
			}).ToTable(kstream.Named("orders"))
			products := kstream.SourceTable(b, "products", serde.String, serde.String)
			tjInnerFK(orders, products).ToStream().To("out", serde.String, serde.String)
			d := kstest.NewDriver(t, mustBuild(t, b), kstest.Partitions(parts))
			pipeAll(t, d, serde.String, serde.String, []pipe[string, string]{
				tjProduct(rec(1, "p1", "apple")),
				tjProduct(rec(2, "p2", "pear")),
				inTo("order-batches", rec(5, "o1", "p1:1,p2:1")),
			})
			checkRecords(t, "out", kstest.Output(d, "out", serde.String, serde.String).Records(), []strRec{
				rec(5, "o1", "o1=p2:1@pear"),
			})
			if got := d.Dropped("fk-subscription-response-join"); got != 1 {
				t.Errorf("stale responses dropped: %d, want 1", got)
			}
		})
	}
}

// TestJoinTablesFKRestart restarts between updates: the subscription store
// is restored from its changelog, so a product update still reaches its
// subscribers, and an order that moves still unsubscribes.
func TestJoinTablesFKRestart(t *testing.T) {
	for _, parts := range partitionCounts {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			d := kstest.NewDriver(t, tjFKTopology(t, tjInnerFK), kstest.Partitions(parts))
			out := kstest.Output(d, "out", serde.String, serde.String)
			pipeAll(t, d, serde.String, serde.String, []pipe[string, string]{
				tjProduct(rec(1, "p1", "apple")),
				tjOrder(rec(2, "o1", "p1:1")),
				tjOrder(rec(3, "o2", "p1:2")),
			})
			d.Restart()
			pipeAll(t, d, serde.String, serde.String, []pipe[string, string]{
				tjProduct(rec(4, "p1", "APPLE")),  // both subscribers, from the restored store
				tjOrder(rec(5, "o1", "p2:1")),     // unsubscribes from p1; p2 missing
				tjProduct(rec(6, "p1", "apple6")), // only o2
			})
			d.Restart()
			pipeAll(t, d, serde.String, serde.String, []pipe[string, string]{
				tjProduct(rec(7, "p2", "pear")), // o1's new subscription survived
			})
			checkRecords(t, "out", out.Records(), []strRec{
				rec(2, "o1", "o1=p1:1@apple"),
				rec(3, "o2", "o2=p1:2@apple"),
				rec(4, "o1", "o1=p1:1@APPLE"),
				rec(4, "o2", "o2=p1:2@APPLE"),
				tjTomb(5, "o1"),
				rec(6, "o2", "o2=p1:2@apple6"),
				rec(7, "o1", "o1=p2:1@pear"),
			})
			checkStore(t, d, "fk", serde.String, map[string]string{"o1": "o1=p2:1@pear", "o2": "o2=p1:2@apple6"})
			checkStore(t, d, "rows", serde.Int64, map[string]int64{"rows": 2})
		})
	}
}

// TestJoinTablesFKTopology checks the foreign-key join's layout: the orders
// side and the products side are separate sub-topologies, linked only by
// the subscription topics.
func TestJoinTablesFKTopology(t *testing.T) {
	b := kstream.NewBuilder()
	orders := kstream.SourceTable(b, "orders", serde.String, serde.String)
	products := kstream.SourceTable(b, "products", serde.String, serde.String)
	tjInnerFK(orders, products).ToStream().To("out", serde.String, serde.String)
	topo := mustBuild(t, b)
	g := topo.Graph()
	if len(g.SubTopologies) != 2 {
		t.Fatalf("%d sub-topologies, want 2:\n%s", len(g.SubTopologies), topo.Describe())
	}
	sources := func(i int) []string {
		var out []string
		for _, ref := range g.SubTopologies[i].SourceTopics() {
			out = append(out, ref.String())
		}
		return out
	}
	checkEqual(t, "orders side reads", sources(0), []string{"orders", "<appID>-fk-subscription-response"})
	checkEqual(t, "products side reads", sources(1), []string{"products", "<appID>-fk-subscription-registration"})
}

// TestJoinTablesFKMalformed feeds records the join cannot read to its
// internal topics: each fails as a deserialization error of the node that
// reads it, without a panic.
func TestJoinTablesFKMalformed(t *testing.T) {
	tests := []struct {
		topic, node string
		key, value  []byte
	}{
		{"kstest-fk-subscription-registration", "fk-subscription-receive", []byte("p1"), []byte{9, 9}},
		{"kstest-fk-subscription-registration", "fk-subscription-receive", []byte("p1"), []byte{1, 3, 0, 0, 0, 0, 1, 2}},
		{"kstest-fk-subscription-response", "fk-subscription-response-join", []byte("o1"), []byte{1}},
		{"kstest-fk-subscription-response", "fk-subscription-response-join", []byte("o1"), []byte{1, 1, 7}},
		{"kstest-fk-subscription-response", "fk-subscription-response-join", []byte("o1"), []byte{1, 0, 7}},
	}
	for _, tt := range tests {
		d := kstest.NewDriver(t, tjFKTopology(t, tjInnerFK))
		err := kstest.Input(d, tt.topic, serde.String, serde.String).PipeRaw(1, tt.key, tt.value)
		rerr := recordError(t, err)
		if !rerr.Deserialization || rerr.Node != tt.node || !strings.Contains(err.Error(), "malformed foreign-key join record") {
			t.Errorf("%s %v: error %v, want a deserialization error of %s", tt.topic, tt.value, err, tt.node)
		}
	}
}
