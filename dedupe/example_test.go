package dedupe_test

import (
	"fmt"
	"strings"
	"time"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/dedupe"
	"github.com/kstreamgo/kstream/kstest"
	"github.com/kstreamgo/kstream/serde"
)

// Payments carry their ID in the value ("<payment ID>:<amount>"); a producer
// that retries sends some of them twice.
func ExampleByID() {
	b := kstream.NewBuilder()
	payments := kstream.Source(b, "payments", serde.String, serde.String)
	paymentID := func(_ string, v string) string {
		id, _, _ := strings.Cut(v, ":")
		return id
	}
	dedupe.ByID(payments, paymentID, time.Minute, kstream.Named("payments-dedupe")).
		To("unique-payments", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}

	d := kstest.NewDriver(nil, topo)
	defer d.Close()
	in := kstest.Input(d, "payments", serde.String, serde.String)
	in.PipeAt(0, "alice", "p1:10")
	in.PipeAt(1_000, "alice", "p1:10") // a retry: dropped
	in.PipeAt(2_000, "bob", "p2:25")
	in.PipeAt(60_000, "alice", "p1:10") // exactly one minute after p1 passed: dropped
	in.PipeAt(60_001, "alice", "p1:10") // past the minute: p1 passes again
	for _, r := range kstest.Output(d, "unique-payments", serde.String, serde.String).Records() {
		fmt.Println(r.Timestamp, r.Key, r.Value)
	}
	// Output:
	// 0 alice p1:10
	// 2000 bob p2:25
	// 60001 alice p1:10
}
