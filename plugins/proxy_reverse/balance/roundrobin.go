package balance

import (
	"net/netip"
	"sync/atomic"
)

// RoundRobin is Monkey's lockless round robin: a shared cursor advanced with
// one atomic add per request, so concurrent requests never wait on each
// other. Repeated servers in the ServerList get proportionally more turns.
type RoundRobin struct {
	next atomic.Uint64
}

// Name implements Policy.
func (*RoundRobin) Name() string { return "roundrobin" }

// Order implements Policy.
func (p *RoundRobin) Order(dst []int, s Slots, _ netip.Addr) []int {
	n := s.Len()
	if n == 0 {
		return dst[:0]
	}
	start := (p.next.Add(1) - 1) % uint64(n)
	return rotate(dst, n, int(start))
}
