//go:build !amd64 && !arm64

package state

// prefetch does nothing where kstream has no prefetch instruction for it.
func prefetch(*uint64) {}
