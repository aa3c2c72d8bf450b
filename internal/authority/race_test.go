//go:build race

package authority_test

// raceEnabled shortens the longest loops under the race detector, which
// checks interleavings, not volume.
const raceEnabled = true
