package api

import (
	"sync"
	"time"
)

// reqClock holds a connection's requests to their stage deadline with one
// timer that is not stopped and re-armed for each request, as a timer per
// request would be (two timer changes and a clock read per request): a
// request that begins while the timer is due sooner leaves it alone, and
// when it fires it re-arms itself for the request in progress, or rests
// when none is. So a keep-alive connection changes its timer about once
// per deadline, and once at the end of its hand-over (stop). The zero
// value is ready, with late set.
type reqClock struct {
	late func() // runs when a request misses its deadline

	mu      sync.Mutex
	t       *time.Timer
	armed   bool          // t is pending
	due     time.Time     // when t fires, while armed
	running bool          // a request is in progress
	start   time.Time     // its start
	d       time.Duration // its deadline, from start
	missed  bool          // it missed its deadline (late ran)
	cleared bool          // the handler lifted its deadline
}

// begin starts a request at now, with deadline d.
func (c *reqClock) begin(now time.Time, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.running, c.start, c.d, c.missed, c.cleared = true, now, d, false, false
	if due := now.Add(d); !c.armed || c.due.After(due) {
		c.arm(due, d)
	}
}

// arm makes the timer fire in d, at due; c.mu is held.
func (c *reqClock) arm(due time.Time, d time.Duration) {
	c.armed, c.due = true, due
	if c.t == nil {
		c.t = time.AfterFunc(d, c.fire)
		return
	}
	c.t.Reset(d)
}

// fire is the timer's function: the request in progress is late if its
// deadline has passed, else the timer is re-armed for it. A fire that a
// re-arm overtook (the timer is pending again, due later) does nothing.
func (c *reqClock) fire() {
	now := time.Now()
	c.mu.Lock()
	if c.armed && now.Before(c.due) {
		c.mu.Unlock()
		return
	}
	c.armed = false
	if !c.running || c.cleared || c.missed {
		c.mu.Unlock()
		return
	}
	if due := c.start.Add(c.d); now.Before(due) {
		c.arm(due, due.Sub(now))
		c.mu.Unlock()
		return
	}
	c.missed = true
	c.mu.Unlock()
	c.late()
}

// end ends the request in progress; false means it missed its deadline.
func (c *reqClock) end() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.running = false
	return !c.missed
}

// clear lifts the deadline of the request in progress; false means it
// missed it already, or no request is in progress.
func (c *reqClock) clear() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running || c.missed {
		return false
	}
	c.cleared = true
	return true
}

// stop stops the timer; drop also forgets it (an idle connection keeps
// none).
func (c *reqClock) stop(drop bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.armed {
		c.t.Stop()
		c.armed = false
	}
	if drop {
		c.t = nil
	}
}
