package kstream_test

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/kstest"
	"github.com/kstreamgo/kstream/serde"
	"github.com/kstreamgo/kstream/state"
)

func ExampleNewBuilder() {
	b := kstream.NewBuilder()
	orders := kstream.Source(b, "orders", serde.String, serde.Int64)
	orders.Filter(func(_ string, amount int64) bool { return amount > 0 }, kstream.Named("positive")).
		To("valid-orders", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(topo.Describe())
	// Output:
	// Topologies:
	//   Sub-topology: 0
	//     Source: SOURCE-0000000000 (topic: orders)
	//       --> positive
	//     Processor: positive (filter)
	//       --> SINK-0000000002
	//       <-- SOURCE-0000000000
	//     Sink: SINK-0000000002 (topic: valid-orders)
	//       <-- positive
}

func ExampleMap() {
	b := kstream.NewBuilder()
	users := kstream.Source(b, "users", serde.String, serde.String)
	// Key the records by e-mail domain; the value becomes the user's name.
	byDomain := kstream.Map(users, func(name, email string) (string, string) {
		_, domain, _ := strings.Cut(email, "@")
		return domain, name
	})
	byDomain.To("users-by-domain", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}

	d := kstest.NewDriver(nil, topo)
	defer d.Close()
	in := kstest.Input(d, "users", serde.String, serde.String)
	in.PipeAt(1000, "ada", "ada@example.org")
	in.PipeAt(2000, "grace", "grace@navy.mil")
	in.PipeTombstoneAt(3000, "ada") // a tombstone cannot be re-keyed: dropped
	for _, r := range kstest.Output(d, "users-by-domain", serde.String, serde.String).Records() {
		fmt.Println(r.Timestamp, r.Key, r.Value)
	}
	// Output:
	// 1000 example.org ada
	// 2000 navy.mil grace
}

func ExampleStream_Filter() {
	b := kstream.NewBuilder()
	temps := kstream.Source(b, "temperatures", serde.String, serde.Float64)
	temps.Filter(func(_ string, celsius float64) bool { return celsius >= 30 }).
		To("heat-alerts", serde.String, serde.Float64)
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}

	d := kstest.NewDriver(nil, topo)
	defer d.Close()
	in := kstest.Input(d, "temperatures", serde.String, serde.Float64)
	in.PipeAt(1, "paris", 24.5)
	in.PipeAt(2, "seville", 38)
	in.PipeTombstoneAt(3, "oslo") // tombstones pass a filter unchanged
	for _, r := range kstest.Output(d, "heat-alerts", serde.String, serde.Float64).Records() {
		if r.Tombstone {
			fmt.Println(r.Key, "deleted")
			continue
		}
		fmt.Println(r.Key, r.Value)
	}
	// Output:
	// seville 38
	// oslo deleted
}

func ExampleGrouped_Count() {
	b := kstream.NewBuilder()
	clicks := kstream.Source(b, "clicks", serde.String, serde.String) // user -> page
	// Count the clicks per page: re-keying by page repartitions the stream.
	pages := kstream.SelectKey(clicks, func(_, page string) string { return page })
	pages.GroupByKey().Count(kstream.Named("clicks-per-page")).
		ToStream().To("page-clicks", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(topo.InternalTopics("shop"))

	d := kstest.NewDriver(nil, topo, kstest.Partitions(4))
	defer d.Close()
	in := kstest.Input(d, "clicks", serde.String, serde.String)
	in.PipeAt(10, "ann", "/home")
	in.PipeAt(20, "bob", "/cart")
	in.PipeAt(30, "cid", "/home")
	for _, r := range kstest.Output(d, "page-clicks", serde.String, serde.Int64).Records() {
		fmt.Printf("%s=%d at %d\n", r.Key, r.Value, r.Timestamp)
	}
	v, _ := kstest.Store(d, "clicks-per-page", serde.String, serde.Int64).Get("/home")
	fmt.Println("store: /home =", v)
	// Output:
	// [shop-clicks-per-page-changelog shop-clicks-per-page-repartition]
	// /home=1 at 10
	// /cart=1 at 20
	// /home=2 at 30
	// store: /home = 2
}

// dedup forwards a record only the first time its key is seen, remembering
// keys in the store "seen-keys".
type dedup struct {
	ctx  *kstream.ProcessorContext[string, string]
	seen *state.KV[string, bool]
}

func (p *dedup) Init(ctx *kstream.ProcessorContext[string, string]) error {
	st, err := ctx.Store("seen-keys")
	if err != nil {
		return err
	}
	p.ctx, p.seen = ctx, state.NewKV(st, serde.String, serde.Bool)
	return nil
}

func (p *dedup) Process(r kstream.Record[string, string]) error {
	if _, dup, err := p.seen.Get(r.Key); err != nil || dup {
		return err
	}
	if err := p.seen.Put(r.Key, true); err != nil {
		return err
	}
	p.ctx.Forward(r)
	return nil
}

func (p *dedup) Close() error { return nil }

func ExampleProcess() {
	b := kstream.NewBuilder()
	events := kstream.Source(b, "events", serde.String, serde.String)
	kstream.Process(events, func() kstream.Processor[string, string, string, string] { return &dedup{} },
		kstream.Named("dedup"), kstream.WithStores("seen-keys")).
		To("unique-events", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}

	d := kstest.NewDriver(nil, topo)
	defer d.Close()
	in := kstest.Input(d, "events", serde.String, serde.String)
	in.PipeAt(1, "e1", "signup")
	in.PipeAt(2, "e2", "login")
	in.PipeAt(3, "e1", "signup") // a retry: dropped
	for _, r := range kstest.Output(d, "unique-events", serde.String, serde.String).Records() {
		fmt.Println(r.Key, r.Value)
	}
	// Output:
	// e1 signup
	// e2 login
}

// normalize is a FixedKeyProcessor: it trims and lower-cases each value and
// marks the record with a header. It cannot change keys.
type normalize struct {
	ctx *kstream.FixedKeyContext[string, string]
}

func (p *normalize) Init(ctx *kstream.FixedKeyContext[string, string]) error {
	p.ctx = ctx
	return nil
}

func (p *normalize) Process(r kstream.FixedKeyRecord[string, string]) error {
	if !r.Tombstone {
		r.Value = strings.ToLower(strings.TrimSpace(r.Value))
		r.Headers = append(r.Headers, kstream.Header{Key: "normalized", Value: []byte("yes")})
	}
	p.ctx.Forward(r)
	return nil
}

func (p *normalize) Close() error { return nil }

func ExampleProcessValues() {
	b := kstream.NewBuilder()
	clicks := kstream.Source(b, "clicks", serde.String, serde.String) // user -> page
	clean := kstream.ProcessValues(clicks, func() kstream.FixedKeyProcessor[string, string, string] { return &normalize{} },
		kstream.Named("normalize"))
	clean.To("clean-clicks", serde.String, serde.String)
	// Count the clicks per user: the keys did not change, so no repartition.
	clean.GroupByKey().Count(kstream.Named("clicks-per-user")).
		ToStream().To("user-clicks", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(topo.InternalTopics("shop"))

	d := kstest.NewDriver(nil, topo, kstest.Partitions(4))
	defer d.Close()
	in := kstest.Input(d, "clicks", serde.String, serde.String)
	in.PipeAt(10, "ann", " /Home ")
	in.PipeAt(20, "bob", "/CART")
	in.PipeAt(30, "ann", "/cart")
	for _, r := range kstest.Output(d, "clean-clicks", serde.String, serde.String).Records() {
		fmt.Printf("%s %q %s=%s\n", r.Key, r.Value, r.Headers[0].Key, r.Headers[0].Value)
	}
	for _, r := range kstest.Output(d, "user-clicks", serde.String, serde.Int64).Records() {
		fmt.Printf("%s=%d at %d\n", r.Key, r.Value, r.Timestamp)
	}
	// Output:
	// [shop-clicks-per-user-changelog]
	// ann "/home" normalized=yes
	// bob "/cart" normalized=yes
	// ann "/cart" normalized=yes
	// ann=1 at 10
	// bob=1 at 20
	// ann=2 at 30
}

func ExampleTimestampFrom() {
	// Sensor readings "sensor -> celsius@event-time-ms", produced later than
	// they were taken: windows follow the event time in the value.
	eventTime := func(_ string, v string, recordTs int64) int64 {
		_, at, _ := strings.Cut(v, "@")
		ts, err := strconv.ParseInt(at, 10, 64)
		if err != nil {
			return recordTs
		}
		return ts
	}
	b := kstream.NewBuilder()
	readings := kstream.Source(b, "readings", serde.String, serde.String, kstream.TimestampFrom(eventTime))
	kstream.WindowedBy(readings.GroupByKey(), kstream.Tumbling(time.Minute)).
		Count(kstream.Named("per-minute"), kstream.EmitOnWindowClose()).
		ToStream().To("counts", kstream.WindowedSerde(serde.String), serde.Int64)
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	d := kstest.NewDriver(nil, topo)
	defer d.Close()
	in := kstest.Input(d, "readings", serde.String, serde.String)
	const produced = 1_800_000 // all produced at minute 30
	in.PipeAt(produced, "s1", "20.5@1000")
	in.PipeAt(produced, "s1", "20.7@59000")
	in.PipeAt(produced, "s1", "21.0@61000")
	in.PipeAt(produced, "s1", "21.2@125000") // closes minute 1
	for _, r := range kstest.Output(d, "counts", kstream.WindowedSerde(serde.String), serde.Int64).Records() {
		fmt.Printf("%s [%d, %d) ms: count %d, at %d\n", r.Key.Key, r.Key.Start, r.Key.End, r.Value, r.Timestamp)
	}
	// Output:
	// s1 [0, 60000) ms: count 2, at 59000
	// s1 [60000, 120000) ms: count 1, at 61000
}
