package hosttest

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// leakWait is how long a leak check waits for goroutines to end: teardown
// (a plugin process stopping, connections closing) takes a while on a
// loaded machine.
const leakWait = 5 * time.Second

// CheckLeaks fails the test if goroutines started during it outlive it.
// Call it first so that its cleanup runs last, after every other one.
func CheckLeaks(t testing.TB) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		if err := Leaks(ignore); err != nil {
			t.Error(err)
		}
	})
}

// Leaks waits up to leakWait for every goroutine but those the options
// ignore (goleak.IgnoreCurrent taken earlier, say) to end; its error
// lists, with their stacks, those still running.
func Leaks(opts ...goleak.Option) error {
	for end := time.Now().Add(leakWait); ; time.Sleep(20 * time.Millisecond) {
		err := goleak.Find(opts...)
		if err == nil || time.Now().After(end) {
			return err
		}
	}
}
