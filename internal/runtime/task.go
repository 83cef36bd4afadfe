package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/state"
)

// TaskID identifies a task: a sub-topology on one partition.
type TaskID struct {
	SubTopology int
	Partition   int32
}

// String renders the ID as Kafka Streams does: "<sub-topology>_<partition>".
func (id TaskID) String() string {
	return strconv.Itoa(id.SubTopology) + "_" + strconv.Itoa(int(id.Partition))
}

// Action is what the runtime does with a record that failed.
type Action uint8

const (
	// Fail stops processing: the task returns the error.
	Fail Action = iota
	// Skip logs and counts the failure, then goes on with the next record.
	Skip
	// DeadLetter writes the raw record to the dead-letter topic, with headers
	// describing the failure, then goes on.
	DeadLetter
)

// PolicyHandler returns the Config.OnError that applies a policy per kind
// of failure: onDecode to deserialization failures, onProduce to production
// failures, onProcess to the others. A dead letter needs the raw record: a
// punctuation's failure fails.
func PolicyHandler(onDecode, onProcess, onProduce kstream.Policy) func(*graph.RecordError, *graph.RawRecord) Action {
	return func(e *graph.RecordError, raw *graph.RawRecord) Action {
		p := onProcess
		switch {
		case e.Deserialization:
			p = onDecode
		case e.Production:
			p = onProduce
		}
		switch {
		case p == kstream.PolicySkip:
			return Skip
		case p == kstream.PolicyDeadLetter && raw != nil:
			return DeadLetter
		}
		return Fail
	}
}

// Config configures the tasks of one application instance.
type Config struct {
	// AppID names the application: internal topics are "<AppID>-...".
	AppID string
	// NewStore creates a task's instance of a store. Default: an in-memory
	// store.
	NewStore func(spec *graph.StoreSpec, partition int32) (state.Store, error)
	// OnError decides what happens to a failed record (raw is nil when a
	// punctuation failed). Default: Fail.
	OnError func(e *graph.RecordError, raw *graph.RawRecord) Action
	// DeadLetterTopic receives the records for which OnError returned
	// DeadLetter.
	DeadLetterTopic string
	// Logger logs skipped records. Default: slog.Default().
	Logger *slog.Logger
	// DB, when set, holds the tasks' stores (unless NewStore is set): each
	// task buffers its writes in a batch that Commit applies atomically
	// with a checkpoint.
	DB *state.DB
	// GlobalStore returns the instance's store of a global table, for the
	// tasks that read it. Required when the topology has global tables.
	GlobalStore func(name string) state.Store
	// Partitions returns the partition count of a topic (its full name):
	// the sinks whose records a custom partitioner places
	// (kstream.PartitionWith, PartitionsWith) call it, on their first record for a topic
	// (ToFunc sinks: whenever the topic changes), from the goroutine
	// running the task. Without it such records fail as production errors.
	Partitions func(topic string) (int32, error)
	// Clock returns the wall-clock time in milliseconds. NewTask reads it
	// before the processors' Init, so that wall-clock punctuations scheduled
	// there start from the current time. Default: the system clock.
	Clock func() int64
	// CountNodes makes the task count the records each of its nodes
	// receives (Task.NodeCounts), as Kafka Streams' processor-node metrics
	// at the DEBUG recording level: each record costs one more function
	// call per node.
	CountNodes bool
}

// Task runs one sub-topology for one partition.
type Task struct {
	ID      TaskID
	cfg     *Config
	topo    *kstream.Topology
	sub     *graph.SubTopology
	tc      *graph.TaskContext
	sources map[string]source
	stores  map[string]*loggedStore
	execs   map[string]any
	// nodeIn counts the records each node received, by node ID
	// (Config.CountNodes).
	nodeIn []int64
	batch  *state.Batch  // the write buffer of a task on a state.DB
	loader *state.Loader // restores into a state.DB, created by Restore
	// restoreBuf is Restore's batch into an in-memory store, reused.
	restoreBuf RestoreBatch
	// Skipped counts the records skipped or dead-lettered by the error
	// policy; other goroutines may read it (App.Stats).
	Skipped atomic.Int64
}

// NewTask creates the task of sub-topology sub on partition p: its stores
// (empty: restore them before processing) and its executors. A processor's
// Init runs here.
func NewTask(topo *kstream.Topology, cfg *Config, sub int, p int32) (*Task, error) {
	t, err := NewStandby(topo, cfg, sub, p)
	if err != nil {
		return nil, err
	}
	if err := t.Activate(); err != nil {
		return nil, err
	}
	return t, nil
}

// NewStandby creates the stores of the task of sub-topology sub on partition
// p, and no executor: a standby replica, which keeps the stores current from
// their changelogs (Restore, Commit) without processing. Activate turns it
// into a processing task with the same stores.
func NewStandby(topo *kstream.Topology, cfg *Config, sub int, p int32) (t *Task, err error) {
	g := topo.Graph()
	if sub < 0 || sub >= len(g.SubTopologies) {
		return nil, fmt.Errorf("runtime: no sub-topology %d", sub)
	}
	st := g.SubTopologies[sub]
	tc := graph.NewTaskContext(cfg.AppID, sub, p)
	tc.Partitions = cfg.Partitions
	tc.Names = make([]string, len(g.Nodes))
	for i, n := range g.Nodes {
		tc.Names[i] = n.Name
	}
	t = &Task{ID: TaskID{sub, p}, cfg: cfg, topo: topo, sub: st, tc: tc,
		sources: map[string]source{}, stores: map[string]*loggedStore{}}
	defer func() {
		if err != nil {
			_ = t.Close()
			t = nil
		}
	}()
	newStore := cfg.NewStore
	switch {
	case newStore != nil:
	case cfg.DB != nil:
		// Writes go to the task's batch (its reads see them first) until
		// Commit applies it with the checkpoint.
		t.batch = cfg.DB.NewBatch()
		newStore = func(spec *graph.StoreSpec, p int32) (state.Store, error) {
			return t.batch.Store(cfg.DB.Store(spec.Name, p)), nil
		}
	default:
		newStore = func(*graph.StoreSpec, int32) (state.Store, error) { return state.NewMemory(), nil }
	}
	for _, spec := range st.Stores {
		inner, err := newStore(spec, p)
		if err != nil {
			return t, fmt.Errorf("runtime: task %s: store %s: %w", t.ID, spec.Name, err)
		}
		ls := &loggedStore{Store: inner, spec: spec, topic: spec.Changelog.Resolve(cfg.AppID), tc: tc}
		t.stores[spec.Name] = ls
		tc.SetStore(spec.Name, ls)
	}
	return t, nil
}

// Active reports whether the task processes records (it was activated), or
// is a standby.
func (t *Task) Active() bool { return t.execs != nil }

// Activate creates the executors of a task made by NewStandby, on its
// stores as they are, and runs the processors' Init. On error the task is
// closed.
func (t *Task) Activate() (err error) {
	if t.execs != nil {
		return fmt.Errorf("runtime: task %s is already active", t.ID)
	}
	tc, st, cfg := t.tc, t.sub, t.cfg
	if cfg.Clock != nil {
		tc.WallClock = cfg.Clock()
	} else {
		tc.WallClock = time.Now().UnixMilli()
	}
	t.execs = map[string]any{}
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("runtime: creating task %s: node %s: %w", t.ID, tc.Names[tc.Node], graph.Recovered(v))
		}
		if err != nil {
			_ = t.Close()
		}
	}()
	g := t.topo.Graph()
	if err := t.connectGlobalStores(g, st); err != nil {
		return err
	}
	execs := make(map[int]any, len(st.Nodes))
	if cfg.CountNodes && t.nodeIn == nil {
		t.nodeIn = make([]int64, len(tc.Names))
	}
	for i := len(st.Nodes) - 1; i >= 0; i-- {
		n := st.Nodes[i]
		children := make([]any, len(n.Children))
		for j, c := range n.Children {
			children[j] = execs[c.ID]
			if t.nodeIn != nil {
				children[j] = graph.CountedExec{Exec: execs[c.ID], N: &t.nodeIn[c.ID]}
			}
		}
		tc.Node = int32(n.ID)
		e, err := n.Make(tc, children)
		if err != nil {
			return fmt.Errorf("runtime: task %s: %w", t.ID, err)
		}
		execs[n.ID] = e
		t.execs[n.Name] = graph.ExecOf(e)
		if n.Kind == graph.KindSource {
			src, ok := e.(func(*graph.RawRecord))
			if !ok {
				return fmt.Errorf("runtime: task %s: source %s has executor %T", t.ID, n.Name, e)
			}
			if t.nodeIn != nil {
				run, c := src, &t.nodeIn[n.ID]
				src = func(r *graph.RawRecord) {
					*c++
					run(r)
				}
			}
			t.sources[n.Topic.Resolve(cfg.AppID)] = source{run: src, extracts: n.ExtractsTime}
		}
	}
	return nil
}

// connectGlobalStores gives the task read-only access to the global stores
// its nodes use.
func (t *Task) connectGlobalStores(g *graph.Topology, st *graph.SubTopology) error {
	for _, n := range st.Nodes {
		for _, name := range n.Stores {
			if _, own := t.stores[name]; own {
				continue
			}
			spec := findStore(g, name)
			if spec == nil || !spec.Global {
				continue
			}
			var s state.Store
			if t.cfg.GlobalStore != nil {
				s = t.cfg.GlobalStore(name)
			}
			if s == nil {
				return fmt.Errorf("runtime: task %s: global store %s is not available", t.ID, name)
			}
			t.tc.SetStore(name, readOnly{s, name})
		}
	}
	return nil
}

func findStore(g *graph.Topology, name string) *graph.StoreSpec {
	for _, s := range g.Stores {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// GlobalSubTopology returns the sub-topology that maintains the global
// stores, if the topology has any. Its one task (partition -1) reads every
// partition of its topics.
func GlobalSubTopology(topo *kstream.Topology) (int, bool) {
	for _, st := range topo.Graph().SubTopologies {
		if st.Global {
			return st.ID, true
		}
	}
	return 0, false
}

// readOnly is a task's view of a global store: only the global task writes.
type readOnly struct {
	state.Store
	name string
}

func (r readOnly) Put(_, _ []byte) error {
	return fmt.Errorf("runtime: global store %s is read-only", r.name)
}

func (r readOnly) Delete(_ []byte) error {
	return fmt.Errorf("runtime: global store %s is read-only", r.name)
}

func (r readOnly) Close() error { return nil }

// GetAppend implements state.AppendGetter, so that lookups in a global store
// (a stream–global table join's) allocate nothing when the store appends.
func (r readOnly) GetAppend(dst, key []byte) ([]byte, bool, error) {
	return state.GetAppend(r.Store, dst, key)
}

// Executor returns the executor of the node named name: for a processor, its
// typed input function, such as func(K, V, *graph.Meta) for a stream node.
// Benchmarks and tests use it to feed typed records past the source.
func (t *Task) Executor(name string) any { return t.execs[name] }

// NodeCounts returns how many records each node of the task received (a
// source: records read from its topic; a processor or sink: calls from its
// parents, punctuations included), indexed by node ID (Context().Names
// names them), or nil unless Config.CountNodes. The counts belong to the
// goroutine running the task: read them between its calls.
func (t *Task) NodeCounts() []int64 { return t.nodeIn }

// Context returns the task's context: stream time, wall clock, counters.
func (t *Task) Context() *graph.TaskContext { return t.tc }

// Output returns the buffer of records the task produced; the caller drains
// it and calls Reset.
func (t *Task) Output() *graph.OutBuffer { return &t.tc.Out }

// Topics returns the full names of the topics the task reads.
func (t *Task) Topics() []string {
	out := make([]string, 0, len(t.sub.Sources))
	for _, n := range t.sub.Sources {
		out = append(out, n.Topic.Resolve(t.cfg.AppID))
	}
	return out
}

// source is the executor of a source node, and whether it sets its records'
// timestamps (graph.Node.ExtractsTime).
type source struct {
	run      func(*graph.RawRecord)
	extracts bool
}

// Process pushes a batch of records of one topic (of the task's partition)
// through the task, in offset order. A failed record is handled by the error
// policy; under Fail, Process returns the error and the records after it are
// not processed.
func (t *Task) Process(topic string, recs []graph.RawRecord) error {
	src, ok := t.sources[topic]
	if !ok {
		return fmt.Errorf("runtime: task %s does not read topic %s", t.ID, topic)
	}
	for i := 0; i < len(recs); {
		var err error
		if i, err = t.run(src, topic, recs, i); err != nil {
			return err
		}
	}
	return nil
}

// ProcessPartition is Process for the global task, which reads every
// partition of its topics: recs are of partition p, which errors (and the
// dead-letter headers) name instead of the task's -1.
func (t *Task) ProcessPartition(topic string, p int32, recs []graph.RawRecord) error {
	own := t.tc.Partition
	t.tc.Partition = p
	defer func() { t.tc.Partition = own }()
	return t.Process(topic, recs)
}

// run processes recs from i on, and returns where to resume: after a record
// whose user code panicked, the panic is recovered here, once per panic
// rather than once per record.
func (t *Task) run(src source, topic string, recs []graph.RawRecord, i int) (next int, err error) {
	tc := t.tc
	defer func() {
		if v := recover(); v != nil {
			tc.Panicked(v)
			next, err = i+1, t.handle(&recs[i])
		}
	}()
	for ; i < len(recs); i++ {
		r := &recs[i]
		tc.Topic, tc.Offset, tc.RecordTime = topic, r.Offset, r.Timestamp
		var due bool
		if !src.extracts {
			due = tc.Observe(r.Timestamp)
		}
		src.run(r)
		if src.extracts {
			due = tc.TakeDue()
		}
		if tc.Failed() {
			if err := t.handle(r); err != nil {
				return i, err
			}
		}
		if due {
			tc.PunctuateStreamTime()
			if tc.Failed() {
				if err := t.handle(nil); err != nil {
					return i, err
				}
			}
		}
	}
	return i, nil
}

// Flush makes the nodes that hold records back (tables whose updates are
// cached, kstream.Cached) forward them, into the task's output buffer. The
// runtime flushes every task before it commits. A failure downstream is
// handled by the error policy, as a punctuation's is.
func (t *Task) Flush() (err error) {
	tc := t.tc
	defer func() {
		if v := recover(); v != nil {
			tc.Panicked(v)
			err = t.handle(nil)
		}
	}()
	tc.Topic, tc.Offset = "", -1
	tc.Flush()
	if tc.Failed() {
		return t.handle(nil)
	}
	return nil
}

// PunctuateWallClock sets the task's wall clock to now (milliseconds) and runs
// the wall-clock punctuations that are due.
func (t *Task) PunctuateWallClock(now int64) (err error) {
	tc := t.tc
	defer func() {
		if v := recover(); v != nil {
			tc.Panicked(v)
			err = t.handle(nil)
		}
	}()
	tc.PunctuateWallClock(now)
	if tc.Failed() {
		return t.handle(nil)
	}
	return nil
}

// handle applies the error policy to the pending failure.
func (t *Task) handle(raw *graph.RawRecord) error {
	f := t.tc.TakeFailure()
	if f == nil {
		return nil
	}
	act := Fail
	if t.cfg.OnError != nil {
		act = t.cfg.OnError(f, raw)
	}
	switch {
	case act == Skip:
		t.Skipped.Add(1)
		attrs := []any{"task", t.ID.String(), "error", f.Error()}
		if pe := (*graph.PanicError)(nil); errors.As(f.Err, &pe) {
			attrs = append(attrs, "stack", string(pe.Stack))
		}
		t.logger().Warn("kstream: skipping record", attrs...)
		return nil
	case act == DeadLetter && raw != nil && t.cfg.DeadLetterTopic != "":
		t.Skipped.Add(1)
		headers := append(append([]graph.Header(nil), raw.Headers...), DeadLetterHeaders(f)...)
		t.tc.Out.AddBytes(t.cfg.DeadLetterTopic, -1, raw.Key, raw.Value, raw.Timestamp, headers)
		return nil
	}
	return f
}

func (t *Task) logger() *slog.Logger {
	if t.cfg.Logger != nil {
		return t.cfg.Logger
	}
	return slog.Default()
}

// DeadLetterHeaders describes a failure as record headers: the error, the
// source topic, partition and offset, and the node; for a panic, also the
// stack at the panic (kstream.error.stack).
func DeadLetterHeaders(f *graph.RecordError) []graph.Header {
	kind := "processing"
	switch {
	case f.Deserialization:
		kind = "deserialization"
	case f.Production:
		kind = "production"
	}
	hs := []graph.Header{
		{Key: "kstream.error", Value: []byte(f.Err.Error())},
		{Key: "kstream.error.kind", Value: []byte(kind)},
		{Key: "kstream.source.topic", Value: []byte(f.Topic)},
		{Key: "kstream.source.partition", Value: []byte(strconv.Itoa(int(f.Partition)))},
		{Key: "kstream.source.offset", Value: []byte(strconv.FormatInt(f.Offset, 10))},
		{Key: "kstream.node", Value: []byte(f.Node)},
	}
	if pe := (*graph.PanicError)(nil); errors.As(f.Err, &pe) {
		hs = append(hs, graph.Header{Key: "kstream.error.stack", Value: pe.Stack})
	}
	return hs
}

// Changelogs returns, for each store of the task, the full name of the topic
// to restore it from (for a source table, its source topic).
func (t *Task) Changelogs() map[string]string {
	out := make(map[string]string, len(t.stores))
	for name, s := range t.stores {
		out[name] = s.topic
	}
	return out
}

// Store returns the task's instance of a store, unwrapped (reads and writes
// are not logged), or nil.
func (t *Task) Store(name string) state.Store {
	if s, ok := t.stores[name]; ok {
		return s.Store
	}
	return nil
}

// StoreSpec returns the description of one of the task's stores, or nil.
func (t *Task) StoreSpec(name string) *graph.StoreSpec {
	if s, ok := t.stores[name]; ok {
		return s.spec
	}
	return nil
}

// Restore applies changelog records to the store without logging them again:
// a null value deletes the key; a timestamped store gets the record's
// timestamp back in front of the value; a record with a null key is skipped,
// and so is one that the store's RestoreCheck refuses (source tables).
//
// An in-memory store that applies batches (state.Memory.Apply) gets the
// records in one call, so that its index lookups overlap.
//
// On a DB, the records go to a bulk loader (state.Loader), not to the task's
// write buffer: Commit applies them with the checkpoint, and a restore
// should Commit about every state.LoaderCommitBytes of RestorePending.
func (t *Task) Restore(store string, recs []graph.RawRecord) error {
	s, ok := t.stores[store]
	if !ok {
		return fmt.Errorf("runtime: task %s has no store %s", t.ID, store)
	}
	if t.batch != nil && t.loader == nil {
		t.loader = t.cfg.DB.NewLoader()
	}
	ld := t.loader
	if _, ok := s.Store.(batchApplier); ok && ld == nil {
		t.restoreBuf.prepare(s.spec, recs)
		return t.ApplyRestore(store, &t.restoreBuf)
	}
	var buf []byte
	for i := range recs {
		r := &recs[i]
		var err error
		switch {
		case r.Key == nil:
			// A null key in a source table's topic: the table dropped it.
			continue
		case r.Value == nil && ld != nil:
			err = ld.Delete(s.Store, r.Key)
		case r.Value == nil:
			err = s.Store.Delete(r.Key)
		default:
			v, ts := r.Value, r.Timestamp
			if check := s.spec.RestoreCheck; check != nil {
				var keep bool
				if ts, keep = check(r.Key, v, ts); !keep {
					continue
				}
			}
			if s.spec.Timestamped {
				buf = binary.BigEndian.AppendUint64(buf[:0], uint64(ts))
				v = append(buf, r.Value...)
				buf = v
			}
			if ld != nil {
				err = ld.Put(s.Store, r.Key, v)
			} else {
				err = s.Store.Put(r.Key, v)
			}
		}
		if err != nil {
			return fmt.Errorf("runtime: task %s: restoring store %s at offset %d: %w", t.ID, store, r.Offset, err)
		}
	}
	return nil
}

// batchApplier is a store that puts and deletes a batch of keys at once
// (state.Memory).
type batchApplier interface {
	Apply(keys, values [][]byte) error
}

// RestoreBatch is changelog records prepared for an in-memory store that
// applies batches (state.Memory.Apply), by Task.PrepareRestore, possibly
// on another goroutine than the one that applies them
// (Task.ApplyRestore). Its buffers are reused from one batch to the next.
type RestoreBatch struct {
	keys, vals  [][]byte
	buf         []byte // the timestamped values
	first, last int64  // offsets of the records, for errors
}

// PrepareRestore prepares recs for store in b and reports whether it did:
// when the store is in memory and applies batches. Restore would then
// apply them as ApplyRestore applies b. It only reads the task, so that a
// restore may prepare a batch on its reading goroutine while it applies the
// one before on another.
func (t *Task) PrepareRestore(store string, recs []graph.RawRecord, b *RestoreBatch) bool {
	s, ok := t.stores[store]
	if !ok || t.batch != nil || len(recs) == 0 {
		return false
	}
	if _, ok := s.Store.(batchApplier); !ok {
		return false
	}
	b.prepare(s.spec, recs)
	return true
}

// prepare fills b from recs, as spec's store keeps them: a null value
// deletes the key; a timestamped store gets the record's timestamp in
// front of the value; a record with a null key, or that spec's RestoreCheck
// refuses, is skipped.
func (b *RestoreBatch) prepare(spec *graph.StoreSpec, recs []graph.RawRecord) {
	keys, vals := b.keys[:0], b.vals[:0]
	var size int
	if spec.Timestamped {
		for i := range recs {
			size += 8 + len(recs[i].Value)
		}
	}
	buf := b.buf[:0]
	if cap(buf) < size {
		buf = make([]byte, 0, size)
	}
	check := spec.RestoreCheck
	for i := range recs {
		r := &recs[i]
		if r.Key == nil { // a null key in a source table's topic: the table dropped it
			continue
		}
		v := r.Value
		ts := r.Timestamp
		if check != nil && v != nil {
			var keep bool
			if ts, keep = check(r.Key, v, ts); !keep {
				continue
			}
		}
		if spec.Timestamped && v != nil {
			at := len(buf) // buf has room for every value: no reallocation
			buf = binary.BigEndian.AppendUint64(buf, uint64(ts))
			buf = append(buf, v...)
			v = buf[at:len(buf):len(buf)]
		}
		keys, vals = append(keys, r.Key), append(vals, v)
	}
	b.keys, b.vals, b.buf = keys, vals, buf
	b.first, b.last = 0, 0
	if len(recs) > 0 {
		b.first, b.last = recs[0].Offset, recs[len(recs)-1].Offset
	}
}

// ApplyRestore applies a batch that PrepareRestore prepared for store, in
// one Apply.
func (t *Task) ApplyRestore(store string, b *RestoreBatch) error {
	s, ok := t.stores[store]
	if !ok {
		return fmt.Errorf("runtime: task %s has no store %s", t.ID, store)
	}
	ap, ok := s.Store.(batchApplier)
	if !ok {
		return fmt.Errorf("runtime: task %s: store %s does not apply batches", t.ID, store)
	}
	err := ap.Apply(b.keys, b.vals)
	// The batch keeps no record alive.
	clear(b.keys)
	clear(b.vals)
	b.keys, b.vals = b.keys[:0], b.vals[:0]
	if err != nil {
		return fmt.Errorf("runtime: task %s: restoring store %s at offsets %d-%d: %w", t.ID, store, b.first, b.last, err)
	}
	return nil
}

// CheckpointName is the name of the task's checkpoint in the DB.
func (t *Task) CheckpointName() string { return CheckpointName(t.cfg.AppID, t.ID) }

// CheckpointName is the name of the checkpoint of task id of application
// appID in its DB.
func CheckpointName(appID string, id TaskID) string { return appID + "/" + id.String() }

// Persistent reports whether the task's stores live in a DB (with
// checkpoints) rather than in memory.
func (t *Task) Persistent() bool { return t.batch != nil }

// ReserveRestore tells an empty in-memory store that about n records are
// about to be restored into it.
func (t *Task) ReserveRestore(store string, n int) {
	if s, ok := t.stores[store]; ok {
		if r, ok := s.Store.(interface{ Reserve(int) }); ok {
			r.Reserve(n)
		}
	}
}

// BulkLoad turns bulk loading on or off. While on, on a DB, the writes of
// the task's nodes go to its bulk loader, as Restore's do: several times
// cheaper per record than the write buffer, applied by Commit (call it about
// every state.LoaderCommitBytes of RestorePending), and not readable until
// then. In memory, the writes to a store that applies batches
// (state.Memory) are staged and applied stagedWrites at a time, so that
// their index lookups overlap as a restore's do; Commit applies the rest.
// Either way a read of one of the task's stores fails meanwhile. It is for a
// task whose nodes only write and that nothing reads while it catches up:
// the global task's bootstrap. Turning it off applies nothing: Commit first.
func (t *Task) BulkLoad(on bool) {
	if t.batch == nil {
		for _, s := range t.stores {
			staged, isStaged := s.Store.(*stagedStore)
			ap, applies := s.Store.(batchApplier)
			switch {
			case on && !isStaged && applies:
				s.Store = &stagedStore{unreadable: unreadable{s.spec.Name}, target: s.Store, ap: ap}
			case !on && isStaged:
				s.Store = staged.target
			}
		}
		return
	}
	if on && t.loader == nil {
		t.loader = t.cfg.DB.NewLoader()
	}
	for _, s := range t.stores {
		switch b, ok := s.Store.(*bulkStore); {
		case on && !ok:
			s.Store = &bulkStore{unreadable: unreadable{s.spec.Name}, ld: t.loader, target: s.Store}
		case !on && ok:
			s.Store = b.target
		}
	}
}

// unreadable refuses the reads of the store named name, in bulk-load mode.
type unreadable struct{ name string }

func (u unreadable) readErr() error {
	return fmt.Errorf("runtime: store %s read while it is bulk-loaded", u.name)
}

func (u unreadable) Get([]byte) ([]byte, bool, error) { return nil, false, u.readErr() }
func (u unreadable) Range(_, _ []byte, _ func(k, v []byte) bool) error {
	return u.readErr()
}

// bulkStore writes a store of a task in bulk-load mode to the task's loader.
type bulkStore struct {
	unreadable
	ld     *state.Loader
	target state.Store
}

func (b *bulkStore) Put(key, value []byte) error { return b.ld.Put(b.target, key, value) }
func (b *bulkStore) Delete(key []byte) error     { return b.ld.Delete(b.target, key) }
func (b *bulkStore) Close() error                { return b.target.Close() }

// stagedWrites is how many writes a stagedStore applies at once.
const stagedWrites = 1024

// stagedStore stages the writes to an in-memory store of a task in
// bulk-load mode (keys and values copied into an arena) and applies them
// stagedWrites at a time with one Apply.
type stagedStore struct {
	unreadable
	target state.Store
	ap     batchApplier
	arena  []byte
	writes []stagedWrite
	// keys and values are Apply's arguments, reused.
	keys, values [][]byte
}

// stagedWrite is a write's key, arena[start:mid], and value,
// arena[mid:end]; del marks a delete.
type stagedWrite struct {
	start, mid, end int
	del             bool
}

func (s *stagedStore) Put(key, value []byte) error { return s.stage(key, value, false) }
func (s *stagedStore) Delete(key []byte) error     { return s.stage(key, nil, true) }

func (s *stagedStore) stage(key, value []byte, del bool) error {
	w := stagedWrite{start: len(s.arena), del: del}
	s.arena = append(s.arena, key...)
	w.mid = len(s.arena)
	s.arena = append(s.arena, value...)
	w.end = len(s.arena)
	s.writes = append(s.writes, w)
	if len(s.writes) < stagedWrites {
		return nil
	}
	return s.apply()
}

// apply applies the staged writes in order.
func (s *stagedStore) apply() error {
	if len(s.writes) == 0 {
		return nil
	}
	keys, values := s.keys[:0], s.values[:0]
	for _, w := range s.writes {
		var v []byte
		if !w.del {
			v = s.arena[w.mid:w.end:w.end]
			if v == nil { // an empty value in an empty arena: not a delete
				v = []byte{}
			}
		}
		keys, values = append(keys, s.arena[w.start:w.mid:w.mid]), append(values, v)
	}
	err := s.ap.Apply(keys, values)
	clear(keys)
	clear(values)
	s.keys, s.values = keys[:0], values[:0]
	s.arena, s.writes = s.arena[:0], s.writes[:0]
	return err
}

// Close closes the store without applying what is staged: the task is
// closing, and its in-memory stores with it.
func (s *stagedStore) Close() error { return s.target.Close() }

// PendingBytes estimates the memory in bytes held by the task's store
// writes that Commit has yet to apply (state.Batch.Footprint; 0 without a
// DB).
func (t *Task) PendingBytes() int {
	if t.batch == nil {
		return 0
	}
	return t.batch.Footprint()
}

// RestorePending returns the size in bytes of the restored records that
// Commit has yet to apply (0 without a DB).
func (t *Task) RestorePending() int {
	if t.loader == nil {
		return 0
	}
	return t.loader.Size()
}

// Commit applies the task's buffered store writes (and restored records) to
// the DB atomically with a checkpoint of offsets ("topic/partition" -> next
// offset). Without a DB it applies the writes that BulkLoad staged, if
// any.
func (t *Task) Commit(offsets map[string]int64) error {
	if t.batch == nil {
		var errs []error
		for _, s := range t.stores {
			if staged, ok := s.Store.(*stagedStore); ok {
				errs = append(errs, staged.apply())
			}
		}
		return errors.Join(errs...)
	}
	if t.loader != nil {
		// A loader without writes may still apply the restore's last
		// CommitAsync (when it took every restored record): its Commit
		// waits for that, so that the store is complete, and returns its
		// error.
		loaded := t.loader.Count() > 0
		if loaded {
			if err := t.loader.SetCheckpoint(t.CheckpointName(), offsets); err != nil {
				return err
			}
		}
		if err := t.loader.Commit(); err != nil {
			return err
		}
		if loaded && t.batch.Count() == 0 {
			return nil
		}
	}
	if err := t.batch.SetCheckpoint(t.CheckpointName(), offsets); err != nil {
		return err
	}
	return t.batch.Commit()
}

// CommitRestore is Commit for a restore that goes on: on a DB, it commits
// the restored records with state.Loader.CommitAsync, which applies a large
// commit on another goroutine while the restore loads the next records,
// and returns the error of the one before. The restore's last Commit waits
// for it. The task's write buffer must be empty, as it is while restoring.
// Without a DB it is Commit.
func (t *Task) CommitRestore(offsets map[string]int64) error {
	if t.loader == nil || t.loader.Count() == 0 || t.batch.Count() > 0 {
		return t.Commit(offsets)
	}
	if err := t.loader.SetCheckpoint(t.CheckpointName(), offsets); err != nil {
		return err
	}
	return t.loader.CommitAsync()
}

// Discard drops the task's store writes since the last Commit (an aborted
// transaction). The task's executors may hold state of their own: recreate
// the task after a Discard.
func (t *Task) Discard() error {
	if t.batch == nil {
		return nil
	}
	t.dropLoader()
	return t.batch.Discard()
}

// Checkpoint returns the task's last committed checkpoint in the DB.
func (t *Task) Checkpoint() (map[string]int64, bool, error) {
	if t.batch == nil {
		return nil, false, nil
	}
	return t.cfg.DB.Checkpoint(t.CheckpointName())
}

// Wipe deletes the task's stores (the global stores, for the global task)
// and checkpoint from the DB, before a full restore; in-memory stores are
// replaced by empty ones.
func (t *Task) Wipe() error {
	if t.batch == nil {
		if t.cfg.NewStore != nil {
			return nil
		}
		for _, s := range t.stores {
			_ = s.Store.Close()
			s.Store = state.NewMemory()
		}
		return nil
	}
	t.dropLoader()
	if err := t.batch.Discard(); err != nil {
		return err
	}
	// The checkpoint goes first: a crash in between must not leave a
	// checkpoint over stores that lost their data.
	if err := t.cfg.DB.DeleteCheckpoint(t.CheckpointName()); err != nil {
		return err
	}
	for name := range t.stores {
		if err := t.cfg.DB.DropPartition(name, t.ID.Partition); err != nil {
			return err
		}
	}
	return nil
}

// Close runs the processors' Close and closes the stores. Writes not
// committed are dropped; committed ones stay in the DB for the task's return.
func (t *Task) Close() error {
	errs := []error{t.tc.Close()}
	if t.batch != nil {
		defer func() { _ = t.batch.Close() }()
		t.dropLoader()
	}
	for _, s := range t.stores {
		errs = append(errs, s.Store.Close())
	}
	return errors.Join(errs...)
}

// GetAppend implements state.AppendGetter when the store under it does.
func (s *loggedStore) GetAppend(dst, key []byte) ([]byte, bool, error) {
	if ag, ok := s.Store.(state.AppendGetter); ok {
		return ag.GetAppend(dst, key)
	}
	v, found, err := s.Store.Get(key)
	if found {
		dst = append(dst, v...)
	}
	return dst, found, err
}

// dropLoader drops the restored records not committed yet.
func (t *Task) dropLoader() {
	if t.loader != nil {
		_ = t.loader.Close()
		t.loader = nil
	}
}

// loggedStore records each write of a task's store in the task's output, as
// a record of the store's changelog partition (the task's partition).
type loggedStore struct {
	state.Store
	spec  *graph.StoreSpec
	topic string
	tc    *graph.TaskContext
}

func (s *loggedStore) Put(key, value []byte) error {
	if err := s.Store.Put(key, value); err != nil {
		return err
	}
	if s.spec.FromSource {
		return nil
	}
	ts := s.tc.RecordTime
	if s.spec.Timestamped && len(value) >= 8 {
		ts = int64(binary.BigEndian.Uint64(value))
		value = value[8:]
	}
	// An empty key or value is not Kafka's null: a null value would log a
	// delete, and a compacted topic rejects null keys.
	s.tc.Out.AddChangelog(s.topic, s.tc.Partition, notNull(key), notNull(value), ts)
	return nil
}

func notNull(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func (s *loggedStore) Delete(key []byte) error {
	if err := s.Store.Delete(key); err != nil {
		return err
	}
	if !s.spec.FromSource {
		s.tc.Out.AddChangelog(s.topic, s.tc.Partition, notNull(key), nil, s.tc.RecordTime)
	}
	return nil
}
