// Command bench measures kstream against a hand-written franz-go
// consume→produce loop doing the same work, and against Kafka Streams
// running the same topology, in the same run, on identical fresh topics,
// under at-least-once and exactly-once.
//
// Usage:
//
//	go run ./internal/bench [flags]
//
// Scenarios:
//
//   - passthrough: an input topic of 6 partitions is pre-filled with
//     -records records (string keys, -value-size byte values, producer
//     timestamps), then each implementation reads it through
//     Source → Map (identity) → Filter (drops the keys ending in "#x", one in
//     a thousand) → To(output). The time runs from the start of the
//     implementation until the whole expected output is in the output topic:
//     output end offsets at-least-once; under exactly-once, committed output
//     (the last stable offsets) and no group lag left on the input. It
//     reports records/s and CPU seconds per million records
//     (getrusage(RUSAGE_SELF) deltas: with the embedded cluster the broker
//     runs in this process and its CPU is included).
//   - latency: a producer offers a steady -rate records/s (bursts every
//     millisecond, linger 0) for -duration after a warm-up, and a consumer
//     on the output topic (read-committed under exactly-once) measures the
//     end-to-end latency of every record: receive wall time minus the send
//     time that the producer put in the record (in its timestamp, in
//     milliseconds, and in the first 8 bytes of its value, in nanoseconds,
//     which is what the percentiles use). Each implementation runs with
//     batches of 1 and 100 records per poll (-batches), and with franz-go's
//     default producer linger (10 ms) and with linger 0. A "floor" row
//     measures the same load on the input topic, with no processing: the
//     latency of the cluster and clients alone.
//   - wordcount: an input topic is pre-filled with -wordcount-lines lines
//     of 8 words from a vocabulary of 10,000, then each implementation runs
//     lines → FlatMap (words, keyed by word) → GroupByKey → Count (in-memory
//     store "counts", changelogged; every update forwarded, no record cache)
//     → ToStream → To, through the repartition topic
//     "<group>-counts-repartition" (kstream and Kafka Streams name it alike).
//     The time runs until the output holds one count update per word (and,
//     under exactly-once, it is committed and the input and repartition
//     topics are consumed); records/s counts input lines. There is no
//     hand-written loop for a stateful scenario: kstream is compared with
//     Kafka Streams only.
//   - windowed: an input topic is pre-filled with -windowed-records
//     records keyed "user-<i mod 10,000>" (-value-size byte values), which
//     the producer stamps 1 ms apart, the last one about at the prefill's
//     start (1,000,000 records span 17 one-minute windows, with 6 records
//     per user in each); then each implementation runs Source → GroupByKey
//     → WindowedBy(Tumbling(1 minute), no grace) → Count (in-memory window
//     store "window-counts", changelogged; every update forwarded: no
//     record cache, no EmitOnWindowClose) → ToStream → To, the keys written
//     as Kafka Streams' time-windowed serde writes them
//     (kstream.TimeWindowedSerde). No record is late: the timestamps grow
//     with the offsets of every partition (one idempotent producer keeps
//     each partition's order), so each record's window is still open (its
//     end is after the task's stream time, the record's own timestamp), and
//     the output is exactly one count update per record. The time runs
//     until it is all there (and, under exactly-once,
//     committed, with the input consumed); records/s counts input
//     records. kstream and Kafka Streams run it, as the word count.
//   - join: a table topic is pre-filled with one record per user (10,000,
//     keys "user-<n>", -value-size byte values), then a stream topic with
//     -join-records records keyed "user-<i mod 10,000>"; each
//     implementation runs SourceTable(table, in-memory store "users", whose
//     changelog is the table topic) and Source(stream) → LeftJoinTable
//     (the stream value followed by the user's) → To. Kafka Streams runs
//     builder.table with topology.optimization=all, so that it too uses the
//     table topic as the store's changelog. Both topics are read while the
//     clock runs. A left join emits one record per stream record whether
//     the table has its user yet or not, so the output is exactly one
//     record per stream record whatever order the topics are processed in.
//     The time runs until it is all there (and, under exactly-once,
//     committed, with both topics consumed); records/s counts stream
//     records. kstream and Kafka Streams run it, as the word count.
//   - restore (opt-in: -scenarios restore; it ignores -modes and runs once
//     per state backend, memory and pebble): the changelog of a count
//     store ("<app>-counts-changelog", one partition) is filled with
//     -restore-records distinct keys, then read three times: by a raw
//     franz-go consumer (row hand, the yardstick), by a kstream app whose
//     store restores from it (in memory, or in a state DB in a temporary
//     kafkaio.StateDir), timed by its restore progress, and by Kafka
//     Streams with the same store (in memory, or in RocksDB), timed by its
//     restore listener. The ratio column is kstream's records/s over the raw
//     consume's; the target is 0.7x.
//   - global (opt-in, like restore): a global table's topic of
//     -restore-records distinct keys over 4 partitions, read by a raw
//     consumer, bootstrapped into a kstream app's global table (timed from
//     the app's start), then again by a restarted app (in memory it reads
//     everything again; from the state DB only what came after its
//     checkpoint), and bootstrapped by Kafka Streams' global table (in
//     memory, or in RocksDB), timed by its restore listener.
//   - count (opt-in: -scenarios count; it needs no Kafka and ignores -modes
//     and -timeout): a count aggregation, Source -> GroupByKey -> Count ->
//     To, over -count-keys distinct keys (10,000,000) in -count-partitions
//     tasks (64) of the real runtime on a state.DB with a memory budget of
//     -count-budget MiB (256). Generated records (every key once, then
//     every tenth key again) are routed to their tasks by murmur2 in
//     batches of 10,000, the tasks' output is discarded, and every task
//     commits every 100,000 records, as the runtime does at the end of a
//     commit interval; then the counts of 1,000 keys are read back and
//     checked. It runs in a child process (the bench binary again) so that
//     its peak RSS (VmHWM) is the workload's alone, with MALLOC_ARENA_MAX=2
//     and GOMEMLIMIT=state.GoMemoryLimit unless the environment sets them
//     (GOMEMLIMIT=off: no limit), as state.MemoryBudget recommends. It
//     reports records/s, CPU, and the peak RSS against the budget plus 128
//     MiB.
//
// Kafka Streams (-kafka-streams auto, the default, when java is installed)
// runs the same topologies (internal/javaref's dev.kstream.javaref.Bench,
// Kafka's version from internal/javaref/pom.xml) in a child JVM against the
// same cluster: the passthrough's in the passthrough and latency scenarios,
// and those of the stateful scenarios (wordcount, windowed, join), with
// in-memory stores and the record cache off, and those of the restore and
// global scenarios (its CPU time there is the JVM's during the restore
// alone). The
// bench builds it with mvn first when its classes are missing or older than
// its source. It gets the settings the others have: the commit interval, the
// producer linger (franz-go's default 10 ms unless 0), franz-go's default
// producer batch size (1 MB; Java's is 16 KiB), max.poll.records = the
// batch in the passthrough, and -streams-threads stream threads (1). In
// the passthrough it starts before the clock, paused, and resumes once it
// holds every partition: the JVM's start and its group join are not
// measured, its JIT's warm-up is. In the stateful scenarios, since a paused
// application does not restore its stores, it starts running on the empty
// input topics before the prefill, pauses once it runs all its tasks, and
// resumes with the clock. In the latency scenario it keeps its default
// max.poll.records (it processes record by record whatever it polls; with
// max.poll.records=1 it keeps up with about 2k records/s here), runs once
// per linger, and gets a warm-up of at least 5 s unless -quick (its JIT's
// first seconds otherwise set its p99: about 1 s after a 1 s warm-up, 43-54
// ms after 6 s on a real broker). Its CPU time (the JVM's, reported by the
// program) is added to this process's. KSTREAM_BENCH_JVM_OPTS passes JVM
// options (for example -Xmx1g, or a flight recording). The "vs KS" column
// compares kstream with it: records/s in the passthrough, the stateful
// scenarios, restore and global, p99 in latency.
//
// Without -brokers every run gets a fresh embedded cluster
// (kafkaio.StartEmbedded); with -brokers every run uses topics and groups
// with a fresh random prefix, deleted afterwards. The embedded clusters keep
// their logs in this process's heap, so that page faults on fresh heap
// would be the largest difference between runs: the harness re-executes
// itself with GODEBUG=madvdontneed=0 (unless GODEBUG sets madvdontneed),
// grows and frees its heap once before the first run, and before each
// throughput measurement waits (at most 10 s, not with -quick) until the
// clusters of earlier runs are garbage. results.json gives each run's
// page faults.
//
// The table goes to stdout, a progress line to stderr, and results.json and
// results.svg (records/s per scenario, mode and implementation) to -out.
// -cpuprofile writes a CPU profile of each passthrough, latency, wordcount,
// windowed and join run's measured window, and of the restore scenario's raw
// consume and restore.
// -repeat runs the passthrough, and the restore scenario's raw consume and
// kstream restore, several times (alternating the order of the
// implementations) and reports the medians: use it on a busy machine.
// -quick is a smoke run for CI (200,000 records, 3 s latency runs, 20,000
// word-count lines, 100,000 windowed and join records).
// -state db runs kstream's wordcount, windowed and join scenarios on a state
// DB in a temporary kafkaio.StateDir (variant "state=db"), as Kafka Streams
// keeps its stores in RocksDB; the default, memory, uses in-memory stores.
package main
