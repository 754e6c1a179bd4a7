package upstream

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/capuchin/capuchin/plugins/proxy_reverse/config"
)

// LookupFunc resolves a hostname to its addresses.
type LookupFunc func(ctx context.Context, host string) ([]netip.Addr, error)

// Group is the set of servers of one proxy entry. Its goroutine (started by
// NewGroup, ended by Close) re-resolves hostnames and closes expired idle
// connections.
type Group struct {
	entry  *config.Entry
	log    hclog.Logger
	lookup LookupFunc
	reg    *Registry

	slots atomic.Pointer[Slots]
	mu    sync.Mutex                 // guards byAddr and resolved (writers only)
	byAdr map[netip.AddrPort]*Server // servers by address, kept across re-resolution
	res   map[string][]netip.Addr    // last good resolution per hostname
	srv   map[string][]srvTarget     // last good SRV records per srv:// name (srv.go)
	srvLk SRVLookupFunc

	cancel context.CancelFunc
	done   chan struct{}
}

// Slots is an immutable view of the weighted server list: a server listed
// (or resolved) N times fills N slots. It implements balance.Slots.
type Slots struct {
	Servers []*Server
	Weights []int // explicit weight of each slot (ServerList weight=N), at least 1
	// Backups is the number of trailing Servers that the balancer does not
	// see (SRV records of a higher priority value, srv.go): they are tried
	// in order after the balancer's slots (AppendBackups).
	Backups int
}

// Len returns the number of slots the balancer orders.
func (s *Slots) Len() int { return len(s.Servers) - s.Backups }

// AppendBackups appends the backup slots to a balancer's order.
func (s *Slots) AppendBackups(order []int) []int {
	for i := s.Len(); i < len(s.Servers); i++ {
		order = append(order, i)
	}
	return order
}

// Active returns the open connections of the server in slot i.
func (s *Slots) Active(i int) int64 { return s.Servers[i].active.Load() }

// Weight returns the explicit weight of slot i.
func (s *Slots) Weight(i int) int { return s.Weights[i] }

// Addr returns the address of the server in slot i.
func (s *Slots) Addr(i int) netip.AddrPort { return s.Servers[i].Addr }

// NewGroup resolves the entry's ServerList (waiting at most the
// ConnectTimeout for DNS) and starts the group's maintenance goroutine.
// Servers take their Health from reg (nil: a registry of the group's own).
// lookup nil means the system resolver.
func NewGroup(e *config.Entry, reg *Registry, lookup LookupFunc, log hclog.Logger) *Group {
	if reg == nil {
		reg = NewRegistry()
	}
	rs := resolverFor(e)
	if lookup == nil {
		lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return rs.LookupNetIP(ctx, "ip", host)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &Group{entry: e, log: log, lookup: lookup, reg: reg, byAdr: map[netip.AddrPort]*Server{},
		res: map[string][]netip.Addr{}, srv: map[string][]srvTarget{}, srvLk: srvLookup(rs),
		cancel: cancel, done: make(chan struct{})}
	g.resolve(ctx)
	go g.loop(ctx)
	return g
}

// Entry returns the group's configuration.
func (g *Group) Entry() *config.Entry { return g.entry }

// Slots returns the current weighted server list.
func (g *Group) Slots() *Slots { return g.slots.Load() }

// Has reports whether ap is one of the group's server addresses now.
func (g *Group) Has(ap netip.AddrPort) bool {
	return slices.ContainsFunc(g.slots.Load().Servers, func(s *Server) bool { return s.Addr == ap })
}

// Servers returns the distinct servers, in ServerList order.
func (g *Group) Servers() []*Server {
	var out []*Server
	for _, s := range g.slots.Load().Servers {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Close stops the goroutine and closes every idle connection. Connections
// in use are closed when released.
func (g *Group) Close() {
	g.cancel()
	<-g.done
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range g.byAdr {
		s.retire()
	}
}

func (g *Group) loop(ctx context.Context) {
	defer close(g.done)
	reap := time.NewTicker(max(min(g.entry.IdleTimeout/2, reapEvery), 10*time.Millisecond))
	defer reap.Stop()
	var resolveC <-chan time.Time
	if g.hasNames() {
		t := time.NewTicker(g.entry.ResolveInterval)
		defer t.Stop()
		resolveC = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-reap.C:
			for _, s := range g.Slots().Servers {
				s.reap(now, false)
			}
		case <-resolveC:
			g.resolve(ctx)
		}
	}
}

func (g *Group) hasNames() bool {
	for _, it := range g.entry.Servers {
		if _, ok := it.IP(); !ok {
			return true
		}
	}
	return false
}

// resolve rebuilds the slots from the ServerList. A name that fails to
// resolve keeps its last good addresses.
func (g *Group) resolve(ctx context.Context) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var list, backups []*Server
	var weights, bweights []int
	live := map[netip.AddrPort]bool{}
	for _, it := range g.entry.Servers {
		for _, t := range g.targets(ctx, it) {
			ap := t.ap
			s := g.byAdr[ap]
			if s == nil {
				s = &Server{Addr: ap, Name: it.String(), addr: ap.String(), g: g, h: g.reg.health(ap), tls: g.tlsFor(it),
					host: t.host}
				if g.entry.Health != nil {
					s.chk = g.reg.acquireCheck(ap, g.entry.Health, s.tls)
				}
				g.byAdr[ap] = s
			}
			live[ap] = true
			if t.backup { // srv.go
				backups, bweights = append(backups, s), append(bweights, t.weight)
				continue
			}
			list, weights = append(list, s), append(weights, t.weight)
		}
	}
	for ap, s := range g.byAdr {
		if !live[ap] {
			delete(g.byAdr, ap)
			s.retire()
			g.log.Info("server removed after re-resolution", "server", s.Name, "addr", s.addr)
		}
	}
	g.slots.Store(&Slots{Servers: append(list, backups...), Weights: append(weights, bweights...),
		Backups: len(backups)})
}

func (g *Group) addrs(ctx context.Context, it config.Server) []netip.Addr {
	if a, ok := it.IP(); ok {
		return []netip.Addr{a}
	}
	ctx, cancel := context.WithTimeout(ctx, g.entry.ConnectTimeout)
	defer cancel()
	found, err := g.lookup(ctx, it.Host)
	if err != nil || len(found) == 0 {
		if !isCanceled(ctx) {
			g.log.Warn("cannot resolve server", "server", it.String(), "error", errOr(err))
		}
		return g.res[it.Host]
	}
	out := make([]netip.Addr, 0, len(found))
	for _, a := range found {
		if a = a.Unmap(); !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	g.res[it.Host] = out
	return out
}

func isCanceled(ctx context.Context) bool { return ctx.Err() == context.Canceled }

func errOr(err error) error {
	if err == nil {
		return fmt.Errorf("no addresses")
	}
	return err
}

// Share returns the slow-start share of the server in slot i at now
// (balance.Shares).
func (s *Slots) Share(i int, now time.Time) float64 { return s.Servers[i].Share(now) }
