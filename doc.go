// Package kstream is Kafka Streams for Go: typed, stateful, fault-tolerant
// stream processing on Apache Kafka.
//
// # Concepts
//
// A [Builder] collects operators into a lazily built topology graph.
// [Stream] values are record streams and [Table] values changelog views
// (latest value per key); both are typed handles. Operators whose result uses
// only the receiver's types are methods (Filter, Branch, Merge, To,
// GroupByKey, ToTable...); those that introduce a new type are functions
// ([Map], [MapValues], [SelectKey], [FlatMap], [GroupBy], [Aggregate],
// [Process]...). [Builder.Build] validates the graph, inserts repartition
// topics where a key-changing operator feeds a grouping, names the internal
// topics "<appID>-<name>-repartition" and "<appID>-<store>-changelog", and
// splits the graph into sub-topologies at topic boundaries. Every stateful
// operator needs a stable name, given with [Named].
//
// Serdes (package serde) are needed where a type crosses a byte boundary:
// sources, sinks, stores and repartition topics. Stateless steps take none;
// a later repartition or store uses the serdes of the built-in types
// automatically, and for other types asks for them through
// [Stream.WithSerdes] (a Build error names the node otherwise).
//
// A runtime executes the topology: package kafkaio on Kafka, package kstest
// in tests, without a broker. A task (one sub-topology on one partition)
// runs a batch of records in one pass through typed per-record functions
// composed at task creation: no allocation, interface boxing or channel per
// record on stateless chains.
//
// # Records, tombstones and null keys
//
// A [Record] has a key, a value, a timestamp in milliseconds, headers, and a
// Tombstone flag for Kafka's null value. User functions never receive a
// tombstone as a zero value pretending to be data: key-preserving operators
// (Filter, FilterNot, MapValues, FlatMapValues, Branch, Merge, To,
// Repartition) pass tombstones through without calling the function, Peek
// and Foreach skip them, and re-keying operators (Map, SelectKey, FlatMap)
// and aggregations drop them and count the drop. [Process], [ProcessValues]
// and the topic function of [Stream.ToFunc] see every record, tombstones
// included (Tombstone set). Records with a null key are dropped (and counted) by
// aggregations and tables.
//
// # Timestamps
//
// Stateless operators keep the input record's timestamp. Aggregations stamp
// their result with the largest timestamp of the records folded into it, as
// Kafka Streams does.
//
// # Example
//
// Word count:
//
//	b := kstream.NewBuilder()
//	lines := kstream.Source(b, "lines", serde.String, serde.String)
//	words := kstream.FlatMap(lines, func(_ string, line string, emit func(string, string)) {
//		for _, w := range strings.Fields(strings.ToLower(line)) {
//			emit(w, w)
//		}
//	})
//	counts := words.GroupByKey().Count(kstream.Named("counts"))
//	counts.ToStream().To("word-counts", serde.String, serde.Int64)
//	topo, err := b.Build()
package kstream
