package api

import (
	"sync/atomic"
	"testing"
	"time"
)

// A request that ends in time is not late, even when the timer armed for
// an earlier request fires while it runs (the timer re-arms for it); one
// that runs past its deadline is (late runs once, end reports it); one
// whose deadline was cleared is not; and stop leaves no timer to fire.
func TestReqClock(t *testing.T) {
	var lates atomic.Int32
	c := reqClock{late: func() { lates.Add(1) }}
	const d = 300 * time.Millisecond

	c.begin(time.Now(), d) // arms the timer for now+d
	if !c.end() {
		t.Fatal("a request that ended at once missed its deadline")
	}
	time.Sleep(d * 9 / 10)
	c.begin(time.Now(), d) // the timer, due sooner, fires while this one runs
	time.Sleep(d * 3 / 10) // (an overslept sleep leaves it 7/10 of d to spare)
	if !c.end() || lates.Load() != 0 {
		t.Fatalf("a request within its deadline was late (%d)", lates.Load())
	}

	c.begin(time.Now(), d)
	time.Sleep(3 * d)
	if c.end() || lates.Load() != 1 {
		t.Fatalf("a request past its deadline: end true or %d lates, want 1", lates.Load())
	}
	if c.clear() {
		t.Fatal("clear after the request ended reported true")
	}

	c.begin(time.Now(), d)
	if !c.clear() {
		t.Fatal("clear of a request in time reported false")
	}
	time.Sleep(3 * d)
	if !c.end() || lates.Load() != 1 {
		t.Fatalf("a request whose deadline was cleared was late (%d)", lates.Load())
	}

	c.begin(time.Now(), d)
	c.end()
	c.stop(true)
	if c.t != nil || c.armed {
		t.Fatal("stop left a timer")
	}
}

// Requests that begin, clear and end while the timer fires (deadlines of
// a millisecond or two, under -race): every request that end reports late
// had late run for it, and no other did.
func TestReqClockRacingFires(t *testing.T) {
	var lates atomic.Int32
	c := reqClock{late: func() { lates.Add(1) }}
	missed := int32(0)
	for i := range 300 {
		c.begin(time.Now(), time.Duration(1+i%2)*time.Millisecond)
		done := make(chan struct{})
		go func() { // ends after its clear
			defer close(done)
			if i%3 == 0 {
				c.clear()
			}
		}()
		time.Sleep(time.Duration(i%4) * 500 * time.Microsecond)
		<-done
		if !c.end() {
			missed++
		}
	}
	c.stop(true)
	time.Sleep(5 * time.Millisecond) // a fire already on its way
	if lates.Load() != missed {
		t.Fatalf("late ran %d times, end reported %d late requests", lates.Load(), missed)
	}
}
