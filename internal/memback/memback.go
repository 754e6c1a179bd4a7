// Package memback gives memory back to the operating system after a burst
// of connections ends, and after a burst of connections goes idle. Go
// returns freed memory only slowly (its scavenger works from the heap goal
// of the last collection, and an idle process collects only every two
// minutes), so a server that held thousands of connections would keep
// their memory resident long after they closed.
// A Tracker counts open connections and, once their number has fallen by
// at least MinDrop and to half its peak or less, gives memory back (two
// collections, then every free page returned: see giveBack) on a
// goroutine of its own, and once more when the fall that follows stops.
// An Idle counts connections waiting for their next request and does the
// same once their number has risen by at least MinDrop and doubled, and
// stopped rising: a goroutine that waits keeps the stack it grew while it
// served a request until a collection shrinks it, and then its old stack
// is free memory to return.
package memback

import (
	"runtime"
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
	busy atomic.Bool  // memory is being given back, or the fall after it watched (see run)
	runs atomic.Int64 // counted once the memory was given back
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
	go t.run()      // ends when the fall stops
}

// run gives memory back, and again each time the fall that goes on after
// it stops: the connections of a burst seldom end all at once, and those
// that end after a collection leave their memory (their goroutines'
// stacks) to the next one, which an idle server makes only every two
// minutes.
func (t *Tracker) run() {
	defer t.busy.Store(false)
	for {
		giveBack()
		from := t.open.Load()
		t.runs.Add(1)
		last := from
		for {
			time.Sleep(Settle)
			n := t.open.Load()
			if last-n < MinDrop/10 {
				break
			}
			last = n
		}
		if from-last < MinDrop/10 {
			return
		}
		t.peak.Store(last)
	}
}

// giveBack returns the free memory to the operating system: a collection
// first, so that what sync.Pools held goes to their victim caches and is
// freed by the second (FreeOSMemory's), with the stacks of the goroutines
// that ended.
func giveBack() {
	runtime.GC()
	debug.FreeOSMemory()
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
	giveBack()
	t.pending.Store(false)
}

// Waiting reports how many connections are waiting.
func (t *Idle) Waiting() int64 { return t.n.Load() }

// Runs reports how many times memory was given back.
func (t *Idle) Runs() int64 { return t.runs.Load() }
