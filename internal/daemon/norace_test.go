//go:build !race

package daemon_test

// raceEnabled says the race detector is on: it multiplies memory use, so
// memory bounds are not checked then.
const raceEnabled = false
