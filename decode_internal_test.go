package kstream

import (
	"bytes"
	"testing"
	"time"

	"github.com/kstreamgo/kstream/serde"
)

// FuzzInternalFormats feeds arbitrary bytes to the decoders of what kstream
// writes to its internal topics and stores, and to the windowed-key serdes
// that read its output topics: bad bytes (a foreign producer, a record of
// another version) must be an error, never a panic; and what decodes
// re-encodes to the same bytes, so that a decoder never accepts a malformed
// record by reading it differently.
func FuzzInternalFormats(f *testing.F) {
	var h [fkHashLen]byte
	h[0] = 7
	f.Add(appendFKSubscription(nil, fkSubPropagateOnlyIfFound, 3, true, &h, []byte("pk")))
	f.Add(appendFKSubscription(nil, fkSubDeleteAndPropagate, -1, false, &h, nil))
	f.Add(appendFKResponse(nil, true, &h, true, []byte("foreign")))
	f.Add(appendFKResponse(nil, false, &h, false, nil))
	wk, _ := WindowedSerde(serde.String).Append(nil, Windowed[string]{Key: "k", Start: 10, End: 20})
	f.Add(wk)
	sk, _ := SessionWindowedSerde(serde.String).Append(nil, Windowed[string]{Key: "k", Start: 10, End: 20})
	f.Add(sk)
	f.Add([]byte{})
	serdes := []serde.Serde[Windowed[string]]{WindowedSerde(serde.String), TimeWindowedSerde(serde.String, 10*time.Millisecond), SessionWindowedSerde(serde.String)}
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := parseFKSubscription(b); err == nil {
			if got := appendFKSubscription(nil, s.instruction, s.partition, s.hasHash, &s.hash, s.pk); !bytes.Equal(got, b) {
				t.Errorf("subscription %x parsed as %+v, which encodes as %x", b, s, got)
			}
		}
		if r, err := parseFKResponse(b); err == nil {
			if got := appendFKResponse(nil, r.hasHash, &r.hash, r.hasForeign, r.foreign); !bytes.Equal(got, b) {
				t.Errorf("response %x parsed as %+v, which encodes as %x", b, r, got)
			}
		}
		_, _, _, _ = parseFKStoredSubscription(b)
		_, _, _ = decodeTimestamped(b, serde.String)
		_, _, _, _ = decodeDataKey(b, serde.String)
		for i, s := range serdes {
			if w, err := s.Decode(b); err == nil && i != 1 { // a time-windowed key does not hold its end
				if got, err := s.Append(nil, w); err != nil || !bytes.Equal(got, b) {
					t.Errorf("serde %d: %x decoded as %+v, which encodes as %x (%v)", i, b, w, got, err)
				}
			}
		}
	})
}
