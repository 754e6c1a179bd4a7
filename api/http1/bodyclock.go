package http1

import "time"

// DefaultBodyMinRate is the lowest average rate, in bytes per second, of a
// request body after its first Timeout, as Apache's mod_reqtimeout has it.
const DefaultBodyMinRate = 500

// BodyClock sets the deadlines of a request body's reads: each within
// Timeout of now, and no later than the body's minimum rate allows — one
// Timeout of grace from the first awaited byte, then MinRate bytes a
// second — so a body that trickles in a few bytes at a time (R-U-Dead-Yet)
// is cut like a stalled one although each read comes in time. A zero
// Timeout sets no deadline; a zero MinRate no minimum.
type BodyClock struct {
	Timeout time.Duration
	MinRate int64
	began   time.Time
}

// Deadline returns the deadline of the next read at now, total body bytes
// having been read; the zero time when Timeout is zero.
func (c *BodyClock) Deadline(now time.Time, total int64) time.Time {
	if c.Timeout <= 0 {
		return time.Time{}
	}
	if c.began.IsZero() {
		c.began = now
	}
	t := now.Add(c.Timeout)
	if c.MinRate > 0 {
		if limit := c.began.Add(c.Timeout + time.Duration(total*int64(time.Second)/c.MinRate)); limit.Before(t) {
			t = limit
		}
	}
	return t
}
