// Package dedupe drops duplicate records from a stream: [ByID] passes on a
// record only if no record with the same ID passed within a retention
// window, so that a producer that retries, or a source without transactions,
// still yields each event once downstream.
//
//	orders := kstream.Source(b, "orders", serde.String, orderSerde)
//	unique := dedupe.ByID(orders, func(_ string, o Order) string { return o.ID }, time.Hour, kstream.Named("orders-dedupe"))
//
// # Semantics
//
// Time is the records' own: the retention window is measured on record
// timestamps and the task's stream time (the largest timestamp it has
// seen), never on the wall clock, so the same input gives the same output.
// A record whose ID passed at t0 is dropped while stream time is at most
// t0 + retention; for records in timestamp order that is t1 - t0 <= retention.
// The first record with an ID passes and starts the window; duplicates do
// not extend it. Tombstones and records with an empty ID pass untouched, and
// a record older than stream time minus retention whose ID is not remembered
// passes without being remembered. [ByID] documents every case.
//
// The IDs live in a key-value store named after the operator, with a
// compacted changelog "<appID>-<name>-changelog", and a time index in the
// same store: a stream-time punctuation deletes what expired with one range
// scan, so the store holds only the IDs of about one retention window.
//
// # Partitions
//
// Each task (input partition) has its own store: a duplicate is found only
// if it arrives on the same partition as the record it repeats. A producer's
// retries do (same key, same partition). If duplicates can arrive with other
// keys, repartition by ID first, so that every copy of an ID meets in one
// task:
//
//	byID := kstream.SelectKey(events, func(_ string, e Event) string { return e.ID }).
//		WithSerdes(serde.String, eventSerde).
//		Repartition(kstream.Named("events-by-id"))
//	unique := dedupe.ByID(byID, func(id string, _ Event) string { return id }, time.Hour, kstream.Named("events-dedupe"))
//
// # Crashes
//
// ByID removes the duplicates that are in its input. It cannot remove
// the ones that a crash creates downstream of it, and how far it guards a
// side effect after it (a Foreach calling an external system) depends on the
// processing guarantee:
//
// Under exactly-once (kafkaio.ExactlyOnce), the store's changelog, the
// outputs and the input offsets commit in one transaction, and a crash rolls
// all of them back to the last commit: the records since then are processed
// again against the store as it was, so every ID reaches Kafka outputs once
// per window. A side effect outside Kafka is not in the transaction: it runs
// again for the records processed since the last commit.
//
// Under at-least-once (kafkaio's default), the records processed since the
// last commit are processed again after a crash, but the store is restored
// from its changelog as far as the changelog got, which can be past the last
// commit: changelog records are produced as records are processed, not at
// commits. A reprocessed record whose ID reached the changelog is then
// dropped as a duplicate of itself. For a side effect in a Foreach after
// ByID this is what is wanted: the side effect ran before the changelog
// record was produced, so it is not repeated; it is repeated only for the
// records whose changelog writes were still in flight at the crash. For an
// output topic it is not: an output record still in flight at the crash,
// whose ID reached the changelog, is lost. Use exactly-once when the output
// of ByID goes to Kafka and must not lose a record.
//
// Restarts without a crash (a revoked or closed task commits first) lose and
// repeat nothing.
package dedupe
