package kstream_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	kstream "github.com/kstreamgo/kstream"
	"github.com/kstreamgo/kstream/internal/graph"
	"github.com/kstreamgo/kstream/kstest"
	"github.com/kstreamgo/kstream/serde"
)

// Stream–stream joins of the topics "left" and "right" (string keys and
// values) into "out", with Kafka Streams' MockValueJoiner.TOSTRING_JOINER:
// "<left>+<right>", "null" for a missing side.

func sjJoiner(_ string, v, vo string) string { return v + "+" + vo }

func sjLeftJoiner(_ string, v, vo string, ok bool) string {
	if !ok {
		vo = "null"
	}
	return v + "+" + vo
}

func sjOuterJoiner(_ string, v string, vOK bool, vo string, voOK bool) string {
	if !vOK {
		v = "null"
	}
	if !voOK {
		vo = "null"
	}
	return v + "+" + vo
}

func sjTopology(t *testing.T, kind string, w kstream.JoinWindows) *kstream.Topology {
	t.Helper()
	b := kstream.NewBuilder()
	l := kstream.Source(b, "left", serde.String, serde.String)
	r := kstream.Source(b, "right", serde.String, serde.String)
	var out kstream.Stream[string, string]
	switch kind {
	case "inner":
		out = kstream.Join(l, r, w, sjJoiner, kstream.Named("j"))
	case "left":
		out = kstream.LeftJoin(l, r, w, sjLeftJoiner, kstream.Named("j"))
	case "outer":
		out = kstream.OuterJoin(l, r, w, sjOuterJoiner, kstream.Named("j"))
	default:
		t.Fatalf("join kind %q", kind)
	}
	out.To("out", serde.String, serde.String)
	return mustBuild(t, b)
}

// sjStep is one input record of a stream–stream join test, and the output it
// must cause (exactly: nothing else before the next step).
type sjStep struct {
	topic     string
	rec       strRec
	nullKey   bool
	tombstone bool
	want      []strRec
}

func sjL(ts int64, k, v string, want ...strRec) sjStep {
	return sjStep{topic: "left", rec: rec(ts, k, v), want: want}
}

func sjR(ts int64, k, v string, want ...strRec) sjStep {
	return sjStep{topic: "right", rec: rec(ts, k, v), want: want}
}

func sjRun(t *testing.T, d *kstest.Driver, steps []sjStep) {
	t.Helper()
	out := kstest.Output(d, "out", serde.String, serde.String)
	out.Records() // skip the output of earlier steps
	for i, s := range steps {
		in := kstest.Input(d, s.topic, serde.String, serde.String)
		switch {
		case s.nullKey:
			in.PipeNullKeyAt(s.rec.Timestamp, s.rec.Value)
		case s.tombstone:
			in.PipeTombstoneAt(s.rec.Timestamp, s.rec.Key)
		default:
			if err := in.TryPipeRecord(s.rec); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
		}
		checkRecords(t, fmt.Sprintf("step %d (%s %s)", i, s.topic, fmtRecord(s.rec)), out.Records(), s.want)
	}
}

func TestJoinWindowBounds(t *testing.T) {
	// A left record at t joins right records in [t-10, t+20]; a right
	// record at t joins left records in [t-20, t+10]. Grace 5: records are
	// kept, and late after, 10+20+5 ms.
	w := kstream.JoinWindow(10*time.Millisecond, 20*time.Millisecond).Grace(5 * time.Millisecond)
	for _, parts := range partitionCounts {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			d := kstest.NewDriver(t, sjTopology(t, "inner", w), kstest.Partitions(parts))
			sjRun(t, d, []sjStep{
				sjL(100, "a", "L1"),
				// Just below the lower bound 100-10.
				sjR(89, "a", "r1"),
				// At the lower bound, out of order.
				sjR(90, "a", "r2", rec(100, "a", "L1+r2")),
				// At the upper bound 100+20, stamped with the larger
				// timestamp.
				sjR(120, "a", "r3", rec(120, "a", "L1+r3")),
				// Just past it.
				sjR(121, "a", "r4"),
				// Out of order: joins in timestamp order.
				sjL(101, "a", "L2", rec(120, "a", "L2+r3"), rec(121, "a", "L2+r4")),
				// Stream time 200: a record older than 200-35 is late,
				// dropped, and not kept for later records either.
				sjR(200, "a", "z"),
				sjL(164, "a", "L3"),
				sjR(166, "a", "r5"),
				// Two left records with one timestamp, and an earlier one:
				// a right record joins them in timestamp, then arrival, order.
				sjL(210, "b", "B2"),
				sjL(210, "b", "B3"),
				sjL(205, "b", "B1"),
				sjR(212, "b", "x", rec(212, "b", "B1+x"), rec(212, "b", "B2+x"), rec(212, "b", "B3+x")),
				// Tombstones and null keys are dropped by an inner join.
				{topic: "left", rec: tomb[string, string](213, "b")},
				{topic: "right", rec: tomb[string, string](213, "b")},
				{topic: "left", rec: rec(213, "", "n1"), nullKey: true},
				{topic: "right", rec: rec(213, "", "n2"), nullKey: true},
			})
			// L3 (late), two tombstones, two null keys.
			checkEqual(t, "dropped", d.Dropped("j"), int64(5))
		})
	}
}

func TestJoinHeadersAndSerdes(t *testing.T) {
	// Values of different types; the result carries the headers of the
	// record that triggered it.
	b := kstream.NewBuilder()
	l := kstream.Source(b, "left", serde.String, serde.Int64)
	r := kstream.Source(b, "right", serde.String, serde.Bool)
	kstream.Join(l, r, kstream.JoinWindow(time.Second, time.Second),
		func(k string, v int64, vo bool) string { return fmt.Sprintf("%s:%d:%v", k, v, vo) },
		kstream.Named("j")).To("out", serde.String, serde.String)
	d := kstest.NewDriver(t, mustBuild(t, b))
	kstest.Input(d, "left", serde.String, serde.Int64).PipeAt(10, "k", 7)
	if err := kstest.Input(d, "right", serde.String, serde.Bool).TryPipeRecord(
		kstream.Record[string, bool]{Key: "k", Value: true, Timestamp: 5, Headers: []kstream.Header{hdr("h", "r")}}); err != nil {
		t.Fatal(err)
	}
	checkRecords(t, "out", kstest.Output(d, "out", serde.String, serde.String).Records(),
		[]strRec{rec(10, "k", "k:7:true", hdr("h", "r"))})
}

func TestLeftJoinEmitsOnlyWhenTheWindowCloses(t *testing.T) {
	// Window [t-10, t+10], grace 5: a left record's window closes when
	// stream time passes t+15.
	w := kstream.JoinWindow(10*time.Millisecond, 10*time.Millisecond).Grace(5 * time.Millisecond)
	d := kstest.NewDriver(t, sjTopology(t, "left", w))
	sjRun(t, d, []sjStep{
		sjL(100, "a", "A"),
		sjL(101, "b", "B"),
		// Stream time moves, on either side; no window has closed.
		sjR(110, "z", "z1"),
		sjL(115, "y", "Y"),
		// Out of order (stream time stays 115): no check.
		sjR(105, "q", "q1"),
		// 116 > 100+15: A's window closed; B's (101+15) has not.
		// The unmatched result comes before the new record's own
		// results, stamped with A's timestamp, without headers.
		{topic: "right", rec: rec(116, "y", "y1", hdr("h", "1")),
			want: []strRec{rec(100, "a", "A+null"), rec(116, "y", "Y+y1", hdr("h", "1"))}},
		// B found a partner in time: it never comes out unmatched.
		sjR(111, "b", "b1", rec(111, "b", "B+b1")),
		// A right record never comes out unmatched in a left join.
		sjL(200, "w", "W"),
		// A left record with a null key comes out at once (KIP-962);
		// a right one is dropped.
		{topic: "left", rec: rec(200, "", "N"), nullKey: true, want: []strRec{rec(200, "", "N+null")}},
		{topic: "right", rec: rec(200, "", "n"), nullKey: true},
		sjR(300, "v", "v1", rec(200, "w", "W+null")),
	})
	checkEqual(t, "dropped", d.Dropped("j"), int64(1))
}

// Out-of-order left records: late ones are dropped; one whose window (with
// its grace) has closed comes out at once; one within grace waits for a
// partner (Kafka Streams would emit it at once, then join it: KAFKA-19536).
func TestLeftJoinOutOfOrder(t *testing.T) {
	w := kstream.JoinWindow(10*time.Millisecond, 10*time.Millisecond).Grace(5 * time.Millisecond)
	d := kstest.NewDriver(t, sjTopology(t, "left", w))
	sjRun(t, d, []sjStep{
		sjL(100, "a", "A"),
		sjR(115, "z", "z"),
		// Older than 115-25: late.
		sjL(88, "b", "B"),
		// Kept, but its window closed at 92+10+5 < 115.
		sjL(92, "c", "C", rec(92, "c", "C+null")),
		// Its window closes at 104+10+5 >= 115: it waits, and finds d.
		sjL(104, "d", "D"),
		sjR(109, "d", "d", rec(109, "d", "D+d")),
		sjR(120, "y", "y", rec(100, "a", "A+null")),
	})
	checkEqual(t, "dropped", d.Dropped("j"), int64(1))
}

// The same scenario on several partitions: each key on its own partition, so
// each task sees one key's records and behaves as the task of one partition.
func TestLeftJoinPerPartitionStreamTime(t *testing.T) {
	const parts = 3
	keys := sjKeysOnDistinctPartitions(t, parts)
	w := kstream.JoinWindow(10*time.Millisecond, 10*time.Millisecond)
	d := kstest.NewDriver(t, sjTopology(t, "left", w), kstest.Partitions(parts))
	var steps []sjStep
	for _, k := range keys {
		steps = append(steps, sjL(100, k, "A"))
	}
	// Each partition's stream time moves on its own.
	steps = append(steps, sjR(111, keys[0], "x", rec(100, keys[0], "A+null")))
	steps = append(steps, sjL(110, keys[1], "B"))
	steps = append(steps, sjR(105, keys[1], "y", rec(105, keys[1], "A+y"), rec(110, keys[1], "B+y")))
	steps = append(steps, sjL(200, keys[2], "C", rec(100, keys[2], "A+null")))
	// A and B were matched: nothing is left to come out on that partition.
	steps = append(steps, sjR(200, keys[1], "z"))
	sjRun(t, d, steps)
}

func sjKeysOnDistinctPartitions(t *testing.T, parts int) []string {
	t.Helper()
	var keys []string
	seen := map[int]bool{}
	for i := 0; len(keys) < parts && i < 1000; i++ {
		k := fmt.Sprintf("key%d", i)
		if p := partitionOf(k, parts); !seen[p] {
			seen[p] = true
			keys = append(keys, k)
		}
	}
	if len(keys) < parts {
		t.Fatalf("no keys on %d distinct partitions", parts)
	}
	return keys
}

func TestOuterJoin(t *testing.T) {
	w := kstream.JoinWindow(10*time.Millisecond, 20*time.Millisecond)
	d := kstest.NewDriver(t, sjTopology(t, "outer", w))
	sjRun(t, d, []sjStep{
		sjL(100, "a", "A"),
		sjR(100, "b", "b"),
		// A's window closes after 100+20, b's after 100+10.
		sjL(110, "c", "C"),
		sjR(111, "d", "d", rec(100, "b", "null+b")),
		// A's window has closed (at 100+20), but, as in Kafka Streams, a
		// left record checks only if the oldest unmatched record it knows
		// of (C, 110) could be due by the left side's bound: 110+20 >= 121.
		sjL(121, "e", "E"),
		// A right record checks with the right side's bound (110+10 < 122)
		// and emits what is due, in timestamp order.
		sjR(122, "f", "f", rec(100, "a", "A+null"), rec(111, "d", "null+d")),
		// Null keys come out at once, on both sides.
		{topic: "left", rec: rec(122, "", "N"), nullKey: true, want: []strRec{rec(122, "", "N+null")}},
		{topic: "right", rec: rec(122, "", "n"), nullKey: true, want: []strRec{rec(122, "", "null+n")}},
		sjR(500, "z", "z", rec(110, "c", "C+null"), rec(121, "e", "E+null"), rec(122, "f", "null+f")),
		// At equal timestamps, right records come out before left ones.
		sjL(600, "b", "B", rec(500, "z", "null+z")),
		sjR(600, "a", "a"),
		sjR(700, "y", "y", rec(600, "a", "null+a"), rec(600, "b", "B+null")),
	})
}

// Scenarios from Kafka Streams' own tests (KStreamKStreamLeftJoinTest and
// KStreamKStreamOuterJoinTest, Kafka 4.x, with the emit interval set to 0),
// whose expected outputs kstream must reproduce. Integer keys there are
// single-digit strings here, which order the same way.
func TestJoinKafkaStreamsScenarios(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name  string
		kind  string
		w     kstream.JoinWindows
		steps []sjStep
	}{
		{"testLeftJoinDuplicates", "left", kstream.JoinWindow(100*ms, 100*ms).Grace(10 * ms), []sjStep{
			sjL(0, "0", "A0"),
			sjL(0, "0", "A0-0"),
			sjR(111, "1", "a0", rec(0, "0", "A0+null"), rec(0, "0", "A0-0+null")),
			sjR(500, "2", "dummy"),
			sjL(1000, "2", "A2"),
			sjL(1000, "2", "A2-0"),
			sjR(1001, "2", "a2", rec(1001, "2", "A2+a2"), rec(1001, "2", "A2-0+a2")),
			sjR(315, "3", "a3"),
		}},
		{"testLeftExpiredNonJoinedRecordsAreEmittedByTheLeftProcessor", "left", kstream.JoinWindow(100*ms, 100*ms), []sjStep{
			sjL(1, "0", "A0"),
			sjL(2, "1", "A1"),
			sjL(3, "0", "A0-0"),
			sjR(3, "1", "a1", rec(3, "1", "A1+a1")),
			sjL(401, "2", "dummy", rec(1, "0", "A0+null"), rec(3, "0", "A0-0+null")),
			sjR(401, "2", "dummy", rec(401, "2", "dummy+dummy")),
		}},
		{"testLeftExpiredNonJoinedRecordsAreEmittedByTheRightProcessor", "left", kstream.JoinWindow(100*ms, 100*ms), []sjStep{
			sjL(1, "0", "A0"),
			sjL(2, "1", "A1"),
			sjL(3, "0", "A0-0"),
			sjR(3, "1", "a1", rec(3, "1", "A1+a1")),
			sjR(401, "2", "dummy", rec(1, "0", "A0+null"), rec(3, "0", "A0-0+null")),
			sjL(402, "2", "dummy", rec(402, "2", "dummy+dummy")),
		}},
		{"testLeftJoinedRecordsWithZeroAfterAreEmitted", "left", kstream.JoinWindow(100*ms, 0), sjZeroAfter()},
		{"testOuterJoinDuplicates", "outer", kstream.JoinWindow(100*ms, 100*ms).Grace(10 * ms), []sjStep{
			sjL(0, "0", "A0"),
			sjL(0, "0", "A0-0"),
			sjR(0, "1", "a1"),
			sjR(0, "1", "a1-0"),
			// Kafka Streams' test checks these after the next record.
			sjR(111, "1", "a0", rec(0, "1", "null+a1"), rec(0, "1", "null+a1-0"), rec(0, "0", "A0+null"), rec(0, "0", "A0-0+null")),
			sjR(211, "3", "dummy"),
			sjL(200, "2", "A2"),
			sjL(200, "2", "A2-0"),
			sjR(201, "2", "a2", rec(201, "2", "A2+a2"), rec(201, "2", "A2-0+a2")),
			sjR(201, "2", "a2-0", rec(201, "2", "A2+a2-0"), rec(201, "2", "A2-0+a2-0")),
			sjR(1500, "3", "dummy", rec(111, "1", "null+a0"), rec(211, "3", "null+dummy")),
		}},
		{"testOrdering", "outer", kstream.JoinWindow(100*ms, 100*ms), []sjStep{
			sjL(0, "0", "A0"),
			sjL(100, "1", "A1"),
			sjR(110, "1", "a1", rec(0, "0", "A0+null"), rec(110, "1", "A1+a1")),
		}},
		{"testGracePeriod", "outer", kstream.JoinWindow(100*ms, 100*ms).Grace(10 * ms), []sjStep{
			sjL(0, "0", "A0"),
			sjR(0, "1", "a1"),
			sjR(101, "0", "a0"),
			sjL(101, "1", "A1"),
			sjR(211, "0", "dummy", rec(0, "1", "null+a1"), rec(0, "0", "A0+null")),
		}},
		{"shouldNotEmitLeftJoinResultForAsymmetricBeforeWindow", "outer", kstream.JoinWindow(0, 100*ms), []sjStep{
			sjL(0, "0", "A0"),
			sjL(1, "1", "A1"),
			sjR(100, "0", "a0", rec(100, "0", "A0+a0")),
			sjR(102, "1", "a1", rec(1, "1", "A1+null")),
			sjR(103, "2", "a2", rec(102, "1", "null+a1")),
			sjL(103, "2", "A2", rec(103, "2", "A2+a2")),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sjRun(t, kstest.NewDriver(t, sjTopology(t, tt.kind, tt.w)), tt.steps)
		})
	}
}

// sjZeroAfter is KStreamKStreamLeftJoinTest.testLeftJoinedRecordsWithZeroAfterAreEmitted:
// after = 0 closes each left record's window as soon as stream time moves on,
// yet a right record within its own window still joins it afterwards, as in
// Kafka Streams.
func sjZeroAfter() []sjStep {
	var steps []sjStep
	keys := []string{"0", "1", "2", "3"}
	for i, k := range keys {
		var want []strRec
		if i > 0 {
			want = []strRec{rec(int64(999+i), keys[i-1], "A"+keys[i-1]+"+null")}
		}
		steps = append(steps, sjL(int64(1000+i), k, "A"+k, want...))
	}
	for i, batch := range []string{"a", "b", "c", "d", "e"} {
		ts := int64(999 + i)
		for j, k := range keys {
			var want []strRec
			if lts := int64(1000 + j); lts >= ts {
				want = []strRec{rec(lts, k, "A"+k+"+"+batch+k)}
			}
			steps = append(steps, sjR(ts, k, batch+k, want...))
		}
	}
	for _, k := range keys {
		steps = append(steps, sjR(1100, k, "f"+k))
	}
	return steps
}

func TestJoinRestartBetweenSides(t *testing.T) {
	w := kstream.JoinWindow(10*time.Millisecond, 10*time.Millisecond)
	for _, parts := range partitionCounts {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			d := kstest.NewDriver(t, sjTopology(t, "left", w), kstest.Partitions(parts))
			sjRun(t, d, []sjStep{
				sjL(100, "a", "A"),
				sjL(100, "b", "B"),
				sjL(100, "c", "C"),
			})
			d.Restart()
			sjRun(t, d, []sjStep{
				// The left window store was restored.
				sjR(105, "a", "a1", rec(105, "a", "A+a1")),
				sjR(95, "b", "b1", rec(100, "b", "B+b1")),
			})
			d.Restart()
			// The shared store too: C comes out unmatched once its window
			// closes on its partition (A and B were matched).
			sjRun(t, d, []sjStep{sjL(200, "c", "trigger", rec(100, "c", "C+null"))})
			// Stream time was recovered: a record whose window closed before
			// the restart is still late.
			d.Restart()
			sjRun(t, d, []sjStep{sjR(150, "c", "c1")})
			checkEqual(t, "dropped", d.Dropped("j"), int64(1))
		})
	}
}

func TestJoinStoresAndTopology(t *testing.T) {
	topo := sjTopology(t, "left", kstream.JoinWindow(time.Second, time.Second))
	checkEqual(t, "internal topics", topo.InternalTopics("app"), []string{
		"app-j-other-join-store-changelog",
		"app-j-shared-join-store-changelog",
		"app-j-this-join-store-changelog",
	})
	desc := topo.Describe()
	if strings.Contains(desc, "Sub-topology: 1") {
		t.Errorf("the two sides of the join are in different sub-topologies:\n%s", desc)
	}
	for _, want := range []string{"j-this-join (left-join-this", "j-other-join (left-join-other", "Processor: j (left-join)"} {
		if !strings.Contains(desc, want) {
			t.Errorf("Describe lacks %q:\n%s", want, desc)
		}
	}
	inner := sjTopology(t, "inner", kstream.JoinWindow(time.Second, time.Second))
	checkEqual(t, "inner join topics", inner.InternalTopics("app"), []string{
		"app-j-other-join-store-changelog", "app-j-this-join-store-changelog",
	})
}

func TestJoinExpiresOldRecords(t *testing.T) {
	// Retention 10+10 ms, segments of 60 s: once stream time passes a
	// segment's end + 20 ms, its records are deleted, and the deletes
	// logged.
	d := kstest.NewDriver(t, sjTopology(t, "inner", kstream.JoinWindow(10*time.Millisecond, 10*time.Millisecond)))
	sjRun(t, d, []sjStep{
		sjL(0, "a", "A0"),
		sjL(1, "a", "A1"),
		sjL(59_000, "b", "B"),
		sjL(200_000, "c", "C"),
		sjR(200_000, "c", "c", rec(200_000, "c", "C+c")),
	})
	tombstones := 0
	for _, r := range kstest.Output(d, "kstest-j-this-join-store-changelog", serde.Bytes, serde.Bytes).Records() {
		if r.Tombstone {
			tombstones++
		}
	}
	checkEqual(t, "deleted left records", tombstones, 3)
}

func TestJoinRepartitionsRekeyedSides(t *testing.T) {
	// Orders keyed by order ID, with the customer as value, joined with
	// payments keyed by customer.
	b := kstream.NewBuilder()
	orders := kstream.Source(b, "orders", serde.String, serde.String)
	payments := kstream.Source(b, "payments", serde.String, serde.String)
	byCustomer := kstream.Map(orders, func(id, customer string) (string, string) { return customer, id })
	kstream.Join(byCustomer, payments, kstream.JoinWindow(time.Second, time.Second), sjJoiner, kstream.Named("paid")).
		To("out", serde.String, serde.String)
	topo := mustBuild(t, b)
	if !slices.Contains(topo.InternalTopics("kstest"), "kstest-paid-left-repartition") {
		t.Errorf("internal topics %q lack the left repartition topic", topo.InternalTopics("kstest"))
	}
	d := kstest.NewDriver(t, topo, kstest.Partitions(4))
	in := kstest.Input(d, "orders", serde.String, serde.String)
	pay := kstest.Input(d, "payments", serde.String, serde.String)
	var want []strRec
	for i := range 12 {
		customer := fmt.Sprintf("c%d", i)
		in.PipeAt(int64(10*i), fmt.Sprintf("o%d", i), customer)
		pay.PipeAt(int64(10*i+1), customer, "p")
		want = append(want, rec(int64(10*i+1), customer, fmt.Sprintf("o%d+p", i)))
	}
	checkRecords(t, "out", kstest.Output(d, "out", serde.String, serde.String).Records(), want)
}

// Stream–table joins: clicks keyed by user, joined with the users table.

func stTopology(t *testing.T, left bool) *kstream.Topology {
	t.Helper()
	b := kstream.NewBuilder()
	users := kstream.SourceTable(b, "users", serde.String, serde.String)
	clicks := kstream.Source(b, "clicks", serde.String, serde.String)
	var out kstream.Stream[string, string]
	if left {
		out = kstream.LeftJoinTable(clicks, users, sjLeftJoiner, kstream.Named("enrich"))
	} else {
		out = kstream.JoinTable(clicks, users, sjJoiner, kstream.Named("enrich"))
	}
	out.To("out", serde.String, serde.String)
	return mustBuild(t, b)
}

func TestJoinTableStream(t *testing.T) {
	for _, left := range []bool{false, true} {
		for _, parts := range partitionCounts {
			t.Run(fmt.Sprintf("left=%v/partitions=%d", left, parts), func(t *testing.T) {
				d := kstest.NewDriver(t, stTopology(t, left), kstest.Partitions(parts))
				pipeAll(t, d, serde.String, serde.String, []pipe[string, string]{
					inTo("users", rec(1, "u1", "alice")),
					inTo("clicks", rec(2, "u1", "c1", hdr("h", "1"))),
					inTo("clicks", rec(3, "u2", "c2")),
					inTo("users", rec(4, "u2", "bob")),
					inTo("clicks", rec(5, "u2", "c3")),
					inTo("users", tomb[string, string](6, "u1")),
					inTo("clicks", rec(7, "u1", "c4")),
					inTo("clicks", tomb[string, string](8, "u1")),
					{Record: rec(9, "", "c5"), Topic: "clicks", NullKey: true},
					inTo("users", rec(10, "u2", "bobby")),
					inTo("clicks", rec(11, "u2", "c6")),
					// The table's row is newer than the click: the result
					// keeps the click's timestamp.
					inTo("users", rec(100, "u3", "carl")),
					inTo("clicks", rec(50, "u3", "c7")),
				})
				want := []strRec{rec(2, "u1", "c1+alice", hdr("h", "1"))}
				if left {
					want = append(want, rec(3, "u2", "c2+null"))
				}
				want = append(want, rec(5, "u2", "c3+bob"))
				if left {
					want = append(want, rec(7, "u1", "c4+null"), rec(9, "", "c5+null"))
				}
				want = append(want, rec(11, "u2", "c6+bobby"), rec(50, "u3", "c7+carl"))
				checkRecords(t, "out", kstest.Output(d, "out", serde.String, serde.String).Records(), want)
				dropped := int64(2) // the tombstone and the null key
				if left {
					dropped = 1
				}
				checkEqual(t, "dropped", d.Dropped("enrich"), dropped)
				// Table updates alone emit nothing, and a restart keeps the table.
				d.Restart()
				kstest.Input(d, "clicks", serde.String, serde.String).PipeAt(12, "u2", "c8")
				checkRecords(t, "after restart", kstest.Output(d, "out", serde.String, serde.String).Records()[len(want):],
					[]strRec{rec(12, "u2", "c8+bobby")})
			})
		}
	}
}

func TestJoinTableRepartitionsRekeyedStream(t *testing.T) {
	b := kstream.NewBuilder()
	users := kstream.SourceTable(b, "users", serde.String, serde.String)
	// Clicks keyed by page, with the user as value.
	clicks := kstream.Source(b, "clicks", serde.String, serde.String)
	byUser := kstream.Map(clicks, func(page, user string) (string, string) { return user, page })
	kstream.JoinTable(byUser, users, sjJoiner, kstream.Named("enrich")).To("out", serde.String, serde.String)
	topo := mustBuild(t, b)
	checkEqual(t, "internal topics", topo.InternalTopics("kstest"), []string{"kstest-enrich-left-repartition"})
	d := kstest.NewDriver(t, topo, kstest.Partitions(4))
	us := kstest.Input(d, "users", serde.String, serde.String)
	cl := kstest.Input(d, "clicks", serde.String, serde.String)
	var want []strRec
	for i := range 10 {
		us.PipeAt(0, fmt.Sprintf("u%d", i), fmt.Sprintf("name%d", i))
	}
	for i := range 10 {
		user := fmt.Sprintf("u%d", i%10)
		cl.PipeAt(int64(i+1), fmt.Sprintf("page%d", i), user)
		want = append(want, rec(int64(i+1), user, fmt.Sprintf("page%d+name%d", i, i%10)))
	}
	checkRecords(t, "out", kstest.Output(d, "out", serde.String, serde.String).Records(), want)
}

// Stream–global table joins: orders "customer|item" keyed by order ID, joined
// with customers by the customer in the value.

func sgCustomer(_ string, v string) string {
	c, _, _ := strings.Cut(v, "|")
	return c
}

func TestJoinGlobal(t *testing.T) {
	for _, left := range []bool{false, true} {
		for _, parts := range partitionCounts {
			t.Run(fmt.Sprintf("left=%v/partitions=%d", left, parts), func(t *testing.T) {
				b := kstream.NewBuilder()
				customers := kstream.SourceGlobalTable(b, "customers", serde.String, serde.String, kstream.Named("customers-store"))
				orders := kstream.Source(b, "orders", serde.String, serde.String)
				var out kstream.Stream[string, string]
				if left {
					out = kstream.LeftJoinGlobal(orders, customers, sgCustomer, sjLeftJoiner, kstream.Named("enrich"))
				} else {
					out = kstream.JoinGlobal(orders, customers, sgCustomer, sjJoiner)
				}
				out.To("out", serde.String, serde.String)
				topo := mustBuild(t, b)
				if got := topo.InternalTopics("kstest"); len(got) != 0 {
					t.Errorf("internal topics %q, want none", got)
				}
				d := kstest.NewDriver(t, topo, kstest.Partitions(parts))
				pipeAll(t, d, serde.String, serde.String, []pipe[string, string]{
					inTo("customers", rec(1, "c1", "Ada")),
					inTo("customers", rec(1, "c2", "Bob")),
					inTo("orders", rec(2, "o1", "c1|tea")),
					inTo("orders", rec(3, "o2", "c2|cake")),
					inTo("orders", rec(4, "o3", "c3|jam")),
					inTo("customers", rec(5, "c2", "Bea")),
					inTo("customers", tomb[string, string](5, "c1")),
					inTo("orders", rec(6, "o4", "c2|pie")),
					inTo("orders", rec(7, "o5", "c1|bun")),
					inTo("orders", tomb[string, string](8, "o5")),
					// A null key: the value still names the customer.
					{Record: rec(9, "", "c2|nut"), Topic: "orders", NullKey: true},
				})
				want := []strRec{rec(2, "o1", "c1|tea+Ada"), rec(3, "o2", "c2|cake+Bob")}
				if left {
					want = append(want, rec(4, "o3", "c3|jam+null"))
				}
				want = append(want, rec(6, "o4", "c2|pie+Bea"))
				if left {
					want = append(want, rec(7, "o5", "c1|bun+null"))
				}
				want = append(want, rec(9, "", "c2|nut+Bea"))
				checkRecords(t, "out", kstest.Output(d, "out", serde.String, serde.String).Records(), want)
			})
		}
	}
}

func TestJoinBuildErrors(t *testing.T) {
	ms := time.Millisecond
	w := kstream.JoinWindow(ms, ms)
	tests := []struct {
		name  string
		build func(b *kstream.Builder)
		want  string
	}{
		{"unnamed stream join", func(b *kstream.Builder) {
			l := kstream.Source(b, "l", serde.String, serde.String)
			r := kstream.Source(b, "r", serde.String, serde.String)
			kstream.LeftJoin(l, r, w, sjLeftJoiner)
		}, "kstream: the left-join operator after node SOURCE-0000000000 needs kstream.Named"},
		{"no value serde", func(b *kstream.Builder) {
			l := kstream.Source(b, "l", serde.String, serde.String)
			r := kstream.MapValues(kstream.Source(b, "r", serde.String, serde.String), func(string) point { return point{} })
			kstream.Join(l, r, w, func(_ string, v string, p point) string { return v }, kstream.Named("j"))
		}, "kstream: node j: no right value serde for type kstream_test.point: set one with WithSerdes"},
		{"no key serde", func(b *kstream.Builder) {
			l := kstream.Map(kstream.Source(b, "l", serde.String, serde.String), func(k, v string) (point, string) { return point{}, v })
			r := kstream.Map(kstream.Source(b, "r", serde.String, serde.String), func(k, v string) (point, string) { return point{}, v })
			kstream.Join(l, r, w, func(_ point, v, vo string) string { return v }, kstream.Named("j"))
		}, "kstream: node j-left-repartition-sink: no key serde for type kstream_test.point"},
		{"negative window", func(b *kstream.Builder) {
			l := kstream.Source(b, "l", serde.String, serde.String)
			r := kstream.Source(b, "r", serde.String, serde.String)
			kstream.Join(l, r, kstream.JoinWindow(-2*ms, ms), sjJoiner, kstream.Named("j"))
		}, "kstream: join j: the join window is empty: before (-2ms) + after (1ms) is negative"},
		{"negative grace", func(b *kstream.Builder) {
			l := kstream.Source(b, "l", serde.String, serde.String)
			r := kstream.Source(b, "r", serde.String, serde.String)
			kstream.OuterJoin(l, r, w.Grace(-ms), sjOuterJoiner, kstream.Named("j"))
		}, "kstream: outer-join j: negative grace period -1ms"},
		{"nil joiner", func(b *kstream.Builder) {
			l := kstream.Source(b, "l", serde.String, serde.String)
			r := kstream.Source(b, "r", serde.String, serde.String)
			kstream.Join[string, string, string, string](l, r, w, nil, kstream.Named("j"))
		}, "kstream: join j: the joiner is nil"},
		{"other builder", func(b *kstream.Builder) {
			l := kstream.Source(b, "l", serde.String, serde.String)
			r := kstream.Source(kstream.NewBuilder(), "r", serde.String, serde.String)
			kstream.Join(l, r, w, sjJoiner, kstream.Named("j"))
		}, "kstream: join j: the right stream belongs to another Builder"},
		{"unmaterialized table", func(b *kstream.Builder) {
			t := kstream.SourceTable(b, "t", serde.String, serde.String).Filter(func(string, string) bool { return true }, kstream.Named("f"))
			s := kstream.Source(b, "s", serde.String, serde.String)
			kstream.JoinTable(s, t, sjJoiner, kstream.Named("jt"))
		}, "kstream: join-table jt: table f is not materialized"},
		{"unnamed re-keyed stream-table join", func(b *kstream.Builder) {
			t := kstream.SourceTable(b, "t", serde.String, serde.String)
			s := kstream.SelectKey(kstream.Source(b, "s", serde.String, serde.String), func(_, v string) string { return v })
			kstream.LeftJoinTable(s, t, sjLeftJoiner)
		}, "kstream: the left-join-table operator after node SELECT-KEY-0000000003 needs kstream.Named"},
		{"nil key function", func(b *kstream.Builder) {
			g := kstream.SourceGlobalTable(b, "g", serde.String, serde.String)
			s := kstream.Source(b, "s", serde.String, serde.String)
			kstream.JoinGlobal(s, g, nil, sjJoiner, kstream.Named("jg"))
		}, "kstream: join-global jg: the key function and the joiner must not be nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := kstream.NewBuilder()
			tt.build(b)
			_, err := b.Build()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Build error = %v\nwant one containing %q", err, tt.want)
			}
		})
	}
	// Fixed: WithSerdes, and a name.
	b := kstream.NewBuilder()
	l := kstream.Source(b, "l", serde.String, serde.String)
	r := kstream.MapValues(kstream.Source(b, "r", serde.String, serde.String), func(string) point { return point{} }).
		WithSerdes(nil, serde.JSON[point]())
	kstream.Join(l, r, w, func(_ string, v string, p point) string { return v }, kstream.Named("j"))
	if _, err := b.Build(); err != nil {
		t.Error(err)
	}
}

// A negative after: a left record at t joins right records in [t-20, t-10].
func TestJoinNegativeBound(t *testing.T) {
	w := kstream.JoinWindow(20*time.Millisecond, -10*time.Millisecond)
	d := kstest.NewDriver(t, sjTopology(t, "left", w))
	sjRun(t, d, []sjStep{
		sjR(85, "a", "r1"),
		sjL(100, "a", "A", rec(100, "a", "A+r1")),
		// B's window [100, 110] ended before B: it comes out at once.
		sjL(120, "a", "B", rec(120, "a", "B+null")),
		// A right record at t joins left records in [t+10, t+20]: B came
		// out unmatched already, and joins too, as in Kafka Streams.
		sjR(110, "a", "r2", rec(120, "a", "B+r2")),
		// Late: older than stream time - (20-10+0).
		sjR(109, "a", "r3"),
		sjR(112, "a", "r4"),
		sjL(125, "a", "C", rec(125, "a", "C+r2"), rec(125, "a", "C+r4")),
	})
	checkEqual(t, "dropped", d.Dropped("j"), int64(1))
}

// With no grace and a zero-width window, records with equal timestamps join
// (Kafka Streams' window stores retain nothing then, and never join).
func TestJoinZeroWindow(t *testing.T) {
	d := kstest.NewDriver(t, sjTopology(t, "inner", kstream.JoinWindow(0, 0)))
	sjRun(t, d, []sjStep{
		sjL(100, "a", "A"),
		sjR(100, "a", "a", rec(100, "a", "A+a")),
		sjR(101, "a", "b"),
		sjL(101, "a", "B", rec(101, "a", "B+b")),
	})
}

// A stream joined with itself: as in Kafka Streams (without its self-join
// optimization), each record also joins itself, through the right side.
func TestJoinSelf(t *testing.T) {
	b := kstream.NewBuilder()
	s := kstream.Source(b, "left", serde.String, serde.String)
	kstream.Join(s, s, kstream.JoinWindow(time.Second, time.Second), sjJoiner, kstream.Named("j")).
		To("out", serde.String, serde.String)
	d := kstest.NewDriver(t, mustBuild(t, b))
	sjRun(t, d, []sjStep{
		sjL(1, "k", "x", rec(1, "k", "x+x")),
		sjL(2, "k", "y", rec(2, "k", "y+x"), rec(2, "k", "x+y"), rec(2, "k", "y+y")),
	})
}

func ExampleLeftJoin() {
	b := kstream.NewBuilder()
	orders := kstream.Source(b, "orders", serde.String, serde.String)
	payments := kstream.Source(b, "payments", serde.String, serde.Int64)
	// A payment within 5 minutes before or 10 minutes after its order.
	w := kstream.JoinWindow(5*time.Minute, 10*time.Minute).Grace(time.Minute)
	kstream.LeftJoin(orders, payments, w, func(id, item string, cents int64, paid bool) string {
		if !paid {
			return item + ": unpaid"
		}
		return fmt.Sprintf("%s: paid %d", item, cents)
	}, kstream.Named("order-payments")).To("order-status", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}

	d := kstest.NewDriver(nil, topo)
	defer d.Close()
	minute := time.Minute.Milliseconds()
	kstest.Input(d, "orders", serde.String, serde.String).PipeAt(0, "o1", "tea")
	kstest.Input(d, "orders", serde.String, serde.String).PipeAt(1*minute, "o2", "cake")
	kstest.Input(d, "payments", serde.String, serde.Int64).PipeAt(3*minute, "o2", 450)
	// o1's window closes at 10 min + 1 min of grace: the next record after
	// that reports it unpaid.
	kstest.Input(d, "orders", serde.String, serde.String).PipeAt(12*minute, "o3", "jam")
	for _, r := range kstest.Output(d, "order-status", serde.String, serde.String).Records() {
		fmt.Println(r.Timestamp/minute, r.Key, r.Value)
	}
	// Output:
	// 3 o2 cake: paid 450
	// 0 o1 tea: unpaid
}

func ExampleJoinTable() {
	b := kstream.NewBuilder()
	users := kstream.SourceTable(b, "users", serde.String, serde.String)
	clicks := kstream.Source(b, "clicks", serde.String, serde.String)
	kstream.JoinTable(clicks, users, func(user, page, name string) string {
		return name + " viewed " + page
	}).To("named-clicks", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}

	d := kstest.NewDriver(nil, topo)
	defer d.Close()
	kstest.Input(d, "clicks", serde.String, serde.String).PipeAt(1, "u1", "/home") // no user yet: nothing
	kstest.Input(d, "users", serde.String, serde.String).PipeAt(2, "u1", "Ada")
	kstest.Input(d, "clicks", serde.String, serde.String).PipeAt(3, "u1", "/docs")
	for _, r := range kstest.Output(d, "named-clicks", serde.String, serde.String).Records() {
		fmt.Println(r.Timestamp, r.Key, r.Value)
	}
	// Output:
	// 3 u1 Ada viewed /docs
}

func ExampleJoinGlobal() {
	b := kstream.NewBuilder()
	products := kstream.SourceGlobalTable(b, "products", serde.String, serde.String)
	// Order lines keyed by order ID; the value is "<product>x<quantity>".
	lines := kstream.Source(b, "order-lines", serde.String, serde.String)
	product := func(_ string, line string) string { p, _, _ := strings.Cut(line, "x"); return p }
	kstream.LeftJoinGlobal(lines, products, product, func(order, line, name string, ok bool) string {
		if !ok {
			name = "unknown product"
		}
		return line + " (" + name + ")"
	}).To("described-lines", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}

	d := kstest.NewDriver(nil, topo, kstest.Partitions(4))
	defer d.Close()
	kstest.Input(d, "products", serde.String, serde.String).PipeAt(0, "p1", "teapot")
	kstest.Input(d, "order-lines", serde.String, serde.String).PipeAt(1, "o1", "p1x2")
	kstest.Input(d, "order-lines", serde.String, serde.String).PipeAt(2, "o2", "p9x1")
	for _, r := range kstest.Output(d, "described-lines", serde.String, serde.String).Records() {
		fmt.Println(r.Timestamp, r.Key, r.Value)
	}
	// Output:
	// 1 o1 p1x2 (teapot)
	// 2 o2 p9x1 (unknown product)
}

// BenchmarkStreamJoin feeds typed records to both sides of an inner join past
// the sources (in-memory stores): each right record finds one left record.
func BenchmarkStreamJoin(b *testing.B) {
	bld := kstream.NewBuilder()
	l := kstream.Source(bld, "left", serde.String, serde.Int64)
	r := kstream.Source(bld, "right", serde.String, serde.Int64)
	var sum int64
	kstream.Join(l, r, kstream.JoinWindow(time.Second, time.Second),
		func(_ string, v, vo int64) int64 { return v + vo }, kstream.Named("j")).
		Foreach(func(_ string, v int64) { sum += v })
	task := benchTask(b, bld)
	left := task.Executor("j-this-join").(func(string, int64, *graph.Meta))
	right := task.Executor("j-other-join").(func(string, int64, *graph.Meta))
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = "key-" + strconv.Itoa(i)
	}
	var m graph.Meta
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		m.Timestamp = int64(i)
		if i%2 == 0 {
			left(keys[i/2%len(keys)], int64(i), &m)
		} else {
			right(keys[i/2%len(keys)], int64(i), &m)
		}
		i++
		if out := task.Output(); out.Len() > 1024 { // the changelog records
			out.Reset()
		}
	}
	if task.Context().Failed() {
		b.Fatal(task.Context().TakeFailure())
	}
}
