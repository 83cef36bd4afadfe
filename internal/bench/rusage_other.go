//go:build !unix

package main

// cpuSeconds is not measured on this platform.
func cpuSeconds() float64 { return 0 }

// usage is not measured on this platform.
func usage() (cpu float64, faults int64) { return 0, 0 }
