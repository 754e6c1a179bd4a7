package memback

import (
	"testing"
	"time"
)

// Memory is given back once the open connections fall by MinDrop and to
// half their peak, not on smaller falls, and again after a further fall.
func TestTrackerGivesBackAfterLargeFalls(t *testing.T) {
	var tr Tracker
	for range 3000 {
		tr.Opened()
	}
	for range 999 {
		tr.Closed()
	}
	if tr.Runs() != 0 || tr.busy.Load() {
		t.Fatalf("gave back after a fall of 999 (to 2001 of 3000)")
	}
	for range 501 {
		tr.Closed()
	}
	waitTracker(t, &tr, 1)
	for range 1000 {
		tr.Closed()
	}
	waitTracker(t, &tr, 2)
	for range 99 {
		tr.Closed()
	}
	if tr.busy.Load() {
		t.Fatalf("giving back after a fall of 99 (to 401 of 500)")
	}
}

// After memory was given back, a further fall of MinDrop/10 or more,
// however slow, gives it back once more when it stops.
func TestTrackerGivesBackAgainWhenTheFallStops(t *testing.T) {
	var tr Tracker
	for range 3000 {
		tr.Opened()
	}
	for range 1500 {
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
	var id Idle
	for range MinDrop - 1 {
		id.Enter()
	}
	if id.pending.Load() {
		t.Fatal("watching a rise of MinDrop-1")
	}
	id.Enter()
	waitRuns(t, &id, 1)
	for range 600 { // 1000 to 400
		id.Leave()
	}
	for range 700 { // to 1100: risen by 700 from the low
		id.Enter()
	}
	if id.pending.Load() {
		t.Fatal("watching a rise of 700")
	}
	for range 300 { // to 1400: risen by 1000 from 400, and doubled
		id.Enter()
	}
	waitRuns(t, &id, 2)
	if id.Waiting() != 1400 {
		t.Fatalf("waiting %d, want 1400", id.Waiting())
	}
	for range 1400 { // to 0; then 1000 more is a doubling again
		id.Leave()
	}
	for range 1500 {
		id.Enter()
	}
	waitRuns(t, &id, 3)
}

// A check that finds the count risen by MinDrop/10 since the last one
// watches on; the next, finding it still, gives memory back.
func TestIdleWaitsForTheRiseToStop(t *testing.T) {
	var id Idle
	id.n.Store(5000)
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
