package kstest_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/kstest"
	"github.com/kstreamgo/kstream/serde"
)

type order struct {
	ID     int `json:"id"`
	Amount int `json:"amount"`
}

// policyTopology decodes int32 keys and JSON orders, and panics on a
// negative amount.
func policyTopology(t *testing.T) *kstream.Topology {
	b := kstream.NewBuilder()
	s := kstream.Source(b, "orders", serde.Int32, serde.JSON[order](), kstream.Named("orders"))
	kstream.MapValues(s, func(o order) order {
		if o.Amount < 0 {
			panic("negative amount")
		}
		return o
	}, kstream.Named("check-amount")).To("checked", serde.Int32, serde.JSON[order]())
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func int32Key(v int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }

// badOrders are raw records: offsets 1, 2 and 3 fail in three ways.
var badOrders = []struct {
	key, value []byte
	kind, node string // "" for a good record
}{
	{int32Key(1), []byte(`{"id":1,"amount":5}`), "", ""},
	{int32Key(2), []byte(`{"id":2,"amount":`), "deserialization", "orders"},
	{[]byte{0, 3}, []byte(`{"id":3,"amount":1}`), "deserialization", "orders"},
	{int32Key(4), []byte(`{"id":4,"amount":-1}`), "processing", "check-amount"},
	{int32Key(5), []byte(`{"id":5,"amount":7}`), "", ""},
}

// TestErrorPolicies: the driver applies error policies as kafkaio does, so
// that a test sees malformed records skipped or dead-lettered.
func TestErrorPolicies(t *testing.T) {
	pipe := func(d *kstest.Driver) (errs []error) {
		in := kstest.Input(d, "orders", serde.Bytes, serde.Bytes)
		for _, r := range badOrders {
			errs = append(errs, in.TryPipeRecord(kstream.Record[[]byte, []byte]{Key: r.key, Value: r.value}))
		}
		return errs
	}
	checkGood := func(t *testing.T, d *kstest.Driver) {
		t.Helper()
		got := kstest.LatestByKey(kstest.Output(d, "checked", serde.Int32, serde.JSON[order]()))
		if len(got) != 2 || got[1].Amount != 5 || got[5].Amount != 7 {
			t.Errorf("checked orders %v, want orders 1 and 5", got)
		}
	}

	t.Run("fail", func(t *testing.T) {
		d := kstest.NewDriver(t, policyTopology(t))
		for i, err := range pipe(d) {
			var re *kstream.RecordError
			if bad := badOrders[i].kind != ""; bad != errors.As(err, &re) || bad && (re.Node != badOrders[i].node || re.Offset != int64(i)) {
				t.Errorf("record %d: error %v", i, err)
			}
		}
		checkGood(t, d)
	})
	t.Run("skip", func(t *testing.T) {
		d := kstest.NewDriver(t, policyTopology(t),
			kstest.OnDeserializationError(kstream.PolicySkip), kstest.OnProcessingError(kstream.PolicySkip))
		for i, err := range pipe(d) {
			if err != nil {
				t.Errorf("record %d: %v", i, err)
			}
		}
		checkGood(t, d)
		if n := d.Skipped(); n != 3 {
			t.Errorf("skipped %d records, want 3", n)
		}
		d.Restart() // the count survives
		if n := d.Skipped(); n != 3 {
			t.Errorf("after a restart, skipped %d records, want 3", n)
		}
	})
	t.Run("dead-letter", func(t *testing.T) {
		d := kstest.NewDriver(t, policyTopology(t), kstest.DeadLetterTopic("bad-orders"),
			kstest.OnDeserializationError(kstream.PolicyDeadLetter), kstest.OnProcessingError(kstream.PolicyDeadLetter))
		for i, err := range pipe(d) {
			if err != nil {
				t.Errorf("record %d: %v", i, err)
			}
		}
		checkGood(t, d)
		dead := kstest.Output(d, "bad-orders", serde.Bytes, serde.Bytes).Records()
		if len(dead) != 3 {
			t.Fatalf("dead-letter topic has %d records, want 3", len(dead))
		}
		for j, i := range []int{1, 2, 3} {
			r, want := dead[j], badOrders[i]
			if string(r.Key) != string(want.key) || string(r.Value) != string(want.value) {
				t.Errorf("dead letter %d: %x %q, want the raw record %x %q", j, r.Key, r.Value, want.key, want.value)
			}
			hs := map[string]string{}
			for _, h := range r.Headers {
				hs[h.Key] = string(h.Value)
			}
			for k, v := range map[string]string{"kstream.error.kind": want.kind, "kstream.node": want.node,
				"kstream.source.topic": "orders", "kstream.source.offset": fmt.Sprint(i)} {
				if hs[k] != v {
					t.Errorf("dead letter %d: header %s = %q, want %q", j, k, hs[k], v)
				}
			}
			if panicked := want.kind == "processing"; panicked != strings.Contains(hs["kstream.error.stack"], "policy_test.go") ||
				panicked != strings.Contains(hs["kstream.error"], "negative amount") {
				t.Errorf("dead letter %d: headers %v", j, hs)
			}
		}
	})
}
