package kafkaio

import (
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	kstream "github.com/kstreamgo/kstream"
)

// Opt configures an App.
type Opt func(*config)

// Policy says what happens to a record that fails: kstream.Policy.
type Policy = kstream.Policy

// The policies (see kstream.Policy).
const (
	// PolicyFail stops the application: Run returns an error naming the
	// topic, partition, offset and node. It is the default.
	PolicyFail = kstream.PolicyFail
	// PolicySkip logs the failure (log/slog), counts it, and goes on.
	PolicySkip = kstream.PolicySkip
	// PolicyDeadLetter writes the raw record to the dead-letter topic with
	// headers describing the failure (inside the transaction under
	// exactly-once), counts it, and goes on.
	PolicyDeadLetter = kstream.PolicyDeadLetter
)

type config struct {
	appID           string
	brokers         []string
	stateDir        string
	exactlyOnce     bool
	commitInterval  time.Duration
	workers         int
	maxBatch        int
	maxTaskIdle     time.Duration
	nodeMetrics     bool
	purgeInterval   time.Duration
	clientOpts      []kgo.Opt
	onDeserialize   Policy
	onProcess       Policy
	onProduce       Policy
	dlqTopic        string
	instanceID      string
	logger          *slog.Logger
	partitions      int32
	replication     int16             // 0: the broker's default
	topicConfigs    map[string]string // InternalTopicConfig
	memoryBudget    int64
	standbyReplicas int
	warmupReplicas  int
	acceptableLag   int64
	advertisedAddr  string
	tracerProvider  trace.TracerProvider
	meterProvider   metric.MeterProvider
	onStateChange   func(from, to State)
	// reset holds the options of Reset (ResetToTime, ResetDryRun); nil
	// when none was given. See resetConfig in reset.go.
	reset *resetConfig
}

// MemoryBudget bounds the memory of the instance's persistent state (with
// StateDir): the read cache and Pebble's caches and memtables together,
// whatever the number of stores and partitions. Default: 256 MiB.
func MemoryBudget(bytes int64) Opt { return func(c *config) { c.memoryBudget = bytes } }

// StandbyReplicas keeps n warm copies of every stateful task's stores on
// other instances of the application (as Kafka Streams'
// num.standby.replicas): each is kept current from the changelogs, and when
// the task's instance leaves, the group gives the task to an instance holding
// a copy, which restores only the changelog tail it had not applied yet. With
// StateDir the copies live in the state directory and survive restarts;
// without it, in memory. A source table's store (its changelog is its input
// topic) has no standby. Default 0; a copy needs another instance: a single
// instance holds none.
func StandbyReplicas(n int) Opt { return func(c *config) { c.standbyReplicas = n } }

// WarmupReplicas sets how many warmup replicas may exist at once (Kafka
// Streams' max.warmup.replicas; default 2, as there; 0 turns warmups off).
// With warmups, stateful tasks move between instances only once their new
// instance holds their state (Kafka Streams' high-availability task
// assignment, KIP-441): when the balance moves a stateful task (an instance
// joined, say) to an instance that has no copy of its state within
// AcceptableRecoveryLag (a standby, or with StateDir local state, such as
// a restarted instance's), the task stays where it runs, and the other
// instance gets a warmup replica of it: a standby, kept current from the
// changelogs. Once the warmup has caught up, its instance asks the group
// for a rebalance, and the task moves, restoring only the tail its warmup
// had not applied. The next tasks to move get their warmups as those
// finish. A task whose instance left moves at once, as without warmups.
// Without warmups, a task moves as soon as the balance says, and its new
// instance restores it while it is unavailable. Every instance of an
// application must use the same setting.
func WarmupReplicas(n int) Opt { return func(c *config) { c.warmupReplicas = n } }

// AcceptableRecoveryLag is how many changelog records a standby or warmup
// replica, or the local state in StateDir of a task the instance does not
// run (its checkpoint), may be behind for its instance to count as holding
// the task's state (Kafka Streams' acceptable.recovery.lag), summed over the
// task's changelog partitions. Default: 10,000; 0: none behind. The task restores what its replica was behind when it moves. See
// WarmupReplicas.
func AcceptableRecoveryLag(records int64) Opt { return func(c *config) { c.acceptableLag = records } }

// AdvertisedAddr is the address ("host:port") at which other instances and
// clients reach this instance's interactive queries (StoreHandler). It is
// advertised to the group, so that every instance can tell which instance
// holds a key (StoreReader.Hosts) and send a query there, as Kafka Streams'
// application.server. Default: none; the instance's stores are then
// queryable only in process, and key discovery does not list it.
func AdvertisedAddr(hostPort string) Opt { return func(c *config) { c.advertisedAddr = hostPort } }

// TracerProvider sets where the app's spans go: one span per task batch
// ("kstream.process", linked to the W3C trace contexts found in the batch's
// input record headers, whose context the batch's output records carry in
// their traceparent header) and one per commit ("kstream.commit"). Default:
// OpenTelemetry's global provider, which records nothing until the program
// installs an SDK.
func TracerProvider(tp trace.TracerProvider) Opt { return func(c *config) { c.tracerProvider = tp } }

// MeterProvider sets where the app's metrics go (see the package doc for
// the list). Default: OpenTelemetry's global provider.
func MeterProvider(mp metric.MeterProvider) Opt { return func(c *config) { c.meterProvider = mp } }

// AppID names the application: its consumer group, the prefix of its internal
// topics, and of its transactional IDs. Required.
func AppID(id string) Opt { return func(c *config) { c.appID = id } }

// Brokers lists the bootstrap brokers (host:port). Required.
func Brokers(addrs ...string) Opt { return func(c *config) { c.brokers = append(c.brokers, addrs...) } }

// StateDir is where the instance keeps local state: its stores in one
// Pebble database (behind one read cache) with a checkpoint per task, so that
// a restarted or returning task replays only the changelog tail after its
// checkpoint, and a restarted instance reads its global tables' topics only
// after theirs (global stores are in the database too, within MemoryBudget);
// and its stable instance ID (so that a restarted exactly-once
// instance fences its previous incarnation at once). Default: none
// (in-memory stores restored in full from their changelogs, global tables
// read in full from their topics at every start, a random
// instance ID).
//
// The database is in a directory named by the app ID, "<dir>/<appID>", so
// that apps can share a StateDir, one after another or at once, without
// seeing each other's stores (as Kafka Streams' state.dir), and [Reset]
// removes one app's state. The instance ID file "<dir>/instance-id" is
// shared: transactional IDs also hold the app ID.
func StateDir(dir string) Opt { return func(c *config) { c.stateDir = dir } }

// ExactlyOnce turns on exactly-once processing: one transactional producer
// per instance, read-committed consumers, and output, changelog and
// dead-letter records committed atomically with the input offsets. Default
// commit interval: 100 ms.
func ExactlyOnce() Opt { return func(c *config) { c.exactlyOnce = true } }

// CommitInterval sets how often offsets (and transactions) are committed.
// Default: 30 s at-least-once (Kafka Streams' default), 100 ms exactly-once,
// and 100 ms at-least-once when MaxBatch is 1 (latency-oriented). With a
// StateDir, the app also commits sooner when its tasks' store writes not yet
// committed take 32 MiB (the last value of each key written, and about 80
// bytes per key of bookkeeping), so that their write batches stay bounded.
func CommitInterval(d time.Duration) Opt { return func(c *config) { c.commitInterval = d } }

// Workers sets the number of goroutines that run tasks. Default: GOMAXPROCS.
func Workers(n int) Opt { return func(c *config) { c.workers = n } }

// MaxBatch caps the records taken in one poll, and so the batch a task
// processes at once. Default: 10,000. 1 processes records one by one, for
// latency: it also sets the producer's linger to 0 (franz-go's default is
// 10 ms) and, unless CommitInterval says otherwise, commits every 100 ms.
func MaxBatch(n int) Opt { return func(c *config) { c.maxBatch = n } }

// MaxTaskIdle is Kafka Streams' max.task.idle.ms: how a task that reads
// several topics (a join, a merge, a cogroup: partition p of each) waits
// for all of them, so that it processes their records in timestamp order.
// A task takes the record with the smallest timestamp among its inputs'
// next records; when one input has no record buffered, processing would
// run ahead of it in time (and a join would drop that input's records as
// late, or miss matches), so:
//
//   - 0 (the default): the task waits while that input is known to have
//     records the consumer has not fetched yet (after a restart with a
//     backlog, say), and not for records not produced yet: a caught-up
//     input never delays the others.
//   - d > 0: it also waits up to d for records to be produced to a
//     caught-up input, counted from when the task first found that input
//     caught up with nothing buffered, until records come for it (Kafka
//     Streams' per-partition idle deadline, KIP-695): an input that stays
//     empty delays the others once, not every batch.
//   - negative: it never waits, and orders only the records it has.
//
// A wait ends after max(d, 30 s) at most (longer than the transaction of a
// killed exactly-once instance keeps the group's offsets pending); the task
// then processes what it has, logging it (Kafka Streams' "enforced
// processing"). A task holding max(4*MaxBatch, 10,000) records back pauses
// fetching them until the wait ends, as Kafka Streams pauses a full
// partition buffer. Offset commits (and transactions) stop at the first
// record held back, so that a restart, or the partition's next owner after
// a rebalance, processes it.
func MaxTaskIdle(d time.Duration) Opt { return func(c *config) { c.maxTaskIdle = d } }

// NodeMetrics makes the app count the records each node of the topology
// receives, reported per task and node as the metric kstream.node.records
// (Kafka Streams' process-total of a processor node, which it records only
// at the DEBUG recording level, as here only with this option: each record
// then costs one more function call per node it goes through). Default:
// off; the records read per source topic and written per topic are always
// counted (kstream.records.processed, kstream.records.produced).
func NodeMetrics() Opt { return func(c *config) { c.nodeMetrics = true } }

// RepartitionPurgeInterval is Kafka Streams' repartition.purge.interval.ms:
// how often, at most, an instance deletes the records of the repartition
// topics its tasks read up to the offsets it committed (Kafka's
// DeleteRecords, after a commit). Default: 30 s; negative: never. The
// repartition topics kstream creates keep records until then, however old
// (retention.ms -1), in 50 MiB segments, as Kafka Streams' do.
func RepartitionPurgeInterval(d time.Duration) Opt { return func(c *config) { c.purgeInterval = d } }

// ClientOpts passes franz-go options through to the clients, after kstream's
// own (so they win): SASL, TLS, timeouts, logging... Not ConsumeResetOffset,
// which Run refuses: it would apply to repartition and changelog topics too;
// kstream.FromLatest makes a source start at the end.
func ClientOpts(opts ...kgo.Opt) Opt {
	return func(c *config) { c.clientOpts = append(c.clientOpts, opts...) }
}

// OnDeserializationError sets the policy for records that do not decode.
func OnDeserializationError(p Policy) Opt { return func(c *config) { c.onDeserialize = p } }

// OnProcessingError sets the policy for records whose processing fails
// (an error from a Processor, a panic in user code, an encoding error).
func OnProcessingError(p Policy) Opt { return func(c *config) { c.onProcess = p } }

// OnProductionError sets the policy for output records that Kafka refuses
// (too large, for example). When the broker refuses a whole batch because one
// record is too large, each record of the batch is retried alone, so that the
// policy applies to that record only (the retried records may then come after
// later records of their partition). Under exactly-once a production error
// aborts the transaction and fails: the policy does not apply. It does
// apply, under either guarantee, to the records that a kstream.PartitionWith
// or PartitionsWith partitioner places out of range, or in a topic whose
// partition count cannot be found: they are rejected in the task, before
// anything of them is produced.
func OnProductionError(p Policy) Opt { return func(c *config) { c.onProduce = p } }

// DeadLetterTopic names the dead-letter topic. Default: "<appID>-dlq",
// created at start when a policy uses it.
func DeadLetterTopic(topic string) Opt { return func(c *config) { c.dlqTopic = topic } }

// InstanceID sets a stable name for this instance, used in its
// transactional ID. Default: read from (or written to) StateDir, else random.
func InstanceID(id string) Opt { return func(c *config) { c.instanceID = id } }

// Logger sets the logger. Default: slog.Default().
func Logger(l *slog.Logger) Opt { return func(c *config) { c.logger = l } }

// InternalTopicPartitions sets the partition count of repartition topics
// whose count cannot be derived from a source topic. Default: derived.
func InternalTopicPartitions(n int32) Opt { return func(c *config) { c.partitions = n } }

// InternalTopicReplication sets the replication factor of the internal
// topics the app creates: repartition topics, changelogs and the
// dead-letter topic (Kafka Streams' replication.factor). Default (or 0, or
// -1): the broker's default.replication.factor. Topics that exist are left
// as they are.
func InternalTopicReplication(n int16) Opt { return func(c *config) { c.replication = n } }

// InternalTopicConfig sets a topic config (min.insync.replicas,
// max.message.bytes, segment.bytes...) of the internal topics the app
// creates, as Kafka Streams' "topic."-prefixed configs do; given several
// times, the configs add up, and the last value of a key wins. They
// override kstream's own (a repartition topic's retention.ms -1 and 50 MiB
// segments), except cleanup.policy, which NewApp refuses: changelogs must
// be compacted and repartition topics must not be. Topics that exist are
// left as they are.
func InternalTopicConfig(key, value string) Opt {
	return func(c *config) {
		if c.topicConfigs == nil {
			c.topicConfigs = map[string]string{}
		}
		c.topicConfigs[key] = value
	}
}
