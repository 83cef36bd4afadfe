package kafkaio

import "github.com/kstreamgo/kstream/internal/runtime"

// Crash stops a running app as a crash would: no flush, no commit, no end of
// the open transaction.
func Crash(a *App) {
	a.crash.Store(true)
	a.Close()
}

// StateDBPath is where an app keeps its state database in a StateDir.
var StateDBPath = stateDBPath

// LocalTasks returns the tasks (as "sub_partition") that an app advertises
// holding local state of without running them.
func LocalTasks(a *App) []string {
	var out []string
	if l := a.balancer.local.Load(); l != nil {
		for _, k := range *l {
			out = append(out, runtime.TaskID{SubTopology: k.sub, Partition: k.p}.String())
		}
	}
	return out
}

// WarmupsReceived returns the number of warmup tasks in the assignments an
// app received, summed over them.
func WarmupsReceived(a *App) int64 { return a.balancer.warmupsReceived.Load() }

// SetMaxPendingState sets the size of uncommitted store writes at which
// apps commit early, and returns a function that restores it.
func SetMaxPendingState(n int) (restore func()) {
	old := maxPendingState
	maxPendingState = n
	return func() { maxPendingState = old }
}
