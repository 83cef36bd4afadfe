package kafkaio

import (
	"bytes"
	"fmt"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/internal/runtime"
	"github.com/kstreamgo/kstream/serde"
	"github.com/kstreamgo/kstream/state"
)

// WindowStoreReader reads the store of a windowed or session aggregation by
// key and time (interactive queries), as StoreReader reads key-value
// stores: between the tasks' batches, the latest writes included, safe for
// concurrent use. The key serde must be the one the topology groups by.
type WindowStoreReader[K, V any] struct {
	a    *App
	spec *graph.StoreSpec
	ks   serde.Serde[K]
	vs   serde.Serde[V]
	ws   serde.Serde[kstream.Windowed[K]]
}

// WindowStore returns a reader of the named store of a windowed or session
// aggregation of app's topology. The app need not be running yet; reads fail
// with ErrNotRunning until it is.
func WindowStore[K, V any](app *App, name string, kSerde serde.Serde[K], vSerde serde.Serde[V]) (*WindowStoreReader[K, V], error) {
	if kSerde == nil || vSerde == nil {
		return nil, fmt.Errorf("kafkaio: store %s: nil serde", name)
	}
	spec, err := app.lookupStore(name, "window", func(s *graph.StoreSpec) bool { return s.Windowed }, func(*graph.StoreSpec) error {
		return fmt.Errorf("kafkaio: store %s is not the store of a windowed aggregation (read key-value stores with Store)", name)
	})
	if err != nil {
		return nil, err
	}
	return &WindowStoreReader[K, V]{a: app, spec: spec, ks: kSerde, vs: vSerde, ws: kstream.WindowedSerde(kSerde)}, nil
}

// Name returns the store's name.
func (r *WindowStoreReader[K, V]) Name() string { return r.spec.Name }

// Fetch calls fn with each window of k whose start is in [from, to]
// (milliseconds since the epoch; session windows too, by their start), in
// order of start then end, until fn returns false. It returns ErrNotLocal
// when this instance does not host k's partition. The windows are read
// under the store lock and fn runs after.
//
// The store holds the windows that have not expired: those still open, and
// the closed ones within the aggregation's retention, as in Kafka Streams'
// window and session stores. By default the retention is the shortest
// possible (size + grace for tumbling and hopping windows, gap + grace for
// sessions, 2*maxDiff + grace for sliding windows), so a time window or
// session leaves the store as it closes; kstream.Retention keeps closed
// windows longer (see its doc for the exact bounds).
func (r *WindowStoreReader[K, V]) Fetch(k K, from, to int64, fn func(w kstream.Windowed[K], v V) bool) error {
	if err := r.a.checkRunning(); err != nil {
		return err
	}
	kb, err := r.ks.Append(nil, k)
	if err != nil {
		return fmt.Errorf("kafkaio: store %s: encoding key: %w", r.spec.Name, err)
	}
	p, err := r.a.storePartition(r.spec, kb)
	if err != nil {
		return err
	}
	lo, hi := runtime.WindowRange(kb, from, to)
	var keys, vals [][]byte
	err = r.a.withStore(r.spec, p, func(st state.Store) error {
		return st.Range(lo, hi, func(k, v []byte) bool {
			keys, vals = append(keys, bytes.Clone(k)), append(vals, bytes.Clone(v))
			return true
		})
	})
	if err != nil {
		return err
	}
	for i := range keys {
		w, v, _, err := runtime.DecodeWindow(r.ws, r.vs, keys[i], vals[i])
		if err != nil {
			return fmt.Errorf("kafkaio: store %s: %w", r.spec.Name, err)
		}
		if !fn(w, v) {
			return nil
		}
	}
	return nil
}

// Hosts returns the advertised addresses of the instances that hold k's
// partition of the store (see StoreReader.Hosts).
func (r *WindowStoreReader[K, V]) Hosts(k K) (active string, standbys []string, err error) {
	if err := r.a.checkRunning(); err != nil {
		return "", nil, err
	}
	kb, err := r.ks.Append(nil, k)
	if err != nil {
		return "", nil, fmt.Errorf("kafkaio: store %s: encoding key: %w", r.spec.Name, err)
	}
	p, err := r.a.storePartition(r.spec, kb)
	if err != nil {
		return "", nil, err
	}
	return r.a.storeHosts(r.spec, p)
}
