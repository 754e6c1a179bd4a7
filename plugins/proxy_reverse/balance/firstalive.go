package balance

import "net/netip"

// FirstAlive always starts at the first slot: the first server that is up
// gets every request (active/passive fail-over).
type FirstAlive struct{}

// Name implements Policy.
func (FirstAlive) Name() string { return "first-alive" }

// Order implements Policy.
func (FirstAlive) Order(dst []int, s Slots, _ netip.Addr) []int {
	return rotate(dst, s.Len(), 0)
}
