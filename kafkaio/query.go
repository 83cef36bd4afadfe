package kafkaio

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/internal/runtime"
	"github.com/kstreamgo/kstream/serde"
	"github.com/kstreamgo/kstream/state"
)

// ErrNotLocal is returned by a StoreReader for a key whose partition this
// instance does not host now (another instance does, or a rebalance is
// moving it): ask the instance that StoreReader.Host names.
var ErrNotLocal = errors.New("kafkaio: the key's partition is not hosted by this instance")

// ErrNotRunning is returned by a StoreReader before Run has started the app
// (its topics planned, its global tables loaded) and after it stopped.
var ErrNotRunning = errors.New("kafkaio: the app is not running")

// StoreReader reads a key-value store of an App by typed key: a table, an
// aggregation, a global table or a store of a Process node (interactive
// queries). Reads see the latest writes of the tasks, committed or not (as
// Kafka Streams' do under at-least-once); they run between the tasks'
// batches, one at a time, so a read waits at most for the batch being
// processed. It is safe for concurrent use.
//
// The key serde must be the one the topology uses for the store's keys:
// the key's partition is computed from its bytes, as Kafka's default
// partitioner does.
type StoreReader[K, V any] struct {
	a    *App
	spec *graph.StoreSpec
	ks   serde.Serde[K]
	vs   serde.Serde[V]
}

// Store returns a reader of the named key-value store of app's topology. The
// app need not be running yet; reads fail with ErrNotRunning until it is.
// Window stores are read with WindowStore; the internal stores of joins
// cannot be queried.
func Store[K, V any](app *App, name string, kSerde serde.Serde[K], vSerde serde.Serde[V]) (*StoreReader[K, V], error) {
	if kSerde == nil || vSerde == nil {
		return nil, fmt.Errorf("kafkaio: store %s: nil serde", name)
	}
	spec, err := app.lookupStore(name, "key-value", func(s *graph.StoreSpec) bool { return s.KeyValue }, func(s *graph.StoreSpec) error {
		if s.Windowed {
			return fmt.Errorf("kafkaio: store %s is not a key-value store: it is a window store (read it with WindowStore)", name)
		}
		return fmt.Errorf("kafkaio: store %s is not a key-value store (the internal stores of joins cannot be queried)", name)
	})
	if err != nil {
		return nil, err
	}
	return &StoreReader[K, V]{a: app, spec: spec, ks: kSerde, vs: vSerde}, nil
}

// lookupStore returns the topology's store named name if is accepts it, the
// error of wrong if not, and an error listing the stores that is accepts
// (of kind) if there is no such store.
func (a *App) lookupStore(name, kind string, is func(*graph.StoreSpec) bool, wrong func(*graph.StoreSpec) error) (*graph.StoreSpec, error) {
	var names []string
	for _, s := range a.g.Stores {
		if s.Name == name {
			if !is(s) {
				return nil, wrong(s)
			}
			return s, nil
		}
		if is(s) {
			names = append(names, s.Name)
		}
	}
	slices.Sort(names)
	return nil, fmt.Errorf("kafkaio: no store %q in the topology (%s stores: %q)", name, kind, names)
}

// Name returns the store's name.
func (r *StoreReader[K, V]) Name() string { return r.spec.Name }

// checkRunning returns ErrNotRunning unless the app has planned its topics
// and not stopped.
func (a *App) checkRunning() error {
	select {
	case <-a.done:
		return ErrNotRunning
	default:
	}
	select {
	case <-a.ready:
		return nil
	default:
		return ErrNotRunning
	}
}

// Partition returns the partition of the store that holds k (-1 for a
// global store: every instance holds every key).
func (r *StoreReader[K, V]) Partition(k K) (int32, error) {
	if err := r.a.checkRunning(); err != nil {
		return 0, err
	}
	key, err := r.ks.Append(nil, k)
	if err != nil {
		return 0, fmt.Errorf("kafkaio: store %s: encoding key: %w", r.spec.Name, err)
	}
	return r.partition(key)
}

func (r *StoreReader[K, V]) partition(key []byte) (int32, error) {
	return r.a.storePartition(r.spec, key)
}

// storePartition returns the partition of a store that holds the key whose
// key serde bytes are key (-1 for a global store).
func (a *App) storePartition(spec *graph.StoreSpec, key []byte) (int32, error) {
	if spec.Global {
		return -1, nil
	}
	n := a.plan.subCount[spec.SubTopology]
	if n <= 0 {
		return 0, fmt.Errorf("kafkaio: store %s: no partitions", spec.Name)
	}
	return runtime.PartitionForKey(key, n), nil
}

// Get returns the value of k, and whether the store holds one. It returns
// ErrNotLocal when this instance does not host k's partition.
func (r *StoreReader[K, V]) Get(k K) (V, bool, error) { return r.get(k, false) }

// GetStale is Get, but when this instance does not run k's partition and
// keeps a standby replica of it (StandbyReplicas), it reads the replica:
// its value may lag the active task's by what the replica has yet to
// apply from the changelog (with a StateDir, up to a second more: a
// persistent replica's writes show at its checkpoints), as Kafka Streams'
// stale-store queries. ErrNotLocal when the instance holds neither.
func (r *StoreReader[K, V]) GetStale(k K) (V, bool, error) { return r.get(k, true) }

func (r *StoreReader[K, V]) get(k K, stale bool) (V, bool, error) {
	var zero V
	if err := r.a.checkRunning(); err != nil {
		return zero, false, err
	}
	key, err := r.ks.Append(nil, k)
	if err != nil {
		return zero, false, fmt.Errorf("kafkaio: store %s: encoding key: %w", r.spec.Name, err)
	}
	p, err := r.partition(key)
	if err != nil {
		return zero, false, err
	}
	var b []byte
	var found bool
	read := func(st state.Store) error {
		v, ok, err := st.Get(key)
		b, found = bytes.Clone(v), ok // the store may reuse v's memory once unlocked
		return err
	}
	err = r.a.withStore(r.spec, p, read)
	if stale && errors.Is(err, ErrNotLocal) {
		err = r.a.withStandbyStore(r.spec, p, read)
	}
	if err != nil || !found {
		return zero, false, err
	}
	v, err := r.decode(b)
	return v, err == nil, err
}

func (r *StoreReader[K, V]) decode(b []byte) (V, error) {
	if r.spec.Timestamped {
		if len(b) < 8 {
			var zero V
			return zero, fmt.Errorf("kafkaio: store %s: stored value shorter than its timestamp", r.spec.Name)
		}
		b = b[8:]
	}
	v, err := r.vs.Decode(b)
	if err != nil {
		return v, fmt.Errorf("kafkaio: store %s: decoding value: %w", r.spec.Name, err)
	}
	return v, nil
}

// queryChunk is how many entries All reads under the store lock at a time.
const queryChunk = 1000

// All calls fn for every key and value of the store's partitions hosted by
// this instance, partition by partition in increasing order, and in key
// byte order within a partition, until fn returns false. It reads the
// partitions a chunk of entries at a time, so fn runs without holding up
// processing; a partition that moves away meanwhile ends its part of the
// scan early.
func (r *StoreReader[K, V]) All(fn func(K, V) bool) error { return r.scan(nil, nil, fn) }

// Range is All for the keys from from to to, both included, as Kafka
// Streams' ReadOnlyKeyValueStore.range: the bounds compare as the key serde
// encodes them, in byte order. That is the keys' natural order for strings
// and byte slices, and for the order-preserving encodings of package serde,
// but not for every encoding (Java-compatible serde.Int64 puts negative
// numbers after positive ones). from after to is an empty range.
func (r *StoreReader[K, V]) Range(from, to K, fn func(K, V) bool) error {
	lo, err := r.ks.Append(nil, from)
	if err != nil {
		return fmt.Errorf("kafkaio: store %s: encoding the range start: %w", r.spec.Name, err)
	}
	hi, err := r.ks.Append(nil, to)
	if err != nil {
		return fmt.Errorf("kafkaio: store %s: encoding the range end: %w", r.spec.Name, err)
	}
	if bytes.Compare(lo, hi) > 0 {
		return r.a.checkRunning()
	}
	return r.scan(lo, append(hi, 0), fn) // the first key after to
}

// Prefix is All for the keys whose encoding starts with the encoding of
// prefix (Kafka Streams' ReadOnlyKeyValueStore.prefixScan with the store's
// key serializer): with serde.String, the keys that start with prefix.
func (r *StoreReader[K, V]) Prefix(prefix K, fn func(K, V) bool) error {
	lo, err := r.ks.Append(nil, prefix)
	if err != nil {
		return fmt.Errorf("kafkaio: store %s: encoding the prefix: %w", r.spec.Name, err)
	}
	return r.scan(lo, serde.PrefixEnd(lo), fn)
}

// scan calls fn for the keys in [lo, hi) (nil: no bound) of the local
// partitions; see All.
func (r *StoreReader[K, V]) scan(lo, hi []byte, fn func(K, V) bool) error {
	if err := r.a.checkRunning(); err != nil {
		return err
	}
	var parts []int32
	if r.spec.Global {
		parts = []int32{-1}
	} else {
		r.a.mu.Lock()
		for id := range r.a.tasks {
			if id.SubTopology == r.spec.SubTopology {
				parts = append(parts, id.Partition)
			}
		}
		r.a.mu.Unlock()
		slices.Sort(parts)
	}
	var keys, vals [][]byte
	for _, p := range parts {
		from := lo
		for {
			keys, vals = keys[:0], vals[:0]
			err := r.a.withStore(r.spec, p, func(st state.Store) error {
				return st.Range(from, hi, func(k, v []byte) bool {
					keys, vals = append(keys, bytes.Clone(k)), append(vals, bytes.Clone(v))
					return len(keys) < queryChunk
				})
			})
			if errors.Is(err, ErrNotLocal) {
				break
			}
			if err != nil {
				return err
			}
			for i := range keys {
				k, err := r.ks.Decode(keys[i])
				if err != nil {
					return fmt.Errorf("kafkaio: store %s: decoding key: %w", r.spec.Name, err)
				}
				v, err := r.decode(vals[i])
				if err != nil {
					return err
				}
				if !fn(k, v) {
					return nil
				}
			}
			if len(keys) < queryChunk {
				break
			}
			from = append(keys[len(keys)-1], 0) // the next key after the last
		}
	}
	return nil
}

// withStore calls fn with the instance's copy of partition p of the store
// (p < 0: a global store), while no task processes; ErrNotLocal if no
// active task of this instance holds p.
func (a *App) withStore(spec *graph.StoreSpec, p int32, fn func(state.Store) error) error {
	if spec.Global {
		a.mu.Lock()
		g := a.global
		a.mu.Unlock()
		if g == nil {
			return ErrNotRunning
		}
		return fn(g.reader(spec.Name)) // safe for concurrent reads
	}
	a.storeMu.Lock() // also serializes readers: a store's reads may use its buffers
	defer a.storeMu.Unlock()
	a.mu.Lock()
	t := a.tasks[runtime.TaskID{SubTopology: spec.SubTopology, Partition: p}]
	a.mu.Unlock()
	if t == nil {
		return fmt.Errorf("store %s partition %d: %w", spec.Name, p, ErrNotLocal)
	}
	st := t.rt.Store(spec.Name)
	if st == nil {
		return fmt.Errorf("kafkaio: store %s partition %d: the task has no such store", spec.Name, p)
	}
	return fn(st)
}

// Hosts returns the advertised addresses (AdvertisedAddr) of the instances
// that hold k's partition of the store, as the group's latest rebalance
// assigned them: active processes it, standbys keep warm copies of it
// (StandbyReplicas). active is "" while the partition moves between
// instances, or when its instance advertises no address. A global store is
// on every instance: Hosts returns no address for it.
func (r *StoreReader[K, V]) Hosts(k K) (active string, standbys []string, err error) {
	p, err := r.Partition(k)
	if err != nil {
		return "", nil, err
	}
	return r.a.storeHosts(r.spec, p)
}

// storeHosts returns the hosts of partition p of a store (see Hosts).
func (a *App) storeHosts(spec *graph.StoreSpec, p int32) (active string, standbys []string, err error) {
	if spec.Global {
		return "", nil, nil
	}
	b := a.balancer
	if b == nil {
		return "", nil, ErrNotRunning
	}
	hosts := b.hosts.Load()
	if hosts == nil {
		return "", nil, nil
	}
	key := taskKey{spec.SubTopology, p}
	for _, h := range *hosts {
		if slices.Contains(h.active, key) {
			active = h.addr
		}
		if slices.Contains(h.standby, key) {
			standbys = append(standbys, h.addr)
		}
	}
	return active, standbys, nil
}

// withStandbyStore calls fn with this instance's standby replica of
// partition p of the store, while the replica applies nothing; ErrNotLocal
// if it holds none.
func (a *App) withStandbyStore(spec *graph.StoreSpec, p int32, fn func(state.Store) error) error {
	a.mu.Lock()
	s := a.standby
	a.mu.Unlock()
	notLocal := fmt.Errorf("store %s partition %d: %w", spec.Name, p, ErrNotLocal)
	if s == nil || spec.Global || spec.FromSource { // a source table's store has no standby
		return notLocal
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.tasks[runtime.TaskID{SubTopology: spec.SubTopology, Partition: p}]
	if r == nil {
		return notLocal
	}
	st := r.rt.Store(spec.Name)
	if st == nil {
		return notLocal
	}
	return fn(st)
}
