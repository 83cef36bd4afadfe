// Package kafkaio runs kstream topologies on Apache Kafka with franz-go.
//
// [NewApp] prepares an instance of an application; [App.Run] creates the
// internal topics (repartition topics, compacted changelogs) with kadm, joins
// the application's consumer group, and processes until its context ends.
// Every instance of an application uses the same app ID; the group's
// co-partitioning balancer spreads tasks (a sub-topology on one partition)
// over the instances, and partition p of every topic a task reads goes to the
// same instance. More instances give more throughput.
//
// Each poll's records are processed as batches, one per task, tasks in
// parallel on the workers. Output is partitioned as Kafka's Java producer
// would (murmur2 of the key). A task that reads several topics (a join, a
// merge, a cogroup) takes their records in timestamp order, as Kafka
// Streams does, and waits for an input that is known to have records not
// fetched yet, holding the others' records back ([MaxTaskIdle]): a join
// started on a backlog matches what Kafka Streams matches.
//
// Processing is at-least-once by default: outputs and changelogs are flushed,
// then offsets committed, every [CommitInterval] and when partitions are
// revoked. A commit the broker refuses, or whose flush has not ended after a
// minute (the cluster restarting), is retried at the next interval; Run
// fails after five failed commits in a row. With [ExactlyOnce], one transactional producer per instance puts
// outputs, changelog and dead-letter records and the input offsets in one
// transaction per commit interval; an aborted transaction rolls the tasks
// back to the last commit. A failed transaction (a broker restart, a
// coordinator moving, a fenced or timed-out producer) does too, and a new
// producer with the same transactional ID takes over, as Kafka Streams
// recovers from a migrated task; Run fails after five failed transactions
// in a row, or at once on a failure no new producer can fix (authorization,
// a record too large). Stores are restored from their changelogs before a
// task processes. [StandbyReplicas] keeps warm copies of them on other
// instances for failover; [WarmupReplicas] makes a stateful task move to
// another instance (one that joined, say) only once a copy there has
// caught up, so that it is not unavailable while it restores. Global
// tables are read in full by every instance before its tasks start, and kept
// current on a goroutine of their own; with a [StateDir] they are kept on
// disk too, and a restart reads only what was added since.
//
// [App.State] tells where an app is in its life, as Kafka Streams'
// KafkaStreams.State does (REBALANCING while it joins the group or restores
// tasks, then RUNNING): a readiness probe reads it; [OnStateChange] follows
// it.
//
// Failed records follow a [Policy] per kind of failure (deserialization,
// processing, production): fail (the default), skip, or dead-letter.
//
// Interactive queries: [Store] reads a key-value store (a table, an
// aggregation, a global table, a Process node's store) of the running
// instance by typed key, [WindowStore] the windows of a windowed or session
// aggregation by key and time; [StoreHandler] serves key reads over HTTP. Every
// instance advertises its [AdvertisedAddr] to the group, so that any
// instance can tell which one holds a key ([StoreReader.Hosts]) and the
// handler redirects a query there.
//
// Telemetry is OpenTelemetry's ([TracerProvider], [MeterProvider]; the
// global providers by default), per task batch and per commit, never per
// record. Spans: "kstream.process", one per task batch, linked to the W3C
// trace contexts in its first input records' headers, its context carried
// in the traceparent header of the records the batch produces; and
// "kstream.commit". Metrics: kstream.records.processed and .produced (by
// task and topic), .skipped (by the error policies), .dropped (by design:
// late records, null keys), .restored; kstream.process.duration,
// kstream.commit.duration,
// kstream.record.e2e_latency (of each batch's oldest record);
// kstream.consumer.lag and kstream.restore.remaining (gauges);
// kstream.task.enforced_processing; with a StateDir,
// kstream.state.cache.gets, .misses and .hit_ratio; and with [NodeMetrics],
// kstream.node.records (by task and node).
//
// [Reset] prepares an application to reprocess its input from the start
// with empty state, as Kafka's kafka-streams-application-reset tool followed
// by KafkaStreams.cleanUp(): while no instance runs (it refuses, naming the
// group, when the group has members), it commits the group's offsets of the
// input topics at their start (or, with [ResetToTime], at a time), deletes
// the topology's internal topics (the next Run creates them again), and with
// [StateDir] removes the application's stores and checkpoints from the state
// directory, leaving other applications' state there alone. [ResetDryRun]
// reports what it would do and changes nothing. Output topics, global
// tables' topics and the dead-letter topic are never touched.
//
// [StartEmbedded] runs an in-process cluster for examples and tests.
package kafkaio
