// Package memback gives memory back to the operating system after a burst
// of connections ends. Go returns freed memory only slowly (its scavenger
// works from the heap goal of the last collection, and an idle process
// collects only every two minutes), so a server that held thousands of
// connections would keep their memory resident long after they closed.
// A Tracker counts open connections and, once their number has fallen by
// at least MinDrop and to half its peak or less, runs debug.FreeOSMemory
// (a collection that returns every free page) on a goroutine of its own.
package memback

import (
	"runtime/debug"
	"sync/atomic"
)

// MinDrop is the smallest fall in open connections that gives memory
// back: smaller ones hold too little to be worth a forced collection.
const MinDrop = 1000

// Tracker counts connections; the zero value is ready.
type Tracker struct {
	open atomic.Int64
	peak atomic.Int64 // since the last time memory was given back
	busy atomic.Bool  // a FreeOSMemory is running
	runs atomic.Int64
}

// Opened counts a new connection.
func (t *Tracker) Opened() {
	n := t.open.Add(1)
	for p := t.peak.Load(); n > p && !t.peak.CompareAndSwap(p, n); p = t.peak.Load() {
	}
}

// Closed counts a closed connection and gives memory back after a large
// enough fall.
func (t *Tracker) Closed() {
	n := t.open.Add(-1)
	p := t.peak.Load()
	if p-n < MinDrop || n > p/2 || !t.busy.CompareAndSwap(false, true) {
		return
	}
	t.peak.Store(n) // the next fall counts from here
	t.runs.Add(1)
	go func() { // ends when the collection does
		defer t.busy.Store(false)
		debug.FreeOSMemory()
	}()
}

// Runs reports how many times memory was given back.
func (t *Tracker) Runs() int64 { return t.runs.Load() }
