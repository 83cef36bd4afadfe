package kafkaio_test

import (
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kstreamgo/kstream/kafkaio"
)

// stateLog records an app's state changes.
type stateLog struct {
	mu      sync.Mutex
	changes [][2]kafkaio.State
}

func (l *stateLog) opt() kafkaio.Opt {
	return kafkaio.OnStateChange(func(from, to kafkaio.State) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.changes = append(l.changes, [2]kafkaio.State{from, to})
	})
}

// check asserts that the changes form one chain from CREATED through
// RUNNING to the given end states, and returns them.
func (l *stateLog) check(t *testing.T, end ...kafkaio.State) [][2]kafkaio.State {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	ch := slices.Clone(l.changes)
	if len(ch) == 0 || ch[0] != [2]kafkaio.State{kafkaio.StateCreated, kafkaio.StateRebalancing} {
		t.Fatalf("state changes %v: want a first change CREATED -> REBALANCING", ch)
	}
	running := false
	for i, c := range ch {
		if i > 0 && c[0] != ch[i-1][1] {
			t.Errorf("state changes %v: change %d leaves %v, not the state entered before", ch, i, c[0])
		}
		running = running || c[1] == kafkaio.StateRunning
	}
	if !running {
		t.Errorf("state changes %v: never RUNNING", ch)
	}
	var got []kafkaio.State
	for _, c := range ch[max(len(ch)-len(end), 0):] {
		got = append(got, c[1])
	}
	if !slices.Equal(got, end) {
		t.Errorf("state changes %v: want it to end entering %v", ch, end)
	}
	return ch
}

// TestAppStates follows an app's State from creation to a clean stop, and to
// a stop by an error; and checks that an instance with no partition of its
// own runs too.
func TestAppStates(t *testing.T) {
	c := embedded(t)

	t.Run("stop", func(t *testing.T) {
		in, out, app := unique("in"), unique("out"), unique("states")
		mustCreate(t, c, 1, in, out)
		recs, want := groupInput(1_000, 10)
		produce(t, c, in, recs)
		var first, second stateLog
		a, err := kafkaio.NewApp(groupCount(t, in, out), appOpts(c, app, false, first.opt())...)
		if err != nil {
			t.Fatal(err)
		}
		if s := a.State(); s != kafkaio.StateCreated {
			t.Fatalf("State before Run = %v, want CREATED", s)
		}
		stopFirst := runApp(t, a)
		waitFor(t, time.Minute, "the app to run", func() bool { return a.State() == kafkaio.StateRunning })
		waitCaughtUp(t, a, time.Minute)
		checkCounts(t, latestCounts(t, c, out, false), want, false)

		// One partition per topic, two instances: the second gets no task
		// (or takes them over) and must run as well.
		b, err := kafkaio.NewApp(groupCount(t, in, out), appOpts(c, app, false, second.opt())...)
		if err != nil {
			t.Fatal(err)
		}
		stopSecond := runApp(t, b)
		waitFor(t, time.Minute, "both instances to run", func() bool {
			return a.State() == kafkaio.StateRunning && b.State() == kafkaio.StateRunning && a.Stats().Tasks+b.Stats().Tasks == 2
		})
		if err := stopSecond(); err != nil {
			t.Fatal(err)
		}
		if err := stopFirst(); err != nil {
			t.Fatal(err)
		}
		for _, x := range []*kafkaio.App{a, b} {
			if s := x.State(); s != kafkaio.StateNotRunning {
				t.Errorf("State after Run returned nil = %v, want NOT_RUNNING", s)
			}
		}
		t.Logf("first: %v", first.check(t, kafkaio.StatePendingShutdown, kafkaio.StateNotRunning))
		t.Logf("second: %v", second.check(t, kafkaio.StatePendingShutdown, kafkaio.StateNotRunning))
	})

	t.Run("error", func(t *testing.T) {
		in, out, app := unique("in"), unique("out"), unique("states")
		mustCreate(t, c, 1, in, out)
		var log stateLog
		a, err := kafkaio.NewApp(policyTopology(t, in, out), appOpts(c, app, false, log.opt())...)
		if err != nil {
			t.Fatal(err)
		}
		runApp(t, a)
		waitFor(t, time.Minute, "the app to run", func() bool { return a.State() == kafkaio.StateRunning })
		// A negative amount makes the topology panic: the default policy
		// fails Run.
		produce(t, c, in, []rec{{key: int32Key(1), value: []byte(`{"id":1,"amount":-1}`)}})
		select {
		case <-a.Done():
		case <-time.After(time.Minute):
			t.Fatal("Run did not fail")
		}
		if s := a.State(); s != kafkaio.StateError {
			t.Errorf("State after Run failed = %v, want ERROR", s)
		}
		log.check(t, kafkaio.StatePendingError, kafkaio.StateError)
	})
}

func TestStateString(t *testing.T) {
	for s, want := range map[kafkaio.State]string{
		kafkaio.StateCreated: "CREATED", kafkaio.StateRebalancing: "REBALANCING", kafkaio.StateRunning: "RUNNING",
		kafkaio.StatePendingShutdown: "PENDING_SHUTDOWN", kafkaio.StatePendingError: "PENDING_ERROR",
		kafkaio.StateNotRunning: "NOT_RUNNING", kafkaio.StateError: "ERROR", kafkaio.State(42): "State(42)",
	} {
		if got := s.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(s), got, want)
		}
	}
}

// TestStateListenerPanics: a listener that panics is logged with its stack,
// and the App runs and stops as usual.
func TestStateListenerPanics(t *testing.T) {
	c := embedded(t)
	in, out, app := unique("in"), unique("out"), unique("states")
	mustCreate(t, c, 1, in, out)
	var logs syncBuffer
	a, err := kafkaio.NewApp(groupCount(t, in, out), appOpts(c, app, false,
		kafkaio.Logger(slog.New(slog.NewTextHandler(&logs, nil))),
		kafkaio.OnStateChange(func(_, to kafkaio.State) {
			if to == kafkaio.StateRunning {
				panic("listener boom")
			}
		}))...)
	if err != nil {
		t.Fatal(err)
	}
	stop := runApp(t, a)
	waitFor(t, time.Minute, "the app to run", func() bool { return a.State() == kafkaio.StateRunning })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if s := a.State(); s != kafkaio.StateNotRunning {
		t.Errorf("State after Run returned nil = %v, want NOT_RUNNING", s)
	}
	log := logs.String()
	if !strings.Contains(log, "OnStateChange listener panicked") || !strings.Contains(log, "listener boom [in kafkaio_test.TestStateListenerPanics.func1 at lifecycle_test.go:") ||
		!strings.Contains(log, "stack=") {
		t.Errorf("log:\n%s", log)
	}
}
