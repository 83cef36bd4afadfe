//go:build amd64 || arm64

package state

// prefetch asks the CPU to bring the cache line of p into its caches,
// without waiting for it: unlike a load, the instruction retires at once,
// so many can be in flight (see Memory.Apply).
//
//go:noescape
func prefetch(p *uint64)
