//go:build race

package http1

// raceEnabled: the tests run under the race detector (much slower).
const raceEnabled = true
