// Package balance holds the server selection policies of proxy_reverse, one
// per file. A policy sees the entry's weighted server list as n slots (a
// server listed twice fills two slots) and returns the order in which to try
// them; the caller skips slots of servers it already tried or that are
// offline, so every policy fails over until no candidate is left. Health and
// connection counts live outside the policies (package upstream).
package balance

import (
	"net/netip"
	"time"

	"github.com/capuchin/capuchin/plugins/proxy_reverse/config"
)

// Slots is the weighted server list as a policy sees it.
type Slots interface {
	Len() int
	// Active returns the open connections of the server in slot i.
	Active(i int) int64
}

// Policy orders the slots to try for one request.
type Policy interface {
	// Order appends to dst[:0] the slot indexes to try, best first, and
	// returns it. Every slot appears exactly once.
	Order(dst []int, s Slots, client netip.Addr) []int
	// Name returns the balancer's name as shown on the status page.
	Name() string
}

// New returns the policy for b.
func New(b config.Balancer) Policy {
	switch b {
	case config.Naive:
		return &Naive{Now: time.Now}
	case config.RoundRobin:
		return &RoundRobin{}
	case config.LockingRoundRobin:
		return &LockingRoundRobin{}
	case config.LeastConnections:
		return &LeastConn{}
	case config.SourceHash:
		return SourceHash{}
	}
	return FirstAlive{}
}

// rotate appends 0..n-1 starting at start.
func rotate(dst []int, n, start int) []int {
	dst = dst[:0]
	for i := 0; i < n; i++ {
		dst = append(dst, (start+i)%n)
	}
	return dst
}
