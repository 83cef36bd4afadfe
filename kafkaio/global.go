package kafkaio

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/internal/runtime"
	"github.com/kstreamgo/kstream/state"
)

// globalTables keeps the instance's global stores current: one task reads
// every partition of the global topics on its own goroutine and client.
type globalTables struct {
	task   *runtime.Task
	cl     *kgo.Client
	mu     sync.Mutex // serializes the task
	closed bool
}

// close closes the global task once the reading goroutine is out of it.
func (g *globalTables) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		g.closed = true
		_ = g.task.Close()
	}
}

// lockedStore lets the global goroutine write a store that tasks on other
// goroutines read.
type lockedStore struct {
	mu sync.RWMutex
	s  state.Store
}

func (l *lockedStore) Get(k []byte) ([]byte, bool, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	v, ok, err := l.s.Get(k)
	if ok {
		v = append([]byte(nil), v...) // the store may reuse its memory on the next write
	}
	return v, ok, err
}

func (l *lockedStore) Put(k, v []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.Put(k, v)
}

func (l *lockedStore) Delete(k []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.Delete(k)
}

func (l *lockedStore) Range(lo, hi []byte, fn func(k, v []byte) bool) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.Range(lo, hi, fn)
}

func (l *lockedStore) Close() error { return l.s.Close() }

// startGlobal creates the global task, reads the global topics to their
// current end (bootstrap) before returning, then keeps reading them until ctx
// ends.
func (a *App) startGlobal(ctx context.Context) error {
	gsub, ok := runtime.GlobalSubTopology(a.topo)
	if !ok {
		return nil
	}
	cfg := a.rcfg
	cfg.NewStore = func(*graph.StoreSpec, int32) (state.Store, error) {
		return &lockedStore{s: state.NewMemory()}, nil
	}
	t, err := runtime.NewTask(a.topo, &cfg, gsub, -1)
	if err != nil {
		return err
	}
	a.rcfg.GlobalStore = t.Store
	opts := []kgo.Opt{kgo.SeedBrokers(a.cfg.brokers...), kgo.ConsumeTopics(a.plan.global...), kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
	if a.cfg.exactlyOnce {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := kgo.NewClient(append(opts, a.cfg.clientOpts...)...)
	if err != nil {
		_ = t.Close()
		return fmt.Errorf("kafkaio: %w", err)
	}
	g := &globalTables{task: t, cl: cl}
	// Bootstrap: everything up to the end offsets of now.
	ends := map[string]map[int32]int64{}
	for _, topic := range a.plan.global {
		lo, err := a.adm.ListCommittedOffsets(ctx, topic)
		if err != nil {
			cl.Close()
			return fmt.Errorf("kafkaio: global table %s: %w", topic, err)
		}
		ends[topic] = map[int32]int64{}
		for p, o := range lo[topic] {
			if o.Err != nil {
				cl.Close()
				return fmt.Errorf("kafkaio: global table %s/%d: %w", topic, p, o.Err)
			}
			if o.Offset > 0 {
				ends[topic][p] = o.Offset
			}
		}
	}
	began := time.Now()
	var n int64
	for remaining(ends) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			cl.Close()
			return err
		}
		k, err := g.apply(fetches, ends)
		n += k
		if err != nil {
			cl.Close()
			return err
		}
	}
	a.log.Info("kstream: global tables bootstrapped", "records", n, "took", time.Since(began))
	a.global = g
	go func() {
		defer cl.Close()
		for ctx.Err() == nil {
			fetches := cl.PollFetches(ctx)
			if _, err := g.apply(fetches, nil); err != nil {
				a.setFatal(err)
				return
			}
		}
	}()
	return nil
}

func remaining(ends map[string]map[int32]int64) int {
	n := 0
	for _, ps := range ends {
		n += len(ps)
	}
	return n
}

// apply feeds fetched records to the global task, and strikes partitions
// that reached their bootstrap end from ends (when not nil).
func (g *globalTables) apply(fetches kgo.Fetches, ends map[string]map[int32]int64) (int64, error) {
	var n int64
	var ferr error
	g.mu.Lock()
	defer g.mu.Unlock()
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
		recs := make([]graph.RawRecord, 0, len(p.Records))
		for _, r := range p.Records {
			if ends != nil {
				if end, ok := ends[r.Topic][r.Partition]; ok && r.Offset+1 >= end {
					delete(ends[r.Topic], r.Partition)
				}
			}
			if r.Attrs.IsControl() {
				continue
			}
			recs = append(recs, graph.RawRecord{Key: r.Key, Value: r.Value, Timestamp: r.Timestamp.UnixMilli(),
				Headers: kgoToGraphHeaders(r.Headers), Offset: r.Offset})
		}
		if err := g.task.Process(p.Topic, recs); err != nil {
			ferr = err
		}
		n += int64(len(recs))
		g.task.Output().Reset() // a global table writes no topic
	})
	return n, ferr
}
