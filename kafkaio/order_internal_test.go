package kafkaio

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kstreamgo/kstream/internal/graph"
)

// layout lays out a task's poll from pairs of a topic and the timestamps of
// a batch of its records (offsets count up per topic).
func layout(spec ...any) ([]graph.RawRecord, []batch) {
	var raw []graph.RawRecord
	var bs []batch
	offsets := map[string]int64{}
	for i := 0; i < len(spec); i += 2 {
		topic, ts := spec[i].(string), spec[i+1].([]int64)
		start := len(raw)
		for _, t := range ts {
			raw = append(raw, graph.RawRecord{Timestamp: t, Offset: offsets[topic]})
			offsets[topic]++
		}
		bs = append(bs, batch{topic: topic, start: start, next: start, reported: start, end: len(raw)})
	}
	return raw, bs
}

// runOrder runs inTimeOrder and returns the records it processed, as
// topic@offset:timestamp, and the runs it made.
func runOrder(t *testing.T, raw []graph.RawRecord, bs []batch, inputs []string, wait func(string) bool) (order []string, runs int, held bool) {
	t.Helper()
	held, err := inTimeOrder(raw, bs, inputs, wait, func(b *batch, from, to int) error {
		if from != b.next || to <= from || to > b.end {
			t.Fatalf("run [%d,%d) of batch %+v", from, to, *b)
		}
		runs++
		for _, r := range raw[from:to] {
			order = append(order, fmt.Sprintf("%s@%d:%d", b.topic, r.Offset, r.Timestamp))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return order, runs, held
}

func never(string) bool { return false }

func TestInTimeOrder(t *testing.T) {
	for _, tc := range []struct {
		name   string
		spec   []any
		inputs []string
		wait   func(string) bool
		want   string
		runs   int
		held   bool
	}{{
		name: "one batch is one run, whatever its timestamps",
		spec: []any{"a", []int64{5, 3, 9, 1}},
		want: "a@0:5 a@1:3 a@2:9 a@3:1", runs: 1,
	}, {
		name: "interleaved by head timestamp, ties to the first batch",
		spec: []any{"a", []int64{1, 2, 4, 4, 8}, "b", []int64{2, 3, 4, 9}},
		want: "a@0:1 a@1:2 b@0:2 b@1:3 a@2:4 a@3:4 b@2:4 a@4:8 b@3:9", runs: 6,
	}, {
		name: "out-of-order timestamps keep offset order within a partition",
		spec: []any{"a", []int64{10, 1, 2}, "b", []int64{5, 6}},
		want: "b@0:5 b@1:6 a@0:10 a@1:1 a@2:2", runs: 2,
	}, {
		name: "a partition fetched twice keeps its offset order",
		spec: []any{"a", []int64{5, 6}, "b", []int64{1, 7}, "a", []int64{2, 9}},
		want: "b@0:1 a@0:5 a@1:6 a@2:2 b@1:7 a@3:9", runs: 5,
	}, {
		name: "an input with no records that is not waited for",
		spec: []any{"a", []int64{3, 1, 2}}, inputs: []string{"a", "b"}, wait: never,
		want: "a@0:3 a@1:1 a@2:2", runs: 1,
	}, {
		name: "an input with no records that is waited for: all held",
		spec: []any{"a", []int64{1, 2}}, inputs: []string{"a", "b"}, wait: func(s string) bool { return s == "b" },
		want: "", runs: 0, held: true,
	}, {
		name: "an input that runs out and is waited for: the rest held",
		spec: []any{"a", []int64{1, 2, 3, 6, 7}, "b", []int64{2, 5}}, inputs: []string{"a", "b"}, wait: func(s string) bool { return s == "b" },
		want: "a@0:1 a@1:2 b@0:2 a@2:3 b@1:5", runs: 4, held: true,
	}, {
		name: "an input that runs out is waited for, but no record is left",
		spec: []any{"a", []int64{1, 2}, "b", []int64{3}}, inputs: []string{"a", "b"}, wait: func(s string) bool { return s == "b" },
		want: "a@0:1 a@1:2 b@0:3", runs: 2,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			raw, bs := layout(tc.spec...)
			wait := tc.wait
			if wait == nil {
				wait = func(string) bool { t.Fatal("wait called for a task with one input"); return false }
			}
			order, runs, held := runOrder(t, raw, bs, tc.inputs, wait)
			if got := strings.Join(order, " "); got != tc.want || runs != tc.runs || held != tc.held {
				t.Fatalf("got %q in %d runs (held %v)\nwant %q in %d runs (held %v)", got, runs, held, tc.want, tc.runs, tc.held)
			}
		})
	}
}

// TestInTimeOrderResumes holds records back, appends a later poll's
// batches, and checks that processing resumes where it stopped, in order.
func TestInTimeOrderResumes(t *testing.T) {
	raw, bs := layout("a", []int64{1, 4, 6}, "b", []int64{3})
	waitB := func(s string) bool { return s == "b" }
	first, _, held := runOrder(t, raw, bs, []string{"a", "b"}, waitB)
	if !held || strings.Join(first, " ") != "a@0:1 b@0:3" {
		t.Fatalf("first poll: %v held %v", first, held)
	}
	// The next poll brings b's next records.
	start := len(raw)
	raw = append(raw, graph.RawRecord{Timestamp: 5, Offset: 1}, graph.RawRecord{Timestamp: 8, Offset: 2})
	bs = append(bs, batch{topic: "b", start: start, next: start, reported: start, end: len(raw)})
	second, _, held := runOrder(t, raw, bs, []string{"a", "b"}, waitB)
	if held || strings.Join(second, " ") != "a@1:4 b@1:5 a@2:6 b@2:8" {
		t.Fatalf("second poll: %v held %v", second, held)
	}
}

// TestInTimeOrderStopsAtError checks that a failed run stops the task with
// the records after it unprocessed.
func TestInTimeOrderStopsAtError(t *testing.T) {
	raw, bs := layout("a", []int64{1, 3}, "b", []int64{2, 4})
	boom := errors.New("boom")
	var seen []int64
	_, err := inTimeOrder(raw, bs, []string{"a", "b"}, never, func(b *batch, from, to int) error {
		for _, r := range raw[from:to] {
			seen = append(seen, r.Timestamp)
		}
		if raw[from].Timestamp == 2 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || !slices.Equal(seen, []int64{1, 2}) || bs[1].next != bs[1].start {
		t.Fatalf("err %v, seen %v, batch b %+v", err, seen, bs[1])
	}
}

// TestWaiter checks the wait decisions of MaxTaskIdle: unknown or positive
// lag waits, a caught-up input waits only with a positive MaxTaskIdle and
// only that long from when it was first found caught up (per input, not
// per wait of the task: KIP-695), every wait ends at the limit (however
// many records are held back: they are paused), and a negative MaxTaskIdle
// never waits.
func TestWaiter(t *testing.T) {
	now := time.Now()
	// since: how long the task has held records back (0: it starts now);
	// idleFor: how long the caught-up input has been found so (0: never).
	mk := func(idle, since, idleFor time.Duration, held int) (*App, *task) {
		a := &App{cfg: config{maxTaskIdle: idle, maxBatch: 100}}
		tk := &task{lag: map[string]int64{"lagging": 7, "caught-up": 0}}
		if since > 0 {
			tk.waitSince = now.Add(-since)
		}
		if idleFor > 0 {
			tk.idleSince = map[string]time.Time{"caught-up": now.Add(-idleFor)}
		}
		tk.batches = []batch{{topic: "x", end: held}}
		return a, tk
	}
	for _, tc := range []struct {
		idle, since, idleFor time.Duration
		held                 int
		want                 map[string]bool
		enforced             bool
	}{
		{0, 0, 0, 10, map[string]bool{"lagging": true, "unknown": true, "caught-up": false}, false},
		{0, 4 * time.Second, 0, 10, map[string]bool{"lagging": true, "unknown": true, "caught-up": false}, false},
		{0, 30 * time.Second, 0, 10, map[string]bool{"lagging": false, "unknown": false, "caught-up": false}, true},
		{0, 29 * time.Second, 0, minHeldCap + 1, map[string]bool{"lagging": true, "unknown": true, "caught-up": false}, false},
		{time.Second, 0, 0, 10, map[string]bool{"lagging": true, "unknown": true, "caught-up": true}, false},
		{time.Second, 900 * time.Millisecond, 900 * time.Millisecond, 10, map[string]bool{"lagging": true, "caught-up": true}, false},
		{time.Second, 1100 * time.Millisecond, 1100 * time.Millisecond, 10, map[string]bool{"lagging": true, "caught-up": false}, false},
		// The input has been caught up and empty for longer than the
		// task's new wait: its deadline passed already.
		{time.Second, 0, 1100 * time.Millisecond, 10, map[string]bool{"lagging": true, "caught-up": false}, false},
		{time.Second, 1100 * time.Millisecond, 200 * time.Millisecond, 10, map[string]bool{"lagging": true, "caught-up": true}, false},
		{time.Minute, 40 * time.Second, 40 * time.Second, 10, map[string]bool{"lagging": true, "caught-up": true}, false},
		{time.Minute, time.Minute, time.Minute, 10, map[string]bool{"lagging": false, "caught-up": false}, true},
		{-1, 0, 0, 10, map[string]bool{"lagging": false, "unknown": false, "caught-up": false}, false},
	} {
		a, tk := mk(tc.idle, tc.since, tc.idleFor, tc.held)
		wait, enforced := a.waiter(tk, now)
		if enforced != tc.enforced {
			t.Errorf("MaxTaskIdle %v, holding for %v (input idle %v) with %d records: enforced %v, want %v", tc.idle, tc.since, tc.idleFor, tc.held, enforced, tc.enforced)
		}
		for topic, want := range tc.want {
			tk.gaveUp = false
			if got := wait(topic); got != want {
				t.Errorf("MaxTaskIdle %v, holding for %v (input idle %v) with %d records: wait(%s) = %v, want %v", tc.idle, tc.since, tc.idleFor, tc.held, topic, got, want)
			}
			// Not waiting for a caught-up input is enforced processing
			// (unless MaxTaskIdle is negative: no waiting at all).
			if want := topic == "caught-up" && !want && tc.idle >= 0 && !tc.enforced; tk.gaveUp != want {
				t.Errorf("MaxTaskIdle %v, holding for %v (input idle %v) with %d records: wait(%s) gave up: %v, want %v", tc.idle, tc.since, tc.idleFor, tc.held, topic, tk.gaveUp, want)
			}
		}
	}
}
