package upstream

import (
	"net/netip"
	"sync"
	"sync/atomic"
)

// Health is the state of one backend address, shared by every entry that
// lists the address and kept while the plugin is reconfigured: its run of
// failures (high availability) and its counters. A dead backend listed in
// many entries is thus found dead once, and the status page's counters
// survive a reload.
type Health struct {
	fails    atomic.Int32 // consecutive failures
	lastBad  atomic.Int64 // unix nanoseconds of the last failure
	requests atomic.Uint64
	failures atomic.Uint64
	stray    atomic.Uint64 // pooled connections closed for bytes or EOF while idle
	retries  atomic.Uint64 // requests sent again after a failure here (see Server.Retried)
}

// Registry holds the Health of every backend address. Safe for concurrent
// use.
type Registry struct {
	mu sync.Mutex
	m  map[netip.AddrPort]*Health
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{m: map[netip.AddrPort]*Health{}} }

// health returns the Health of ap, created on first use.
func (r *Registry) health(ap netip.AddrPort) *Health {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.m[ap]
	if h == nil {
		h = new(Health)
		r.m[ap] = h
	}
	return h
}

// Retain forgets every address for which keep is false: those no entry
// lists any more after a reconfiguration.
func (r *Registry) Retain(keep func(netip.AddrPort) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for ap := range r.m {
		if !keep(ap) {
			delete(r.m, ap)
		}
	}
}
