package kstest_test

import (
	"strings"
	"testing"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/kstest"
	"github.com/kstreamgo/kstream/serde"
)

// TestReceived counts the records every kind of node receives, across three
// partitions: stateless steps, branches, a repartition (its sink and
// source), an aggregation and what follows it, a regrouped table, and the
// internal nodes of a foreign-key join (raw subscription records, and its
// sinks).
func TestReceived(t *testing.T) {
	b := kstream.NewBuilder()
	src := kstream.Source(b, "in", serde.String, serde.Int64, kstream.Named("src"))
	kept := src.Filter(func(_ string, v int64) bool { return v > 0 }, kstream.Named("positive"))
	br := kstream.MapValues(kept, func(v int64) int64 { return 2 * v }, kstream.Named("double")).
		Branch(func(_ string, v int64) bool { return v > 6 })
	kstream.GroupBy(br[0], func(k string, _ int64) string { return k[:1] }, serde.String, kstream.Named("by-letter")).
		Count(kstream.Named("letter-counts")).ToStream().To("counts", serde.String, serde.Int64)
	br[1].To("small", serde.String, serde.Int64)
	orders := kstream.SourceTable(b, "orders", serde.String, serde.String, kstream.Named("orders"))
	products := kstream.SourceTable(b, "products", serde.String, serde.String, kstream.Named("products"))
	kstream.JoinTablesFK(orders, products, func(_ string, p string) (string, bool) { return p, true },
		func(_ string, p, name string) string { return p + ":" + name }, serde.String, kstream.Named("fk")).
		ToStream().To("joined", serde.String, serde.String)
	kstream.GroupTableBy(products, func(k, v string) (string, string) { return strings.ToUpper(v[:1]), k },
		serde.String, serde.String, kstream.Named("regroup")).Count(kstream.Named("product-letters"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := kstest.NewDriver(t, topo, kstest.Partitions(3))
	in := kstest.Input(d, "in", serde.String, serde.Int64)
	for i, k := range []string{"ax", "ay", "bx", "by", "az"} {
		in.Pipe(k, []int64{3, -1, 4, 0, 5}[i]) // doubled: 6, 8, 10 kept
	}
	p := kstest.Input(d, "products", serde.String, serde.String)
	p.Pipe("p1", "apple")
	p.Pipe("p2", "banana")
	p.Pipe("p1", "avocado") // moves nothing between groups: one regroup record
	o := kstest.Input(d, "orders", serde.String, serde.String)
	o.Pipe("o1", "p1")
	o.Pipe("o2", "p2")
	o.Pipe("o3", "p9") // no such product
	joined := kstest.LatestByKey(kstest.Output(d, "joined", serde.String, serde.String))
	if len(joined) != 2 || joined["o1"] != "p1:avocado" || joined["o2"] != "p2:banana" {
		t.Fatalf("joined %v", joined)
	}

	want := map[string]int64{
		"src": 5, "positive": 5, "double": 3, "BRANCH-0000000003": 3,
		"BRANCH-0-0000000004": 2, "BRANCH-1-0000000005": 1, "SINK-0000000012": 1,
		"SELECT-KEY-0000000006":        2,
		"by-letter-repartition-sink":   2,
		"by-letter-repartition-source": 2,
		"letter-counts":                2,
		"TO-STREAM-0000000010":         2,
		"SINK-0000000011":              2,
		"orders":                       3,
		"fk-subscription-send":         3,
		// One subscription per order, each received on the products'
		// side, which answers each.
		"fk-subscription-registration-sink":   3,
		"fk-subscription-registration-source": 3,
		"fk-subscription-receive":             3,
		"products":                            3,
		"fk-foreign-join":                     3,
		// An inner join answers only the subscriptions to an existing
		// product: not o3's.
		"fk-subscription-response-sink": 2,
		"fk":                            2,
		"TABLE-GROUP-BY-0000000028":     3,
		// p1's second value keeps its group: one record (not a
		// subtraction and an addition), as in Kafka Streams.
		"regroup-repartition-sink": 3,
		"product-letters":          3,
		"no-such-node":             0,
	}
	for node, n := range want {
		if got := d.Received(node); got != n {
			t.Errorf("%s received %d records, want %d", node, got, n)
		}
	}
	// Whatever a sink writes to an internal topic, its source reads.
	for _, topic := range []string{"fk-subscription-response", "regroup-repartition"} {
		sent, read := d.Received(topic+"-sink"), d.Received(topic+"-source")
		if sent == 0 || sent != read {
			t.Errorf("%s: sink received %d records, source %d", topic, sent, read)
		}
	}
	if r, j := d.Received("fk-subscription-response-source"), d.Received("fk-subscription-response-join"); r != j {
		t.Errorf("fk response: source read %d, join received %d", r, j)
	}
}
