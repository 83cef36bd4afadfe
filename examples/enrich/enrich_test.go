package main

import (
	"fmt"

	"github.com/kstreamgo/kstream/kstest"
	"github.com/kstreamgo/kstream/serde"
)

// ExampleTopology runs the sample through the test driver, with three
// partitions: the re-keyed orders really move to their customer's partition.
func ExampleTopology() {
	topo, err := Topology()
	if err != nil {
		fmt.Println(err)
		return
	}
	d := kstest.NewDriver(nil, topo, kstest.Partitions(3))
	defer d.Close()
	for _, id := range []string{"c1", "c2"} {
		kstest.Input(d, CustomersTopic, serde.String, serde.String).Pipe(id, Customers[id])
	}
	for _, id := range []string{"p1", "p2"} {
		kstest.Input(d, ProductsTopic, serde.String, serde.String).Pipe(id, Products[id])
	}
	in := kstest.Input(d, OrdersTopic, serde.String, serde.JSON[Order]())
	for _, o := range Orders {
		in.Pipe(o.ID, o)
	}
	out := kstest.LatestByKey(kstest.Output(d, OutputTopic, serde.String, serde.JSON[Enriched]()))
	for _, id := range []string{"o1", "o2", "o3", "o4"} {
		e := out[id]
		fmt.Println(e.ID, e.CustomerName, e.ProductName, e.Quantity)
	}
	// Output:
	// o1 Ada pen 2
	// o2 Bob ink 1
	// o3 ? pen 5
	// o4 Ada ? 1
}
