package balance

import (
	"net/netip"
	"sync"
)

// LockingRoundRobin is round robin with its cursor under a mutex (Monkey's
// lockingroundrobin). It hands out exactly the same sequence as RoundRobin.
type LockingRoundRobin struct {
	mu   sync.Mutex
	next int
}

// Name implements Policy.
func (*LockingRoundRobin) Name() string { return "lockingroundrobin" }

// Order implements Policy.
func (p *LockingRoundRobin) Order(dst []int, s Slots, _ netip.Addr) []int {
	n := s.Len()
	if n == 0 {
		return dst[:0]
	}
	p.mu.Lock()
	if p.next >= n {
		p.next = 0
	}
	start := p.next
	p.next++
	p.mu.Unlock()
	return rotate(dst, n, start)
}
