//go:build unix

package main

import (
	"os"
	"strings"
	"syscall"
)

// reexecMadvFree replaces the process with itself run with GODEBUG
// madvdontneed=0, unless GODEBUG sets madvdontneed already: the heap that
// the runtime gives back between runs then goes with MADV_FREE and stays
// mapped for the next run, instead of being faulted in again (see
// closedClusters). It returns only if it did nothing or could not.
func reexecMadvFree() {
	if strings.Contains(os.Getenv("GODEBUG"), "madvdontneed=") {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	_ = syscall.Exec(exe, os.Args, godebugSet(os.Environ(), "madvdontneed", "0"))
}
