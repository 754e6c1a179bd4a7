package balance

import (
	"net/netip"
	"time"
)

// Naive starts at a time-derived slot and tries the others in turn, as
// Monkey's naive balancer did.
type Naive struct {
	Now func() time.Time
}

// Name implements Policy.
func (*Naive) Name() string { return "naive" }

// Order implements Policy.
func (p *Naive) Order(dst []int, s Slots, _ netip.Addr) []int {
	n := s.Len()
	if n == 0 {
		return dst[:0]
	}
	t := p.Now().UnixNano() / int64(time.Millisecond)
	return rotate(dst, n, int(uint64(t)%uint64(n)))
}
