// Package balance holds the server selection policies of proxy_reverse, one
// per file, and the registry that names them (registry.go).
//
// A policy sees the entry's server list as n slots (a server listed twice
// fills two slots; a slot may carry an explicit weight=N) and orders them for
// each request. The work is split as in gRPC-Go's balancers: Policy.Picker
// is the slow path, run once per server list (at start and after hostnames
// re-resolve to a different list), and builds an immutable Picker (a hash
// ring, a weighted schedule); Picker.Order is the hot path, run once per
// request, and never takes a lock or allocates (Locking-Round-Robin aside,
// whose mutex is its point). The caller tries the slots in the returned
// order, skipping slots of servers it already tried or that are offline, so
// every policy fails over until no candidate is left. Health and connection
// counts live outside the policies (package upstream).
package balance

import (
	"net/netip"

	"github.com/capuchin/capuchin/api/http1"
)

// Slots is the weighted server list as a policy sees it. Implementations
// are immutable apart from the live counters Active reads.
type Slots interface {
	Len() int
	// Active returns the requests in flight to the server in slot i.
	Active(i int) int64
	// Weight returns slot i's explicit weight (ServerList weight=N), at
	// least 1.
	Weight(i int) int
	// Addr returns the address of the server in slot i: its identity for
	// consistent hashing.
	Addr(i int) netip.AddrPort
}

// Request is what a picker may read of the request being balanced. It is
// passed by value so that handing it to a picker does not allocate.
type Request struct {
	Client netip.Addr
	Head   *http1.Request // nil when only the client is known
	// StickyID is the server ID the request's sticky cookie names when
	// Sticky is set; the caller reads the cookie once (Sticky.Read) and
	// uses it again for the answer's Set-Cookie.
	StickyID uint64
	Sticky   bool
}

// Policy is one entry's balancer. It holds the state its pickers share
// across server lists (a round robin cursor).
type Policy interface {
	// Name returns the balancer's registered name, with its arguments when
	// it has some, as shown on the status page.
	Name() string
	// Picker returns the picker for the server list s. It is the slow
	// path: the caller builds a picker when the list changes and keeps it.
	Picker(s Slots) Picker
}

// Picker orders the slots of one server list for one request. It is safe
// for concurrent use and never blocks.
type Picker interface {
	// Order appends to dst[:0] the slot indexes to try, best first, and
	// returns it. Every slot appears exactly once.
	Order(dst []int, r Request) []int
}

// rotate appends 0..n-1 starting at start.
func rotate(dst []int, n, start int) []int {
	dst = dst[:0]
	for i := 0; i < n; i++ {
		dst = append(dst, (start+i)%n)
	}
	return dst
}

// appendRest appends, in rotation from start, the slots of 0..n-1 not yet
// in dst. dst holds few entries (a policy's favourites), so the membership
// test is a short scan.
func appendRest(dst []int, n, start int) []int {
	head := len(dst)
	for i := 0; i < n; i++ {
		v := (start + i) % n
		if !contains(dst[:head], v) {
			dst = append(dst, v)
		}
	}
	return dst
}

func contains(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
