package kstest

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"testing"
	"time"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/internal/runtime"
	"github.com/kstreamgo/kstream/serde"
	"github.com/kstreamgo/kstream/state"
)

// Option configures a Driver.
type Option func(*config)

type config struct {
	stateDir                       string
	partitions                     int32
	appID                          string
	start                          time.Time
	onDecode, onProcess, onProduce kstream.Policy
	dlqTopic                       string
}

// Partitions gives every topic n partitions (default 1), and so runs n tasks
// per sub-topology.
func Partitions(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.partitions = int32(n)
		}
	}
}

// StateDir keeps the tasks' stores in a Pebble database in dir (behind the
// read cache), as kafkaio does with its StateDir, instead of in memory. The
// driver checkpoints every task after each piped record, so Restart replays
// only the changelog records after the checkpoints.
func StateDir(dir string) Option { return func(c *config) { c.stateDir = dir } }

// AppID sets the application ID that internal topic names start with
// (default "kstest").
func AppID(id string) Option { return func(c *config) { c.appID = id } }

// StartTime sets the fake wall clock's start (default: the Unix epoch). Pipe
// stamps records with the wall clock.
func StartTime(t time.Time) Option { return func(c *config) { c.start = t } }

// OnDeserializationError sets the policy for records that do not decode
// (default kstream.PolicyFail), as kafkaio's option of that name does, so
// that a test sees what the application does with them.
func OnDeserializationError(p kstream.Policy) Option { return func(c *config) { c.onDecode = p } }

// OnProcessingError sets the policy for records that fail in a node (an
// error, a panic; default kstream.PolicyFail), as kafkaio's option does.
func OnProcessingError(p kstream.Policy) Option { return func(c *config) { c.onProcess = p } }

// OnProductionError sets the policy for records that cannot be produced (a
// kstream.PartitionWith partition out of range; default
// kstream.PolicyFail), as kafkaio's option does.
func OnProductionError(p kstream.Policy) Option { return func(c *config) { c.onProduce = p } }

// DeadLetterTopic names the topic that kstream.PolicyDeadLetter writes
// failed records to (default "<appID>-dlq", as kafkaio's): read it with
// Output, the raw records with their headers describing the failure.
func DeadLetterTopic(topic string) Option { return func(c *config) { c.dlqTopic = topic } }

// Driver runs a topology over in-memory topics. It is not safe for concurrent
// use.
type Driver struct {
	tb      testing.TB
	topo    *kstream.Topology
	cfg     config
	rcfg    runtime.Config
	topics  map[string]*topicLog
	readers map[string]int // topic -> sub-topology that reads it
	tasks   []*runtime.Task
	byID    map[runtime.TaskID]*runtime.Task
	queue   []queued
	now     int64
	closed  bool
	db      *state.DB
	skipped int64 // by the error policies, in tasks closed
	// Restored counts the changelog records replayed into stores, over
	// the driver's life (restarts included).
	Restored int64
}

type stored struct {
	partition int32
	offset    int64
	key       []byte
	value     []byte
	ts        int64
	headers   []graph.Header
}

type topicLog struct {
	recs []stored
	next []int64 // next offset per partition
	rr   int32   // round robin for null keys
}

type queued struct {
	topic string
	idx   int
}

// NewDriver creates the driver and its tasks. Failures are reported through
// tb (tb.Fatal); outside tests tb may be nil, and failures then panic. The
// driver closes itself at the end of the test.
func NewDriver(tb testing.TB, topo *kstream.Topology, opts ...Option) *Driver {
	if tb != nil {
		tb.Helper()
	}
	cfg := config{partitions: 1, appID: "kstest", start: time.UnixMilli(0)}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.dlqTopic == "" {
		cfg.dlqTopic = cfg.appID + "-dlq"
	}
	d := &Driver{tb: tb, topo: topo, cfg: cfg, topics: map[string]*topicLog{}, readers: map[string]int{},
		byID: map[runtime.TaskID]*runtime.Task{}, now: cfg.start.UnixMilli()}
	d.rcfg = runtime.Config{AppID: cfg.appID, Clock: func() int64 { return d.now },
		Partitions: func(string) (int32, error) { return d.cfg.partitions, nil }, CountNodes: true,
		OnError: runtime.PolicyHandler(cfg.onDecode, cfg.onProcess, cfg.onProduce), DeadLetterTopic: cfg.dlqTopic,
		Logger: slog.New(slog.DiscardHandler)}
	if tb != nil { // the log of skipped records shows in the test's
		d.rcfg.Logger = slog.New(slog.NewTextHandler(tbWriter{tb}, nil))
	}
	if cfg.stateDir != "" {
		db, err := state.Open(cfg.stateDir, state.MemoryBudget(64<<20))
		if err != nil {
			d.fatal(fmt.Errorf("kstest: %w", err))
			return d
		}
		d.db, d.rcfg.DB = db, db
	}
	for _, st := range topo.Graph().SubTopologies {
		for _, ref := range st.SourceTopics() {
			d.readers[ref.Resolve(cfg.appID)] = st.ID
		}
	}
	if err := d.start(); err != nil {
		d.fatal(err)
	}
	if tb != nil {
		tb.Cleanup(d.Close)
	}
	return d
}

// tbWriter writes a log line to a test's log.
type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Helper()
	w.tb.Log(string(bytes.TrimSuffix(p, []byte("\n"))))
	return len(p), nil
}

func (d *Driver) fatal(err error) {
	if d.tb == nil {
		panic(err)
	}
	d.tb.Helper()
	d.tb.Fatal(err)
}

// start creates every task, the global one first, and restores their
// stores from their changelogs.
func (d *Driver) start() error {
	d.rcfg.GlobalStore = nil
	gsub, hasGlobal := runtime.GlobalSubTopology(d.topo)
	if hasGlobal {
		g, err := d.newTask(gsub, -1)
		if err != nil {
			return err
		}
		d.rcfg.GlobalStore = g.Store
	}
	for _, st := range d.topo.Graph().SubTopologies {
		if st.Global {
			continue
		}
		for p := range d.cfg.partitions {
			if _, err := d.newTask(st.ID, p); err != nil {
				return err
			}
		}
	}
	return d.collectAll()
}

// newTask creates a task and restores its stores; partition -1 is the global
// task, which restores from every partition.
func (d *Driver) newTask(sub int, p int32) (*runtime.Task, error) {
	t, err := runtime.NewTask(d.topo, &d.rcfg, sub, p)
	if err != nil {
		return nil, err
	}
	d.tasks = append(d.tasks, t)
	d.byID[t.ID] = t
	ckpt, ok, err := t.Checkpoint()
	if err != nil || (t.Persistent() && !ok) {
		if err := t.Wipe(); err != nil {
			return nil, err
		}
		ckpt = nil
	}
	for store, topic := range t.Changelogs() {
		var recs []graph.RawRecord
		if log := d.topics[topic]; log != nil {
			for _, r := range log.recs {
				if (r.partition == p || p < 0) && r.offset >= ckpt[partKey(topic, r.partition)] {
					recs = append(recs, graph.RawRecord{Key: r.key, Value: r.value, Timestamp: r.ts, Offset: r.offset})
				}
			}
		}
		if err := t.Restore(store, recs); err != nil {
			return nil, err
		}
		d.Restored += int64(len(recs))
	}
	return t, d.checkpoint(t)
}

func partKey(topic string, p int32) string { return topic + "/" + strconv.Itoa(int(p)) }

// checkpoint commits a persistent task's store writes with the next offsets
// of its changelogs.
func (d *Driver) checkpoint(t *runtime.Task) error {
	if !t.Persistent() {
		return nil
	}
	offsets := map[string]int64{}
	for _, topic := range t.Changelogs() {
		if log := d.topics[topic]; log != nil {
			for p, next := range log.next {
				if int32(p) == t.ID.Partition {
					offsets[partKey(topic, int32(p))] = next
				}
			}
		}
	}
	return t.Commit(offsets)
}

// Restart simulates a crash and restart of the application: every task is
// closed and its in-memory state dropped, then new tasks restore their stores
// from the changelog topics. Topics keep their records. A processor whose
// Close fails (returns an error or panics) fails the test, once the tasks
// have restarted.
func (d *Driver) Restart() {
	if d.tb != nil {
		d.tb.Helper()
	}
	cerr := d.closeTasks()
	d.tasks, d.byID = nil, map[runtime.TaskID]*runtime.Task{}
	if err := errors.Join(cerr, d.start()); err != nil {
		d.fatal(err)
	}
}

// Close closes the tasks. It is called at the end of the test. A processor
// whose Close fails (returns an error or panics) fails the test.
func (d *Driver) Close() {
	if d.closed {
		return
	}
	if d.tb != nil {
		d.tb.Helper()
	}
	d.closed = true
	err := d.closeTasks()
	if d.db != nil {
		_ = d.db.Close()
	}
	if err != nil {
		d.fatal(err)
	}
}

// closeTasks closes every task and returns their errors.
func (d *Driver) closeTasks() error {
	var errs []error
	for _, t := range d.tasks {
		d.skipped += t.Skipped.Load()
		if err := t.Close(); err != nil {
			errs = append(errs, fmt.Errorf("kstest: closing task %s: %w", t.ID, err))
		}
	}
	return errors.Join(errs...)
}

func (d *Driver) log(topic string) *topicLog {
	l := d.topics[topic]
	if l == nil {
		l = &topicLog{next: make([]int64, d.cfg.partitions)}
		d.topics[topic] = l
	}
	return l
}

// produce appends a record to a topic (partition < 0: by key) and queues it
// for the task that reads it.
func (d *Driver) produce(topic string, partition int32, key, value []byte, ts int64, headers []graph.Header) {
	l := d.log(topic)
	if partition < 0 {
		if key == nil {
			partition = l.rr % d.cfg.partitions
			l.rr++
		} else {
			partition = runtime.PartitionForKey(key, d.cfg.partitions)
		}
	}
	if partition >= d.cfg.partitions {
		d.fatal(fmt.Errorf("kstest: partition %d of topic %s does not exist (the driver has %d partitions per topic)", partition, topic, d.cfg.partitions))
		return
	}
	l.recs = append(l.recs, stored{partition: partition, offset: l.next[partition], key: key, value: value, ts: ts, headers: headers})
	l.next[partition]++
	if _, ok := d.readers[topic]; ok {
		d.queue = append(d.queue, queued{topic: topic, idx: len(l.recs) - 1})
	}
}

// collect moves a task's output into the topics.
func (d *Driver) collect(t *runtime.Task) {
	out := t.Output()
	for i := range out.Len() {
		r := out.At(i)
		var hs []graph.Header
		if len(r.Headers) > 0 {
			hs = make([]graph.Header, len(r.Headers))
			for j, h := range r.Headers {
				hs[j] = graph.Header{Key: h.Key, Value: clone(h.Value)}
			}
		}
		d.produce(r.Topic, r.Partition, clone(out.Key(r)), clone(out.Value(r)), r.Timestamp, hs)
	}
	out.Reset()
}

func (d *Driver) collectAll() error {
	for _, t := range d.tasks {
		d.collect(t)
	}
	return d.drain()
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// drain processes queued records until none is left.
func (d *Driver) drain() error {
	for len(d.queue) > 0 {
		q := d.queue[0]
		d.queue = d.queue[1:]
		r := d.topics[q.topic].recs[q.idx]
		sub := d.readers[q.topic]
		t := d.byID[runtime.TaskID{SubTopology: sub, Partition: r.partition}]
		if t == nil { // the global task reads every partition
			t = d.byID[runtime.TaskID{SubTopology: sub, Partition: -1}]
		}
		err := t.ProcessPartition(q.topic, r.partition, []graph.RawRecord{{Key: r.key, Value: r.value, Timestamp: r.ts, Headers: r.headers, Offset: r.offset}})
		if err == nil {
			// A commit after every record, as TopologyTestDriver's: cached
			// table updates (kstream.Cached) go out at once.
			err = t.Flush()
		}
		d.collect(t)
		if err != nil {
			d.queue = nil
			return err
		}
	}
	d.queue = d.queue[:0]
	return nil
}

// pipe writes one input record and processes everything it causes.
func (d *Driver) pipe(topic string, key, value []byte, ts int64, headers []graph.Header) error {
	if d.closed {
		return errors.New("kstest: driver is closed")
	}
	d.produce(topic, -1, key, value, ts, headers)
	err := d.drain()
	for _, t := range d.tasks {
		if cerr := d.checkpoint(t); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}

// AdvanceWallClock moves the fake wall clock forward by dt and runs the
// wall-clock punctuations that become due, in every task.
func (d *Driver) AdvanceWallClock(dt time.Duration) {
	if d.tb != nil {
		d.tb.Helper()
	}
	d.now += dt.Milliseconds()
	for _, t := range d.tasks {
		err := t.PunctuateWallClock(d.now)
		if err == nil {
			err = t.Flush()
		}
		d.collect(t)
		if err == nil {
			err = d.drain()
		}
		if err != nil {
			d.fatal(err)
			return
		}
	}
}

// Now returns the fake wall clock.
func (d *Driver) Now() time.Time { return time.UnixMilli(d.now) }

// Dropped returns how many records the node named node dropped by design
// (tombstones a re-keying operator cannot use, null keys and tombstones at
// aggregations, records a sink's kstream.PartitionsWith sent to no
// partition), over all tasks.
func (d *Driver) Dropped(node string) int64 {
	var n int64
	for _, t := range d.tasks {
		n += t.Context().Dropped[node]
	}
	return n
}

// Skipped returns how many failed records the error policies skipped or
// wrote to the dead-letter topic (OnDeserializationError, ...), over all
// tasks and restarts.
func (d *Driver) Skipped() int64 {
	n := d.skipped
	for _, t := range d.tasks {
		n += t.Skipped.Load()
	}
	return n
}

// Received returns how many records the node named node received, over
// all tasks: for a source, the records read from its topic; for any other
// node, the records its parents passed it (punctuations included). A node
// passes on to its children what they receive, so a Filter's children
// received what it kept. This is Kafka Streams' process-total metric of a
// processor node; kafkaio reports it with kafkaio.NodeMetrics.
func (d *Driver) Received(node string) int64 {
	var n int64
	for _, t := range d.tasks {
		if i, c := slices.Index(t.Context().Names, node), t.NodeCounts(); i >= 0 && i < len(c) {
			n += c[i]
		}
	}
	return n
}

// Topics returns the names of every topic written so far, sorted.
func (d *Driver) Topics() []string {
	var out []string
	for name := range d.topics {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// InputTopic writes typed records to a topic.
type InputTopic[K, V any] struct {
	d     *Driver
	topic string
	ks    serde.Serde[K]
	vs    serde.Serde[V]
}

// Input returns a writer of typed records to topic.
func Input[K, V any](d *Driver, topic string, ks serde.Serde[K], vs serde.Serde[V]) *InputTopic[K, V] {
	return &InputTopic[K, V]{d: d, topic: topic, ks: ks, vs: vs}
}

// Pipe writes a record stamped with the wall clock and processes it.
func (in *InputTopic[K, V]) Pipe(k K, v V) {
	in.d.helper()
	in.must(in.TryPipeRecord(kstream.Record[K, V]{Key: k, Value: v, Timestamp: in.d.now}))
}

// PipeAt writes a record with timestamp ts (milliseconds) and processes it.
func (in *InputTopic[K, V]) PipeAt(ts int64, k K, v V) {
	in.d.helper()
	in.must(in.TryPipeRecord(kstream.Record[K, V]{Key: k, Value: v, Timestamp: ts}))
}

// PipeTombstone writes a tombstone (null value) for k, stamped with the wall
// clock, and processes it.
func (in *InputTopic[K, V]) PipeTombstone(k K) {
	in.d.helper()
	in.must(in.TryPipeRecord(kstream.Record[K, V]{Key: k, Tombstone: true, Timestamp: in.d.now}))
}

// PipeTombstoneAt writes a tombstone for k with timestamp ts.
func (in *InputTopic[K, V]) PipeTombstoneAt(ts int64, k K) {
	in.d.helper()
	in.must(in.TryPipeRecord(kstream.Record[K, V]{Key: k, Tombstone: true, Timestamp: ts}))
}

// PipeNullKeyAt writes a record whose key is Kafka's null.
func (in *InputTopic[K, V]) PipeNullKeyAt(ts int64, v V) {
	in.d.helper()
	vb, err := in.vs.Append(nil, v)
	if err != nil {
		in.d.fatal(fmt.Errorf("kstest: encoding value for %s: %w", in.topic, err))
		return
	}
	in.must(in.d.pipe(in.topic, nil, vb, ts, nil))
}

// PipeRaw writes raw bytes (nil key or value: null) and processes them: for
// testing how a topology meets records it cannot decode.
func (in *InputTopic[K, V]) PipeRaw(ts int64, key, value []byte) error {
	return in.d.pipe(in.topic, key, value, ts, nil)
}

// TryPipeRecord writes rec (its key, value or tombstone, timestamp and
// headers) and processes it, returning the processing error instead of
// failing the test.
func (in *InputTopic[K, V]) TryPipeRecord(rec kstream.Record[K, V]) error {
	// A non-nil buffer: an empty key is not a null key.
	kb, err := in.ks.Append([]byte{}, rec.Key)
	if err != nil {
		return fmt.Errorf("kstest: encoding key for %s: %w", in.topic, err)
	}
	var vb []byte
	if !rec.Tombstone {
		if vb, err = in.vs.Append([]byte{}, rec.Value); err != nil {
			return fmt.Errorf("kstest: encoding value for %s: %w", in.topic, err)
		}
	}
	var hs []graph.Header
	for _, h := range rec.Headers {
		hs = append(hs, graph.Header{Key: h.Key, Value: clone(h.Value)})
	}
	return in.d.pipe(in.topic, kb, vb, rec.Timestamp, hs)
}

func (in *InputTopic[K, V]) must(err error) {
	if err != nil {
		in.d.fatal(err)
	}
}

func (d *Driver) helper() {
	if d.tb != nil {
		d.tb.Helper()
	}
}

// OutputTopic reads typed records from a topic.
type OutputTopic[K, V any] struct {
	d      *Driver
	topic  string
	ks     serde.Serde[K]
	vs     serde.Serde[V]
	cursor int
}

// Output returns a reader of typed records of topic.
func Output[K, V any](d *Driver, topic string, ks serde.Serde[K], vs serde.Serde[V]) *OutputTopic[K, V] {
	return &OutputTopic[K, V]{d: d, topic: topic, ks: ks, vs: vs}
}

// Records returns the records written to the topic since the previous call
// (of Records or PartitionedRecords), in the order they were produced
// (across partitions). A record that does not decode fails the test.
func (o *OutputTopic[K, V]) Records() []kstream.Record[K, V] {
	o.d.helper()
	var out []kstream.Record[K, V]
	o.read(func(r PartitionedRecord[K, V]) { out = append(out, r.Record) })
	return out
}

// PartitionedRecord is a record of an output topic with where it was
// written: its partition and its offset in that partition.
type PartitionedRecord[K, V any] struct {
	kstream.Record[K, V]
	Partition int32
	Offset    int64
}

// PartitionedRecords is Records with each record's partition and offset: a
// topic has as many partitions as the driver ([Partitions]), and records go
// to them as a producer puts them: by key (murmur2, as Kafka's default
// partitioner), round robin for null keys, or where a sink's partitioner
// says (kstream.PartitionWith; with kstream.PartitionsWith, a record
// written to several partitions is here once per partition, in the order
// the partitioner listed them).
func (o *OutputTopic[K, V]) PartitionedRecords() []PartitionedRecord[K, V] {
	o.d.helper()
	var out []PartitionedRecord[K, V]
	o.read(func(r PartitionedRecord[K, V]) { out = append(out, r) })
	return out
}

// read decodes the records after the cursor, passing each to fn, and moves
// the cursor past them. A record that does not decode fails the test.
func (o *OutputTopic[K, V]) read(fn func(PartitionedRecord[K, V])) {
	o.d.helper()
	l := o.d.topics[o.topic]
	if l == nil {
		return
	}
	for ; o.cursor < len(l.recs); o.cursor++ {
		r := l.recs[o.cursor]
		rec := PartitionedRecord[K, V]{Record: kstream.Record[K, V]{Timestamp: r.ts, Tombstone: r.value == nil},
			Partition: r.partition, Offset: r.offset}
		var err error
		if r.key != nil {
			if rec.Key, err = o.ks.Decode(r.key); err != nil {
				o.d.fatal(fmt.Errorf("kstest: decoding key of %s/%d@%d: %w", o.topic, r.partition, r.offset, err))
				return
			}
		}
		if r.value != nil {
			if rec.Value, err = o.vs.Decode(r.value); err != nil {
				o.d.fatal(fmt.Errorf("kstest: decoding value of %s/%d@%d: %w", o.topic, r.partition, r.offset, err))
				return
			}
		}
		for _, h := range r.headers {
			rec.Headers = append(rec.Headers, kstream.Header{Key: h.Key, Value: h.Value})
		}
		fn(rec)
	}
}

// LatestByKey drains out and returns each key's latest value; a tombstone
// removes the key.
func LatestByKey[K comparable, V any](out interface{ Records() []kstream.Record[K, V] }) map[K]V {
	m := map[K]V{}
	for _, r := range out.Records() {
		if r.Tombstone {
			delete(m, r.Key)
		} else {
			m[r.Key] = r.Value
		}
	}
	return m
}

// StoreView reads a state store across all of the driver's tasks.
type StoreView[K, V any] struct {
	d    *Driver
	name string
	ks   serde.Serde[K]
	vs   serde.Serde[V]
}

// Store returns a reader of the store named name. For stores that keep
// timestamps (aggregations, tables), Get returns the value alone.
func Store[K, V any](d *Driver, name string, ks serde.Serde[K], vs serde.Serde[V]) *StoreView[K, V] {
	return &StoreView[K, V]{d: d, name: name, ks: ks, vs: vs}
}

// Get returns the value of k in whichever task holds it.
func (s *StoreView[K, V]) Get(k K) (V, bool) {
	s.d.helper()
	var zero V
	kb, err := s.ks.Append(nil, k)
	if err != nil {
		s.d.fatal(fmt.Errorf("kstest: store %s: encoding key: %w", s.name, err))
		return zero, false
	}
	found := false
	for _, t := range s.d.tasks {
		st := t.Store(s.name)
		if st == nil {
			continue
		}
		found = true
		b, ok, err := st.Get(kb)
		if err != nil {
			s.d.fatal(fmt.Errorf("kstest: store %s: %w", s.name, err))
			return zero, false
		}
		if !ok {
			continue
		}
		if t.StoreSpec(s.name).Timestamped {
			b = b[8:]
		}
		v, err := s.vs.Decode(b)
		if err != nil {
			s.d.fatal(fmt.Errorf("kstest: store %s: decoding value: %w", s.name, err))
			return zero, false
		}
		return v, true
	}
	if !found {
		s.d.fatal(fmt.Errorf("kstest: the topology has no store %q", s.name))
	}
	return zero, false
}

// All calls fn for every key and value of the store, task by task in the
// order of their partitions, and in key byte order within a task, until fn
// returns false: kafkaio's StoreReader.All over every instance.
func (s *StoreView[K, V]) All(fn func(K, V) bool) { s.scan(nil, nil, fn) }

// Range is All for the keys from from to to, both included, compared as the
// key serde encodes them, in byte order (kafkaio's StoreReader.Range).
func (s *StoreView[K, V]) Range(from, to K, fn func(K, V) bool) {
	s.d.helper()
	lo, err1 := s.ks.Append(nil, from)
	hi, err2 := s.ks.Append(nil, to)
	if err := errors.Join(err1, err2); err != nil {
		s.d.fatal(fmt.Errorf("kstest: store %s: encoding a range bound: %w", s.name, err))
		return
	}
	if bytes.Compare(lo, hi) > 0 {
		return
	}
	s.scan(lo, append(hi, 0), fn)
}

// Prefix is All for the keys whose encoding starts with prefix's
// (kafkaio's StoreReader.Prefix).
func (s *StoreView[K, V]) Prefix(prefix K, fn func(K, V) bool) {
	s.d.helper()
	lo, err := s.ks.Append(nil, prefix)
	if err != nil {
		s.d.fatal(fmt.Errorf("kstest: store %s: encoding the prefix: %w", s.name, err))
		return
	}
	s.scan(lo, serde.PrefixEnd(lo), fn)
}

// scan calls fn for the keys in [lo, hi) (nil: no bound) of every task's
// copy of the store. It reads a task's entries before calling fn, so fn may
// pipe records.
func (s *StoreView[K, V]) scan(lo, hi []byte, fn func(K, V) bool) {
	s.d.helper()
	found := false
	var keys, vals [][]byte
	for _, t := range s.d.tasks {
		st := t.Store(s.name)
		if st == nil {
			continue
		}
		found = true
		keys, vals = keys[:0], vals[:0]
		if err := st.Range(lo, hi, func(kb, vb []byte) bool {
			keys, vals = append(keys, bytes.Clone(kb)), append(vals, bytes.Clone(vb))
			return true
		}); err != nil {
			s.d.fatal(fmt.Errorf("kstest: store %s: %w", s.name, err))
			return
		}
		ts := t.StoreSpec(s.name).Timestamped
		for i := range keys {
			k, err := s.ks.Decode(keys[i])
			if err != nil {
				s.d.fatal(fmt.Errorf("kstest: store %s: decoding key: %w", s.name, err))
				return
			}
			vb := vals[i]
			if ts {
				if len(vb) < 8 {
					s.d.fatal(fmt.Errorf("kstest: store %s: a value of %d bytes has no timestamp", s.name, len(vb)))
					return
				}
				vb = vb[8:]
			}
			v, err := s.vs.Decode(vb)
			if err != nil {
				s.d.fatal(fmt.Errorf("kstest: store %s: decoding value: %w", s.name, err))
				return
			}
			if !fn(k, v) {
				return
			}
		}
	}
	if !found {
		s.d.fatal(fmt.Errorf("kstest: the topology has no store %q", s.name))
	}
}
