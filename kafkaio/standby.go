package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/internal/runtime"
	"github.com/kstreamgo/kstream/state"
)

// standbyCommitInterval is how often a persistent standby checkpoints what it
// applied: a promotion or a restart replays at most that much of the tail.
const standbyCommitInterval = time.Second

// standbys keeps the instance's standby replicas current: warm copies of the
// stores of tasks that other instances run, read from their changelogs
// (read-committed, so they hold only committed state) on a client of their
// own, in a goroutine of their own. The group leader places them (balancer);
// the main loop creates, promotes and closes them (reconcile, take), so a
// task's stores are never open twice; the goroutine only applies records.
type standbys struct {
	a  *App
	cl *kgo.Client

	mu    sync.Mutex
	tasks map[runtime.TaskID]*replica
	parts map[string]*replica // by changelog partition ("topic/p")
	seen  *[]taskKey          // the assignment last reconciled

	// With warmups (track, on the goroutine): when the ends of changelogs
	// not learned from fetches were last asked of the broker; the caught
	// up tasks last advertised; when a rebalance was last asked for.
	probedAt    time.Time
	caught      []taskKey
	triggeredAt time.Time
	localAt     time.Time // when the lag of local state was last measured

	applied atomic.Int64
	done    chan struct{}
}

// replica is one standby task: its stores, and how far it has read each
// changelog partition.
type replica struct {
	rt *runtime.Task
	// offsets is the next offset to apply per changelog partition, with
	// any other entry of the task's checkpoint kept as it was.
	offsets map[string]int64
	// ends is the end (last stable offset) of each changelog partition,
	// as last learned (track), to tell how far behind the replica is.
	ends       map[string]int64
	stores     map[string]string // changelog partition -> store
	dirty      bool              // applied since the last checkpoint
	lastCommit time.Time
}

func (a *App) startStandbys(ctx context.Context) error {
	opts := []kgo.Opt{kgo.SeedBrokers(a.cfg.brokers...), kgo.KeepControlRecords(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
	cl, err := kgo.NewClient(append(opts, a.cfg.clientOpts...)...)
	if err != nil {
		return fmt.Errorf("kafkaio: %w", err)
	}
	s := &standbys{a: a, cl: cl, tasks: map[runtime.TaskID]*replica{}, parts: map[string]*replica{}, done: make(chan struct{})}
	a.mu.Lock() // Stats reads it from other goroutines
	a.standby = s
	a.mu.Unlock()
	go s.run(ctx)
	return nil
}

// run applies fetched changelog records to the replicas until ctx ends.
func (s *standbys) run(ctx context.Context) {
	defer close(s.done)
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, standbyCommitInterval/2)
		fetches := s.cl.PollFetches(pctx)
		cancel()
		if fetches.IsClientClosed() {
			return
		}
		fetches.EachError(func(t string, p int32, err error) {
			if !isCtxErr(err) {
				s.a.log.Warn("kstream: standby fetch error", "topic", t, "partition", p, "error", err)
			}
		})
		if err := s.apply(fetches); err != nil {
			s.a.setFatal(err)
			return
		}
		if s.a.balancer.warmups > 0 {
			s.track(ctx)
		}
	}
}

// warmupRetrigger is how long a member waits after asking for a rebalance
// (its warmups caught up) before it asks again: for the next warmups, or
// for the same ones if that rebalance did not move them (the leader had not
// seen them caught up yet). Kafka Streams' leader plans such "probing"
// rebalances every 10 minutes (probing.rebalance.interval.ms).
const warmupRetrigger = 5 * time.Second

// localLagInterval is how often a member measures again how far behind the
// local state it advertises is (the changelogs move on meanwhile).
const localLagInterval = 5 * time.Second

// track finds the replicas within the acceptable recovery lag and
// advertises them (the group's leader moves a task to a member that holds it
// caught up), then asks for a rebalance once a warmup replica of the latest
// assignment has caught up. Changelog ends that no fetch gave (nothing to
// fetch) are asked of the broker, at most every second. It also measures
// again, every localLagInterval, the lag of the local state advertised.
func (s *standbys) track(ctx context.Context) {
	a := s.a
	s.mu.Lock()
	var unknown []string
	for _, r := range s.tasks {
		for key := range r.stores {
			if _, ok := r.ends[key]; !ok {
				topic, _, _ := strings.Cut(key, "/") // partKey: changelog names have no "/"
				if !slices.Contains(unknown, topic) {
					unknown = append(unknown, topic)
				}
			}
		}
	}
	s.mu.Unlock()
	if len(unknown) > 0 && time.Since(s.probedAt) >= time.Second {
		s.probedAt = time.Now()
		if ends := a.listEnds(ctx, kadm.NewClient(s.cl), "standby replicas", unknown); ends != nil {
			s.mu.Lock()
			ends.Each(func(o kadm.ListedOffset) {
				key := partKey(o.Topic, o.Partition)
				if r := s.parts[key]; r != nil {
					if _, ok := r.ends[key]; !ok {
						r.ends[key] = o.Offset
					}
				}
			})
			s.mu.Unlock()
		}
	}
	s.mu.Lock()
	var caught []taskKey
	for id, r := range s.tasks {
		if r.caughtUp(a.cfg.acceptableLag) {
			caught = append(caught, taskKey{id.SubTopology, id.Partition})
		}
	}
	s.mu.Unlock()
	slices.SortFunc(caught, compareTasks)
	if !slices.Equal(caught, s.caught) {
		s.caught = caught
		a.balancer.caught.Store(&caught)
	}
	if l := a.balancer.local.Load(); l != nil && len(*l) > 0 && time.Since(s.localAt) >= localLagInterval {
		s.localAt = time.Now()
		lc := a.localCaughtUp(ctx, kadm.NewClient(s.cl), *l)
		a.balancer.localCaught.Store(&lc)
	}
	warming := a.balancer.warming.Load()
	if warming == nil || time.Since(s.triggeredAt) < warmupRetrigger {
		return
	}
	for _, k := range *warming {
		if slices.Contains(caught, k) {
			s.triggeredAt = time.Now()
			a.rebalance.Store(true)
			return
		}
	}
}

// caughtUp reports whether the replica is at most lag records behind the
// known end of each changelog partition it follows.
func (r *replica) caughtUp(lag int64) bool {
	for key := range r.stores {
		end, ok := r.ends[key]
		if !ok || end-r.offsets[key] > lag {
			return false
		}
	}
	return true
}

func (s *standbys) apply(fetches kgo.Fetches) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var buf []graph.RawRecord
	var err error
	fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
		key := partKey(fp.Topic, fp.Partition)
		r := s.parts[key]
		if r == nil || err != nil {
			return // promoted or closed since the fetch
		}
		if fp.Err == nil {
			end := fp.LastStableOffset // read committed
			if end < 0 {
				end = fp.HighWatermark
			}
			r.ends[key] = end
		}
		next := r.offsets[key]
		buf = buf[:0]
		for _, rec := range fp.Records {
			if rec.Offset < next {
				continue // already applied (a fetch from before a re-add)
			}
			next = rec.Offset + 1
			if rec.Attrs.IsControl() {
				continue
			}
			buf = append(buf, graph.RawRecord{Key: rec.Key, Value: rec.Value, Timestamp: rec.Timestamp.UnixMilli(), Offset: rec.Offset})
		}
		if next == r.offsets[key] {
			return
		}
		if len(buf) > 0 {
			if err = r.rt.Restore(r.stores[key], buf); err != nil {
				err = fmt.Errorf("kafkaio: standby %s: %w", r.rt.ID, err)
				return
			}
			s.applied.Add(int64(len(buf)))
		}
		r.offsets[key] = next
		r.dirty = true
	})
	if err != nil {
		return err
	}
	for _, r := range s.tasks {
		if r.dirty && (time.Since(r.lastCommit) >= standbyCommitInterval || r.rt.RestorePending() >= state.LoaderCommitBytes) {
			if err := r.commit(); err != nil {
				return err
			}
		}
	}
	return nil
}

// commit checkpoints what a persistent replica applied.
func (r *replica) commit() error {
	r.dirty, r.lastCommit = false, time.Now()
	if err := r.rt.Commit(r.offsets); err != nil {
		return fmt.Errorf("kafkaio: checkpointing standby %s: %w", r.rt.ID, err)
	}
	return nil
}

// reconcile makes the replicas match the standby tasks of the latest
// assignment, less the tasks this instance runs. The main loop calls it.
func (s *standbys) reconcile(assigned *[]taskKey) error {
	a := s.a
	want := map[runtime.TaskID]bool{}
	if assigned != nil {
		a.mu.Lock()
		for _, k := range *assigned {
			id := runtime.TaskID{SubTopology: k.sub, Partition: k.p}
			if !a.assigned[id] {
				want[id] = true
			}
		}
		a.mu.Unlock()
	}
	// A replica of a task just assigned active stays for its promotion.
	promoted := map[runtime.TaskID]bool{}
	if act := a.balancer.active.Load(); act != nil {
		for _, k := range *act {
			promoted[runtime.TaskID{SubTopology: k.sub, Partition: k.p}] = true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = assigned
	var errs []error
	for id, r := range s.tasks {
		if !want[id] && !promoted[id] {
			errs = append(errs, s.remove(id, r), r.rt.Close())
		}
	}
	for id := range want {
		if _, ok := s.tasks[id]; !ok {
			errs = append(errs, s.add(id))
		}
	}
	s.advertise()
	return errors.Join(errs...)
}

// advertise tells the group, at the next rebalance, which standbys this
// member holds.
func (s *standbys) advertise() {
	held := make([]taskKey, 0, len(s.tasks))
	for id := range s.tasks {
		held = append(held, taskKey{id.SubTopology, id.Partition})
	}
	s.a.balancer.warm.Store(&held)
}

// add creates the replica of task id, from its checkpoint if it has one.
// The caller holds s.mu.
func (s *standbys) add(id runtime.TaskID) error {
	a := s.a
	rt, err := runtime.NewStandby(a.topo, &a.rcfg, id.SubTopology, id.Partition)
	if err != nil {
		return err
	}
	r := &replica{rt: rt, offsets: map[string]int64{}, ends: map[string]int64{}, stores: map[string]string{}, lastCommit: time.Now()}
	if rt.Persistent() {
		ckpt, ok, err := rt.Checkpoint()
		if err != nil {
			a.log.Warn("kstream: unusable checkpoint: the standby starts over", "task", id.String(), "error", err)
		}
		if ok {
			r.offsets = maps.Clone(ckpt)
		} else if err := rt.Wipe(); err != nil {
			_ = rt.Close()
			return fmt.Errorf("kafkaio: wiping standby %s: %w", id, err)
		}
	}
	consume := map[string]map[int32]kgo.Offset{}
	for store, topic := range rt.Changelogs() {
		if spec := rt.StoreSpec(store); spec != nil && spec.FromSource {
			// The changelog is a source topic: a standby cannot know how
			// far the active task has processed it; the promotion restores
			// it up to the group's committed offset.
			continue
		}
		key := partKey(topic, id.Partition)
		at := kgo.NewOffset().AtStart()
		if o, ok := r.offsets[key]; ok {
			at = kgo.NewOffset().At(o)
		}
		if consume[topic] == nil {
			consume[topic] = map[int32]kgo.Offset{}
		}
		consume[topic][id.Partition] = at
		r.stores[key] = store
		s.parts[key] = r
	}
	s.tasks[id] = r
	s.cl.AddConsumePartitions(consume)
	a.log.Info("kstream: standby created", "task", id.String(), "from", r.offsets)
	return nil
}

// remove stops reading task id's changelogs and checkpoints the replica.
// The caller holds s.mu and closes or keeps r.rt.
func (s *standbys) remove(id runtime.TaskID, r *replica) error {
	stop := map[string][]int32{}
	for key := range r.stores {
		delete(s.parts, key)
	}
	for _, topic := range r.rt.Changelogs() {
		stop[topic] = append(stop[topic], id.Partition)
	}
	s.cl.RemoveConsumePartitions(stop)
	delete(s.tasks, id)
	if r.dirty {
		return r.commit()
	}
	return nil
}

// take removes task id's replica, if there is one, and returns its task
// (stores only; the caller activates it) and the offsets it reached, from
// which the restore continues.
func (s *standbys) take(id runtime.TaskID) (*runtime.Task, map[string]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.tasks[id]
	if !ok {
		return nil, nil, nil
	}
	err := s.remove(id, r)
	s.advertise()
	if err != nil {
		_ = r.rt.Close()
		return nil, nil, err
	}
	s.a.log.Info("kstream: promoting standby", "task", id.String(), "offsets", r.offsets)
	return r.rt, r.offsets, nil
}

// count returns the number of replicas.
func (s *standbys) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tasks)
}

// close stops the goroutine (its context is done), checkpoints and closes
// every replica.
func (s *standbys) close() {
	s.cl.Close()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, r := range s.tasks {
		if err := s.remove(id, r); err != nil {
			s.a.log.Warn("kstream: checkpointing standby", "task", id.String(), "error", err)
		}
		_ = r.rt.Close()
	}
}
