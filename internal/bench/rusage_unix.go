//go:build unix

package main

import "syscall"

// cpuSeconds returns the user plus system CPU time of this process.
func cpuSeconds() float64 {
	cpu, _ := usage()
	return cpu
}

// usage returns the user plus system CPU time of this process and its page
// faults so far (on the embedded cluster mostly first touches of fresh heap
// memory), from one getrusage.
func usage() (cpu float64, faults int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime), ru.Minflt + ru.Majflt
}
