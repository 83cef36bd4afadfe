// Command enrich joins orders to a customers table and to a products global
// table.
//
// Orders ("orders": key order ID, value JSON Order) are re-keyed by customer,
// joined to "customers" (key customer ID, value name; a table co-partitioned
// with the re-keyed orders, through a repartition topic), then joined to
// "products" (key product ID, value name; a global table, so no
// co-partitioning), and written to "enriched-orders" (key order ID, value
// JSON Enriched). main starts an embedded Kafka cluster (or uses -brokers),
// loads the tables, runs the application, sends the sample orders, and
// prints the enriched orders.
package main

import (
	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/serde"
)

// Topic names of the example.
const (
	OrdersTopic    = "orders"
	CustomersTopic = "customers"
	ProductsTopic  = "products"
	OutputTopic    = "enriched-orders"
)

// Order is an order as it arrives.
type Order struct {
	ID       string `json:"id"`
	Customer string `json:"customer"`
	Product  string `json:"product"`
	Quantity int    `json:"quantity"`
}

// Enriched is an order with the names of its customer and product.
type Enriched struct {
	Order
	CustomerName string `json:"customer_name"`
	ProductName  string `json:"product_name"`
}

// Topology builds the enrichment. An order whose customer or product is
// unknown still goes out, with "?" for the missing name.
func Topology() (*kstream.Topology, error) {
	b := kstream.NewBuilder()
	orders := kstream.Source(b, OrdersTopic, serde.String, serde.JSON[Order]())
	customers := kstream.SourceTable(b, CustomersTopic, serde.String, serde.String, kstream.Named("customers"))
	products := kstream.SourceGlobalTable(b, ProductsTopic, serde.String, serde.String, kstream.Named("products"))

	byCustomer := kstream.SelectKey(orders, func(_ string, o Order) string { return o.Customer }).
		WithSerdes(serde.String, serde.JSON[Order]())
	withCustomer := kstream.LeftJoinTable(byCustomer, customers, func(_ string, o Order, name string, ok bool) Enriched {
		if !ok {
			name = "?"
		}
		return Enriched{Order: o, CustomerName: name}
	}, kstream.Named("order-customer"))
	withProduct := kstream.LeftJoinGlobal(withCustomer, products,
		func(_ string, e Enriched) string { return e.Product },
		func(_ string, e Enriched, name string, ok bool) Enriched {
			if !ok {
				name = "?"
			}
			e.ProductName = name
			return e
		})
	kstream.SelectKey(withProduct, func(_ string, e Enriched) string { return e.ID }).
		To(OutputTopic, serde.String, serde.JSON[Enriched]())
	return b.Build()
}
