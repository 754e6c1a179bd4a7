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
// It also gives memory back once a burst of at least MinDrop connections
// opened (or taken on again) quickly has ended, however few were open at
// once: the runtime keeps what the burst's peak made (pooled buffers,
// threads) until told otherwise.
// An Idle counts connections waiting for their next request and does the
// same once their number has risen by at least MinDrop and doubled, and
// stopped rising: a goroutine that waits keeps the stack it grew while it
// served a request until a collection shrinks it, and then its old stack
// is free memory to return.
package memback

import (
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"
)

// MinDrop is the smallest fall in open connections that gives memory
// back: smaller ones hold too little to be worth a forced collection. It
// is well under idlewait.MaxHeld (1,024), about the peak of connections
// that wait on goroutines when a burst of clients goes idle: at 1,000
// such a burst's fall reached it only now and then, and its memory stayed.
const MinDrop = 500

// Tracker counts connections; the zero value is ready.
type Tracker struct {
	open   atomic.Int64
	peak   atomic.Int64 // since the last time memory was given back
	opened atomic.Int64 // every Opened so far
	mark   atomic.Int64 // opened when the last burst was watched, or memory given back
	markAt atomic.Int64 // when (Unix nanoseconds; 0: never)
	busy   atomic.Bool  // memory is being given back, or the fall after it watched (see run)
	runs   atomic.Int64 // counted once the memory was given back after a fall
	watch  atomic.Bool  // a burst is watched (see burst)
	bursts atomic.Int64 // counted once the memory was given back after a burst
}

// Opened counts a new connection (or one taken on again); after MinDrop
// of them it watches for the burst to end (see burst).
func (t *Tracker) Opened() {
	n := t.open.Add(1)
	for p := t.peak.Load(); n > p && !t.peak.CompareAndSwap(p, n); p = t.peak.Load() {
	}
	if o := t.opened.Add(1); o-t.mark.Load() >= MinDrop && t.watch.CompareAndSwap(false, true) {
		go t.burst() // ends when the burst does
	}
}

// burst gives memory back once connections opening quickly have stopped:
// when fewer than MinDrop/10 opened over a Settle. They opened quickly if
// the MinDrop that started the watch came within burstWindow, or if
// MinDrop/10 or more came over one Settle of the watch. A slow trickle
// holds no burst's memory: nothing is done then, but marking where the
// next count starts.
func (t *Tracker) burst() {
	defer t.watch.Store(false)
	at := t.markAt.Load()
	fast := at == 0 || time.Now().UnixNano()-at <= int64(burstWindow)
	for last := t.opened.Load(); ; {
		time.Sleep(Settle)
		n := t.opened.Load()
		if n-last < MinDrop/10 {
			break
		}
		fast, last = true, n
	}
	t.restart()
	if fast {
		giveBack()
		t.bursts.Add(1)
	}
}

// burstWindow is the longest time MinDrop connections may take to open
// and still count as a burst: the rate of MinDrop/10 over a Settle.
const burstWindow = 10 * Settle

// restart marks where the next burst's count starts.
func (t *Tracker) restart() {
	t.mark.Store(t.opened.Load())
	t.markAt.Store(time.Now().UnixNano())
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
		t.restart() // a burst counts from here
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

// giveBack returns the free memory to the operating system: it ends the
// threads a burst left idle (see trimThreads), then a collection, so that
// what sync.Pools held goes to their victim caches and is freed by the
// second (FreeOSMemory's), with the stacks of the goroutines and threads
// that ended.
func giveBack() {
	trimThreads()
	runtime.GC()
	debug.FreeOSMemory()
}

// spareThreads is how many threads beyond GOMAXPROCS trimThreads leaves:
// those of a process at rest (the runtime's monitor, one in a blocking
// wait such as an epoll loop, cgo's template thread, a few idle).
const spareThreads = 8

// trimThreads ends the threads beyond GOMAXPROCS+spareThreads. Go keeps
// every thread it ever started: a burst in which many goroutines were in
// system calls at once (common when the process shares its core) leaves
// dozens of idle threads, each with a 32 KiB signal stack and the pages
// of its own stack. A goroutine that exits while locked to its thread
// ends that thread (runtime.LockOSThread); each one here runs on the
// thread that holds the processor and hands it to an idle one, so every
// exit ends an idle thread (or, when none is idle, a thread made for the
// purpose: the count never rises). The threads that block in system
// calls are not idle and are not touched.
func trimThreads() {
	extra := pprof.Lookup("threadcreate").Count() - runtime.GOMAXPROCS(0) - spareThreads
	var wg sync.WaitGroup
	for range max(extra, 0) {
		wg.Add(1)
		go func() { // ends at once, with its thread
			defer wg.Done()
			runtime.LockOSThread()
		}()
	}
	wg.Wait()
	if extra > 0 {
		time.Sleep(threadExit) // for the threads to finish exiting and free their stacks
	}
}

// threadExit is how long trimThreads waits after its goroutines ended.
const threadExit = 10 * time.Millisecond

// Runs reports how many times memory was given back after a fall.
func (t *Tracker) Runs() int64 { return t.runs.Load() }

// Bursts reports how many times memory was given back after a burst.
func (t *Tracker) Bursts() int64 { return t.bursts.Load() }

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
