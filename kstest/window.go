package kstest

import (
	"bytes"
	"fmt"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/internal/runtime"
	"github.com/kstreamgo/kstream/serde"
)

// WindowStoreView reads the store of a windowed or session aggregation, as
// kafkaio.WindowStoreReader does in production.
type WindowStoreView[K, V any] struct {
	d    *Driver
	name string
	ks   serde.Serde[K]
	vs   serde.Serde[V]
	ws   serde.Serde[kstream.Windowed[K]]
}

// WindowStore returns a reader of the store named name of a windowed or
// session aggregation (the name given with kstream.Named). ks must be the
// serde of the keys the aggregation groups by, and vs that of its
// aggregates.
func WindowStore[K, V any](d *Driver, name string, ks serde.Serde[K], vs serde.Serde[V]) *WindowStoreView[K, V] {
	return &WindowStoreView[K, V]{d: d, name: name, ks: ks, vs: vs, ws: kstream.WindowedSerde(ks)}
}

// Fetch returns the windows of k whose start is in [from, to] (milliseconds
// since the epoch; sessions by their start too) that the store holds, in
// order of start then end, as records: the Windowed key, the aggregate as
// the value, and the window's timestamp (the largest timestamp of its
// records; a session's end). It reads the task that holds k's partition, as
// kafkaio.WindowStoreReader.Fetch does. The store holds the windows that
// have not expired: those still open, and the closed ones within their
// retention (kstream.Retention).
func (s *WindowStoreView[K, V]) Fetch(k K, from, to int64) []kstream.Record[kstream.Windowed[K], V] {
	s.d.helper()
	kb, err := s.ks.Append(nil, k)
	if err != nil {
		s.d.fatal(fmt.Errorf("kstest: store %s: encoding key: %w", s.name, err))
		return nil
	}
	var task *runtime.Task
	for _, t := range s.d.tasks {
		spec := t.StoreSpec(s.name)
		if spec == nil || t.Store(s.name) == nil {
			continue
		}
		if !spec.Windowed {
			s.d.fatal(fmt.Errorf("kstest: store %s is not the store of a windowed aggregation (read it with Store)", s.name))
			return nil
		}
		if t.ID.Partition == runtime.PartitionForKey(kb, s.d.cfg.partitions) {
			task = t
		}
	}
	if task == nil {
		s.d.fatal(fmt.Errorf("kstest: the topology has no window store %q", s.name))
		return nil
	}
	lo, hi := runtime.WindowRange(kb, from, to)
	var keys, vals [][]byte
	err = task.Store(s.name).Range(lo, hi, func(k, v []byte) bool {
		keys, vals = append(keys, bytes.Clone(k)), append(vals, bytes.Clone(v))
		return true
	})
	if err != nil {
		s.d.fatal(fmt.Errorf("kstest: store %s: %w", s.name, err))
		return nil
	}
	var out []kstream.Record[kstream.Windowed[K], V]
	for i := range keys {
		w, v, ts, err := runtime.DecodeWindow(s.ws, s.vs, keys[i], vals[i])
		if err != nil {
			s.d.fatal(fmt.Errorf("kstest: store %s: %w", s.name, err))
			return nil
		}
		out = append(out, kstream.Record[kstream.Windowed[K], V]{Key: w, Value: v, Timestamp: ts})
	}
	return out
}
