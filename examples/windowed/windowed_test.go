package main

import (
	"fmt"
	"slices"

	"github.com/kstreamgo/kstream/kstest"
	"github.com/kstreamgo/kstream/serde"
)

// ExampleTopology runs the sample through the test driver: each window's
// count comes out once, when the window closes; the late view is dropped.
func ExampleTopology() {
	topo, err := Topology()
	if err != nil {
		fmt.Println(err)
		return
	}
	d := kstest.NewDriver(nil, topo)
	defer d.Close()
	in := kstest.Input(d, InputTopic, serde.String, serde.String)
	for _, r := range Sample() {
		in.PipeAt(r.Timestamp, string(r.Key), string(r.Value))
	}
	var lines []string
	for _, r := range kstest.Output(d, OutputTopic, serde.String, serde.Int64).Records() {
		lines = append(lines, fmt.Sprintf("%s %d", r.Key, r.Value))
	}
	slices.Sort(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	fmt.Println("dropped late views:", d.Dropped("views-per-minute"))
	// Output:
	// ada@2026-11-29T12:00:00Z 2
	// ada@2026-11-29T12:01:00Z 1
	// ada@2026-11-29T12:02:00Z 1
	// bob@2026-11-29T12:00:00Z 2
	// bob@2026-11-29T12:01:00Z 1
	// dropped late views: 1
}
