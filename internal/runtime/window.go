package runtime

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/kstreamgo/kstream/serde"
)

// WindowRange returns the bounds [lo, hi) of the data keys, in the store of
// a windowed or session aggregation, of the windows of the key whose
// serialized form is kb and whose start is in [from, to]: a data key is
// ordered(key) | ordered(start) | ordered(end), the WindowedSerde encoding
// of the window (see the root package's window_store.go).
func WindowRange(kb []byte, from, to int64) (lo, hi []byte) {
	prefix := serde.AppendOrderedBytes(nil, kb)
	lo = serde.AppendOrderedInt64(bytes.Clone(prefix), from)
	if to == math.MaxInt64 {
		return lo, serde.PrefixEnd(prefix)
	}
	return lo, serde.AppendOrderedInt64(prefix, to+1)
}

// DecodeWindow decodes an entry of the store of a windowed or session
// aggregation: the window from its data key k (with ws, the WindowedSerde of
// the key serde), and the aggregate and the window's timestamp from its value
// v (an 8-byte timestamp, then the aggregate, encoded with vs).
func DecodeWindow[W, V any](ws serde.Serde[W], vs serde.Serde[V], k, v []byte) (w W, agg V, ts int64, err error) {
	if w, err = ws.Decode(k); err != nil {
		return w, agg, 0, fmt.Errorf("decoding window key: %w", err)
	}
	if len(v) < 8 {
		return w, agg, 0, errors.New("stored value shorter than its timestamp")
	}
	if agg, err = vs.Decode(v[8:]); err != nil {
		return w, agg, 0, fmt.Errorf("decoding value: %w", err)
	}
	return w, agg, int64(binary.BigEndian.Uint64(v)), nil
}
