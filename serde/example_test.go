package serde_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kstreamgo/kstream/serde"
)

func ExampleString() {
	b, _ := serde.String.Append(nil, "héllo")
	fmt.Printf("% x\n", b)

	s, _ := serde.String.Decode(b)
	fmt.Println(s)
	// Output:
	// 68 c3 a9 6c 6c 6f
	// héllo
}

func ExampleInt64() {
	// Same bytes as Kafka's LongSerializer.
	b, _ := serde.Int64.Append(nil, -1)
	fmt.Printf("% x\n", b)
	b, _ = serde.Int64.Append(b[:0], 1)
	fmt.Printf("% x\n", b)

	n, _ := serde.Int64.Decode(b)
	fmt.Println(n)

	_, err := serde.Int64.Decode([]byte{1, 2, 3})
	fmt.Println(err)
	// Output:
	// ff ff ff ff ff ff ff ff
	// 00 00 00 00 00 00 00 01
	// 1
	// serde: int64: need 8 bytes, got 3
}

func ExampleDefault() {
	s, ok := serde.Default[int32]()
	b, _ := s.Append(nil, 256)
	fmt.Printf("%v % x\n", ok, b)

	_, ok = serde.Default[struct{ N int }]()
	fmt.Println(ok)
	// Output:
	// true 00 00 01 00
	// false
}

func ExampleJSON() {
	type click struct {
		User string `json:"user"`
		N    int    `json:"n"`
	}
	s := serde.JSON[click]()
	b, _ := s.Append(nil, click{User: "alice", N: 3})
	fmt.Println(string(b))

	c, _ := s.Decode([]byte(`{"user":"bob","n":7}`))
	fmt.Printf("%+v\n", c)
	// Output:
	// {"user":"alice","n":3}
	// {User:bob N:7}
}

func ExampleProto() {
	// T is the generated message pointer type; any generated message works
	// the same way as this well-known type.
	s := serde.Proto[*timestamppb.Timestamp]()
	b, _ := s.Append(nil, &timestamppb.Timestamp{Seconds: 1700000000, Nanos: 5})
	fmt.Printf("% x\n", b) // the bytes of Java's toByteArray()

	ts, _ := s.Decode(b)
	fmt.Println(ts.AsTime())

	// An empty input is an empty message, not nil.
	empty, _ := s.Decode(nil)
	fmt.Println(empty != nil, proto.Equal(empty, &timestamppb.Timestamp{}))

	_, err := s.Decode([]byte{0xff})
	fmt.Println(strings.HasPrefix(err.Error(), "serde: proto: "), errors.Is(err, proto.Error))
	// Output:
	// 08 80 e2 cf aa 06 10 05
	// 2023-11-14 22:13:20.000000005 +0000 UTC
	// true true
	// true true
}

// A window store key made of a record key and a window start time. Keys sort
// by record key, then by time, and one record key's windows form a contiguous
// range.
func ExampleAppendOrderedBytes() {
	windowKey := func(key string, start int64) []byte {
		k := serde.AppendOrderedBytes(nil, []byte(key))
		return serde.AppendOrderedInt64(k, start)
	}
	a := windowKey("a", 1000)
	a0 := windowKey("a\x00", -5)
	fmt.Printf("% x\n", a)
	fmt.Printf("% x\n", a0)
	fmt.Println(bytes.Compare(a, a0), bytes.Compare(windowKey("a", -1), a))

	key, rest, _ := serde.DecodeOrderedBytes(a)
	start, _, _ := serde.DecodeOrderedInt64(rest)
	fmt.Printf("%q %d\n", key, start)

	// Range scan bounds for every window of "a": [lower, upper).
	lower := serde.AppendOrderedBytes(nil, []byte("a"))
	upper := serde.PrefixEnd(lower)
	fmt.Printf("% x .. % x\n", lower, upper)
	// Output:
	// 61 00 01 80 00 00 00 00 00 03 e8
	// 61 00 ff 00 01 7f ff ff ff ff ff ff fb
	// -1 -1
	// "a" 1000
	// 61 00 01 .. 61 00 02
}
