package kafkaio

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/internal/runtime"
	"github.com/kstreamgo/kstream/state"
)

// App runs a topology on Kafka: one consumer group member of the application
// (its app ID), running the tasks the group assigns to it.
type App struct {
	topo *kstream.Topology
	g    *graph.Topology
	cfg  config
	log  *slog.Logger
	rcfg runtime.Config

	mu       sync.Mutex
	tasks    map[runtime.TaskID]*task
	assigned map[runtime.TaskID]bool
	// unowned is the tasks found assigned when the member (re)joined the
	// group without owning their partitions: their revocation was not
	// delivered (see noteOwned). The loop drops them.
	unowned map[runtime.TaskID]bool
	// unprocessed is the last poll's records when the app stopped before
	// it processed them (during the restore of new tasks): the commits
	// that follow, at shutdown and on revoke, stop at them (heldOffsets).
	unprocessed kgo.Fetches
	// joined is set once the group assigned this member its work (under
	// mu); state is the App's State.
	joined bool
	state  atomic.Int32
	// storeMu is held while tasks process, punctuate, commit or close, and
	// by interactive queries reading the tasks' stores.
	storeMu sync.Mutex

	cl   *kgo.Client
	sess *kgo.GroupTransactSession
	// sessOpts makes the transactional session, again after a failed
	// transaction (see recoverTxn). failures counts the commits in a row
	// that failed: transactions recovered from (recoverTxn), or
	// at-least-once commits postponed (postponeCommit). Main loop only.
	sessOpts []kgo.Opt
	failures int
	// txnFailed holds a production error that failed the open transaction
	// (see txnRecoverable): the next commit aborts it and recovers.
	// sessGen numbers the transactional sessions; ctx, with which records
	// are produced, carries it, so that the records of a failed session,
	// which fail by design as it closes, do not fail its successor.
	txnFailed atomic.Pointer[error]
	sessGen   atomic.Int64
	adm       *kadm.Client
	admCl     *kgo.Client
	restorers restorers
	soloCl    *kgo.Client // at-least-once: retries records of refused batches one by one
	soloWG    sync.WaitGroup
	soloMu    sync.Mutex
	plan      *topicPlan
	global    *globalTables
	db        *state.DB
	balancer  *balancer
	tel       *telemetry
	standby   *standbys // nil without StandbyReplicas; set under mu
	// assignGen counts changes of assigned, so that the standbys are
	// reconciled only when the assignment changed.
	assignGen   atomic.Int64
	standbySeen struct {
		tasks *[]taskKey
		gen   int64
	}

	// Acknowledged changelog offsets ("topic/partition" -> next offset),
	// for the checkpoints.
	ackMu     sync.Mutex
	acked     map[string]int64
	outTopics map[string]*outTopic // every topic the app writes, but those of ToFunc
	// funcTopics holds the topics that ToFunc nodes named, looked up on
	// first use (see lookupTopic), under funcMu: tasks producing on the
	// workers and sinks with a partitioner (partitionCount) look them up.
	funcMu     sync.Mutex
	funcTopics map[string]funcTopic
	// ctx is what records are produced with: ctxBase, which stopping does
	// not cancel, with the transactional session's number (sessGen).
	ctx, ctxBase context.Context

	fatalErr atomic.Pointer[error]
	// dirty is set when records were polled or produced since the last
	// commit: an idle commit interval commits nothing (an empty transaction
	// costs round trips, and franz-go stalls after one).
	dirty    atomic.Bool
	running  atomic.Bool
	crash    atomic.Bool // stop without committing (tests)
	ready    chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	cancel   context.CancelFunc

	// At-least-once without a state directory, commits do not stop the
	// loop (see commitAsync): epoch collects the records produced since the
	// last commit; sealed, the earlier epochs waiting for their records'
	// acknowledgements before their offsets are committed. Main loop only.
	epoch  *commitEpoch
	sealed []*commitEpoch

	// probeAfter: no lag probe before (probeLags, loop goroutine).
	probeAfter time.Time
	// unpause: the partitions pauseHeld is to resume (under mu).
	unpause map[string][]int32
	// Repartition purges (purge): the last one's start, the offsets
	// already deleted to, the one running.
	purgedAt time.Time
	purgedTo map[string]map[int32]int64
	purging  sync.WaitGroup

	processed, skipped, restored, commits, aborts atomic.Int64
	enforced                                      atomic.Int64 // see Stats.EnforcedProcessing
	// rebalance asks the loop for a rebalance: a warmup replica caught up
	// (the standbys' goroutine sets it).
	rebalance atomic.Bool
	progress  progress
}

// task is a runtime task plus the buffers the app reuses for it every poll.
type task struct {
	rt *runtime.Task
	// Telemetry: the task's metric attributes; the lag of each input topic
	// as of its last fetch (under App.mu); the skipped, dropped and node
	// counts already reported.
	attrs    metric.MeasurementOption
	byTopic  map[string]metric.MeasurementOption // see topicAttrs
	produced []producedTopic                     // produce's per-topic counts, reused
	lag      map[string]int64
	seen     failuresSeen // reported to the metrics
	// nodeSeen and nodeAttrs are the node counts already reported and
	// their attributes, by node ID (NodeMetrics).
	nodeSeen  []int64
	nodeAttrs []metric.MeasurementOption
	ckpt      map[string]int64 // the offsets of its last checkpoint
	raw       []graph.RawRecord
	batches   []batch
	err       error
	// inputs are the topics the task reads, when there are several (see
	// inTimeOrder); waitSince is when it began to wait for one of them,
	// holding records back, zero when it does not; polled marks it active
	// in the current poll; gaveUp, that the wait function did not wait
	// for a caught-up input (see waiter).
	inputs    []string
	waitSince time.Time
	polled    bool
	gaveUp    bool
	// idleSince is, for each input found caught up with nothing buffered,
	// when it was first found so; records fetched for it clear it (the
	// deadline of MaxTaskIdle, per input).
	idleSince map[string]time.Time
	// probedAt is when probeLags last looked again at the lags of the
	// inputs it waits for; paused, the partitions pauseHeld paused.
	probedAt time.Time
	paused   map[string][]int32
}

// NewApp prepares an application instance for topo. Nothing connects until Run.
func NewApp(topo *kstream.Topology, opts ...Opt) (*App, error) {
	cfg := config{maxBatch: 10000, workers: goruntime.GOMAXPROCS(0), acceptableLag: 10_000, warmupReplicas: 2}
	for _, o := range opts {
		o(&cfg)
	}
	if err := checkAppID(cfg.appID); err != nil {
		return nil, err
	}
	if len(cfg.brokers) == 0 {
		return nil, errors.New("kafkaio: Brokers is required")
	}
	if cfg.reset != nil {
		return nil, errors.New("kafkaio: ResetToTime and ResetDryRun are options of Reset, not of NewApp")
	}
	if _, ok := cfg.topicConfigs["cleanup.policy"]; ok {
		return nil, errors.New("kafkaio: InternalTopicConfig cannot set cleanup.policy: changelogs are compacted, repartition topics are not")
	}
	if cfg.replication < -1 {
		return nil, fmt.Errorf("kafkaio: InternalTopicReplication(%d): want a positive replication factor, or -1 for the broker's default", cfg.replication)
	}
	if cfg.acceptableLag < 0 {
		return nil, fmt.Errorf("kafkaio: AcceptableRecoveryLag(%d): want 0 or more records", cfg.acceptableLag)
	}
	if cfg.maxBatch <= 0 {
		cfg.maxBatch = 10000
	}
	if cfg.workers <= 0 {
		cfg.workers = 1
	}
	if cfg.commitInterval <= 0 {
		switch {
		case cfg.exactlyOnce, cfg.maxBatch == 1:
			cfg.commitInterval = 100 * time.Millisecond
		default:
			cfg.commitInterval = 30 * time.Second
		}
	}
	if cfg.purgeInterval == 0 {
		cfg.purgeInterval = 30 * time.Second
	}
	if cfg.dlqTopic == "" {
		cfg.dlqTopic = cfg.appID + "-dlq"
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	a := &App{topo: topo, g: topo.Graph(), cfg: cfg, log: cfg.logger.With("app", cfg.appID),
		tasks: map[runtime.TaskID]*task{}, assigned: map[runtime.TaskID]bool{}, acked: map[string]int64{},
		ready: make(chan struct{}), done: make(chan struct{})}
	// A production error found in a task (a partitioner's partition out of
	// range, kstream.PartitionWith, PartitionsWith) comes before the record
	// is produced, so the production policy applies to it under
	// exactly-once too: nothing of it is in the transaction.
	onError := runtime.PolicyHandler(cfg.onDeserialize, cfg.onProcess, cfg.onProduce)
	a.rcfg = runtime.Config{AppID: cfg.appID, OnError: onError, DeadLetterTopic: cfg.dlqTopic, Logger: a.log,
		Partitions: a.partitionCount, CountNodes: cfg.nodeMetrics}
	return a, nil
}

// checkAppID checks the app ID: required, and usable as a directory name
// (it names the app's directory in StateDir).
func checkAppID(id string) error {
	switch {
	case id == "":
		return errors.New("kafkaio: AppID is required")
	case id == "." || id == ".." || strings.ContainsAny(id, `/\`+"\x00"):
		return fmt.Errorf("kafkaio: AppID %q: it names the app's directory in StateDir, so it cannot be . or .. or hold / or \\", id)
	}
	return nil
}

// stateDBPath is where the app appID keeps its state database in the state
// directory dir: in a directory of its own, so that apps sharing a StateDir
// never see each other's stores, and Reset can remove one app's state.
func stateDBPath(dir, appID string) string { return filepath.Join(dir, appID, "pebble") }

func (a *App) instanceID() (string, error) {
	if a.cfg.instanceID != "" {
		return a.cfg.instanceID, nil
	}
	random := func() string {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b)
	}
	if a.cfg.stateDir == "" {
		return random(), nil
	}
	if err := os.MkdirAll(a.cfg.stateDir, 0o755); err != nil {
		return "", fmt.Errorf("kafkaio: state directory: %w", err)
	}
	path := filepath.Join(a.cfg.stateDir, "instance-id")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	id := random()
	if err := os.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("kafkaio: state directory: %w", err)
	}
	return id, nil
}

// Run connects, creates the internal topics, joins the group and processes
// until ctx ends (then it commits and returns nil) or a fatal error occurs
// (returned). Run may be called once.
func (a *App) Run(ctx context.Context) (err error) {
	if !a.running.CompareAndSwap(false, true) {
		return errors.New("kafkaio: Run called twice")
	}
	defer close(a.done)
	defer func() {
		if err != nil {
			a.setState(StateError)
		} else {
			a.setState(StateNotRunning)
		}
	}()
	a.setState(StateRebalancing)
	ctx, a.cancel = context.WithCancel(ctx)
	defer a.cancel()
	// Records are produced with a context that stopping does not cancel: a
	// record dropped at shutdown would be missing from the final commit.
	a.ctxBase = context.WithoutCancel(ctx)
	a.ctx = context.WithValue(a.ctxBase, sessGenKey{}, int64(0))
	// (The admin client takes the consumers' reset offset too, for the
	// check below.)
	base := append([]kgo.Opt{kgo.SeedBrokers(a.cfg.brokers...), kgo.ConsumeResetOffset(resetOffset)}, a.cfg.clientOpts...)
	if a.admCl, err = kgo.NewClient(base...); err != nil {
		return fmt.Errorf("kafkaio: %w", err)
	}
	defer a.admCl.Close()
	if o, _ := a.admCl.OptValue(kgo.ConsumeResetOffset).(kgo.Offset); o != resetOffset {
		// It would apply to repartition and changelog topics too, whose
		// records written before a task starts would be skipped.
		return errors.New("kafkaio: ClientOpts sets ConsumeResetOffset; use kstream.FromLatest on the sources that should start at the end")
	}
	a.adm = kadm.NewClient(a.admCl)
	if a.plan, err = planTopics(ctx, a.admCl, a.g, &a.cfg); err != nil {
		return err
	}
	a.outTopics, a.funcTopics = map[string]*outTopic{}, map[string]funcTopic{}
	for t, n := range a.plan.partitions {
		a.outTopics[t] = &outTopic{name: t, partitions: max(n, 1)}
	}
	a.restorers.opts = append([]kgo.Opt{kgo.SeedBrokers(a.cfg.brokers...)}, a.cfg.clientOpts...)
	defer a.restorers.close()

	if a.cfg.stateDir != "" {
		budget := a.cfg.memoryBudget
		if budget <= 0 {
			budget = 256 << 20
		}
		if a.db, err = state.Open(stateDBPath(a.cfg.stateDir, a.cfg.appID), state.MemoryBudget(budget)); err != nil {
			return fmt.Errorf("kafkaio: opening the state directory: %w", err)
		}
		if legacy := filepath.Join(a.cfg.stateDir, "pebble"); fileExists(filepath.Join(legacy, "LOCK")) {
			a.log.Warn("kstream: the state directory holds a state database of an older kstream, shared by its apps and no longer read: "+
				"the tasks restore from their changelogs; delete it once no older instance uses it", "path", legacy)
		}
		defer a.db.Close()
		a.rcfg.DB = a.db
	}
	if a.tel, err = newTelemetry(a); err != nil {
		return err
	}
	defer func() { _ = a.tel.reg.Unregister() }()
	if err := a.startGlobal(ctx); err != nil {
		return err
	}
	a.balancer = &balancer{groups: make([][]string, len(a.g.SubTopologies)),
		stateful: make([]bool, len(a.g.SubTopologies)), standbys: a.cfg.standbyReplicas, warmups: max(a.cfg.warmupReplicas, 0), addr: a.cfg.advertisedAddr}
	if a.cfg.exactlyOnce {
		a.balancer.onJoin = a.noteOwned
	}
	for _, st := range a.g.SubTopologies {
		if st.Global {
			continue
		}
		for _, ref := range st.SourceTopics() {
			a.balancer.groups[st.ID] = append(a.balancer.groups[st.ID], ref.Resolve(a.cfg.appID))
		}
		for _, spec := range st.Stores {
			if !spec.Global && !spec.FromSource {
				a.balancer.stateful[st.ID] = true
			}
		}
	}
	// Before the first join: a restarted instance's state, and how far
	// behind it is.
	a.advertiseLocal()
	if l := a.balancer.local.Load(); l != nil {
		caught := a.localCaughtUp(ctx, a.adm, *l)
		a.balancer.localCaught.Store(&caught)
	}
	if a.cfg.standbyReplicas > 0 || a.cfg.warmupReplicas > 0 {
		if err := a.startStandbys(ctx); err != nil {
			return err
		}
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(a.cfg.brokers...),
		kgo.ConsumerGroup(a.cfg.appID),
		kgo.ConsumeTopics(a.plan.sources...),
		kgo.Balancers(a.balancer),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(resetOffset),
		// Control records advance the committed offsets past transaction
		// markers, so that a caught-up group shows no lag.
		kgo.KeepControlRecords(),
		// The Java consumer's fetch.max.wait.ms, which Kafka Streams
		// keeps: franz-go's 5 s default delays, by up to that, the first
		// fetch of partitions newly assigned (a failover, a rebalance)
		// while a fetch from their broker waits for data.
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.OnPartitionsAssigned(a.onAssigned),
		kgo.OnPartitionsRevoked(a.onRevoked),
		kgo.OnPartitionsLost(a.onLost),
	}
	if len(a.plan.latest) > 0 {
		opts = append(opts, kgo.AdjustFetchOffsetsFn(a.fromLatest))
	}
	if a.cfg.maxBatch == 1 {
		// Latency-oriented: no linger either (ClientOpts may override).
		opts = append(opts, kgo.ProducerLinger(0))
	}
	if a.cfg.exactlyOnce {
		id, err := a.instanceID()
		if err != nil {
			return err
		}
		opts = append(opts,
			kgo.TransactionalID(a.cfg.appID+"-"+id),
			kgo.TransactionTimeout(10*time.Second),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.RequireStableFetchOffsets(),
		)
	}
	opts = append(opts, a.cfg.clientOpts...)
	if !a.cfg.exactlyOnce {
		solo := append([]kgo.Opt{kgo.SeedBrokers(a.cfg.brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ProducerLinger(0)}, a.cfg.clientOpts...)
		if a.soloCl, err = kgo.NewClient(solo...); err != nil {
			return fmt.Errorf("kafkaio: %w", err)
		}
		defer a.soloCl.Close()
	}
	if a.cfg.exactlyOnce {
		a.sessOpts = opts
		if a.sess, err = kgo.NewGroupTransactSession(opts...); err != nil {
			return fmt.Errorf("kafkaio: %w", err)
		}
		a.cl = a.sess.Client()
	} else if a.cl, err = kgo.NewClient(opts...); err != nil {
		return fmt.Errorf("kafkaio: %w", err)
	}
	if !a.cfg.exactlyOnce && a.db == nil {
		a.epoch = &commitEpoch{}
	}
	close(a.ready)
	a.log.Info("kstream: started", "exactly_once", a.cfg.exactlyOnce, "sources", a.plan.sources)
	return a.loop(ctx)
}

// Close stops Run, committing what was processed, and waits for it to
// return. It is safe to call more than once and from any goroutine.
func (a *App) Close() {
	a.stopOnce.Do(func() {
		if a.cancel != nil {
			a.cancel()
		}
	})
	if a.running.Load() {
		<-a.done
	}
}

// Done is closed when Run has returned.
func (a *App) Done() <-chan struct{} { return a.done }

func isCtxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func (a *App) setFatal(err error) {
	a.fatalErr.CompareAndSwap(nil, &err)
}

func (a *App) fatal() error {
	if p := a.fatalErr.Load(); p != nil {
		return *p
	}
	return nil
}

func (a *App) loop(ctx context.Context) error {
	if a.sess != nil {
		if err := a.sess.Begin(); err != nil {
			return a.shutdown(fmt.Errorf("kafkaio: beginning transaction: %w", err))
		}
	}
	lastCommit := time.Now()
	for {
		if err := a.fatal(); err != nil {
			return a.shutdown(err)
		}
		if ctx.Err() != nil {
			return a.shutdown(nil)
		}
		if a.rebalance.CompareAndSwap(true, false) {
			a.log.Info("kstream: a warmup replica caught up: asking the group for a rebalance")
			a.cl.ForceRebalance()
		}
		wait := 100 * time.Millisecond
		if a.holding() {
			wait = 10 * time.Millisecond // the tasks holding records back look again soon
		}
		if a.dirty.Load() {
			wait = min(a.cfg.commitInterval-time.Since(lastCommit), wait)
		}
		pollCtx, cancel := context.WithTimeout(ctx, max(wait, time.Millisecond))
		var fetches kgo.Fetches
		if a.sess != nil {
			fetches = a.sess.PollRecords(pollCtx, a.cfg.maxBatch)
		} else {
			fetches = a.cl.PollRecords(pollCtx, a.cfg.maxBatch)
		}
		cancel()
		if fetches.IsClientClosed() {
			return a.shutdown(errors.New("kafkaio: client closed"))
		}
		fetches.EachError(func(t string, p int32, err error) {
			if !isCtxErr(err) {
				a.log.Warn("kstream: fetch error", "topic", t, "partition", p, "error", err)
			}
		})
		if err := a.ensureTasks(ctx); err != nil {
			if ctx.Err() != nil {
				// Stopped while new tasks restored: the records just
				// polled were not processed.
				a.mu.Lock()
				a.unprocessed = fetches
				a.mu.Unlock()
				return a.shutdown(nil)
			}
			return a.shutdown(err)
		}
		a.updateRunning()
		if err := a.work(ctx, fetches, &lastCommit); err != nil {
			var te *txnError
			if !errors.As(err, &te) {
				return a.shutdown(err)
			}
			if err := a.recoverTxn(ctx, te); err != nil {
				return a.shutdown(err)
			}
			lastCommit = time.Now()
			continue
		}
		a.purge()
		if a.sess != nil {
			a.sess.AllowRebalance()
		} else {
			a.cl.AllowRebalance()
		}
	}
}

// purge deletes the records of the repartition topics that the instance's
// tasks read, up to the offsets committed, as Kafka Streams does after
// commits: at most every RepartitionPurgeInterval, one request at a time,
// in the background (a failure is logged; the next purge covers it). It
// runs on the loop goroutine, while rebalances are blocked: the committed
// offsets are those of partitions the instance still owns.
func (a *App) purge() {
	if len(a.plan.purged) == 0 || a.cfg.purgeInterval < 0 || time.Since(a.purgedAt) < a.cfg.purgeInterval {
		return
	}
	a.purging.Wait() // the previous one: done long ago, an interval passed
	var offs kadm.Offsets
	for topic, ps := range a.cl.CommittedOffsets() {
		if !a.plan.purged[topic] {
			continue
		}
		for p, o := range ps {
			if o.Offset > a.purgedTo[topic][p] {
				offs.Add(kadm.Offset{Topic: topic, Partition: p, At: o.Offset, LeaderEpoch: -1})
			}
		}
	}
	if len(offs) == 0 {
		return
	}
	a.purgedAt = time.Now()
	if a.purgedTo == nil {
		a.purgedTo = map[string]map[int32]int64{}
	}
	a.purging.Go(func() {
		ctx, cancel := context.WithTimeout(a.ctxBase, 30*time.Second)
		defer cancel()
		resp, err := a.adm.DeleteRecords(ctx, offs)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			a.log.Warn("kstream: purging repartition topics", "error", err)
			return
		}
		resp.Each(func(r kadm.DeleteRecordsResponse) {
			if a.purgedTo[r.Topic] == nil {
				a.purgedTo[r.Topic] = map[int32]int64{}
			}
			a.purgedTo[r.Topic][r.Partition] = r.LowWatermark
		})
	})
}

// fromLatest moves the partitions of kstream.FromLatest sources that the
// group has no committed offset for (kgo gives them the reset offset, the
// start) to their end.
func (a *App) fromLatest(_ context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	for topic, ps := range offsets {
		if !a.plan.latest[topic] {
			continue
		}
		for p, o := range ps {
			if o.EpochOffset().Offset == resetOffset.EpochOffset().Offset {
				ps[p] = kgo.NewOffset().AtEnd()
			}
		}
	}
	return offsets, nil
}

// resetOffset is where the group consumer starts a partition that it has no
// committed offset for: the start, always for internal topics, and for
// sources unless kstream.FromLatest says otherwise.
var resetOffset = kgo.NewOffset().AtStart()

// holding reports whether a task holds records back (MaxTaskIdle).
func (a *App) holding() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range a.tasks {
		if !t.waitSince.IsZero() {
			return true
		}
	}
	return false
}

// heldOffsets returns, for each input partition of which a task holds
// records back (MaxTaskIdle), or of which the app stopped before it
// processed the last poll's records (unprocessed), the offset of the first
// of them: offset commits stop there, so that a restart or the partition's
// next owner processes them. Called with storeMu held, as every commit is.
func (a *App) heldOffsets() map[string]map[int32]kgo.EpochOffset {
	var held map[string]map[int32]kgo.EpochOffset
	// hold stops the commits of a partition at o, or where they stop
	// already if that is earlier.
	hold := func(topic string, p int32, o kgo.EpochOffset) {
		if held == nil {
			held = map[string]map[int32]kgo.EpochOffset{}
		}
		if held[topic] == nil {
			held[topic] = map[int32]kgo.EpochOffset{}
		}
		if h, ok := held[topic][p]; !ok || o.Offset < h.Offset {
			held[topic][p] = o
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range a.tasks {
		if t.waitSince.IsZero() {
			continue
		}
		for _, b := range t.batches {
			if b.next != b.end {
				hold(b.topic, t.rt.ID.Partition, kgo.EpochOffset{Epoch: -1, Offset: t.raw[b.next].Offset})
			}
		}
	}
	a.unprocessed.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) > 0 {
			hold(p.Topic, p.Partition, kgo.EpochOffset{Epoch: p.Records[0].LeaderEpoch, Offset: p.Records[0].Offset})
		}
	})
	return held
}

// toCommit returns the offsets an at-least-once commit commits: the
// consumer's, except where tasks hold records back (held, of heldOffsets).
func (a *App) toCommit(held map[string]map[int32]kgo.EpochOffset) map[string]map[int32]kgo.EpochOffset {
	offs := a.cl.UncommittedOffsets()
	for topic, ps := range held {
		if offs == nil {
			offs = map[string]map[int32]kgo.EpochOffset{}
		}
		if offs[topic] == nil {
			offs[topic] = map[int32]kgo.EpochOffset{}
		}
		maps.Copy(offs[topic], ps)
	}
	return offs
}

// work processes a poll's records, runs the wall-clock punctuations, and
// commits when the interval has passed, holding storeMu: interactive
// queries read the tasks' stores between two polls' work.
func (a *App) work(ctx context.Context, fetches kgo.Fetches, lastCommit *time.Time) error {
	a.storeMu.Lock()
	defer a.storeMu.Unlock()
	if err := a.process(fetches); err != nil {
		return err
	}
	if err := a.punctuate(); err != nil {
		return err
	}
	if fetches.NumRecords() > 0 {
		a.dirty.Store(true)
	}
	// When idle, lastCommit stays old, so the first work after it commits
	// at once.
	if a.dirty.Load() && (time.Since(*lastCommit) >= a.cfg.commitInterval || a.pendingState() >= maxPendingState) {
		_, span := a.tel.tracer.Start(ctx, "kstream.commit", trace.WithSpanKind(trace.SpanKindInternal))
		began := time.Now()
		err := a.commit(ctx)
		a.tel.commitTime.Record(ctx, time.Since(began).Seconds())
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
		if err != nil && !a.postponeCommit(err) {
			return err
		}
		*lastCommit = time.Now()
	} else if len(a.sealed) > 0 {
		return a.commitSealed(ctx)
	}
	return nil
}

// maxPendingState is the memory of the active tasks' store writes not yet
// committed to the state DB (runtime.Task.PendingBytes, summed) at which the
// app commits before its commit interval has passed: a long interval (30 s
// by default at-least-once) over many distinct keys would otherwise hold an
// unbounded batch on the Go heap, outside the memory budget. A third of the
// heap that state.GoMemoryLimit allows beyond the fastcache. A variable for
// tests.
var maxPendingState = 32 << 20

// pendingState returns the size of the active tasks' uncommitted store
// writes.
func (a *App) pendingState() int {
	if a.db == nil {
		return 0
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, t := range a.tasks {
		n += t.rt.PendingBytes()
	}
	return n
}

// process converts the fetched records and runs each task's batches, tasks
// in parallel on the workers.
func (a *App) process(fetches kgo.Fetches) error {
	var active []*task
	var missing error
	a.mu.Lock()
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		id := runtime.TaskID{SubTopology: a.plan.readers[p.Topic], Partition: p.Partition}
		t := a.tasks[id]
		if t == nil {
			missing = fmt.Errorf("kafkaio: records for %s/%d but no task %s", p.Topic, p.Partition, id)
			return
		}
		start := len(t.raw)
		for _, r := range p.Records {
			if r.Attrs.IsControl() {
				continue
			}
			t.raw = append(t.raw, graph.RawRecord{Key: r.Key, Value: r.Value, Timestamp: r.Timestamp.UnixMilli(),
				Headers: kgoToGraphHeaders(r.Headers), Offset: r.Offset})
		}
		end := p.HighWatermark
		if a.cfg.exactlyOnce && p.LastStableOffset >= 0 {
			end = p.LastStableOffset // read committed: what can be read
		}
		t.lag[p.Topic] = max(end-p.Records[len(p.Records)-1].Offset-1, 0)
		if len(t.raw) > start {
			delete(t.idleSince, p.Topic)
			t.batches = append(t.batches, batch{topic: p.Topic, start: start, next: start, reported: start, end: len(t.raw)})
			if !t.polled {
				t.polled = true
				active = append(active, t)
			}
		}
	})
	// Tasks waiting for an input (MaxTaskIdle) look again, fetched
	// records or not: the time they may wait passes.
	for _, t := range a.tasks {
		if !t.waitSince.IsZero() && !t.polled {
			t.polled = true
			active = append(active, t)
		}
	}
	a.mu.Unlock()
	if missing != nil {
		return missing
	}
	a.probeLags(active)
	now := time.Now()
	run := func(t *task) {
		began := time.Now()
		oldest, n := int64(math.MaxInt64), 0
		for _, b := range t.batches {
			if b.next < b.end {
				oldest = min(oldest, t.raw[b.next].Timestamp)
			}
		}
		var span trace.Span // when the task processes something
		var held bool
		wait, enforced := a.waiter(t, now)
		if enforced {
			var waited time.Duration
			if !t.waitSince.IsZero() {
				waited = now.Sub(t.waitSince).Round(time.Millisecond)
			}
			a.log.Info("kstream: task stops waiting for its inputs, which may go out of time order", "task", t.rt.ID.String(),
				"waited", waited, "held", unprocessed(t.batches), "lag", t.lag)
		}
		held, t.err = inTimeOrder(t.raw, t.batches, t.inputs, wait, func(b *batch, from, to int) error {
			if span == nil {
				span = a.tel.batchSpan(t)
			}
			if err := t.rt.Process(b.topic, t.raw[from:to]); err != nil {
				return err
			}
			n += to - from
			return nil
		})
		a.processed.Add(int64(n))
		if n > 0 && (enforced || t.gaveUp) {
			a.enforced.Add(1)
			a.tel.enforced.Add(context.Background(), 1, t.attrs)
		}
		t.gaveUp = false
		if span != nil {
			done := time.Now()
			a.tel.batchDone(t, t.batches, done.Sub(began), oldest, done)
			a.produce(t, a.tel.traceparent(span))
			if t.err != nil {
				span.SetStatus(codes.Error, t.err.Error())
			}
			span.End()
		}
		t.polled = false
		switch {
		case held && t.err == nil:
			if t.waitSince.IsZero() {
				t.waitSince = now
			}
		default:
			t.waitSince = time.Time{}
			clear(t.raw)
			t.raw, t.batches = t.raw[:0], t.batches[:0]
		}
	}
	var total int
	for _, t := range active {
		total += len(t.raw)
	}
	// Small polls run on this goroutine: handing a few records to other
	// goroutines costs more, in wake-ups and latency, than it saves.
	if a.cfg.workers <= 1 || len(active) <= 1 || total < parallelMin {
		for _, t := range active {
			run(t)
		}
	} else {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range min(a.cfg.workers, len(active)) {
			wg.Go(func() {
				for i := int(next.Add(1) - 1); i < len(active); i = int(next.Add(1) - 1) {
					run(active[i])
				}
			})
		}
		wg.Wait()
	}
	a.pauseHeld(active)
	var errs []error
	for _, t := range active {
		if t.err != nil {
			errs = append(errs, t.err)
			t.err = nil
		}
	}
	return errors.Join(errs...)
}

// parallelMin is the number of records of a poll from which its tasks run on
// the workers in parallel.
const parallelMin = 2048

// kgo.RecordHeader and graph.Header have the same layout.
var _ = [1]struct{}{}[unsafe.Sizeof(kgo.RecordHeader{})-unsafe.Sizeof(graph.Header{})]

func kgoToGraphHeaders(h []kgo.RecordHeader) []graph.Header {
	if len(h) == 0 {
		return nil
	}
	return unsafe.Slice((*graph.Header)(unsafe.Pointer(&h[0])), len(h))
}

func graphToKgoHeaders(h []graph.Header) []kgo.RecordHeader {
	if len(h) == 0 {
		return nil
	}
	return unsafe.Slice((*kgo.RecordHeader)(unsafe.Pointer(&h[0])), len(h))
}

// produce sends a task's output: one allocation for the records and one for
// their bytes per batch, partitioned as Kafka's default partitioner does.
//
// traceparent, if not nil, is the W3C trace context that the records other
// than changelog records carry in their traceparent header (replacing one
// they had).
func (a *App) produce(task *task, traceparent []byte) {
	t := task.rt
	out := t.Output()
	n := out.Len()
	if n == 0 {
		return
	}
	a.dirty.Store(true)
	promise := a.promise
	if ep := a.epoch; ep != nil {
		ep.pending.Add(int64(n))
		promise = func(r *kgo.Record, err error) {
			if err != nil {
				ep.failed.Store(true)
			}
			a.promise(r, err)
			ep.pending.Add(-1)
		}
	}
	recs := make([]kgo.Record, n)
	slab := make([]byte, 0, out.Size())
	var hslab []kgo.RecordHeader // the records' headers with their traceparent
	if traceparent != nil {
		size := n
		for i := range n {
			size += len(out.At(i).Headers)
		}
		hslab = make([]kgo.RecordHeader, 0, size)
	}
	// The batch's topics, few and interleaved (a repartition topic, a
	// changelog and a sink alternate record by record): records are
	// counted per topic and the counters added once per batch.
	topics := task.produced[:0]
	var cur *producedTopic
	for i := range n {
		r := out.At(i)
		if cur == nil || cur.name != r.Topic {
			cur = nil
			for j := range topics {
				if topics[j].name == r.Topic {
					cur = &topics[j]
					break
				}
			}
			if cur == nil {
				topics = append(topics, producedTopic{name: r.Topic})
				cur = &topics[len(topics)-1]
			}
		}
		cur.n++
		rec := &recs[i]
		rec.Topic = r.Topic
		if k := out.Key(r); k != nil {
			slab = append(slab, k...)
			rec.Key = slab[len(slab)-len(k) : len(slab) : len(slab)]
		}
		if v := out.Value(r); v != nil {
			slab = append(slab, v...)
			rec.Value = slab[len(slab)-len(v) : len(slab) : len(slab)]
		}
		rec.Partition = r.Partition
		if rec.Partition < 0 {
			if cur.to == nil {
				cur.to = a.outTopics[r.Topic]
			}
			if cur.to == nil { // a topic of a ToFunc node
				to, err := a.lookupTopic(r.Topic)
				if err != nil {
					rec.Timestamp = time.UnixMilli(r.Timestamp)
					rec.Headers = graphToKgoHeaders(r.Headers)
					cur.n-- // not produced
					promise(rec, err)
					continue
				}
				cur.to = to
			}
			rec.Partition = cur.to.partition(rec.Key)
		}
		rec.Timestamp = time.UnixMilli(r.Timestamp)
		rec.Headers = graphToKgoHeaders(r.Headers)
		if traceparent != nil && !r.Changelog {
			rec.Headers, hslab = withTraceparent(hslab, rec.Headers, traceparent)
		}
		if r.Changelog && a.db != nil {
			a.cl.Produce(a.ctx, rec, a.changelogPromise)
		} else {
			a.cl.Produce(a.ctx, rec, promise)
		}
	}
	for _, pt := range topics {
		a.tel.produced.Add(context.Background(), pt.n, task.topicAttrs(pt.name))
	}
	clear(topics) // drop the outTopic pointers
	task.produced = topics[:0]
	out.Reset()
}

// producedTopic counts the records of a task's batch produced to one topic.
type producedTopic struct {
	name string
	to   *outTopic // looked up on the first record that needs partitioning
	n    int64
}

// withTraceparent appends to slab the headers with a traceparent header of
// value tp instead of any they had, and returns them and the slab.
func withTraceparent(slab, headers []kgo.RecordHeader, tp []byte) (out, rest []kgo.RecordHeader) {
	start := len(slab)
	for _, h := range headers {
		if h.Key != traceparentHeader {
			slab = append(slab, h)
		}
	}
	slab = append(slab, kgo.RecordHeader{Key: traceparentHeader, Value: tp})
	return slab[start:len(slab):len(slab)], slab
}

// outTopic is a topic the app writes: its partition count, and the round
// robin of its null-key records.
type outTopic struct {
	name       string
	partitions int32
	rr         atomic.Uint32
}

func (a *App) outTopic(topic string) *outTopic {
	if t := a.outTopics[topic]; t != nil {
		return t
	}
	// Not planned: cannot happen for sinks, changelogs or the DLQ (the
	// topics of ToFunc nodes go through lookupTopic).
	return &outTopic{name: topic, partitions: 1}
}

// errMissingTopic is the production error of a record for a topic that a
// ToFunc node named and the cluster does not have.
var errMissingTopic = errors.New("the topic does not exist (the runtime creates only internal topics)")

// funcTopic is a topic of a ToFunc node: found (t), or found missing and
// not looked up again until retry.
type funcTopic struct {
	t     *outTopic
	retry time.Time
}

// lookupTopic returns a topic that a ToFunc node named, asking the cluster
// for its partition count on first use. A missing topic is an error, asked
// for again after a few seconds.
func (a *App) lookupTopic(topic string) (*outTopic, error) {
	a.funcMu.Lock()
	defer a.funcMu.Unlock()
	if ft, ok := a.funcTopics[topic]; ok {
		if ft.t != nil {
			return ft.t, nil
		}
		if time.Now().Before(ft.retry) {
			return nil, fmt.Errorf("%s: %w", topic, errMissingTopic)
		}
	}
	ctx, cancel := context.WithTimeout(a.ctx, 30*time.Second)
	defer cancel()
	resp, err := metadataRequest(topic).RequestWith(ctx, a.admCl)
	if err != nil {
		return nil, fmt.Errorf("looking up topic %s: %w", topic, err)
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil || len(t.Partitions) == 0 {
			a.funcTopics[topic] = funcTopic{retry: time.Now().Add(5 * time.Second)}
			return nil, fmt.Errorf("%s: %w", topic, errMissingTopic)
		}
		ot := &outTopic{name: topic, partitions: int32(len(t.Partitions))}
		a.funcTopics[topic] = funcTopic{t: ot}
		return ot, nil
	}
	return nil, fmt.Errorf("looking up topic %s: not in the metadata answer", topic)
}

// partitionCount returns the partition count of topic, for the sinks whose
// records a partitioner places (runtime.Config.Partitions): a topic of the
// plan, or one that a ToFunc node named, looked up on first use. Called
// from the workers.
func (a *App) partitionCount(topic string) (int32, error) {
	if t := a.outTopics[topic]; t != nil {
		return t.partitions, nil
	}
	t, err := a.lookupTopic(topic)
	if err != nil {
		return 0, err
	}
	return t.partitions, nil
}

// partition places a record as Kafka's default partitioner does: murmur2 of
// the key, round robin for null keys.
func (t *outTopic) partition(key []byte) int32 {
	if key == nil {
		return int32((t.rr.Add(1) - 1) % uint32(t.partitions))
	}
	return runtime.PartitionForKey(key, t.partitions)
}

func (a *App) promise(r *kgo.Record, err error) {
	if err == nil {
		return
	}
	if a.crash.Load() {
		return
	}
	// The broker refuses a whole batch when one record is too large: give
	// every record of it a second chance alone, so that the policy applies
	// to the culprit only (the Java producer splits such batches too).
	if errors.Is(err, kerr.MessageTooLarge) && a.soloCl != nil && r.Context != soloContext {
		a.soloWG.Add(1)
		go a.produceAlone(r)
		return
	}
	a.produceFailed(r, err)
}

// changelogPromise notes the offset of each acknowledged changelog record,
// for the tasks' checkpoints.
func (a *App) changelogPromise(r *kgo.Record, err error) {
	if err != nil {
		a.promise(r, err)
		return
	}
	k := partKey(r.Topic, r.Partition)
	a.ackMu.Lock()
	if r.Offset+1 > a.acked[k] {
		a.acked[k] = r.Offset + 1
	}
	a.ackMu.Unlock()
}

// checkpoint commits every task's store writes with its checkpoint: the
// acknowledged changelog offsets and the committed input offsets. Call it
// only once the writes are durable in Kafka (after the offset commit, or the
// transaction's).
func (a *App) checkpoint(cl *kgo.Client) error {
	if a.db == nil {
		return nil
	}
	a.ackMu.Lock()
	acked := maps.Clone(a.acked)
	a.ackMu.Unlock()
	committed := cl.CommittedOffsets()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range a.tasks {
		if !t.rt.Persistent() {
			continue
		}
		if t.ckpt == nil {
			// The restore's checkpoint: where each changelog partition
			// was restored to stays the position until the task writes.
			if t.ckpt, _, _ = t.rt.Checkpoint(); t.ckpt == nil {
				t.ckpt = map[string]int64{}
			}
		}
		p := t.rt.ID.Partition
		for _, topic := range t.rt.Changelogs() {
			k := partKey(topic, p)
			if o, ok := acked[k]; ok {
				// acked may be of an earlier run of the task here.
				t.ckpt[k] = max(t.ckpt[k], o)
			} else if o, ok := committed[topic][p]; ok && o.Offset >= 0 {
				t.ckpt[k] = o.Offset // a source table's topic: the input offset
			}
		}
		for _, topic := range t.rt.Topics() {
			if o, ok := committed[topic][p]; ok && o.Offset >= 0 {
				t.ckpt[partKey(topic, p)] = o.Offset
			}
		}
		if err := t.rt.Commit(t.ckpt); err != nil {
			return fmt.Errorf("kafkaio: checkpointing task %s: %w", t.rt.ID, err)
		}
	}
	return nil
}

// soloContext marks records retried alone.
var soloContext = context.WithValue(context.Background(), soloKey{}, true)

type soloKey struct{}

// produceAlone retries one record in a batch of its own, on a client that
// produces one record at a time.
func (a *App) produceAlone(r *kgo.Record) {
	defer a.soloWG.Done()
	a.soloMu.Lock()
	defer a.soloMu.Unlock()
	rec := &kgo.Record{Topic: r.Topic, Partition: r.Partition, Key: r.Key, Value: r.Value, Headers: r.Headers,
		Timestamp: r.Timestamp, Context: soloContext}
	if err := a.soloCl.ProduceSync(a.ctx, rec).FirstErr(); err != nil {
		a.produceFailed(rec, err)
	}
}

// flush waits until every produced record is acknowledged or handled by the
// production error policy.
func (a *App) flush(ctx context.Context, cl *kgo.Client) error {
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	a.soloWG.Wait()
	// Records that failed alone may have gone to the dead-letter topic.
	return cl.Flush(ctx)
}

// produceFailed applies the production error policy to a record.
func (a *App) produceFailed(r *kgo.Record, err error) {
	perr := fmt.Errorf("kafkaio: producing to %s/%d: %w", r.Topic, r.Partition, err)
	if a.cfg.exactlyOnce {
		// Nothing of a transaction may be skipped: either it fails and a
		// new producer does its work again (recoverTxn), or Run fails.
		switch {
		case !a.currentSession(r):
			// A record of a failed session, aborted by design.
		case txnRecoverable(err):
			a.txnFailed.CompareAndSwap(nil, &perr)
		default:
			a.setFatal(perr)
		}
		return
	}
	switch a.cfg.onProduce {
	case PolicySkip:
		a.skipped.Add(1)
		a.log.Warn("kstream: skipping record that could not be produced", "error", perr)
	case PolicyDeadLetter:
		if r.Topic == a.cfg.dlqTopic {
			a.setFatal(perr)
			return
		}
		a.skipped.Add(1)
		dl := &kgo.Record{Topic: a.cfg.dlqTopic, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp,
			Headers: append(append([]kgo.RecordHeader(nil), r.Headers...),
				kgo.RecordHeader{Key: "kstream.error", Value: []byte(err.Error())},
				kgo.RecordHeader{Key: "kstream.error.kind", Value: []byte("production")},
				kgo.RecordHeader{Key: "kstream.target.topic", Value: []byte(r.Topic)})}
		dl.Partition = a.outTopic(dl.Topic).partition(dl.Key)
		a.cl.Produce(a.ctx, dl, a.promise)
	default:
		a.setFatal(perr)
	}
}

// punctuate runs the wall-clock punctuations of every task.
func (a *App) punctuate() error {
	now := time.Now().UnixMilli()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range a.tasks {
		err := t.rt.PunctuateWallClock(now)
		a.produce(t, nil)
		if err != nil {
			return err
		}
	}
	return nil
}

// commit makes processed work durable: at-least-once, flush then commit the
// offsets; exactly-once, end the transaction (rolling the tasks back if it
// aborted) and begin the next.
func (a *App) commit(ctx context.Context) error {
	if err := a.flushTasks(); err != nil {
		return err
	}
	if !a.dirty.Swap(false) {
		return nil
	}
	// A commit runs to its end even when Run is being stopped: a cancelled
	// transaction would leave the producer in an unknown state. A
	// transaction older than its timeout is aborted by its coordinator:
	// waiting longer for it to end is pointless, so the new producer of
	// recoverTxn takes over sooner.
	timeout := time.Minute
	if a.sess != nil {
		if tt, ok := a.cl.OptValue(kgo.TransactionTimeout).(time.Duration); ok && tt > 0 {
			timeout = tt + 5*time.Second
		}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if a.sess == nil {
		if a.epoch != nil {
			return a.commitAsync(ctx)
		}
		return a.commitSync(ctx)
	}
	if p := a.txnFailed.Load(); p != nil && a.fatal() == nil {
		return &txnError{op: "producing in", err: *p}
	}
	try := kgo.TryCommit
	if a.fatal() != nil {
		try = kgo.TryAbort
	}
	if held := a.heldOffsets(); held != nil {
		// The transaction commits the consumer's offsets, except where
		// tasks hold records back.
		ctx = kgo.PreTxnCommitFnContext(ctx, func(req *kmsg.TxnOffsetCommitRequest) error {
			for i := range req.Topics {
				t := &req.Topics[i]
				for j := range t.Partitions {
					if o, ok := held[t.Topic][t.Partitions[j].Partition]; ok {
						t.Partitions[j].Offset, t.Partitions[j].LeaderEpoch = o.Offset, o.Epoch
					}
				}
			}
			return nil
		})
	}
	committed, err := a.sess.End(ctx, try)
	if ferr := a.fatal(); ferr != nil {
		return ferr
	}
	if err != nil {
		return &txnError{op: "ending", err: err}
	}
	if committed {
		a.failures = 0
		a.commits.Add(1)
		if err := a.checkpoint(a.cl); err != nil {
			return err
		}
	} else {
		a.aborts.Add(1)
		a.log.Info("kstream: transaction aborted (rebalance); rolling tasks back to the last commit")
		a.rollback()
	}
	if err := a.sess.Begin(); err != nil {
		return &txnError{op: "beginning", err: err}
	}
	return nil
}

// maxFailures bounds the commits in a row that may fail (see recoverTxn and
// postponeCommit) before Run fails: a broker outage of a few minutes, as
// Kafka Streams' task.timeout.ms (5 minutes by default) tolerates.
const maxFailures = 5

// txnError is a failed transaction: its end or the next one's beginning
// failed, or a record produced in it did. The transactional producer's
// state is unknown (a broker restarted, the coordinator moved, the epoch
// was bumped, the commit timed out): the work since the last commit is
// rolled back, as after an abort, and a new producer takes over (see
// recoverTxn).
type txnError struct {
	op  string
	err error
}

func (e *txnError) Error() string { return "kafkaio: " + e.op + " transaction: " + e.err.Error() }
func (e *txnError) Unwrap() error { return e.err }

// recoverTxn recovers from a failed transaction as Kafka Streams does from
// a fenced or timed-out producer: it discards the tasks' work since the
// last commit, closes the transactional session (leaving the group), and
// starts a new one with the same transactional ID. The new producer's
// initialization fences the old one and aborts its open transaction; the
// new consumer rejoins the group and reads the committed offsets from the
// broker, waiting for transactions still pending (RequireStable), so the
// records of the failed transaction are processed again exactly once,
// whether or not its commit reached the broker. Tasks restore from the
// committed changelogs. It returns an error, fatal for Run, after
// maxFailures failures in a row or when the failure cannot be
// recovered from.
func (a *App) recoverTxn(ctx context.Context, te *txnError) error {
	a.failures++
	if a.failures > maxFailures {
		return fmt.Errorf("%w (%d failed transactions in a row)", te, a.failures)
	}
	if !txnRecoverable(te.err) {
		return te
	}
	a.aborts.Add(1)
	a.log.Warn("kstream: transaction failed; rolling back to the last commit and starting a new transactional producer",
		"error", te, "attempt", a.failures)
	a.storeMu.Lock()
	a.rollback()
	a.storeMu.Unlock()
	gen := a.sessGen.Add(1)
	// Closing leaves the group, unless the coordinator is unreachable: the
	// group would then wait for the old member's session to time out
	// (45 s by default) before it gives the new one its partitions.
	a.waitCoordinator(ctx, 30*time.Second)
	a.sess.CloseAllowingRebalance()
	// The new session's group assignment starts from nothing, whether or
	// not closing revoked the old one's partitions.
	a.mu.Lock()
	clear(a.assigned)
	a.joined = false
	a.assignGen.Add(1)
	a.mu.Unlock()
	a.setState(StateRebalancing)
	a.txnFailed.Store(nil)
	a.ctx = context.WithValue(a.ctxBase, sessGenKey{}, gen)
	a.dirty.Store(false)
	// A pause before the new producer, longer after each failure: the
	// cluster may be restarting. Stopping cuts it short; Run then ends
	// the new, empty transaction.
	select {
	case <-time.After(time.Duration(a.failures) * time.Second):
	case <-ctx.Done():
	}
	sess, err := kgo.NewGroupTransactSession(a.sessOpts...)
	if err != nil {
		return fmt.Errorf("kafkaio: %w", err)
	}
	a.sess, a.cl = sess, sess.Client()
	if err := a.sess.Begin(); err != nil {
		return fmt.Errorf("kafkaio: beginning transaction: %w", err)
	}
	return nil
}

// waitCoordinator waits until the group's coordinator answers, for at most
// timeout.
func (a *App) waitCoordinator(ctx context.Context, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorKey = a.cfg.appID
		req.CoordinatorKeys = []string{a.cfg.appID}
		resp, err := req.RequestWith(ctx, a.admCl)
		if err == nil && kerr.ErrorForCode(resp.ErrorCode) == nil &&
			(len(resp.Coordinators) == 0 || kerr.ErrorForCode(resp.Coordinators[0].ErrorCode) == nil) {
			return
		}
		select {
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
			return
		}
	}
}

// sessGenKey is the context key of a transactional session's number.
type sessGenKey struct{}

// currentSession reports whether r was produced by the current
// transactional session (or carries no session number).
func (a *App) currentSession(r *kgo.Record) bool {
	if r.Context == nil {
		return true
	}
	gen, ok := r.Context.Value(sessGenKey{}).(int64)
	return !ok || gen == a.sessGen.Load()
}

// txnRecoverable reports whether a new transactional producer can recover
// from err. Authorization failures, unsupported versions and a topic deleted
// while in use are permanent: every new producer would fail the same way.
func txnRecoverable(err error) bool {
	switch {
	case errors.Is(err, kerr.TransactionalIDAuthorizationFailed),
		errors.Is(err, kerr.GroupAuthorizationFailed),
		errors.Is(err, kerr.TopicAuthorizationFailed),
		errors.Is(err, kerr.ClusterAuthorizationFailed),
		errors.Is(err, kerr.UnsupportedVersion),
		errors.Is(err, kerr.UnsupportedForMessageFormat),
		errors.Is(err, kerr.UnknownTopicID),
		errors.Is(err, kerr.MessageTooLarge),
		errors.Is(err, kerr.RecordListTooLarge),
		errors.Is(err, kerr.InvalidRecord),
		errors.Is(err, kerr.CorruptMessage),
		errors.Is(err, kerr.InvalidTopicException),
		errors.Is(err, errMissingTopic):
		return false
	}
	return true
}

// flushTasks makes every task forward the records its nodes hold back
// (cached table updates, kstream.Cached) and produces them, so that the
// commit includes them.
func (a *App) flushTasks() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range a.tasks {
		err := t.rt.Flush()
		a.produce(t, nil)
		if err != nil {
			return err
		}
	}
	return nil
}

// commitEpoch is the records produced between two at-least-once commits,
// and the input offsets that they complete.
type commitEpoch struct {
	pending atomic.Int64 // produced, not yet acknowledged
	failed  atomic.Bool  // a record failed: commit the slow, careful way
	offsets map[string]map[int32]kgo.EpochOffset
}

// commitAsync commits at-least-once without waiting: it seals the current
// epoch with the offsets polled (and so processed) so far; commitSealed
// commits them once every record produced in the epoch is acknowledged
// (flush-then-commit, without stopping the loop: with small batches, a
// blocking commit every interval delays the records that arrive meanwhile,
// which is what a p99 latency shows). franz-go orders the commits, the
// synchronous ones of revokes and shutdown included.
func (a *App) commitAsync(ctx context.Context) error {
	ep := a.epoch
	ep.offsets = a.toCommit(a.heldOffsets())
	a.epoch = &commitEpoch{}
	a.sealed = append(a.sealed, ep)
	return a.commitSealed(ctx)
}

// commitSealed commits, in order, the sealed epochs whose records are all
// acknowledged. An epoch in which a record failed goes through the blocking
// path instead (flush, which waits for the error policy's retries and
// dead letters, then commit), as does everything after it.
func (a *App) commitSealed(ctx context.Context) error {
	for len(a.sealed) > 0 {
		ep := a.sealed[0]
		if ep.pending.Load() > 0 {
			return nil
		}
		if err := a.fatal(); err != nil {
			return err
		}
		if ep.failed.Load() {
			return a.commitSync(ctx)
		}
		a.sealed = a.sealed[1:]
		a.cl.CommitOffsets(a.ctx, ep.offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err == nil {
				err = commitResponseErr(resp)
			}
			if err != nil {
				// The next commit covers these offsets too.
				a.log.Warn("kstream: asynchronous offset commit failed", "error", err)
				return
			}
			a.commits.Add(1)
		})
	}
	return nil
}

// commitSync flushes and commits everything processed, synchronously, drops
// the sealed epochs (their offsets are older), and checkpoints the
// persistent stores. At-least-once only.
func (a *App) commitSync(ctx context.Context) error {
	if err := a.flushTasks(); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := a.flush(cctx, a.cl); err != nil {
		return &flushError{err}
	}
	if err := a.fatal(); err != nil {
		return err
	}
	a.sealed = nil
	if a.epoch != nil {
		a.epoch = &commitEpoch{}
	}
	if held := a.heldOffsets(); held == nil {
		if err := a.cl.CommitUncommittedOffsets(cctx); err != nil {
			return &offsetCommitError{err}
		}
	} else {
		var err error
		a.cl.CommitOffsetsSync(cctx, a.toCommit(held), func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, cerr error) {
			err = cmp.Or(cerr, commitResponseErr(resp))
		})
		if err != nil {
			return &offsetCommitError{err}
		}
	}
	a.failures = 0
	a.commits.Add(1)
	return a.checkpoint(a.cl)
}

// flushError is a flush of commitSync that did not end: records are still
// being retried (the cluster may be down).
type flushError struct{ err error }

func (e *flushError) Error() string { return "kafkaio: flushing: " + e.err.Error() }
func (e *flushError) Unwrap() error { return e.err }

// postponeCommit reports whether an at-least-once commit that failed may be
// retried at the next commit interval, and prepares that: the broker did not
// take the offsets (or a flush did not end, as when the cluster restarts),
// and committing later only means reprocessing more after a crash. Records
// still being produced keep being retried meanwhile. After
// maxFailures failures in a row, Run fails.
func (a *App) postponeCommit(err error) bool {
	var ce *offsetCommitError
	var fe *flushError
	if a.cfg.exactlyOnce || !(errors.As(err, &ce) || errors.As(err, &fe)) {
		return false
	}
	a.failures++
	if a.failures > maxFailures {
		return false
	}
	a.dirty.Store(true)
	a.log.Warn("kstream: commit failed; retrying at the next commit interval", "error", err, "attempt", a.failures)
	return true
}

// offsetCommitError is a failed offset commit of commitSync.
type offsetCommitError struct{ err error }

func (e *offsetCommitError) Error() string { return "kafkaio: committing offsets: " + e.err.Error() }
func (e *offsetCommitError) Unwrap() error { return e.err }

// commitResponseErr returns the first partition error of a commit response.
func commitResponseErr(resp *kmsg.OffsetCommitResponse) error {
	if resp == nil {
		return nil
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, err)
			}
		}
	}
	return nil
}

// rollback closes every task: ensureTasks recreates them from the committed
// changelogs, as the consumer rewinds to the committed offsets.
func (a *App) rollback() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, t := range a.tasks {
		a.resumeTask(t)
		_ = t.rt.Discard()
		_ = t.rt.Close()
		delete(a.tasks, id)
	}
}

// shutdown ends the loop: it commits unless err is set or the app crashes,
// closes the tasks and the client, and returns err.
func (a *App) shutdown(err error) error {
	if err != nil || a.crash.Load() {
		a.setState(StatePendingError)
	} else {
		a.setState(StatePendingShutdown)
	}
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err == nil && !a.crash.Load() {
		commit := a.commit
		if a.epoch != nil {
			commit = a.commitSync // not commitAsync: wait for it
		}
		a.storeMu.Lock()
		cerr := commit(cctx)
		a.storeMu.Unlock()
		if cerr != nil {
			err = cerr
		}
		if a.sess != nil {
			// commit began a new, empty transaction: end it.
			_, _ = a.sess.End(cctx, kgo.TryAbort)
		}
	} else if a.sess != nil && !a.crash.Load() {
		_, _ = a.sess.End(cctx, kgo.TryAbort)
	}
	if err != nil {
		a.setFatal(err)
	}
	a.purging.Wait()
	// Rebalances are blocked between polls (BlockRebalanceOnPoll): closing
	// must allow the one that leaving the group causes.
	if a.sess != nil {
		a.sess.CloseAllowingRebalance()
	} else {
		a.cl.CloseAllowingRebalance()
	}
	a.storeMu.Lock()
	a.mu.Lock()
	for id, t := range a.tasks {
		a.skipped.Add(t.rt.Skipped.Load()) // Stats counts them after Run
		_ = t.rt.Close()
		delete(a.tasks, id)
	}
	a.mu.Unlock()
	a.storeMu.Unlock()
	if a.standby != nil {
		a.cancel() // stops the standbys' goroutine
		a.standby.close()
	}
	if a.global != nil {
		a.global.close()
	}
	a.log.Info("kstream: stopped", "processed", a.processed.Load(), "error", err)
	return err
}

func (a *App) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.joined = true
	for topic, ps := range assigned {
		sub, ok := a.plan.readers[topic]
		if !ok {
			continue
		}
		for _, p := range ps {
			id := runtime.TaskID{SubTopology: sub, Partition: p}
			a.assigned[id] = true
			delete(a.unowned, id)
		}
	}
	a.assignGen.Add(1)
}

// noteOwned runs when the member (re)joins the group, with the partitions
// it owns then, after any revocation: a task assigned whose partitions it
// does not own was revoked without onRevoked being called. That happens
// under exactly-once: franz-go's transactional session delivers one
// revocation per transaction and drops the next ones until the
// transaction ends (and aborts, because of the first), so an instance that
// was idle (no transaction ending) and lost tasks in two rebalances kept
// the tasks of the second as if it still owned them: stale state, served to
// interactive queries, and used again if the task came back. The loop
// drops them (dropUnowned); the transaction aborts anyway.
func (a *App) noteOwned(current map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for id := range a.assigned {
		if !slices.ContainsFunc(a.balancer.groups[id.SubTopology], func(topic string) bool {
			return slices.Contains(current[topic], id.Partition)
		}) {
			if a.unowned == nil {
				a.unowned = map[runtime.TaskID]bool{}
			}
			a.unowned[id] = true
		}
	}
}

// dropUnowned drops the tasks noteOwned found revoked. The loop calls it.
func (a *App) dropUnowned() {
	a.mu.Lock()
	var parts map[string][]int32
	for id := range a.unowned {
		if !a.assigned[id] {
			continue // dropped meanwhile
		}
		for _, topic := range a.balancer.groups[id.SubTopology] {
			if parts == nil {
				parts = map[string][]int32{}
			}
			parts[topic] = append(parts[topic], id.Partition)
		}
	}
	a.unowned = nil
	a.mu.Unlock()
	if parts == nil {
		return
	}
	a.log.Warn("kstream: dropping tasks whose partitions the group revoked without telling (a second revocation within one transaction)", "partitions", parts)
	a.storeMu.Lock()
	defer a.storeMu.Unlock()
	a.dropTasks(parts)
}

func (a *App) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	if len(revoked) == 0 {
		return
	}
	a.storeMu.Lock()
	defer a.storeMu.Unlock()
	if !a.cfg.exactlyOnce && !a.crash.Load() && a.fatal() == nil {
		// A failed offset commit or an unfinished flush here is not
		// fatal: the partitions' next owner reprocesses from the last
		// commit (the group may be rebalancing again already).
		var ce *offsetCommitError
		var fe *flushError
		if err := a.commitSync(ctx); errors.As(err, &ce) || errors.As(err, &fe) {
			a.log.Warn("kstream: commit on revoke failed", "error", err)
		} else if err != nil {
			a.setFatal(fmt.Errorf("kafkaio: committing on revoke: %w", err))
		}
	}
	a.dropTasks(revoked)
}

func (a *App) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	a.storeMu.Lock()
	defer a.storeMu.Unlock()
	a.dropTasks(lost)
}

func (a *App) dropTasks(parts map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for topic, ps := range parts {
		sub, ok := a.plan.readers[topic]
		if !ok {
			continue
		}
		for _, p := range ps {
			id := runtime.TaskID{SubTopology: sub, Partition: p}
			delete(a.assigned, id)
			a.assignGen.Add(1)
			if t, ok := a.tasks[id]; ok {
				a.skipped.Add(t.rt.Skipped.Load()) // Stats keeps counting them
				a.resumeTask(t)                    // a paused partition would stay paused if it came back
				_ = t.rt.Close()
				delete(a.tasks, id)
			}
		}
	}
}

// ensureTasks creates and restores the tasks assigned but not yet running
// (promoting their standbys when there are), and makes the standbys follow
// the assignment.
func (a *App) ensureTasks(ctx context.Context) error {
	a.dropUnowned()
	if err := a.createTasks(ctx); err != nil {
		return err
	}
	tasks, gen := a.balancer.assigned.Load(), a.assignGen.Load()
	if tasks == a.standbySeen.tasks && gen == a.standbySeen.gen {
		return nil
	}
	a.standbySeen.tasks, a.standbySeen.gen = tasks, gen
	a.advertiseLocal()
	if a.standby == nil {
		return nil
	}
	return a.standby.reconcile(tasks)
}

// advertiseLocal tells the group, at the next rebalance, which stateful
// tasks this instance does not run but holds local state of (a checkpoint
// in its state directory: tasks it ran before, or restored, whose stores
// stayed on disk), as Kafka Streams' members report their tasks' local
// offsets: the leader gives such a task, when its owner left, to a member
// holding its state (which restores only the tail), and places standbys
// there first. The loop calls it when the assignment changes.
func (a *App) advertiseLocal() {
	if a.db == nil || a.plan == nil {
		return
	}
	a.mu.Lock()
	running := make(map[runtime.TaskID]bool, len(a.tasks))
	for id := range a.tasks {
		running[id] = true
	}
	a.mu.Unlock()
	var local []taskKey
	for sub, stateful := range a.balancer.stateful {
		if !stateful || sub >= len(a.plan.subCount) {
			continue
		}
		for p := range a.plan.subCount[sub] {
			id := runtime.TaskID{SubTopology: sub, Partition: p}
			if running[id] {
				continue
			}
			if _, ok, err := a.db.Checkpoint(runtime.CheckpointName(a.cfg.appID, id)); ok && err == nil {
				local = append(local, taskKey{sub, p})
			}
		}
	}
	a.balancer.local.Store(&local)
}

// listEnds lists the last stable offsets of the partitions of topics, the
// changelogs of what; nil (logged) if it cannot.
func (a *App) listEnds(ctx context.Context, adm *kadm.Client, what string, topics []string) kadm.ListedOffsets {
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ends, err := adm.ListCommittedOffsets(lctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		if !isCtxErr(err) {
			a.log.Warn("kstream: listing the changelog ends of "+what, "topics", topics, "error", err)
		}
		return nil
	}
	return ends
}

// localCaughtUp returns the tasks of local (App.advertiseLocal) whose
// checkpoints are within the acceptable recovery lag of their changelogs'
// ends (the last stable offsets): summed over a task's changelog
// partitions, as Kafka Streams' leader measures the lag of a member's local
// task offsets. The group's leader moves such a task to this member at
// once, without a warmup, and it restores only that tail. Without warmups,
// or when the ends cannot be listed, it returns none.
func (a *App) localCaughtUp(ctx context.Context, adm *kadm.Client, local []taskKey) []taskKey {
	if a.db == nil || a.balancer.warmups == 0 || len(local) == 0 {
		return nil
	}
	changelogs := func(sub int) []string {
		var out []string
		for _, spec := range a.g.SubTopologies[sub].Stores {
			if !spec.Global {
				out = append(out, spec.Changelog.Resolve(a.cfg.appID))
			}
		}
		return out
	}
	var topics []string
	for _, k := range local {
		for _, t := range changelogs(k.sub) {
			if !slices.Contains(topics, t) {
				topics = append(topics, t)
			}
		}
	}
	ends := a.listEnds(ctx, adm, "local state", topics)
	if ends == nil {
		return nil
	}
	var caught []taskKey
	for _, k := range local {
		ckpt, ok, err := a.db.Checkpoint(runtime.CheckpointName(a.cfg.appID, runtime.TaskID{SubTopology: k.sub, Partition: k.p}))
		if !ok || err != nil {
			continue
		}
		var lag int64
		known := true
		for _, t := range changelogs(k.sub) {
			end, ok := ends.Lookup(t, k.p)
			c := ckpt[partKey(t, k.p)] // none: the restore starts at the log's start, at least 0
			if !ok || c > end.Offset {
				known = false // ahead: a recreated changelog, restored in full
				break
			}
			lag += end.Offset - c
		}
		if known && lag <= a.cfg.acceptableLag {
			caught = append(caught, k)
		}
	}
	return caught
}

func (a *App) createTasks(ctx context.Context) error {
	a.mu.Lock()
	var want []runtime.TaskID
	for id := range a.assigned {
		if _, ok := a.tasks[id]; !ok {
			want = append(want, id)
		}
	}
	a.mu.Unlock()
	if len(want) > 0 && a.State() == StateRunning {
		a.setState(StateRebalancing) // while the new tasks restore
	}
	slices.SortFunc(want, func(x, y runtime.TaskID) int {
		return cmp.Or(cmp.Compare(x.SubTopology, y.SubTopology), cmp.Compare(x.Partition, y.Partition))
	})
	// The tasks' stores (a standby's, promoted, or new ones), on the loop.
	tasks := make([]*runtime.Task, len(want))
	from := make([]map[string]int64, len(want))
	closeAll := func() {
		for _, rt := range tasks {
			if rt != nil {
				_ = rt.Close()
			}
		}
	}
	for i, id := range want {
		var err error
		if a.standby != nil {
			if tasks[i], from[i], err = a.standby.take(id); err != nil {
				closeAll()
				return err
			}
		}
		if tasks[i] == nil {
			if tasks[i], err = runtime.NewStandby(a.topo, &a.rcfg, id.SubTopology, id.Partition); err != nil {
				closeAll()
				return err
			}
		}
	}
	if err := a.restoreAll(ctx, tasks, from); err != nil {
		closeAll()
		return err
	}
	for i, id := range want {
		rt := tasks[i]
		// The processors start (Init) on restored stores, as in Kafka
		// Streams.
		if err := rt.Activate(); err != nil {
			tasks = tasks[i:]
			closeAll()
			return err
		}
		rt.Context().WallClock = time.Now().UnixMilli()
		a.mu.Lock()
		t := &task{rt: rt, lag: map[string]int64{},
			attrs: metric.WithAttributeSet(attribute.NewSet(attribute.String("kstream.task", id.String())))}
		if topics := rt.Topics(); len(topics) > 1 {
			t.inputs = topics
		}
		a.tasks[id] = t
		a.mu.Unlock()
	}
	return nil
}

// Stats are counters of an App.
type Stats struct {
	// Processed counts the input records processed (including records
	// processed again after an aborted transaction).
	Processed int64
	// Skipped counts records skipped or dead-lettered by the error policies.
	Skipped int64
	// Restored counts changelog records applied to stores.
	Restored int64
	// Commits and Aborts count commits (transactions under exactly-once)
	// and aborted transactions.
	Commits, Aborts int64
	// Tasks is the number of tasks running now.
	Tasks int
	// Standbys is the number of standby replicas held now (see
	// StandbyReplicas); StandbyApplied counts the changelog records they
	// applied.
	Standbys       int
	StandbyApplied int64
	// GlobalApplied counts the records of global tables' topics applied to
	// the instance's global stores, their bootstrap included. With a
	// StateDir, the stores and their checkpoint stay on disk, and a restart
	// reads only the records after it.
	GlobalApplied int64
	// EnforcedProcessing counts the task batches processed while an input
	// of the task had no record buffered and the task did not wait for it
	// any more (Kafka Streams' enforced-processing-total): the input was
	// caught up and MaxTaskIdle had passed (at once with the default 0),
	// or the wait reached its limit. Records of the task's inputs may then
	// go out of timestamp order.
	EnforcedProcessing int64
	// PausedPartitions is the number of input partitions paused now
	// because their task holds its cap of records back (see MaxTaskIdle).
	PausedPartitions int
}

// Stats returns the app's counters.
func (a *App) Stats() Stats {
	a.mu.Lock()
	n := len(a.tasks)
	var skipped int64
	paused := 0
	for _, t := range a.tasks {
		skipped += t.rt.Skipped.Load()
		for _, ps := range t.paused {
			paused += len(ps)
		}
	}
	sb, g := a.standby, a.global
	a.mu.Unlock()
	if g != nil {
		skipped += g.task.Skipped.Load()
	}
	st := Stats{Processed: a.processed.Load(), Skipped: a.skipped.Load() + skipped, Restored: a.restored.Load(),
		Commits: a.commits.Load(), Aborts: a.aborts.Load(), Tasks: n, EnforcedProcessing: a.enforced.Load(),
		PausedPartitions: paused}
	if sb != nil {
		st.Standbys, st.StandbyApplied = sb.count(), sb.applied.Load()
	}
	if g != nil {
		st.GlobalApplied = g.applied.Load()
	}
	return st
}

// Lag returns how many records of the source topics (repartition topics
// included) the group has not committed yet. It waits until Run has connected.
func (a *App) Lag(ctx context.Context) (int64, error) {
	select {
	case <-a.ready:
	case <-a.done:
		return 0, errors.New("kafkaio: app is not running")
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	committed, err := a.adm.FetchOffsets(ctx, a.cfg.appID)
	if errors.Is(err, kerr.GroupIDNotFound) {
		// No member has joined yet (kfake says so; Kafka returns no
		// offsets): nothing is committed.
		committed, err = nil, nil
	}
	if err != nil {
		return 0, err
	}
	ends, err := a.adm.ListEndOffsets(ctx, a.plan.sources...)
	if err != nil {
		return 0, err
	}
	var lag int64
	var lerr error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			lerr = o.Err
			return
		}
		c, ok := committed.Lookup(o.Topic, o.Partition)
		at := int64(0)
		if ok && c.Err == nil && c.At >= 0 {
			at = c.At
		}
		if o.Offset > at {
			lag += o.Offset - at
		}
	})
	return lag, lerr
}

// fileExists reports whether path exists.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
