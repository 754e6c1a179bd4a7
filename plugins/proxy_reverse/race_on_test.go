//go:build race

package main

// raceEnabled: the tests and the binaries they run are race builds.
const raceEnabled = true
