package kafkaio_test

import (
	"testing"
	"time"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/kafkaio"
	"github.com/kstreamgo/kstream/serde"
)

// TestForeignKeyJoin runs a foreign-key table join, whose internal
// subscription topics take their partition counts from the tables they meet.
func TestForeignKeyJoin(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c cluster) {
		orders, products, out, app := unique("orders"), unique("products"), unique("order-products"), unique("fk")
		mustCreate(t, c, 3, orders, out)
		mustCreate(t, c, 2, products)
		b := kstream.NewBuilder()
		ot := kstream.SourceTable(b, orders, serde.String, serde.String, kstream.Named("orders"))
		pt := kstream.SourceTable(b, products, serde.String, serde.String, kstream.Named("products"))
		kstream.JoinTablesFK(ot, pt, func(_ string, product string) (string, bool) { return product, product != "" },
			func(_ string, product string, name string) string { return product + ":" + name }, serde.String,
			kstream.Named("order-product")).ToStream().To(out, serde.String, serde.String)
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		produce(t, c, products, []rec{{key: []byte("p1"), value: []byte("pen")}, {key: []byte("p2"), value: []byte("ink")}})
		produce(t, c, orders, []rec{{key: []byte("o1"), value: []byte("p1")}, {key: []byte("o2"), value: []byte("p2")},
			{key: []byte("o3"), value: []byte("p1")}})
		a, err := kafkaio.NewApp(topo, appOpts(c, app, true)...)
		if err != nil {
			t.Fatal(err)
		}
		stop := runApp(t, a)
		latest := func() map[string]string {
			m := map[string]string{}
			for _, r := range consumeAll(t, c, out, true) {
				if r.Value == nil {
					delete(m, string(r.Key))
				} else {
					m[string(r.Key)] = string(r.Value)
				}
			}
			return m
		}
		want := map[string]string{"o1": "p1:pen", "o2": "p2:ink", "o3": "p1:pen"}
		waitFor(t, time.Minute, "the joined orders", func() bool { return len(latest()) == 3 })
		if m := latest(); m["o1"] != want["o1"] || m["o2"] != want["o2"] || m["o3"] != want["o3"] {
			t.Fatalf("joined: %v, want %v", m, want)
		}
		// A product update fans out to every order that refers to it.
		produce(t, c, products, []rec{{key: []byte("p1"), value: []byte("pencil")}})
		waitFor(t, time.Minute, "the fan-out", func() bool {
			m := latest()
			return m["o1"] == "p1:pencil" && m["o3"] == "p1:pencil" && m["o2"] == "p2:ink"
		})
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}
