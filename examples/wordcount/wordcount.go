// Command wordcount counts words: it reads lines of text from the topic
// "lines", splits them into lowercase words, counts each word, and writes the
// counts to the topic "word-counts".
//
// main starts an embedded Kafka cluster (or uses -brokers), produces a
// sample text, runs the application until it has processed all of it, and
// prints the final "word<TAB>count" lines sorted by word.
package main

import (
	"strings"
	"unicode"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/serde"
)

// Topic names of the word count.
const (
	InputTopic  = "lines"
	OutputTopic = "word-counts"
)

// Topology builds the word count: lines -> lowercase words -> count per
// word -> OutputTopic.
func Topology() (*kstream.Topology, error) {
	b := kstream.NewBuilder()
	lines := kstream.Source(b, InputTopic, serde.String, serde.String)
	words := kstream.FlatMap(lines, func(_ string, line string, emit func(string, string)) {
		for _, w := range strings.FieldsFunc(strings.ToLower(line), func(r rune) bool {
			return !unicode.IsLetter(r) && !unicode.IsNumber(r) && r != '\''
		}) {
			emit(w, w)
		}
	})
	counts := words.GroupByKey().Count(kstream.Named("counts"))
	counts.ToStream().To(OutputTopic, serde.String, serde.Int64)
	return b.Build()
}
