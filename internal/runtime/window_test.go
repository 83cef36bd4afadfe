package runtime_test

import (
	"bytes"
	"math"
	"strings"
	"testing"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/internal/runtime"
	"github.com/kstreamgo/kstream/serde"
)

func TestWindowRange(t *testing.T) {
	ws := kstream.WindowedSerde(serde.String)
	key := func(k string, start, end int64) []byte {
		b, err := ws.Append(nil, kstream.Windowed[string]{Key: k, Start: start, End: end})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	in := func(k []byte, lo, hi []byte) bool { return bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) < 0 }
	for _, c := range []struct {
		name     string
		from, to int64
		k        []byte
		want     bool
	}{
		{"start at from", 10, 20, key("a", 10, 15), true},
		{"start at to", 10, 20, key("a", 20, 25), true},
		{"start after to", 10, 20, key("a", 21, 22), false},
		{"start before from", 10, 20, key("a", 9, 30), false},
		{"negative start", -5, 5, key("a", -5, 0), true},
		{"open end", 10, math.MaxInt64, key("a", math.MaxInt64-1, math.MaxInt64), true},
		{"other key, same prefix bytes", 0, math.MaxInt64, key("ab", 10, 15), false},
		{"other key before", 0, math.MaxInt64, key("", 10, 15), false},
	} {
		lo, hi := runtime.WindowRange([]byte("a"), c.from, c.to)
		if got := in(c.k, lo, hi); got != c.want {
			t.Errorf("%s: in range = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestDecodeWindow(t *testing.T) {
	ws := kstream.WindowedSerde(serde.String)
	k, _ := ws.Append(nil, kstream.Windowed[string]{Key: "a", Start: 10, End: 20})
	v := append([]byte{0, 0, 0, 0, 0, 0, 0, 42}, 0, 0, 0, 0, 0, 0, 0, 7)
	w, agg, ts, err := runtime.DecodeWindow(ws, serde.Int64, k, v)
	if err != nil || w != (kstream.Windowed[string]{Key: "a", Start: 10, End: 20}) || agg != 7 || ts != 42 {
		t.Fatalf("DecodeWindow = %+v %d %d %v", w, agg, ts, err)
	}
	for _, c := range []struct {
		name string
		k, v []byte
		want string
	}{
		{"short value", k, v[:7], "shorter than its timestamp"},
		{"bad aggregate", k, v[:10], "decoding value"},
		{"bad key", []byte{0xff}, v, "decoding window key"},
	} {
		if _, _, _, err := runtime.DecodeWindow(ws, serde.Int64, c.k, c.v); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one with %q", c.name, err, c.want)
		}
	}
}
