//go:build race

package hosttest

// raceEnabled is true when the tests run with -race: the binaries are then
// built with -race too.
const raceEnabled = true
