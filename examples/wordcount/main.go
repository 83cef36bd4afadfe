package main

import (
	"fmt"
	"os"
	"slices"

	"github.com/kstreamgo/kstream/kstest"
	"github.com/kstreamgo/kstream/serde"
)

// Sample is the text main counts.
var Sample = []string{
	"The quick brown fox jumps over the lazy dog.",
	"The dog sleeps; the fox runs.",
	"A fox, a dog, and the end.",
}

func main() {
	topo, err := Topology()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	d := kstest.NewDriver(nil, topo, kstest.Partitions(3))
	defer d.Close()
	in := kstest.Input(d, InputTopic, serde.String, serde.String)
	for i, line := range Sample {
		in.PipeAt(int64(i), fmt.Sprint(i), line)
	}
	counts := kstest.LatestByKey(kstest.Output(d, OutputTopic, serde.String, serde.Int64))
	words := make([]string, 0, len(counts))
	for w := range counts {
		words = append(words, w)
	}
	slices.Sort(words)
	for _, w := range words {
		fmt.Printf("%s\t%d\n", w, counts[w])
	}
}
