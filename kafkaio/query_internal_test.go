package kafkaio

import (
	"bytes"
	"testing"
)

func TestPrefixEnd(t *testing.T) {
	for _, tc := range []struct{ p, want []byte }{
		{[]byte("g3"), []byte("g4")},
		{[]byte{'a', 0xff}, []byte{'b'}},
		{[]byte{'a', 0xfe, 0xff, 0xff}, []byte{'a', 0xff}},
		{[]byte{0xff, 0xff}, nil},
		{nil, nil},
	} {
		got := prefixEnd(tc.p)
		if !bytes.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
			t.Errorf("prefixEnd(%x) = %x, want %x", tc.p, got, tc.want)
		}
		// Every key with the prefix sorts before the end.
		if got != nil && bytes.Compare(append(bytes.Clone(tc.p), 0xff, 0xff), got) >= 0 {
			t.Errorf("prefixEnd(%x) = %x: a key with the prefix sorts after it", tc.p, got)
		}
	}
}
