package kafkaio

// Crash stops a running app as a crash would: no flush, no commit, no end of
// the open transaction.
func Crash(a *App) {
	a.crash.Store(true)
	a.Close()
}

// StateDBPath is where an app keeps its state database in a StateDir.
var StateDBPath = stateDBPath
