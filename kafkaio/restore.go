package kafkaio

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/internal/runtime"
	"github.com/kstreamgo/kstream/state"
)

// restoreChunk is how many changelog records are applied at once.
const restoreChunk = 4096

// maxReserve bounds the keys an in-memory store is prepared for before a
// restore (a compacted changelog's offset range overstates its keys).
const maxReserve = 1 << 22

// restorePipeline is how many converted chunks may wait for the applier of
// a restore while it applies one.
const restorePipeline = 2

// restoreLogInterval is how often a long restore logs its progress.
const restoreLogInterval = 5 * time.Second

// maxConcurrentRestores bounds the tasks restored at once. A large restore
// of a DB-backed store holds three sets of loader buffers (one loading,
// two being ingested: see state.Loader.CommitAsync), each about twice
// state.LoaderCommitBytes for small records: 48 MiB, and 192 MiB for 4
// such restores at once. With 3 at once, BenchmarkRestore/pebble-16p (16
// small restores) ran as fast on 2 cores (3.9-4.3 against 3.4-4.0 M
// records/s, noisy); 4 stays for machines with more cores, unmeasured.
const maxConcurrentRestores = 4

// restorers hands out the clients that restores read changelogs through
// (see changelogReader): one per restore running, so that their fetches do
// not queue on one connection, created on first need and kept for the next
// ones.
type restorers struct {
	opts []kgo.Opt
	mu   sync.Mutex
	idle []*kgo.Client
	all  []*kgo.Client
}

func (r *restorers) get() (*kgo.Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.idle); n > 0 {
		cl := r.idle[n-1]
		r.idle = r.idle[:n-1]
		return cl, nil
	}
	cl, err := kgo.NewClient(r.opts...)
	if err != nil {
		return nil, fmt.Errorf("kafkaio: restore client: %w", err)
	}
	r.all = append(r.all, cl)
	return cl, nil
}

func (r *restorers) put(cl *kgo.Client) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.idle = append(r.idle, cl)
}

func (r *restorers) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, cl := range r.all {
		cl.Close()
	}
	r.all, r.idle = nil, nil
}

// restoreAll restores tasks concurrently, up to maxConcurrentRestores (and
// the app's workers) at once, each with its own client: the restores of
// many small partitions overlap their fetch round trips, and those of large
// ones use every core. from holds the start offsets of the tasks' in-memory
// stores (see restore), by task. It returns the first error.
func (a *App) restoreAll(ctx context.Context, tasks []*runtime.Task, from []map[string]int64) error {
	n := min(len(tasks), a.cfg.workers, maxConcurrentRestores)
	next := make(chan int, len(tasks))
	for i := range tasks {
		next <- i
	}
	close(next)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var first error
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		// Keep the error that caused the cancellation, not the
		// cancellation it caused elsewhere.
		if first == nil || errors.Is(first, context.Canceled) && !errors.Is(err, context.Canceled) {
			first = err
		}
		cancel()
	}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			cl, err := a.restorers.get()
			if err != nil {
				fail(err)
				return
			}
			defer a.restorers.put(cl)
			for i := range next {
				if ctx.Err() != nil {
					return
				}
				if err := a.restore(ctx, cl, tasks[i], from[i]); err != nil {
					fail(err)
				}
			}
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err() // the caller's context ended
	}
	return first
}

// RestoreProgress is where the restore of one store partition of a task
// stands (see App.RestoreProgress).
type RestoreProgress struct {
	// Task is the task ("<sub-topology>_<partition>"), Store the store,
	// Topic and Partition its changelog partition.
	Task, Store, Topic string
	Partition          int32
	// Restored counts the changelog records applied so far; Remaining is
	// the number of offsets left to the end of the changelog as it was when
	// the restore began (0 once Done).
	Restored, Remaining int64
	// Started is when the restore began; Took how long it took, once Done.
	Started time.Time
	Took    time.Duration
	Done    bool
}

// restoreEntry is one restore in progress, updated under progress.mu.
type restoreEntry struct{ RestoreProgress }

// progress keeps the latest restore of every store partition of the
// instance.
type progress struct {
	mu      sync.Mutex
	entries map[string]*restoreEntry // by task/store
}

func (p *progress) start(r RestoreProgress) *restoreEntry {
	e := &restoreEntry{r}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.entries == nil {
		p.entries = map[string]*restoreEntry{}
	}
	p.entries[r.Task+"/"+r.Store+"/"+strconv.Itoa(int(r.Partition))] = e
	return e
}

func (p *progress) update(e *restoreEntry, restored, remaining int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e.Restored, e.Remaining = restored, max(remaining, 0)
}

func (p *progress) finish(e *restoreEntry) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	e.Done, e.Remaining, e.Took = true, 0, time.Since(e.Started)
	return e.Took
}

// RestoreProgress returns the latest restore of each store partition this
// instance has restored since it started, in progress or done, sorted by
// task, store and partition. A task restores its stores before it processes
// (see StateDir for what is restored). The bootstrap of the global tables,
// before any task runs, has an entry per partition of their topics read,
// with Task "global" (its records count in Stats.GlobalApplied, not
// Stats.Restored).
func (a *App) RestoreProgress() []RestoreProgress {
	a.progress.mu.Lock()
	defer a.progress.mu.Unlock()
	out := make([]RestoreProgress, 0, len(a.progress.entries))
	for _, e := range a.progress.entries {
		out = append(out, e.RestoreProgress)
	}
	slices.SortFunc(out, func(x, y RestoreProgress) int {
		return cmp.Or(cmp.Compare(x.Task, y.Task), cmp.Compare(x.Store, y.Store), cmp.Compare(x.Partition, y.Partition))
	})
	return out
}

// restore fills a new task's stores from their changelogs, up to the end
// that is committed now (the last stable offset), before the task processes
// anything. Persistent stores restart from their checkpoint; in-memory stores
// from the offsets in from (a promoted standby's), else from the start.
func (a *App) restore(ctx context.Context, cl *kgo.Client, t *runtime.Task, from map[string]int64) error {
	return a.restoreFrom(ctx, cl, t, from, 0)
}

// maxFullRestores bounds how many times in a row a task's restore starts
// over in full because its changelog no longer holds the offsets it reads
// from (retention moving the log's start during the restore).
const maxFullRestores = 3

// restoreFrom is restore, after restarts full restores.
func (a *App) restoreFrom(ctx context.Context, cl *kgo.Client, t *runtime.Task, from map[string]int64, restarts int) error {
	// Only the changelog tail after the checkpoint is replayed. No
	// checkpoint, or a corrupt one, means a full restore into wiped stores.
	ckpt, ok, err := t.Checkpoint()
	if err != nil {
		a.log.Warn("kstream: unusable checkpoint: restoring the task in full", "task", t.ID.String(), "error", err)
	}
	switch {
	case !t.Persistent():
		ckpt = from
	case !ok:
		if err := t.Wipe(); err != nil {
			return fmt.Errorf("kafkaio: wiping task %s: %w", t.ID, err)
		}
		ckpt = nil
	}
	offsets := map[string]int64{}
	for k, v := range ckpt {
		offsets[k] = v
	}
	for store, topic := range t.Changelogs() {
		p := t.ID.Partition
		start, end, err := a.offsetRange(ctx, topic, p)
		if err != nil {
			return fmt.Errorf("kafkaio: restoring %s: %w", store, err)
		}
		if spec := t.StoreSpec(store); spec != nil && spec.FromSource {
			// The topic is also the task's input: restore only what the
			// group has committed; processing takes it from there.
			committed, err := a.committedOffset(ctx, topic, p)
			if err != nil {
				return fmt.Errorf("kafkaio: restoring %s: %w", store, err)
			}
			end = min(end, committed)
		}
		from := start
		key := partKey(topic, p)
		if c, ok := ckpt[key]; ok {
			if c > end {
				// The changelog lost what the checkpoint says we have
				// (a recreated topic): start over.
				a.log.Warn("kstream: checkpoint ahead of its changelog: restoring the task in full", "task", t.ID.String(), "topic", topic)
				if err := t.Wipe(); err != nil {
					return err
				}
				return a.restoreFrom(ctx, cl, t, nil, restarts)
			}
			from = max(c, start)
		}
		if end <= from {
			offsets[key] = max(offsets[key], end)
			continue
		}
		prog := a.progress.start(RestoreProgress{Task: t.ID.String(), Store: store, Topic: topic, Partition: p,
			Remaining: end - from, Started: time.Now()})
		t.ReserveRestore(store, int(min(end-from, maxReserve)))
		n, err := a.restorePartition(ctx, cl, t, prog, from, end, offsets)
		if errors.Is(err, errOutOfRange) && restarts < maxFullRestores {
			// The changelog lost records between the checkpoint and
			// its start (retention, or a recreated topic): start over.
			a.log.Warn("kstream: changelog no longer holds the checkpoint's offset: restoring the task in full", "task", t.ID.String(), "topic", topic, "error", err)
			if err := t.Wipe(); err != nil {
				return err
			}
			return a.restoreFrom(ctx, cl, t, nil, restarts+1)
		}
		if err != nil {
			return err
		}
		took := a.progress.finish(prog)
		a.log.Info("kstream: restored store", "store", store, "task", t.ID.String(), "records", n,
			"from_offset", from, "end_offset", end, "took", took)
	}
	return t.Commit(offsets)
}

// partKey names a topic partition in checkpoints.
func partKey(topic string, p int32) string { return topic + "/" + strconv.Itoa(int(p)) }

// committedOffset returns the group's committed offset of a partition (0 if
// none).
func (a *App) committedOffset(ctx context.Context, topic string, p int32) (int64, error) {
	offs, err := a.adm.FetchOffsets(ctx, a.cfg.appID)
	if err != nil {
		return 0, err
	}
	if o, ok := offs.Lookup(topic, p); ok && o.Err == nil && o.At > 0 {
		return o.At, nil
	}
	return 0, nil
}

// offsetRange returns a partition's log start offset and last stable offset,
// retrying while a new topic's metadata propagates.
func (a *App) offsetRange(ctx context.Context, topic string, p int32) (start, end int64, err error) {
	for attempt := 0; ; attempt++ {
		var starts, ends kadm.ListedOffsets
		if starts, err = a.adm.ListStartOffsets(ctx, topic); err == nil {
			ends, err = a.adm.ListCommittedOffsets(ctx, topic)
		}
		if err == nil {
			so, ok1 := starts.Lookup(topic, p)
			eo, ok2 := ends.Lookup(topic, p)
			switch {
			case !ok1 || !ok2:
				err = fmt.Errorf("no offsets for %s/%d", topic, p)
			case so.Err != nil:
				err = so.Err
			case eo.Err != nil:
				err = eo.Err
			default:
				return so.Offset, eo.Offset, nil
			}
		}
		if attempt >= 100 || ctx.Err() != nil {
			return 0, 0, fmt.Errorf("listing offsets of %s/%d: %w", topic, p, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// restorePartition replays a changelog partition from offset from to end,
// committing persistent stores every chunk with its progress in offsets.
func (a *App) restorePartition(ctx context.Context, cl *kgo.Client, t *runtime.Task, prog *restoreEntry, from, end int64, offsets map[string]int64) (n int64, err error) {
	store, topic, p := prog.Store, prog.Topic, prog.Partition
	lastLog := time.Now()
	apply := func(c *chunk) error {
		buf := c.recs
		var err error
		if c.prepared {
			err = t.ApplyRestore(store, &c.batch)
		} else {
			err = t.Restore(store, buf)
		}
		if err != nil {
			return err
		}
		next := buf[len(buf)-1].Offset + 1
		offsets[partKey(topic, p)] = next
		// Persistent stores apply the restored records in large atomic
		// commits with the checkpoint of how far they got.
		if t.RestorePending() >= state.LoaderCommitBytes {
			if err := t.CommitRestore(offsets); err != nil {
				return err
			}
		}
		n += int64(len(buf))
		a.restored.Add(int64(len(buf)))
		a.progress.update(prog, n, end-next)
		if time.Since(lastLog) >= restoreLogInterval {
			lastLog = time.Now()
			a.log.Info("kstream: restoring store", "store", store, "task", t.ID.String(), "restored", n, "remaining", end-next)
		}
		return nil
	}
	// The chunks are applied on another goroutine while this one fetches
	// and decodes the next ones; applying owns the task, offsets and n
	// until it has ended.
	chunks := make(chan *chunk, restorePipeline)
	free := make(chan *chunk, restorePipeline+2)
	for range restorePipeline + 1 {
		free <- &chunk{recs: make([]graph.RawRecord, 0, restoreChunk), arena: make([]byte, 0, 64<<10)}
	}
	var failed atomic.Bool
	applied := make(chan error, 1)
	go func() {
		var err error
		for c := range chunks {
			if err == nil {
				if err = apply(c); err != nil {
					failed.Store(true)
				}
			}
			c.reset()
			free <- c
		}
		applied <- err
	}()
	c := <-free
	// finish hands over the last chunk and waits for the applier.
	finished := false
	// send hands c over, prepared for an in-memory store here (the
	// applier then only applies it).
	send := func() {
		c.prepared = t.PrepareRestore(store, c.recs, &c.batch)
		chunks <- c
	}
	finish := func() error {
		finished = true
		if len(c.recs) > 0 {
			send()
		}
		close(chunks)
		return <-applied
	}
	defer func() {
		if !finished {
			c.reset()
			if aerr := finish(); err == nil {
				err = aerr
			}
		}
	}()
	emit := func(key, value, _ []byte, ts, offset int64) {
		c.recs = append(c.recs, graph.RawRecord{Key: c.keep(key), Value: c.keep(value), Timestamp: ts, Offset: offset})
		if len(c.recs) == restoreChunk {
			send()
			c = <-free
		}
	}
	rd := newChangelogReader(cl, topic, p, from, end)
	for !rd.done() {
		// The applier owns n until finish: errors return 0.
		if err := rd.fetch(ctx, emit); err != nil {
			return 0, fmt.Errorf("kafkaio: restoring %s: %w", store, err)
		}
		if failed.Load() {
			return 0, finish()
		}
	}
	if err := finish(); err != nil {
		return 0, err
	}
	offsets[partKey(topic, p)] = end
	return n, t.Commit(offsets)
}

// chunk is a slice of restored records on its way to the applier, with the
// arena that holds their keys and values, and their headers (the global
// tables' bootstrap keeps them).
type chunk struct {
	recs  []graph.RawRecord
	arena []byte
	hdrs  []graph.Header
	// batch is recs prepared for an in-memory store, when prepared.
	batch    runtime.RestoreBatch
	prepared bool
}

// keep copies b into the arena (nil stays nil: Kafka's null).
func (c *chunk) keep(b []byte) []byte {
	if b == nil {
		return nil
	}
	s := len(c.arena)
	c.arena = append(c.arena, b...)
	return c.arena[s:len(c.arena):len(c.arena)]
}

func (c *chunk) reset() {
	clear(c.recs)
	clear(c.hdrs)
	c.recs, c.arena, c.hdrs = c.recs[:0], c.arena[:0], c.hdrs[:0]
	c.prepared = false
}
