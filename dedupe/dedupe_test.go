package dedupe_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/dedupe"
	"github.com/kstreamgo/kstream/kstest"
	"github.com/kstreamgo/kstream/serde"
	"github.com/kstreamgo/kstream/state"
)

// storeName is the name of the ByID node and store in these tests; its
// changelog under kstest's default app ID is changelogTopic.
const (
	storeName      = "dedupe"
	changelogTopic = "kstest-dedupe-changelog"
)

// valueID uses the record's value as its ID.
func valueID(_ string, v string) string { return v }

// buildByID builds in -> ByID(idFn, retention) -> out.
func buildByID(t testing.TB, idFn func(string, string) string, retention time.Duration) *kstream.Topology {
	t.Helper()
	b := kstream.NewBuilder()
	s := kstream.Source(b, "in", serde.String, serde.String)
	dedupe.ByID(s, idFn, retention, kstream.Named(storeName)).To("out", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// step is one input record, and whether ByID must pass it.
type step struct {
	ts   int64
	key  string
	val  string
	tomb bool
	pass bool
}

func TestByID(t *testing.T) {
	tests := []struct {
		name      string
		retention time.Duration
		steps     []step
	}{
		{"duplicates within retention drop, both ends included", 10 * time.Millisecond, []step{
			{ts: 0, key: "k", val: "a", pass: true},
			{ts: 5, key: "k", val: "a"},
			{ts: 10, key: "k", val: "a"}, // t1 - t0 == retention
			{ts: 11, key: "k", val: "a", pass: true},
		}},
		{"the window counts from the record that passed", 10 * time.Millisecond, []step{
			{ts: 0, key: "k", val: "a", pass: true},
			{ts: 8, key: "k", val: "a"},
			{ts: 11, key: "k", val: "a", pass: true}, // 3 ms after the duplicate, 11 after the pass
			{ts: 19, key: "k", val: "a"},
			{ts: 21, key: "k", val: "a"},
			{ts: 22, key: "k", val: "a", pass: true},
		}},
		{"IDs are independent", 10 * time.Millisecond, []step{
			{ts: 0, key: "k", val: "a", pass: true},
			{ts: 1, key: "k", val: "b", pass: true},
			{ts: 2, key: "k", val: "a"},
			{ts: 3, key: "k", val: "b"},
			{ts: 4, key: "k", val: "c", pass: true},
		}},
		{"the ID is what idFn returns, not the key", 10 * time.Millisecond, []step{
			{ts: 0, key: "k1", val: "a", pass: true},
			{ts: 1, key: "k2", val: "a"},
			{ts: 2, key: "k1", val: "b", pass: true},
		}},
		{"an earlier timestamp than the passed record's is a duplicate", 10 * time.Millisecond, []step{
			{ts: 100, key: "k", val: "a", pass: true},
			{ts: 95, key: "k", val: "a"},
			{ts: 89, key: "k", val: "a"}, // older than stream time - retention, but a is remembered
		}},
		{"a late record whose ID is forgotten passes and is not remembered", 10 * time.Millisecond, []step{
			{ts: 0, key: "k", val: "a", pass: true},
			{ts: 100, key: "k", val: "b", pass: true}, // stream time 100: a (at 0) expires
			{ts: 5, key: "k", val: "a", pass: true},
			{ts: 6, key: "k", val: "a", pass: true},
			{ts: 95, key: "k", val: "a", pass: true}, // within retention of stream time: remembered
			{ts: 96, key: "k", val: "a"},
			{ts: 50, key: "k", val: "c", pass: true},
			{ts: 50, key: "k", val: "c", pass: true},
		}},
		{"stream time, not the record's timestamp, expires IDs", 10 * time.Millisecond, []step{
			{ts: 0, key: "k", val: "a", pass: true},
			{ts: 30, key: "k", val: "b", pass: true},
			{ts: 5, key: "k", val: "a", pass: true}, // t1 - t0 = 5, but a expired at stream time 30
		}},
		{"zero retention drops repeats within the same millisecond", 0, []step{
			{ts: 5, key: "k", val: "a", pass: true},
			{ts: 5, key: "k", val: "a"},
			{ts: 6, key: "k", val: "a", pass: true},
			{ts: 6, key: "k", val: "a"},
			{ts: 7, key: "k", val: "b", pass: true},
		}},
		{"tombstones pass untouched and are not remembered", 10 * time.Millisecond, []step{
			{ts: 0, key: "k", val: "a", pass: true},
			{ts: 1, key: "k", tomb: true, pass: true},
			{ts: 2, key: "k", tomb: true, pass: true},
			{ts: 3, key: "k", val: "a"},
			{ts: 4, key: "k", val: "", pass: true}, // the zero value is no tombstone: an empty ID
		}},
		{"an empty ID passes and is not remembered", 10 * time.Millisecond, []step{
			{ts: 0, key: "k", val: "", pass: true},
			{ts: 1, key: "k", val: "", pass: true},
			{ts: 2, key: "k", val: "a", pass: true},
		}},
		{"sub-millisecond retention is whole milliseconds", 1500 * time.Microsecond, []step{
			{ts: 0, key: "k", val: "a", pass: true},
			{ts: 1, key: "k", val: "a"},
			{ts: 2, key: "k", val: "a", pass: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls int
			idFn := func(k, v string) string {
				calls++
				return v
			}
			d := kstest.NewDriver(t, buildByID(t, idFn, tt.retention))
			in := kstest.Input(d, "in", serde.String, serde.String)
			out := kstest.Output(d, "out", serde.String, serde.String)
			wantCalls := 0
			for i, s := range tt.steps {
				rec := kstream.Record[string, string]{Key: s.key, Value: s.val, Timestamp: s.ts, Tombstone: s.tomb,
					Headers: []kstream.Header{{Key: "step", Value: []byte(strconv.Itoa(i))}}}
				if !s.tomb {
					wantCalls++
				}
				if err := in.TryPipeRecord(rec); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				got := out.Records()
				var want []kstream.Record[string, string]
				if s.pass {
					want = append(want, rec)
				}
				if !sameRecords(got, want) {
					t.Errorf("step %d (ts %d, ID %q, tombstone %v): output %v, want %v", i, s.ts, s.val, s.tomb, got, want)
				}
			}
			if calls != wantCalls {
				t.Errorf("idFn called %d times, want %d (once per record that is not a tombstone)", calls, wantCalls)
			}
		})
	}
}

func sameRecords(a, b []kstream.Record[string, string]) bool {
	return slices.EqualFunc(a, b, func(x, y kstream.Record[string, string]) bool {
		return x.Key == y.Key && x.Value == y.Value && x.Timestamp == y.Timestamp && x.Tombstone == y.Tombstone &&
			slices.EqualFunc(x.Headers, y.Headers, func(h, g kstream.Header) bool {
				return h.Key == g.Key && bytes.Equal(h.Value, g.Value)
			})
	})
}

// changelogState follows a store's changelog topic: it holds what a restore
// would put in the store.
type changelogState struct {
	out  *kstest.OutputTopic[[]byte, []byte]
	keys map[string][]byte
}

func followChangelog(d *kstest.Driver, topic string) *changelogState {
	return &changelogState{out: kstest.Output(d, topic, serde.Bytes, serde.Bytes), keys: map[string][]byte{}}
}

// update applies the changelog records written since the last call.
func (c *changelogState) update() {
	for _, r := range c.out.Records() {
		if r.Tombstone {
			delete(c.keys, string(r.Key))
		} else {
			c.keys[string(r.Key)] = r.Value
		}
	}
}

// check verifies the store's layout: every ID entry has a time-index entry
// with its timestamp and the other way round. It returns the IDs and their
// timestamps.
func (c *changelogState) check(t *testing.T) map[string]int64 {
	t.Helper()
	ids := map[string]int64{}
	index := 0
	for k, v := range c.keys {
		switch k[0] {
		case 'i':
			ts, _, err := serde.DecodeOrderedInt64(v)
			if err != nil || len(v) != 8 {
				t.Fatalf("ID entry %q: value %x: %v", k, v, err)
			}
			ids[k[1:]] = ts
		case 't':
			index++
			if len(k) < 9 || !bytes.Equal(v, []byte{1}) {
				t.Fatalf("time-index entry %x: value %x", k, v)
			}
		default:
			t.Fatalf("unexpected key %q", k)
		}
	}
	for id, ts := range ids {
		tk := serde.AppendOrderedInt64([]byte{'t'}, ts)
		if _, ok := c.keys[string(append(tk, id...))]; !ok {
			t.Fatalf("ID %q at %d has no time-index entry", id, ts)
		}
	}
	if index != len(ids) {
		t.Fatalf("%d time-index entries for %d IDs", index, len(ids))
	}
	return ids
}

// TestExpiry feeds a new ID every millisecond and checks, after each, that
// the store (as its changelog says) holds only the IDs of the last retention
// and one expiry interval, consistently indexed, and that the task's store
// itself forgot the old IDs.
func TestExpiry(t *testing.T) {
	const (
		retention = 50 // ms
		interval  = 5  // retention/10
		n         = 1000
	)
	d := kstest.NewDriver(t, buildByID(t, valueID, retention*time.Millisecond))
	in := kstest.Input(d, "in", serde.String, serde.String)
	cl := followChangelog(d, changelogTopic)
	maxIDs := 0
	for ts := int64(0); ts < n; ts++ {
		in.PipeAt(ts, "k", "id-"+strconv.FormatInt(ts, 10))
		cl.update()
		ids := cl.check(t)
		maxIDs = max(maxIDs, len(ids))
		for id, at := range ids {
			if at < ts-retention-interval {
				t.Fatalf("stream time %d: ID %s at %d is still stored, more than retention + interval old", ts, id, at)
			}
		}
		for at := max(0, ts-retention); at <= ts; at++ {
			if _, ok := ids["id-"+strconv.FormatInt(at, 10)]; !ok {
				t.Fatalf("stream time %d: ID id-%d, within retention, is not stored", ts, at)
			}
		}
	}
	if maxIDs > retention+interval+1 {
		t.Errorf("the store held up to %d IDs, want at most %d", maxIDs, retention+interval+1)
	}
	if !slices.Contains(d.Topics(), changelogTopic) {
		t.Errorf("topics %v lack %s", d.Topics(), changelogTopic)
	}

	// The task's store agrees with its changelog.
	st := kstest.Store(d, storeName, serde.Bytes, serde.Bytes)
	if _, ok := st.Get([]byte("iid-0")); ok {
		t.Error("ID id-0 is still in the store")
	}
	if _, ok := st.Get(append(serde.AppendOrderedInt64([]byte("t"), 0), "id-0"...)); ok {
		t.Error("the time index still holds id-0")
	}
	if v, ok := st.Get([]byte("iid-999")); !ok || !bytes.Equal(v, serde.AppendOrderedInt64(nil, 999)) {
		t.Errorf("ID id-999: %x %v, want timestamp 999", v, ok)
	}
}

// TestPartitions runs four partitions: each task dedupes on its own, and
// repartitioning by ID first dedupes across them.
func TestPartitions(t *testing.T) {
	const partitions = 4
	keys := make([]string, 16)
	for i := range keys {
		keys[i] = "key-" + strconv.Itoa(i)
	}

	t.Run("per partition", func(t *testing.T) {
		where := map[string]int32{} // key -> partition, as tasks see them
		b := kstream.NewBuilder()
		s := kstream.Source(b, "in", serde.String, serde.String)
		located := kstream.Process(s, func() kstream.Processor[string, string, string, string] {
			return &locator{where: where}
		}, kstream.Named("locate"))
		dedupe.ByID(located, valueID, time.Hour, kstream.Named(storeName)).To("out", serde.String, serde.String)
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		d := kstest.NewDriver(t, topo, kstest.Partitions(partitions))
		in := kstest.Input(d, "in", serde.String, serde.String)
		out := kstest.Output(d, "out", serde.String, serde.String)
		// Every record has the same ID: the first on each partition passes.
		var want []string
		seen := map[int32]bool{}
		for i, k := range keys {
			in.PipeAt(int64(i), k, "x")
			p, ok := where[k]
			if !ok {
				t.Fatalf("key %s was not located", k)
			}
			if !seen[p] {
				seen[p] = true
				want = append(want, k)
			}
		}
		if len(seen) < 2 {
			t.Fatalf("the keys fell on %d partition(s): the test needs several", len(seen))
		}
		var got []string
		for _, r := range out.Records() {
			got = append(got, r.Key)
		}
		if !slices.Equal(got, want) {
			t.Errorf("passed %v, want the first key of each partition %v (partitions %v)", got, want, where)
		}
	})

	t.Run("repartitioned by ID", func(t *testing.T) {
		b := kstream.NewBuilder()
		s := kstream.Source(b, "in", serde.String, serde.String)
		byID := kstream.SelectKey(s, valueID).Repartition(kstream.Named("by-id"))
		dedupe.ByID(byID, func(id, _ string) string { return id }, time.Hour, kstream.Named(storeName)).
			To("out", serde.String, serde.String)
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		d := kstest.NewDriver(t, topo, kstest.Partitions(partitions))
		in := kstest.Input(d, "in", serde.String, serde.String)
		out := kstest.Output(d, "out", serde.String, serde.String)
		for i, k := range keys {
			in.PipeAt(int64(i), k, "x")
			in.PipeAt(int64(i), k, "y-"+k)
		}
		got := out.Records()
		if len(got) != 1+len(keys) {
			t.Fatalf("passed %d records, want %d (x once, each y-key once): %v", len(got), 1+len(keys), got)
		}
		if got[0].Key != "x" || got[0].Value != "x" {
			t.Errorf("first record %v, want x", got[0])
		}
	})
}

// locator notes the partition of each key it sees and passes records on.
type locator struct {
	ctx   *kstream.ProcessorContext[string, string]
	where map[string]int32
}

func (l *locator) Init(ctx *kstream.ProcessorContext[string, string]) error {
	l.ctx = ctx
	return nil
}

func (l *locator) Process(r kstream.Record[string, string]) error {
	l.where[r.Key] = l.ctx.Partition()
	l.ctx.Forward(r)
	return nil
}

func (l *locator) Close() error { return nil }

// TestRestart restarts the driver (a crash: tasks dropped, stores restored
// from the changelog), in memory and on Pebble: the IDs are still known,
// and their time index still expires them.
func TestRestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts func(t *testing.T) []kstest.Option
	}{
		{"memory", func(*testing.T) []kstest.Option { return nil }},
		{"pebble", func(t *testing.T) []kstest.Option { return []kstest.Option{kstest.StateDir(t.TempDir())} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := append(tc.opts(t), kstest.Partitions(2))
			d := kstest.NewDriver(t, buildByID(t, valueID, 10*time.Millisecond), opts...)
			in := kstest.Input(d, "in", serde.String, serde.String)
			out := kstest.Output(d, "out", serde.String, serde.String)
			st := kstest.Store(d, storeName, serde.Bytes, serde.Bytes)
			pipe := func(ts int64, id string) {
				t.Helper()
				in.PipeAt(ts, "key-"+id, id) // a retry has the same key: same partition
			}
			passed := func(want ...string) {
				t.Helper()
				var got []string
				for _, r := range out.Records() {
					got = append(got, r.Value)
				}
				if !slices.Equal(got, want) {
					t.Errorf("passed %v, want %v", got, want)
				}
			}
			pipe(0, "a")
			pipe(1, "b")
			pipe(2, "a")
			passed("a", "b")

			d.Restart()
			pipe(3, "a")
			pipe(4, "b")
			pipe(5, "c")
			passed("c")
			for _, id := range []string{"a", "b", "c"} {
				if _, ok := st.Get([]byte("i" + id)); !ok {
					t.Errorf("ID %s is not in the restored store", id)
				}
			}

			// Advance both partitions' stream time: the restored index expires a and b.
			for i := range 8 {
				pipe(100, "late-"+strconv.Itoa(i))
			}
			out.Records()
			for _, id := range []string{"a", "b", "c"} {
				if _, ok := st.Get([]byte("i" + id)); ok {
					t.Errorf("ID %s was not expired after the restart", id)
				}
				ts := map[string]int64{"a": 0, "b": 1, "c": 5}[id]
				if _, ok := st.Get(append(serde.AppendOrderedInt64([]byte("t"), ts), id...)); ok {
					t.Errorf("the time index still holds %s", id)
				}
			}
			pipe(101, "a")
			passed("a")
		})
	}
}

// TestTopology checks the node, store and changelog names.
func TestTopology(t *testing.T) {
	b := kstream.NewBuilder()
	s := kstream.Source(b, "orders", serde.String, serde.String)
	dedupe.ByID(s, valueID, time.Minute, kstream.Named("orders-dedupe")).To("out", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := topo.InternalTopics("app"), []string{"app-orders-dedupe-changelog"}; !slices.Equal(got, want) {
		t.Errorf("internal topics %v, want %v", got, want)
	}
	if desc := topo.Describe(); !strings.Contains(desc, "orders-dedupe") {
		t.Errorf("Describe lacks the node name:\n%s", desc)
	}
}

// TestInvalidArguments: a ByID without kstream.Named fails Build; a nil idFn
// or a negative retention fails task creation, with an error naming the
// node.
func TestInvalidArguments(t *testing.T) {
	b := kstream.NewBuilder()
	s := kstream.Source(b, "in", serde.String, serde.String)
	dedupe.ByID(s, valueID, time.Minute).To("out", serde.String, serde.String)
	if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), "needs a name") || !strings.Contains(err.Error(), "kstream.Named") {
		t.Errorf("Build of a ByID without a name: %v, want an error asking for kstream.Named", err)
	}
	for _, tt := range []struct {
		name      string
		id        func(string, string) string
		retention time.Duration
		want      []string
	}{
		{"nil idFn", nil, time.Minute, []string{"node d", `dedupe: ByID "d": idFn is nil`}},
		{"negative retention", valueID, -time.Second, []string{"node d", `dedupe: ByID "d": negative retention -1s`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := kstream.NewBuilder()
			s := kstream.Source(b, "in", serde.String, serde.String)
			dedupe.ByID(s, tt.id, tt.retention, kstream.Named("d")).To("out", serde.String, serde.String)
			topo, err := b.Build()
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			msg := driverError(topo)
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
		})
	}
}

// driverError returns the error that creating a driver for topo reports
// (a driver without a testing.TB panics with it).
func driverError(topo *kstream.Topology) (msg string) {
	defer func() {
		if v := recover(); v != nil {
			msg = fmt.Sprint(v)
		}
	}()
	d := kstest.NewDriver(nil, topo)
	d.Close()
	return "no error"
}

// TestStoreErrorFailsRecord corrupts the ID entry of one ID through a
// processor sharing the store: the record with that ID fails, naming the
// node and the ID, and the others go on.
func TestStoreErrorFailsRecord(t *testing.T) {
	b := kstream.NewBuilder()
	s := kstream.Source(b, "in", serde.String, serde.String)
	corrupted := kstream.Process(s, func() kstream.Processor[string, string, string, string] {
		return &planter{key: []byte("ibad"), value: []byte{1, 2, 3}, when: "bad"}
	}, kstream.Named("corrupter"), kstream.WithStores(storeName))
	dedupe.ByID(corrupted, valueID, time.Minute, kstream.Named(storeName)).To("out", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := kstest.NewDriver(t, topo)
	in := kstest.Input(d, "in", serde.String, serde.String)
	out := kstest.Output(d, "out", serde.String, serde.String)
	in.PipeAt(0, "k", "good")
	err = in.TryPipeRecord(kstream.Record[string, string]{Key: "k", Value: "bad", Timestamp: 1})
	var re *kstream.RecordError
	if !errors.As(err, &re) {
		t.Fatalf("error %v, want a *kstream.RecordError", err)
	}
	if re.Node != storeName || re.Offset != 1 || !strings.Contains(re.Err.Error(), `ID "bad"`) {
		t.Errorf("error %v: node %q offset %d, want node %q, offset 1, and the ID", err, re.Node, re.Offset, storeName)
	}
	if got := out.Records(); len(got) != 1 || got[0].Value != "good" {
		t.Errorf("output %v, want only good", got)
	}
}

// TestWrites checks what reaches the store, through its changelog: a new
// ID writes its entry and its index entry, a duplicate and a late record
// write nothing, an ID passing again after expiry moves its index entry, and
// expiry deletes both entries.
func TestWrites(t *testing.T) {
	idKey := func(id string) string { return "i" + id }
	indexKey := func(ts int64, id string) string {
		return string(append(serde.AppendOrderedInt64([]byte("t"), ts), id...))
	}
	type write struct {
		ts   int64
		id   string
		want []string // changelog keys written, "-" before a delete
	}
	for _, tt := range []struct {
		name      string
		retention time.Duration
		writes    []write
	}{
		{"expiry every millisecond", 10 * time.Millisecond, []write{
			{0, "a", []string{indexKey(0, "a"), idKey("a")}},
			{5, "a", nil}, // a duplicate
			{20, "b", []string{indexKey(20, "b"), idKey("b"), // then expiry at stream time 20
				"-" + idKey("a"), "-" + indexKey(0, "a")}},
			{3, "c", nil},  // late: passes, not remembered
			{25, "b", nil}, // a duplicate
			// b expired, but expiry runs after the record: its entry is replaced.
			{31, "b", []string{indexKey(31, "b"), idKey("b"), "-" + indexKey(20, "b")}},
		}},
		{"expiry every 10 ms", 100 * time.Millisecond, []write{
			{0, "a", []string{indexKey(0, "a"), idKey("a")}},
			{100, "b", []string{indexKey(100, "b"), idKey("b")}}, // expiry at 100 keeps a, at 0
			// No expiry is due at 101: replacing a's entry deletes its old index entry.
			{101, "a", []string{indexKey(101, "a"), idKey("a"), "-" + indexKey(0, "a")}},
			{110, "c", []string{indexKey(110, "c"), idKey("c")}}, // expiry at 110: nothing left to expire
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := kstest.NewDriver(t, buildByID(t, valueID, tt.retention))
			in := kstest.Input(d, "in", serde.String, serde.String)
			cl := kstest.Output(d, changelogTopic, serde.Bytes, serde.Bytes)
			for _, w := range tt.writes {
				in.PipeAt(w.ts, "k", w.id)
				var got []string
				for _, r := range cl.Records() {
					k := string(r.Key)
					if r.Tombstone {
						k = "-" + k
					}
					got = append(got, k)
				}
				if !slices.Equal(got, w.want) {
					t.Errorf("%s at %d: changelog %q, want %q", w.id, w.ts, got, w.want)
				}
			}
		})
	}
}

// TestExpiryInChunks expires more IDs at once than one scan collects.
func TestExpiryInChunks(t *testing.T) {
	const n = 2500 // more than two chunks of 1024
	d := kstest.NewDriver(t, buildByID(t, valueID, 10*time.Millisecond))
	in := kstest.Input(d, "in", serde.String, serde.String)
	cl := followChangelog(d, changelogTopic)
	for i := range n {
		in.PipeAt(0, "k", "id-"+strconv.Itoa(i))
	}
	cl.update()
	if ids := cl.check(t); len(ids) != n {
		t.Fatalf("%d IDs stored, want %d", len(ids), n)
	}
	in.PipeAt(100, "k", "last")
	cl.update()
	if ids := cl.check(t); len(ids) != 1 || ids["last"] != 100 {
		t.Errorf("after expiry the store holds %d IDs, want only last", len(ids))
	}
}

// TestStaleIndexEntry plants a time-index entry whose ID entry holds
// another timestamp (what a write failing halfway leaves): expiry deletes
// the index entry and keeps the ID.
func TestStaleIndexEntry(t *testing.T) {
	stale := append(serde.AppendOrderedInt64([]byte("t"), 35), "x"...)
	b := kstream.NewBuilder()
	s := kstream.Source(b, "in", serde.String, serde.String)
	planted := kstream.Process(s, func() kstream.Processor[string, string, string, string] {
		return &planter{key: stale, value: []byte{1}, when: "plant"}
	}, kstream.Named("planter"), kstream.WithStores(storeName))
	dedupe.ByID(planted, valueID, 10*time.Millisecond, kstream.Named(storeName)).To("out", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d := kstest.NewDriver(t, topo)
	in := kstest.Input(d, "in", serde.String, serde.String)
	out := kstest.Output(d, "out", serde.String, serde.String)
	st := kstest.Store(d, storeName, serde.Bytes, serde.Bytes)
	in.PipeAt(40, "k", "x")
	in.PipeAt(41, "k", "plant") // plants t(35)x
	if _, ok := st.Get(stale); !ok {
		t.Fatal("the stale index entry was not planted")
	}
	in.PipeAt(46, "k", "y") // expiry at 46 meets t(35)x
	if _, ok := st.Get(stale); ok {
		t.Error("the stale index entry was not expired")
	}
	if _, ok := st.Get([]byte("ix")); !ok {
		t.Error("expiring the stale index entry deleted the ID")
	}
	in.PipeAt(50, "k", "x") // x passed at 40: a duplicate
	var got []string
	for _, r := range out.Records() {
		got = append(got, r.Value)
	}
	if want := []string{"x", "plant", "y"}; !slices.Equal(got, want) {
		t.Errorf("passed %v, want %v", got, want)
	}
}

// planter writes key=value to the store when it sees the value when, and
// passes every record on.
type planter struct {
	ctx        *kstream.ProcessorContext[string, string]
	st         state.Store
	key, value []byte
	when       string
}

func (p *planter) Init(ctx *kstream.ProcessorContext[string, string]) (err error) {
	p.ctx = ctx
	p.st, err = ctx.Store(storeName)
	return err
}

func (p *planter) Process(r kstream.Record[string, string]) error {
	if r.Value == p.when {
		if err := p.st.Put(p.key, p.value); err != nil {
			return err
		}
	}
	p.ctx.Forward(r)
	return nil
}

func (p *planter) Close() error { return nil }
