//go:build race

package state

// raceEnabled reports whether the tests run under the race detector, whose
// sync.Pool drops pooled objects at random: allocation counts of code that
// pools (Pebble's iterators and batches, this package's scratch buffers)
// mean nothing then.
const raceEnabled = true
