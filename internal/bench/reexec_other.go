//go:build !unix

package main

// reexecMadvFree does nothing where there is no exec: runs may then fault
// in more fresh memory (see closedClusters).
func reexecMadvFree() {}
