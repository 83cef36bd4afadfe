package main

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/kstreamgo/kstream/kstest"
	"github.com/kstreamgo/kstream/serde"
)

// countWords runs the word count over lines with the given number of
// partitions and returns the final count of each word.
func countWords(tb testing.TB, lines []string, partitions int) map[string]int64 {
	topo, err := Topology()
	if err != nil {
		if tb == nil {
			panic(err)
		}
		tb.Fatal(err)
	}
	d := kstest.NewDriver(tb, topo, kstest.Partitions(partitions))
	defer d.Close()
	in := kstest.Input(d, InputTopic, serde.String, serde.String)
	for i, line := range lines {
		in.PipeAt(int64(i), fmt.Sprint(i), line)
	}
	return kstest.LatestByKey(kstest.Output(d, OutputTopic, serde.String, serde.Int64))
}

func ExampleTopology() {
	counts := countWords(nil, Sample, 3)
	for _, w := range slices.Sorted(maps.Keys(counts)) {
		fmt.Printf("%s\t%d\n", w, counts[w])
	}
	// Output:
	// a	2
	// and	1
	// brown	1
	// dog	3
	// end	1
	// fox	3
	// jumps	1
	// lazy	1
	// over	1
	// quick	1
	// runs	1
	// sleeps	1
	// the	5
}

func TestWordCountPartitions(t *testing.T) {
	lines := append([]string{
		"It's a truth; it's A TRUTH!",
		"",
		"   ",
		"42 apples, 42 pears",
	}, Sample...)
	want := map[string]int64{
		"it's": 2, "a": 4, "truth": 2, "42": 2, "apples": 1, "pears": 1,
		"the": 5, "quick": 1, "brown": 1, "fox": 3, "jumps": 1, "over": 1, "lazy": 1, "dog": 3,
		"sleeps": 1, "runs": 1, "and": 1, "end": 1,
	}
	one := countWords(t, lines, 1)
	four := countWords(t, lines, 4)
	if !maps.Equal(one, want) {
		t.Errorf("1 partition: counts %v\nwant %v", one, want)
	}
	if !maps.Equal(four, one) {
		t.Errorf("4 partitions: counts %v\n1 partition: %v", four, one)
	}
}
