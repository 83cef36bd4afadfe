package kafkaio

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/internal/runtime"
	"github.com/kstreamgo/kstream/state"
)

// globalTables keeps the instance's global stores current: one task reads
// every partition of the global topics on its own goroutine and client.
// Other goroutines (tasks, interactive queries) read the stores through
// reader. With a state directory the stores are in the state DB and
// checkpointed with each fetch applied, so that a restart reads only the
// records after the checkpoint; without one they are in memory and a
// restart reads the topics again from the start.
type globalTables struct {
	a    *App
	task *runtime.Task
	cl   *kgo.Client
	// mu is held by the reading goroutine while it applies a fetch (and
	// commits it) or closes the task, and by readers while they read, so
	// that they see every fetch whole.
	mu     sync.RWMutex
	closed bool
	// next is, with a state directory, the next offset of each global
	// partition ("topic/p"): the checkpoint.
	next map[string]int64
	// boot is the bootstrap's progress of each global partition
	// ("topic/p") it reads, until the bootstrap ends.
	boot    map[string]*bootPart
	applied atomic.Int64 // records applied to the stores, bootstrap included
	seen    failuresSeen // reported to the metrics
}

// globalAttrs are the metric attributes of the global task.
var globalAttrs = metric.WithAttributeSet(attribute.NewSet(attribute.String("kstream.task", globalTask)))

// bootPart is a partition's bootstrap: its progress entry, the records
// applied, and the end offset it reads to.
type bootPart struct {
	prog               *restoreEntry
	topic              string
	p                  int32
	from, n, left, end int64
}

// globalTask names the global tables' bootstrap in RestoreProgress.
const globalTask = "global"

// close closes the global task once the reading goroutine is out of it.
func (g *globalTables) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		g.closed = true
		_ = g.task.Close()
	}
}

// reader returns global store name for reads from other goroutines.
func (g *globalTables) reader(name string) state.Store {
	s := g.task.Store(name)
	if s == nil {
		return nil
	}
	return &globalReader{g: g, s: s}
}

// globalReader reads a global store from any goroutine; writes are refused.
type globalReader struct {
	g *globalTables
	s state.Store
}

var errGlobalReadOnly = errors.New("kafkaio: a global store is read-only")

func (r *globalReader) Get(k []byte) ([]byte, bool, error) {
	r.g.mu.RLock()
	defer r.g.mu.RUnlock()
	if r.g.closed {
		return nil, false, state.ErrClosed
	}
	v, ok, err := r.s.Get(k)
	if ok {
		v = append([]byte(nil), v...) // the store may reuse its memory on the next write
	}
	return v, ok, err
}

// GetAppend implements state.AppendGetter: the value is appended to the
// caller's buffer, so a lookup allocates nothing when the buffer has room.
func (r *globalReader) GetAppend(dst, k []byte) ([]byte, bool, error) {
	r.g.mu.RLock()
	defer r.g.mu.RUnlock()
	if r.g.closed {
		return dst, false, state.ErrClosed
	}
	return state.GetAppend(r.s, dst, k)
}

func (r *globalReader) Range(lo, hi []byte, fn func(k, v []byte) bool) error {
	r.g.mu.RLock()
	defer r.g.mu.RUnlock()
	if r.g.closed {
		return state.ErrClosed
	}
	return r.s.Range(lo, hi, fn)
}

func (r *globalReader) Put(k, v []byte) error { return errGlobalReadOnly }
func (r *globalReader) Delete(k []byte) error { return errGlobalReadOnly }

// Close implements state.Store: the global task owns the store.
func (r *globalReader) Close() error { return nil }

// startGlobal creates the global task, reads the global topics to their
// current end (bootstrap: from the checkpoint of the stores with a state
// directory, else from the start) before returning, then keeps reading them
// until ctx ends.
func (a *App) startGlobal(ctx context.Context) error {
	gsub, ok := runtime.GlobalSubTopology(a.topo)
	if !ok {
		return nil
	}
	cfg := a.rcfg // with a state directory, the stores are in the DB
	t, err := runtime.NewTask(a.topo, &cfg, gsub, -1)
	if err != nil {
		return err
	}
	g := &globalTables{a: a, task: t}
	a.rcfg.GlobalStore = g.reader
	var ckpt map[string]int64
	if t.Persistent() {
		var ok bool
		if ckpt, ok, err = t.Checkpoint(); err != nil || !ok {
			if err != nil {
				a.log.Warn("kstream: unusable checkpoint of the global tables: reading them in full", "error", err)
			}
			ckpt = nil
			if err := t.Wipe(); err != nil {
				_ = t.Close()
				return fmt.Errorf("kafkaio: wiping the global tables: %w", err)
			}
		}
		g.next = map[string]int64{}
	}
	// Bootstrap: everything up to the end offsets of now, from the
	// checkpoint.
	listed := map[string]map[int32]int64{}
	for _, topic := range a.plan.global {
		lo, err := a.adm.ListCommittedOffsets(ctx, topic)
		if err != nil {
			_ = t.Close()
			return fmt.Errorf("kafkaio: global table %s: %w", topic, err)
		}
		listed[topic] = map[int32]int64{}
		for p, o := range lo[topic] {
			if o.Err != nil {
				_ = t.Close()
				return fmt.Errorf("kafkaio: global table %s/%d: %w", topic, p, o.Err)
			}
			listed[topic][p] = o.Offset
			if c, ok := ckpt[partKey(topic, p)]; ok && c > o.Offset {
				// The topic lost what the checkpoint says the stores hold
				// (it was recreated): start over.
				a.log.Warn("kstream: global table checkpoint ahead of its topic: reading the global tables in full", "topic", topic, "partition", p)
				ckpt = nil
				if err := t.Wipe(); err != nil {
					_ = t.Close()
					return fmt.Errorf("kafkaio: wiping the global tables: %w", err)
				}
			}
		}
	}
	stores := map[string]string{} // the global store of each topic
	for _, spec := range a.g.SubTopologies[gsub].Stores {
		stores[spec.Changelog.Resolve(a.cfg.appID)] = spec.Name
	}
	g.boot = map[string]*bootPart{}
	consume := map[string]map[int32]kgo.Offset{}
	for topic, ps := range listed {
		consume[topic] = map[int32]kgo.Offset{}
		for p, end := range ps {
			// The consumer takes over where the bootstrap ends.
			from := ckpt[partKey(topic, p)]
			consume[topic][p] = kgo.NewOffset().At(max(from, end))
			if end > from {
				g.boot[partKey(topic, p)] = &bootPart{topic: topic, p: p, from: from, end: end, left: end - from,
					prog: a.progress.start(RestoreProgress{Task: globalTask, Store: stores[topic], Topic: topic, Partition: p,
						Remaining: end - from, Started: time.Now()})}
			}
			if g.next != nil {
				g.next[partKey(topic, p)] = from
			}
		}
	}
	opts := []kgo.Opt{kgo.SeedBrokers(a.cfg.brokers...), kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.RecordPartitioner(kgo.ManualPartitioner())}
	if a.cfg.exactlyOnce {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := kgo.NewClient(append(opts, a.cfg.clientOpts...)...)
	if err != nil {
		_ = t.Close()
		return fmt.Errorf("kafkaio: %w", err)
	}
	g.cl = cl
	began := time.Now()
	t.BulkLoad(true) // nothing reads the stores until the bootstrap ends
	if err := g.bootstrap(ctx); err != nil {
		cl.Close()
		g.close()
		return err
	}
	g.boot = nil
	if err := t.Commit(g.next); err != nil {
		cl.Close()
		g.close()
		return fmt.Errorf("kafkaio: checkpointing the global tables: %w", err)
	}
	t.BulkLoad(false)
	a.log.Info("kstream: global tables bootstrapped", "records", g.applied.Load(), "from_checkpoint", ckpt != nil, "took", time.Since(began))
	a.mu.Lock() // Stats reads it from other goroutines
	a.global = g
	a.mu.Unlock()
	cl.AddConsumePartitions(consume)
	go func() {
		defer cl.Close()
		for ctx.Err() == nil {
			fetches := cl.PollFetches(ctx)
			if err := g.apply(fetches); err != nil {
				a.setFatal(err)
				return
			}
		}
	}()
	return nil
}

// deadLetters produces what the global task output: a global table writes
// no topic, but the error policy may have dead-lettered records. They go
// out at once and outside any transaction (the global tables are read
// outside the instance's transactions, as in Kafka Streams).
func (g *globalTables) deadLetters() error {
	out := g.task.Output()
	defer out.Reset()
	if out.Len() == 0 {
		return nil
	}
	recs := make([]*kgo.Record, out.Len())
	for i := range recs {
		r := out.At(i)
		// The records are acknowledged before out is reset: no copies.
		rec := &kgo.Record{Topic: r.Topic, Key: out.Key(r), Value: out.Value(r),
			Timestamp: time.UnixMilli(r.Timestamp), Headers: graphToKgoHeaders(r.Headers), Partition: r.Partition}
		if rec.Partition < 0 {
			rec.Partition = g.a.outTopic(r.Topic).partition(rec.Key)
		}
		recs[i] = rec
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := g.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("kafkaio: global tables: producing to the dead-letter topic: %w", err)
	}
	return nil
}

// bootstrap reads each partition of g.boot from its checkpoint to its end
// offset, with a changelogReader (as a restore does), and applies its
// records.
func (g *globalTables) bootstrap(ctx context.Context) error {
	keys := slices.Sorted(maps.Keys(g.boot))
	c := &chunk{recs: make([]graph.RawRecord, 0, restoreChunk), arena: make([]byte, 0, 64<<10)}
	lastLog := time.Now()
	for _, key := range keys {
		bp := g.boot[key]
		rd := newChangelogReader(g.cl, bp.topic, bp.p, bp.from, bp.end)
		rd.uncommitted = !g.a.cfg.exactlyOnce // as the consumer that takes over reads
		var perr error
		emit := func(key, value, headers []byte, ts, offset int64) {
			if perr != nil {
				return
			}
			r := graph.RawRecord{Key: c.keep(key), Value: c.keep(value), Timestamp: ts, Offset: offset}
			if len(headers) > 1 { // more than a count of 0
				n := len(c.hdrs)
				if c.hdrs, perr = appendHeaders(c.hdrs, headers); perr != nil {
					perr = fmt.Errorf("kafkaio: global table %s/%d at offset %d: %w", bp.topic, bp.p, offset, perr)
					return
				}
				r.Headers = c.hdrs[n:len(c.hdrs):len(c.hdrs)]
			}
			c.recs = append(c.recs, r)
			if len(c.recs) == restoreChunk {
				perr = g.applyBoot(bp, c, offset+1)
			}
		}
		for !rd.done() {
			err := rd.fetch(ctx, emit)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, errOutOfRange) {
				// The topic's retention removed records past the
				// checkpoint (or the start of an empty store): read from
				// its log start, as its consumer would.
				start, _, lerr := g.a.offsetRange(ctx, bp.topic, bp.p)
				if lerr != nil || start <= rd.next {
					return cmp.Or(lerr, err)
				}
				if rd.next > 0 {
					g.a.log.Warn("kstream: global table records deleted before they were read", "topic", bp.topic, "partition", bp.p,
						"from_offset", rd.next, "log_start_offset", start)
				}
				rd.next = start
				continue
			}
			if err != nil {
				return fmt.Errorf("kafkaio: global table: %w", err)
			}
			if perr == nil {
				perr = g.applyBoot(bp, c, rd.next)
			}
			if perr != nil {
				return perr
			}
			if time.Since(lastLog) >= restoreLogInterval {
				lastLog = time.Now()
				var left int64
				for _, bp := range g.boot {
					left += bp.left
				}
				g.a.log.Info("kstream: bootstrapping global tables", "records", g.applied.Load(), "remaining", left)
			}
		}
	}
	return nil
}

// applyBoot applies a chunk of a partition's bootstrap, read up to offset
// next, and empties it.
func (g *globalTables) applyBoot(bp *bootPart, c *chunk, next int64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	defer c.reset()
	err := g.applyPartition(bp.topic, bp.p, c.recs, next)
	return g.commitApplied(err, int64(len(c.recs)), true)
}

// apply feeds fetched records to the global task, and with a state
// directory commits the stores' writes with the offsets reached.
func (g *globalTables) apply(fetches kgo.Fetches) error {
	var n int64
	var ferr error
	g.mu.Lock()
	defer g.mu.Unlock()
	moved := false
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if ferr != nil || g.closed {
			return
		}
		if p.Err != nil {
			if !isCtxErr(p.Err) {
				ferr = fmt.Errorf("kafkaio: global table %s/%d: %w", p.Topic, p.Partition, p.Err)
			}
			return
		}
		if len(p.Records) == 0 {
			return
		}
		recs := make([]graph.RawRecord, 0, len(p.Records))
		for _, r := range p.Records {
			if r.Attrs.IsControl() {
				continue
			}
			recs = append(recs, graph.RawRecord{Key: r.Key, Value: r.Value, Timestamp: r.Timestamp.UnixMilli(),
				Headers: kgoToGraphHeaders(r.Headers), Offset: r.Offset})
		}
		ferr = g.applyPartition(p.Topic, p.Partition, recs, p.Records[len(p.Records)-1].Offset+1)
		n += int64(len(recs))
		moved = true
	})
	return g.commitApplied(ferr, n, moved)
}

// applyPartition feeds a partition's records, read up to offset next, to the
// global task, and strikes the partition from g.boot once it reached its
// bootstrap's end. Called with g.mu held.
func (g *globalTables) applyPartition(topic string, p int32, recs []graph.RawRecord, next int64) error {
	if g.closed {
		return nil
	}
	ferr := g.task.ProcessPartition(topic, p, recs)
	if err := g.deadLetters(); err != nil && ferr == nil {
		ferr = err
	}
	key := partKey(topic, p)
	if g.next != nil {
		g.next[key] = next
	}
	if bp := g.boot[key]; bp != nil {
		bp.n, bp.left = bp.n+int64(len(recs)), bp.end-next
		g.a.progress.update(bp.prog, bp.n, bp.left)
		if next >= bp.end {
			g.a.progress.finish(bp.prog)
			delete(g.boot, key)
		}
	}
	return ferr
}

// commitApplied counts n records applied and, with a state directory, commits
// the stores' writes with the offsets reached (moved: some moved): during
// the bootstrap only in large chunks. Called with g.mu held.
func (g *globalTables) commitApplied(ferr error, n int64, moved bool) error {
	g.applied.Add(n)
	g.a.tel.failures(context.Background(), g.task, &g.seen, globalAttrs)
	if ferr == nil && moved && g.next != nil && !g.closed && (g.boot == nil || g.task.RestorePending() >= state.LoaderCommitBytes) {
		commit := g.task.Commit
		if g.boot != nil {
			commit = g.task.CommitRestore // the bootstrap's last Commit waits for it
		}
		if err := commit(g.next); err != nil {
			ferr = fmt.Errorf("kafkaio: checkpointing the global tables: %w", err)
		}
	}
	return ferr
}
