package kstream

import "time"

// Opt configures an operator.
type Opt interface {
	apply(*options)
}

type options struct {
	timestamp    any             // kstream.TimestampFrom's func(K, V, int64) int64
	partitioner  *partitionerOpt // PartitionWith or PartitionsWith
	name         string
	stores       []string
	cached       bool
	retention    time.Duration // kstream.Retention, if retentionSet
	retentionSet bool
	emitOnClose  bool // kstream.EmitOnWindowClose
	fromLatest   bool // kstream.FromLatest
}

// optAllow lists the options, among those that only some operators take,
// that an operator takes: the others are Build errors there (see
// Builder.misplaced).
type optAllow uint8

const (
	allowCached optAllow = 1 << iota
	allowRetention
	allowEmitOnClose
	allowStores
	allowFromLatest
	// allowWindowed is what windowed and session aggregations take.
	allowWindowed = allowCached | allowRetention | allowEmitOnClose
)

type optFunc func(*options)

func (f optFunc) apply(o *options) { f(o) }

// partitionerOpt is what a PartitionWith or a PartitionsWith gives a sink.
type partitionerOpt struct {
	// fn is PartitionWith's func(string, K, V, int32) int32 or, when multi
	// is set, PartitionsWith's func([]int32, string, K, V, int32) []int32;
	// isNil marks a nil function of that type.
	fn    any
	isNil bool
	multi bool
	// both: PartitionWith and PartitionsWith were both given, a Build error.
	both bool
}

// name returns the name of the option that gave p.
func (p *partitionerOpt) name() string {
	if p.multi {
		return "PartitionsWith"
	}
	return "PartitionWith"
}

// withPartitioner returns the option giving the partitioner fn, of
// PartitionsWith's form when multi is set.
func withPartitioner(fn any, isNil, multi bool) Opt {
	return optFunc(func(o *options) {
		both := o.partitioner != nil && (o.partitioner.both || o.partitioner.multi != multi)
		o.partitioner = &partitionerOpt{fn: fn, isNil: isNil, multi: multi, both: both}
	})
}

func collect(os []Opt) options {
	var o options
	for _, x := range os {
		if x != nil {
			x.apply(&o)
		}
	}
	return o
}

// Named names the node. On a stateful node it also names the store, its
// changelog topic "<appID>-<name>-changelog" and, where the node needs one,
// its repartition topic "<appID>-<name>-repartition". Stateful nodes require a
// name, so that internal topics keep their names when the topology changes.
func Named(name string) Opt { return optFunc(func(o *options) { o.name = name }) }

// Cached makes an aggregation (Count, Reduce, Aggregate of a grouped stream
// or a grouped table, the cogrouped aggregations, and windowed and session
// aggregations without EmitOnWindowClose, which holds results back already)
// hold its table's
// updates back until the task's next
// commit, one per key, as Kafka Streams' record cache does: downstream then
// sees at most one update per key per commit interval — the latest value,
// with the value it saw last as the old value — in the order the keys were
// last updated, instead of every update (a word count's output shrinks to
// one record per word per commit). A task holds at most 10,000 keys per
// cached aggregation; one more forwards them all early. The store, its
// changelog and interactive queries see every update at once. Without
// Cached (the default), every update is forwarded at once. kstest flushes
// after every input record, as Kafka Streams' TopologyTestDriver commits
// after every record, so Cached changes nothing there. On any other
// operator it is a Build error naming the operator.
func Cached() Opt { return optFunc(func(o *options) { o.cached = true }) }

// Retention sets how long a windowed or session aggregation (Count, Reduce
// and [AggregateWindowed] after [WindowedBy]; Count, Reduce and
// [AggregateSession] after [SessionWindowedBy]; [AggregateCogroupedWindowed]
// and [AggregateCogroupedSession]) keeps its windows in its
// store and changelog, as Kafka Streams' Materialized.withRetention: with a
// retention longer than the minimum, interactive queries
// (kafkaio.WindowStore, kstest.WindowStore) still read windows after they
// closed. Stream time being the aggregation's in the task (see [Windows]),
// a window is deleted:
//
//   - tumbling or hopping [start, end): once start <= stream time - d (it is
//     kept while start > stream time - d, the rule of Kafka Streams' window
//     stores). Default and minimum: size + grace, which deletes it as it
//     closes.
//   - sliding [start, end]: once it has closed and start <= store time - d,
//     store time being the largest window start written. Default and
//     minimum: 2*maxDiff + grace, as in Kafka Streams, which builds new
//     sliding windows from copies of windows that old.
//   - session [start, end]: once end < stream time - d. Default and minimum
//     (Kafka Streams' minimum too): gap + grace, which deletes it as it
//     closes.
//
// Only what the store holds changes: a record for a closed window is late
// and dropped even while the window is kept, [EmitOnWindowClose] emits each
// window once, when it closes, and the output is the same for every
// retention. Kafka Streams measures retention against its store's observed
// time (the largest window start, or session end, written) rather than
// stream time, and drops whole segments, so it may keep windows somewhat
// longer; its session store also drops a session once end <= observed
// time - d, which can be just before the session closes. A d shorter than the
// minimum, negative, or not a whole number of milliseconds is a Build error
// naming the node (Kafka Streams throws IllegalArgumentException). On any
// other operator it is a Build error naming the operator.
func Retention(d time.Duration) Opt {
	return optFunc(func(o *options) { o.retention, o.retentionSet = d, true })
}

// FromLatest makes a [Source] start at the end of its topic when the
// application has no committed offset for a partition (its first run, or
// after a reset), instead of at the beginning: Kafka Streams'
// Consumed.withOffsetResetPolicy(latest), for a new application on a topic
// whose history it should not process. Once the application has committed,
// it goes on from its offsets, including records produced while it was
// down. Repartition and changelog topics always start at the beginning:
// setting the consumer's reset offset through kafkaio.ClientOpts would
// skip their records, and kafkaio refuses it. Only on Source (a Build
// error elsewhere); kstest pipes records after the start, so it ignores it.
func FromLatest() Opt { return optFunc(func(o *options) { o.fromLatest = true }) }

// TimestampFrom makes a [Source], [SourceTable] or [SourceGlobalTable] take
// each record's timestamp from fn (Kafka Streams' TimestampExtractor on
// Consumed): fn gets the decoded key and value and the Kafka record's
// timestamp, and returns the timestamp in milliseconds that the record
// carries from then on, so that windows, joins, table timestamps and the
// task's stream time (stream-time punctuations) follow event time kept in
// the payload. Tombstones keep their Kafka timestamp (fn
// is not called for them, as user functions never get a tombstone as a
// value); records that fail to decode do not move stream time. A
// SourceTable's store restored from its topic (which is its changelog) gets
// fn's timestamps back too (records that failed then keep their Kafka
// timestamp). A negative timestamp fails the record. K and V must be the source's types; any other
// operator reports the option as a Build error.
func TimestampFrom[K, V any](fn func(k K, v V, recordTs int64) int64) Opt {
	return optFunc(func(o *options) { o.timestamp = fn })
}

// PartitionWith makes [Stream.To], [Stream.ToFunc] or [Stream.Repartition]
// choose the partition of each record with fn (Kafka Streams'
// StreamPartitioner, given with Produced or Repartitioned): fn gets the
// target topic's full name, the record's key and value, and the topic's
// partition count, and returns the partition, in [0, numPartitions). A
// negative result partitions the record by key as without the option (the
// murmur2 hash of the encoded key, as Kafka's default partitioner; round
// robin for a null key), as Kafka Streams does when its partitioner returns
// null.
//
// fn is also called for tombstones, with V's zero value (Kafka Streams
// passes a null value), and for records with a Kafka null key, with K's zero
// value: a partitioner that looks only at the key then sends a delete to
// the partition of its key's updates. A result of numPartitions or more is
// a production error naming the topic, the sink node and the partition,
// handled by the runtime's production error policy (kafkaio's
// OnProductionError, whichever the processing guarantee: the record is
// rejected before it is produced; kstest returns it from
// TryPipeRecord). So is a topic whose partition count the runtime cannot
// find (a ToFunc topic that does not exist). fn runs on the task's
// goroutine, once per record, so it should not block; a panic in fn is a
// processing error of the sink node, as in any user function.
//
// Each record goes to one partition; [PartitionsWith] sends a record to
// several partitions, or to none.
//
// After a Repartition with PartitionWith, each downstream task (one per
// partition of the repartition topic) receives the records fn sent to its
// partition, so that a grouping or store downstream holds the keys where fn
// put them, not where murmur2 would. Interactive queries do not know fn:
// kafkaio's StoreReader.Partition, Get, GetStale and Hosts (and the HTTP
// handler) find a key's partition by murmur2, as Kafka Streams'
// queryMetadataForKey does unless it is given the partitioner, so for such
// a store they can miss the key or name the wrong instance. All, Range and
// Prefix, which scan an instance's local partitions, do see every key.
//
// K and V must be the stream's types; the option on any other operator, a
// fn of other types, or a nil fn is a Build error naming the node, and so
// is a PartitionsWith on the same node.
func PartitionWith[K, V any](fn func(topic string, k K, v V, numPartitions int32) int32) Opt {
	return withPartitioner(fn, fn == nil, false)
}

// PartitionsWith is the multicast form of [PartitionWith] (Kafka Streams
// 3.4's StreamPartitioner.partitions, KIP-837): fn chooses the partitions
// of each record written by [Stream.To], [Stream.ToFunc] or
// [Stream.Repartition], and the record is written once to each of them. fn
// gets dst, an empty slice with room for numPartitions partitions that the
// sink reuses for every record, the target topic's full name, the record's
// key and value, and the topic's partition count; it appends the chosen
// partitions to dst and returns it, as serde's Append functions do, so that
// choosing allocates nothing. It may also return a slice of its own (such
// as one listing every partition, built once), which the sink reads and
// neither modifies nor keeps.
//
//   - Partitions in [0, numPartitions): the record is written to each, in
//     the order of their first appearance; a partition listed twice gets the
//     record once (Kafka Streams takes a set). The key and value are encoded
//     once, whatever the number of partitions.
//   - An empty (or nil) result drops the record: nothing is written, and
//     the record counts as dropped by the sink node (kstest's
//     Driver.Dropped, kafkaio's dropped-records metric), as Kafka Streams
//     records an empty set in its dropped-records sensor.
//   - Only negative partitions (such as a single -1): the record is written
//     once, partitioned by key as without the option, as Kafka Streams does
//     when partitions returns an empty Optional.
//   - A negative partition with others, or a partition of numPartitions or
//     more, is a production error naming the topic, the sink node and the
//     partition, handled as PartitionWith's errors: nothing of the record is
//     written. (Kafka Streams' producer rejects a negative or out-of-range
//     partition in the set.)
//
// Everything else is as for PartitionWith: fn is called for tombstones and
// null keys with the zero values, once per record on the task's goroutine,
// and a panic in it is a processing error of the sink node. Each copy is a
// record of its partition: a downstream task of a Repartition (one per
// partition) processes its copy, and kafkaio produces one record per
// partition, inside the transaction under exactly-once. K and V must be the
// stream's types; the option on any other operator, a fn of other types, a
// nil fn, or a PartitionWith on the same node is a Build error naming the
// node.
func PartitionsWith[K, V any](fn func(dst []int32, topic string, k K, v V, numPartitions int32) []int32) Opt {
	return withPartitioner(fn, fn == nil, true)
}

// NameOf returns the name that a [Named] among opts gives, or "". Packages
// that build stateful operators on [Process] (such as dedupe) name their
// stores with it, as the operators of this package do.
func NameOf(opts ...Opt) string { return collect(opts).name }

// WithStores connects the named key-value stores to a [Process] or
// [ProcessValues] node. A store named here for the first time is created
// (with a changelog topic "<appID>-<name>-changelog"); naming it on several
// such nodes shares it, which puts them in one sub-topology. An empty name,
// or WithStores on any other operator, is a Build error.
func WithStores(names ...string) Opt {
	return optFunc(func(o *options) { o.stores = append(o.stores, names...) })
}
