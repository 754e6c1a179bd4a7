// Package memback gives memory back to the operating system after a burst
// of connections ends, and after a burst of connections goes idle. Go
// returns freed memory only slowly (its scavenger works from the heap goal
// of the last collection, and an idle process collects only every two
// minutes), so a server that held thousands of connections would keep
// their memory resident long after they closed.
// A Tracker counts connections that hold a goroutine and, once their
// number has fallen by at least MinDrop and to half its peak or less,
// gives memory back (two collections, then every free page returned: see
// giveBack) on a goroutine of its own, and once more when the fall that
// follows stops. It also gives memory back once a burst of at least
// MinDrop connections opened (or taken on again) quickly has ended and
// most of them closed, however few were open at once: the runtime keeps
// what the burst's peak made (pooled buffers, threads) until told
// otherwise.
// An Idle counts connections waiting for their next request and does the
// same once their number has risen by at least MinDrop and doubled, and
// stopped rising: a goroutine that waits keeps the stack it grew while it
// served a request until a collection shrinks it, and then its old stack
// is free memory to return.
//
// Giving memory back costs two collections, holds the processor while it
// returns the pages, and a busy process faults them in again at once. So
// it waits until the process is quiet (fewer than MinDrop/10 waiting
// connections became active over QuietFor: see Idle.WaitQuiet), and a
// fall of closed connections gives nothing back when new ones took their
// place: their memory is in use again. Done in the middle of traffic (a
// thousand clients that wait 300 ms between requests, whose connections
// replaced a thousand before them) it came five times within two seconds
// in host and plugin, and the slowest 1 % of requests took 70-85 ms; 41-53
// with the wait. A fall of parked connections (idle, holding nothing)
// gives back at once, as before: the burst that made it is still coming
// in, and collecting early keeps the heap it grows smaller (waiting for
// quiet there left 1-2 MB more resident after 9,000 idle connections).
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
	// Quiet is the process's count of waiting connections, whose coming
	// back to work tells that the process is busy: memory is then given
	// back once it is quiet (nil: at once).
	Quiet *Idle

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

// burst gives memory back once connections opening quickly have stopped
// (when fewer than MinDrop/10 opened over a Settle) and most of them have
// closed again, the process being quiet. They opened quickly if
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
	opened := t.opened.Load() - t.mark.Load() // by the burst
	if fast {
		t.Quiet.WaitQuiet()
	}
	t.restart()
	if fast && t.open.Load() <= opened/2 { // else the burst's clients stayed: their memory is in use
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
// enough fall (see run).
func (t *Tracker) Closed() { t.ended(false) }

// Parked counts a connection that went idle and gave up its goroutine (the
// host parks it; the SDK gives it back to the host): a fall of such
// connections gives memory back at once, for they stay, holding nothing.
func (t *Tracker) Parked() { t.ended(true) }

// ended counts a connection that closed or parked.
func (t *Tracker) ended(parked bool) {
	n := t.open.Add(-1)
	p := t.peak.Load()
	if p-n < MinDrop || n > p/2 || !t.busy.CompareAndSwap(false, true) {
		return
	}
	t.peak.Store(n)     // the next fall counts from here
	go t.run(p, parked) // ends when the fall stops
}

// run gives memory back after a fall from peak: at once when the
// connection that made it large enough had parked (an idle burst: its
// memory is free for good, and the sooner it is collected the smaller
// the heap the rest of the burst grows); else once the fall has stopped
// and the process is quiet, and only if new connections did not take
// the closed ones' place (more than half the peak open again: their
// memory is in use). It gives back again each time a fall that goes on
// after that stops: the connections of a burst seldom end all at once,
// and those that end after a collection leave their memory (their
// goroutines' stacks) to the next one, which an idle server makes only
// every two minutes.
func (t *Tracker) run(peak int64, parked bool) {
	defer t.busy.Store(false)
	for from := peak; parked || t.fallStopped(from, peak); parked = false {
		t.restart() // a burst counts from here
		giveBack()
		t.runs.Add(1)
		from = t.open.Load()
		t.peak.Store(from)
	}
}

// fallStopped waits until the fall stops and the process is quiet, and
// reports whether memory is to be given back: the count fell by
// MinDrop/10 or more from from, and at most half of peak are open.
func (t *Tracker) fallStopped(from, peak int64) bool {
	if from-t.fallStops() < MinDrop/10 {
		return false
	}
	t.Quiet.WaitQuiet()
	return t.open.Load() <= peak/2
}

// fallStops waits until fewer than MinDrop/10 connections closed over a
// Settle, and returns how many are open then.
func (t *Tracker) fallStops() int64 {
	for last := t.open.Load(); ; {
		time.Sleep(Settle)
		n := t.open.Load()
		if last-n < MinDrop/10 {
			return n
		}
		last = n
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
	entered atomic.Int64 // every Enter so far
	left    atomic.Int64 // every Leave so far: waiting is entered-left
	low     atomic.Int64 // the lowest count since memory was last given back
	pending atomic.Bool  // a rise is being watched (settle is scheduled)
	runs    atomic.Int64
}

// Enter counts a connection that starts waiting; after a large enough rise
// it starts watching for the rise to stop.
func (t *Idle) Enter() {
	n := t.entered.Add(1) - t.left.Load()
	if low := t.low.Load(); n-low < MinDrop || n < 2*low || !t.pending.CompareAndSwap(false, true) {
		return
	}
	time.AfterFunc(Settle, func() { t.settle(n) }) // ends when settle does
}

// Leave counts a connection that stopped waiting.
func (t *Idle) Leave() {
	n := t.entered.Load() - t.left.Add(1)
	for low := t.low.Load(); n < low && !t.low.CompareAndSwap(low, n); low = t.low.Load() {
	}
}

// settle gives memory back once the count, prev a Settle ago, has stopped
// rising and then the process is quiet (WaitQuiet); else it checks again
// after another Settle.
func (t *Idle) settle(prev int64) {
	if n := t.Waiting(); n-prev >= MinDrop/10 {
		time.AfterFunc(Settle, func() { t.settle(n) })
		return
	}
	t.WaitQuiet()
	t.low.Store(t.Waiting()) // the next rise counts from here
	t.runs.Add(1)
	giveBack()
	t.pending.Store(false)
}

// WaitQuiet returns once fewer than MinDrop/10 connections left their wait
// over QuietFor: at once for a nil t, else after QuietFor at least.
func (t *Idle) WaitQuiet() {
	if t == nil {
		return
	}
	for l := t.left.Load(); ; {
		time.Sleep(QuietFor)
		n := t.left.Load()
		if n-l < MinDrop/10 {
			return
		}
		l = n
	}
}

// QuietFor is how long a process must be quiet before it gives memory
// back: two Settles, as long as the SDK and the host hold an idle
// connection on its goroutine before they park it, so that clients that
// pause between requests for less than that (all at once, as a load
// generator's do) are seen coming back.
const QuietFor = 2 * Settle

// Waiting reports how many connections are waiting.
func (t *Idle) Waiting() int64 { return t.entered.Load() - t.left.Load() }

// Runs reports how many times memory was given back.
func (t *Idle) Runs() int64 { return t.runs.Load() }
