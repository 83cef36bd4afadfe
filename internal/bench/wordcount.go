package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/serde"
)

// The word-count scenario's input: lines of wordsPerLine words drawn from a
// vocabulary of vocabulary words.
const (
	scenarioWordCount = "wordcount"
	wordsPerLine      = 8
	vocabulary        = 10_000
	// wordCountStore names the count store, hence its changelog and the
	// repartition topic "<appID>-counts-repartition", in kstream and in
	// Kafka Streams alike.
	wordCountStore = "counts"
)

// appendLine appends line i: wordsPerLine words "w<n>", spread over the
// vocabulary by a multiplicative hash so that the keys of every partition
// repartition everywhere.
func appendLine(dst []byte, i int) []byte {
	for j := range wordsPerLine {
		if j > 0 {
			dst = append(dst, ' ')
		}
		n := uint64(i*wordsPerLine+j) * 0x9E3779B97F4A7C15 >> 40 % vocabulary
		dst = append(dst, 'w')
		dst = strconv.AppendUint(dst, n, 10)
	}
	return dst
}

// wordCountTopology is lines -> words (FlatMap, keyed by word) ->
// GroupByKey -> Count -> ToStream -> To, with every count update forwarded
// (no record cache), as Kafka Streams' program runs it
// (statestore.cache.max.bytes=0).
func wordCountTopology(in, out string) (*kstream.Topology, error) {
	b := kstream.NewBuilder()
	lines := kstream.Source(b, in, serde.Bytes, serde.String)
	words := kstream.FlatMap(lines, func(_ []byte, line string, emit func(string, string)) {
		for w := range strings.FieldsSeq(line) {
			emit(w, w)
		}
	})
	words.GroupByKey(kstream.Named(wordCountStore)).Count(kstream.Named(wordCountStore)).ToStream().To(out, serde.String, serde.Int64)
	return b.Build()
}

// wordCountScenario: cfg.wordCountLines lines in, one count update per word
// out; records/s counts lines.
var wordCountScenario = &statefulScenario{
	name: scenarioWordCount, inputs: []string{"lines"}, output: "word-counts",
	internal:      []string{wordCountStore + "-repartition"},
	subTopologies: 2, // before and after the repartition
	fill: func(ctx context.Context, cfg *config, brokers, in []string, filled *atomic.Int64) (int64, int64, string, error) {
		n := cfg.wordCountLines
		err := produceN(ctx, brokers, in[0], n, filled, nil, func(buf []byte, i int) ([]byte, int, []byte) {
			start := len(buf)
			buf = appendKey(buf, i)
			klen := len(buf) - start
			buf = appendLine(buf, i)
			return buf, klen, buf[start+klen:]
		})
		words := int64(n * wordsPerLine)
		return int64(n), words, fmt.Sprintf("%d lines, %d words", n, words), err
	},
	topology: func(in []string, out string) (*kstream.Topology, error) { return wordCountTopology(in[0], out) },
}
