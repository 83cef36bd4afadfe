package kafkaio

import (
	"strconv"

	"github.com/kstreamgo/kstream/internal/graph"
)

// State is where an App is in its life, as Kafka Streams' KafkaStreams.State:
// what a readiness probe or a dashboard shows. Read it with App.State, or
// follow it with OnStateChange.
type State int32

const (
	// StateCreated is an App that NewApp returned and Run has not started.
	StateCreated State = iota
	// StateRebalancing is a running App that does not process all its
	// work yet: it is joining the group, or creating and restoring the
	// tasks of a new assignment (after a rebalance, or after a failed
	// transaction under exactly-once).
	StateRebalancing
	// StateRunning is an App processing every task assigned to it (possibly
	// none, when the group has more instances than partitions).
	StateRunning
	// StatePendingShutdown is an App that was asked to stop (its context
	// ended, or Close): it commits and closes its tasks.
	StatePendingShutdown
	// StatePendingError is an App stopping because of an error: it aborts
	// or skips its last commit and closes its tasks.
	StatePendingError
	// StateNotRunning is an App whose Run returned nil.
	StateNotRunning
	// StateError is an App whose Run returned an error.
	StateError
)

var stateNames = [...]string{"CREATED", "REBALANCING", "RUNNING", "PENDING_SHUTDOWN", "PENDING_ERROR", "NOT_RUNNING", "ERROR"}

// String returns the state's name as Kafka Streams spells it, such as
// "RUNNING".
func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return "State(" + strconv.Itoa(int(s)) + ")"
	}
	return stateNames[s]
}

// OnStateChange calls fn on every change of the App's state, with the state
// it leaves and the one it enters, on Run's goroutine: fn must return
// quickly, and must not call Close or wait for Run. A panic in fn is logged
// (with its stack) and the App goes on.
func OnStateChange(fn func(from, to State)) Opt { return func(c *config) { c.onStateChange = fn } }

// State returns the App's current state.
func (a *App) State() State { return State(a.state.Load()) }

// setState moves the App to state to, and tells the listener.
func (a *App) setState(to State) {
	from := State(a.state.Swap(int32(to)))
	if from == to {
		return
	}
	a.log.Info("kstream: state change", "from", from.String(), "to", to.String())
	if a.cfg.onStateChange != nil {
		a.tellState(from, to)
	}
}

// tellState calls the OnStateChange listener. A panic in it is logged, with
// its stack, and does not stop the App: a state change may come from a
// shutdown, which must finish.
func (a *App) tellState(from, to State) {
	defer func() {
		if v := recover(); v != nil {
			pe := graph.Recovered(v)
			a.log.Error("kstream: the OnStateChange listener panicked", "from", from.String(), "to", to.String(),
				"error", pe.Error(), "stack", string(pe.Stack))
		}
	}()
	a.cfg.onStateChange(from, to)
}

// updateRunning sets the state after the loop created the tasks of the
// assignment: running once the group has assigned this member its work and
// every assigned task runs, rebalancing until then. It does not leave the
// shutdown states.
func (a *App) updateRunning() {
	a.mu.Lock()
	running := a.joined
	for id := range a.assigned {
		if _, ok := a.tasks[id]; !ok {
			running = false
			break
		}
	}
	a.mu.Unlock()
	switch s := a.State(); {
	case s != StateRebalancing && s != StateRunning:
	case running:
		a.setState(StateRunning)
	default:
		a.setState(StateRebalancing)
	}
}
