//go:build race

package kstream_test

// raceEnabled reports whether the tests run under the race detector, whose
// sync.Pool drops pooled objects at random: allocation counts of code that
// pools (Pebble's iterators, the state package's scan buffers) mean nothing
// then.
const raceEnabled = true
