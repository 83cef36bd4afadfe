// Package kstest runs kstream topologies without a broker, deterministically,
// with the same tasks that run in production.
//
// A [Driver] keeps every topic as an in-memory log with any number of
// partitions ([Partitions]); records are routed by key with Kafka's murmur2
// partitioner, so a repartition really moves records between tasks. Records
// cross every topic boundary as bytes, so serde bugs show up in tests. Each
// piped record is processed at once, together with everything it causes
// downstream (repartition topics included), before Pipe returns.
//
// Unlike Kafka Streams' TopologyTestDriver, the driver supports several
// partitions per topic, a fake wall clock ([Driver.AdvanceWallClock]), and
// restarts that rebuild every store from its changelog ([Driver.Restart]).
//
// A record that fails (it does not decode, a node returns an error or
// panics) fails the test, or is returned by [InputTopic.TryPipeRecord]; with
// the error policies of kafkaio ([OnDeserializationError],
// [OnProcessingError], [OnProductionError]) it is skipped
// ([Driver.Skipped] counts it) or written to the dead-letter topic
// ([DeadLetterTopic]) with the headers kafkaio gives it, as the application
// would.
package kstest
