package memback

import (
	"runtime"
	"runtime/pprof"
	"sync"
	"testing"
	"time"
)

// Memory is given back once the open connections fall by MinDrop and to
// half their peak, not on smaller falls, and again after a further fall.
func TestTrackerGivesBackAfterLargeFalls(t *testing.T) {
	const m = MinDrop
	var tr Tracker
	for range 3 * m {
		tr.Opened()
	}
	for range m - 1 {
		tr.Closed()
	}
	if tr.Runs() != 0 || tr.busy.Load() {
		t.Fatalf("gave back after a fall of %d (to %d of %d)", m-1, 2*m+1, 3*m)
	}
	for range m/2 + 1 { // to half the peak
		tr.Closed()
	}
	waitTracker(t, &tr, 1)
	for range m {
		tr.Closed()
	}
	waitTracker(t, &tr, 2)
	for range m/10 - 1 {
		tr.Closed()
	}
	if tr.busy.Load() {
		t.Fatalf("giving back after a fall of %d (to %d of %d)", m/10-1, m/2-m/10+1, m/2)
	}
}

// After memory was given back, a further fall of MinDrop/10 or more,
// however slow, gives it back once more when it stops.
func TestTrackerGivesBackAgainWhenTheFallStops(t *testing.T) {
	var tr Tracker
	for range 3 * MinDrop {
		tr.Opened()
	}
	for range 3 * MinDrop / 2 {
		tr.Closed()
	}
	for deadline := time.Now().Add(10 * time.Second); tr.Runs() < 1; {
		if time.Now().After(deadline) {
			t.Fatal("memory not given back 10 s after a fall to half")
		}
		time.Sleep(time.Millisecond)
	}
	for range MinDrop / 10 { // too small a fall to start a run of its own
		tr.Closed()
	}
	waitTracker(t, &tr, 2)
}

// waitTracker waits (at most 10 s) until tr gave memory back want times
// and stopped watching the fall.
func waitTracker(t *testing.T, tr *Tracker, want int64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); tr.Runs() < want || tr.busy.Load(); {
		if time.Now().After(deadline) {
			t.Fatalf("runs %d (busy %v) after 10 s, want %d", tr.Runs(), tr.busy.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
	if tr.Runs() != want {
		t.Fatalf("runs %d, want %d", tr.Runs(), want)
	}
}

// waitRuns waits (at most 10 s) until memory was given back want times
// and the run is over.
func waitRuns(t *testing.T, id *Idle, want int64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); id.Runs() < want || id.pending.Load(); {
		if time.Now().After(deadline) {
			t.Fatalf("runs %d (pending %v) after 10 s, want %d", id.Runs(), id.pending.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
	if id.Runs() != want {
		t.Fatalf("runs %d, want %d", id.Runs(), want)
	}
}

// Memory is given back once the waiting connections have risen by MinDrop
// and doubled, and stopped rising; not after smaller rises; and again after
// the count fell and doubled from its low.
func TestIdleGivesBackAfterLargeRises(t *testing.T) {
	const m = MinDrop
	var id Idle
	for range m - 1 {
		id.Enter()
	}
	if id.pending.Load() {
		t.Fatal("watching a rise of MinDrop-1")
	}
	id.Enter()
	waitRuns(t, &id, 1)
	for range m * 6 / 10 { // to 0.4 m
		id.Leave()
	}
	for range m * 7 / 10 { // to 1.1 m: risen by 0.7 m from the low
		id.Enter()
	}
	if id.pending.Load() {
		t.Fatalf("watching a rise of %d", m*7/10)
	}
	for range m * 3 / 10 { // to 1.4 m: risen by m from 0.4 m, and doubled
		id.Enter()
	}
	waitRuns(t, &id, 2)
	if id.Waiting() != m*14/10 {
		t.Fatalf("waiting %d, want %d", id.Waiting(), m*14/10)
	}
	for range m * 14 / 10 { // to 0; then 1.5 m more is a doubling again
		id.Leave()
	}
	for range m * 15 / 10 {
		id.Enter()
	}
	waitRuns(t, &id, 3)
}

// A check that finds the count risen by MinDrop/10 since the last one
// watches on; the next, finding it still, gives memory back.
func TestIdleWaitsForTheRiseToStop(t *testing.T) {
	var id Idle
	id.entered.Store(5000)
	id.pending.Store(true)
	id.settle(5000 - MinDrop/10)
	if id.Runs() != 0 || !id.pending.Load() {
		t.Fatalf("runs %d (pending %v) after a rise of %d, want 0 and watching", id.Runs(), id.pending.Load(), MinDrop/10)
	}
	waitRuns(t, &id, 1)
	if id.low.Load() != 5000 {
		t.Fatalf("low %d after giving back, want 5000", id.low.Load())
	}
}

// busy keeps connections of id coming back to work (a Leave and an Enter
// every millisecond: MinDrop/10 and more per Settle) until stop is
// called, as clients with think time between requests do.
func busy(id *Idle) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // ends with stop
		defer wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				id.Leave()
				id.Enter()
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// busyTracker returns a Tracker with 3·MinDrop connections open, in a
// process whose waiting connections keep coming back to work (busy) until
// stop is called.
func busyTracker() (tr *Tracker, stop func()) {
	id := new(Idle)
	id.low.Store(1 << 40) // no rise of its own to watch
	tr = &Tracker{Quiet: id}
	for range 3 * MinDrop {
		tr.Opened()
	}
	return tr, busy(id)
}

// A rise that stopped while connections keep coming back to work gives
// memory back only once they stop: not in the middle of the traffic.
func TestIdleWaitsForQuiet(t *testing.T) {
	var id Idle
	for range 2 * MinDrop {
		id.Enter()
	}
	stop := busy(&id)
	time.Sleep(4 * Settle)
	runs := id.Runs()
	stop()
	if runs != 0 || !id.pending.Load() {
		t.Fatalf("runs %d (pending %v) while busy, want 0 and watching", runs, id.pending.Load())
	}
	waitRuns(t, &id, 1)
}

// A fall, and a burst, of connections give memory back only once the
// waiting connections of the process stop coming back to work.
func TestTrackerWaitsForQuiet(t *testing.T) {
	tr, stop := busyTracker()
	for range 2 * MinDrop {
		tr.Closed()
	}
	time.Sleep(4 * Settle)
	runs, bursts := tr.Runs(), tr.Bursts()
	stop()
	if runs != 0 || bursts != 0 {
		t.Fatalf("runs %d, bursts %d while busy; want 0 and 0", runs, bursts)
	}
	waitTracker(t, tr, 1)
	for deadline := time.Now().Add(10 * time.Second); tr.Bursts() < 1 || tr.watch.Load(); {
		if time.Now().After(deadline) {
			t.Fatalf("bursts %d (watching %v) 10 s after traffic stopped", tr.Bursts(), tr.watch.Load())
		}
		time.Sleep(time.Millisecond)
	}
}

// A fall of connections that parked (went idle, holding nothing) gives
// memory back at once, however busy the process: an idle burst's memory
// is free for good.
func TestTrackerGivesBackAtOnceAfterParks(t *testing.T) {
	tr, stop := busyTracker()
	defer stop()
	for range 2 * MinDrop {
		tr.Parked()
	}
	for deadline := time.Now().Add(10 * time.Second); tr.Runs() < 1; {
		if time.Now().After(deadline) {
			t.Fatal("memory not given back 10 s after a fall of parked connections")
		}
		time.Sleep(time.Millisecond)
	}
}

// Connections that close while as many new ones open (clients replaced
// by others, as when a load generator's run follows another) give nothing
// back: the new ones use the memory.
func TestTrackerKeepsMemoryInUse(t *testing.T) {
	var tr Tracker
	for range 3 * MinDrop {
		tr.Opened()
	}
	for range 2 * MinDrop { // a fall to a third: a run watches it
		tr.Closed()
	}
	for range 2 * MinDrop { // and a burst takes the closed ones' place
		tr.Opened()
	}
	for deadline := time.Now().Add(10 * time.Second); tr.busy.Load() || tr.watch.Load(); {
		if time.Now().After(deadline) {
			t.Fatalf("still watching 10 s after (busy %v, watch %v)", tr.busy.Load(), tr.watch.Load())
		}
		time.Sleep(time.Millisecond)
	}
	if tr.Runs() != 0 || tr.Bursts() != 0 {
		t.Fatalf("runs %d, bursts %d with %d open again; want 0 and 0", tr.Runs(), tr.Bursts(), tr.open.Load())
	}
}

// A burst of MinDrop connections or more that open and close quickly
// gives memory back once it ends, though never more than one was open at
// once (no fall to watch).
func TestTrackerGivesBackAfterABurst(t *testing.T) {
	var tr Tracker
	for range 3 * MinDrop {
		tr.Opened()
		tr.Closed()
	}
	for deadline := time.Now().Add(10 * time.Second); tr.Bursts() < 1 || tr.watch.Load(); {
		if time.Now().After(deadline) {
			t.Fatalf("bursts %d (watching %v) 10 s after a burst of %d", tr.Bursts(), tr.watch.Load(), 3*MinDrop)
		}
		time.Sleep(time.Millisecond)
	}
	if tr.Bursts() != 1 || tr.Runs() != 0 {
		t.Fatalf("bursts %d, runs %d; want 1 and 0", tr.Bursts(), tr.Runs())
	}
}

// MinDrop connections trickling in over longer than burstWindow are no
// burst: the watch ends without giving memory back, and the next count
// starts there.
func TestTrackerIgnoresATrickle(t *testing.T) {
	var tr Tracker
	tr.markAt.Store(time.Now().Add(-2 * burstWindow).UnixNano()) // the count began that long ago
	for range MinDrop {
		tr.Opened()
		tr.Closed()
	}
	if !tr.watch.Load() {
		t.Fatal("not watching after MinDrop connections")
	}
	for deadline := time.Now().Add(10 * time.Second); tr.watch.Load(); {
		if time.Now().After(deadline) {
			t.Fatal("still watching 10 s after the trickle")
		}
		time.Sleep(time.Millisecond)
	}
	if tr.Bursts() != 0 || tr.mark.Load() != MinDrop {
		t.Fatalf("bursts %d, mark %d; want 0 and %d", tr.Bursts(), tr.mark.Load(), MinDrop)
	}
}

// threads is how many threads the runtime has.
func threads() int { return pprof.Lookup("threadcreate").Count() }

// Threads left idle by goroutines that each held one are ended, down to
// GOMAXPROCS+spareThreads; the process goes on scheduling goroutines.
func TestTrimThreadsEndsIdleThreads(t *testing.T) {
	const n = 40
	before := threads()
	var held, release sync.WaitGroup
	release.Add(1)
	done := make(chan struct{}, n)
	for range n {
		held.Add(1)
		go func() { // holds a thread of its own until released, then ends
			runtime.LockOSThread()
			held.Done()
			release.Wait()
			runtime.UnlockOSThread()
			done <- struct{}{}
		}()
	}
	held.Wait()
	if got := threads(); got < n {
		t.Fatalf("%d threads with %d held, want at least %d", got, n, n)
	}
	release.Done()
	for range n {
		<-done
	}
	trimThreads()
	// Two more: the runtime may start a thread to take over the processor
	// of one that ends, when it finds no idle one at that moment.
	limit := max(runtime.GOMAXPROCS(0)+spareThreads, before) + 2
	if got := threads(); got > limit {
		t.Fatalf("%d threads after trimThreads (%d before the test), want at most %d", got, before, limit)
	}
	ch := make(chan int)
	go func() { ch <- 42 }()
	if <-ch != 42 {
		t.Fatal("no goroutine runs after trimThreads")
	}
}
