// Package memback gives memory back to the operating system after a burst
// of connections ends, and after a burst of connections goes idle. Go
// returns freed memory only slowly (its scavenger works from the heap goal
// of the last collection, and an idle process collects only every two
// minutes), so a server that held thousands of connections would keep
// their memory resident long after they closed.
// A Tracker counts open connections and, once their number has fallen by
// at least MinDrop and to half its peak or less, runs debug.FreeOSMemory
// (a collection that returns every free page) on a goroutine of its own.
// An Idle counts connections waiting for their next request and does the
// same once their number has risen by at least MinDrop and doubled, and
// stopped rising: a goroutine that waits keeps the stack it grew while it
// served a request until a collection shrinks it, and then its old stack
// is free memory to return.
package memback

import (
	"runtime/debug"
	"sync/atomic"
	"time"
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

// Settle is how often an Idle checks whether a rise of waiting connections
// has stopped: it has once it rose by less than MinDrop/10 over Settle.
const Settle = 250 * time.Millisecond

// Idle counts connections waiting for their next request; the zero value
// is ready.
type Idle struct {
	n       atomic.Int64
	low     atomic.Int64 // the lowest count since memory was last given back
	pending atomic.Bool  // a rise is being watched (settle is scheduled)
	runs    atomic.Int64
}

// Enter counts a connection that starts waiting; after a large enough rise
// it starts watching for the rise to stop.
func (t *Idle) Enter() {
	n := t.n.Add(1)
	if low := t.low.Load(); n-low < MinDrop || n < 2*low || !t.pending.CompareAndSwap(false, true) {
		return
	}
	time.AfterFunc(Settle, func() { t.settle(n) }) // ends when settle does
}

// Leave counts a connection that stopped waiting.
func (t *Idle) Leave() {
	n := t.n.Add(-1)
	for low := t.low.Load(); n < low && !t.low.CompareAndSwap(low, n); low = t.low.Load() {
	}
}

// settle gives memory back once the count, prev a Settle ago, has stopped
// rising; else it checks again after another Settle.
func (t *Idle) settle(prev int64) {
	if n := t.n.Load(); n-prev >= MinDrop/10 {
		time.AfterFunc(Settle, func() { t.settle(n) })
		return
	}
	t.low.Store(t.n.Load()) // the next rise counts from here
	t.runs.Add(1)
	debug.FreeOSMemory()
	t.pending.Store(false)
}

// Waiting reports how many connections are waiting.
func (t *Idle) Waiting() int64 { return t.n.Load() }

// Runs reports how many times memory was given back.
func (t *Idle) Runs() int64 { return t.runs.Load() }
