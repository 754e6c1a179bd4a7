// Package proxy is the engine of the proxy_reverse plugin: it matches a
// request's path against the entries of proxy_reverse.conf (first match
// wins), forwards a matching request to the entry's backends, serves the
// status page at StatisticsURL and declines everything else.
package proxy

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/balance"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/config"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/forward"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/upstream"
)

// Proxy is the engine. Safe for concurrent use by many connections.
type Proxy struct {
	cfg     *config.Config
	log     hclog.Logger
	clock   http1.Clock
	fwd     *forward.Forwarder
	entries []*entry
}

type entry struct {
	cfg    *config.Entry
	group  *upstream.Group
	pol    balance.Policy
	picked atomic.Pointer[picked] // the picker of the group's current slots
	budget *forward.Budget        // nil: no RetryBudget
	fwd    *forward.Forwarded     // nil: Forwarded off
}

// picked is a picker and the server list it was built for.
type picked struct {
	slots *upstream.Slots
	pk    balance.Picker
}

// picker returns the group's current server list and the policy's picker
// for it. The picker is built (the slow path) only when the list changed
// since the last request; concurrent requests never wait for each other
// (two may build the same picker once, and either is kept).
func (e *entry) picker() (*upstream.Slots, balance.Picker) {
	sl := e.group.Slots()
	if c := e.picked.Load(); c != nil && c.slots == sl {
		return sl, c.pk
	}
	pk := e.pol.Picker(sl)
	if e.cfg.SlowStart > 0 {
		pk = balance.SlowStart(pk, sl, nil)
	}
	if st := e.cfg.Sticky; st != nil {
		pk = st.Wrap(pk, sl)
	}
	c := &picked{slots: sl, pk: pk}
	e.picked.Store(c)
	return sl, c.pk
}

// Result is the report of Serve: forward's, or Declined.
type Result struct {
	forward.Result
	Declined bool // no entry matches: the connection was not touched
}

// Option adjusts New.
type Option func(*options)

type options struct {
	lookup upstream.LookupFunc
	reg    *upstream.Registry
}

// WithRegistry shares reg, the health and counters of backend addresses,
// with the engine; keep one across reconfigurations so that they survive.
func WithRegistry(reg *upstream.Registry) Option { return func(o *options) { o.reg = reg } }

// WithLookup replaces the system resolver for ServerList hostnames.
func WithLookup(f upstream.LookupFunc) Option { return func(o *options) { o.lookup = f } }

// New builds the engine and starts each entry's resolver and pool
// maintenance; Close stops them.
func New(cfg *config.Config, log hclog.Logger, opts ...Option) (*Proxy, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if o.reg == nil {
		o.reg = upstream.NewRegistry()
	}
	p := &Proxy{cfg: cfg, log: log.Named("proxy")}
	p.fwd = &forward.Forwarder{}
	for i, ec := range cfg.Entries {
		pol, err := ec.Balancer.New()
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("entry at %s: balancer: %w", ec.Where, err)
		}
		e := &entry{cfg: ec, pol: pol, group: upstream.NewGroup(ec, o.reg, o.lookup, p.log.With("entry", i+1)),
			budget: forward.NewBudget(ec.RetryBudget.Percent, ec.RetryBudget.MinPerSec, nil)}
		if ec.Forwarded {
			e.fwd = &forward.Forwarded{By: ec.ForwardedBy, Trust: ec.ForwardedTrust}
		}
		e.picker() // the first list's picker, before any request
		p.entries = append(p.entries, e)
	}
	o.reg.Retain(func(ap netip.AddrPort) bool {
		return slices.ContainsFunc(p.entries, func(e *entry) bool { return e.group.Has(ap) })
	})
	return p, nil
}

// Claims returns the claim-filter path regexes for the host: every Match
// rule in order, as Go regexp sources prefixed with (?i) (they match
// case-insensitively, unanchored, the decoded path), then the
// StatisticsURL as an anchored regex if set.
func (p *Proxy) Claims() []string {
	var out []string
	for _, e := range p.cfg.Entries {
		for _, src := range e.MatchSrc {
			out = append(out, "(?i)"+src)
		}
	}
	if p.cfg.StatisticsURL != "" {
		out = append(out, "^"+regexp.QuoteMeta(p.cfg.StatisticsURL)+"$")
	}
	return out
}

// Route is what the proxy does with one request path: serve the status
// page, or forward to the first entry whose Match rules cover it.
type Route struct {
	p *Proxy
	e *entry // nil: the status page
}

// Route matches path (once, so that a caller can decide before it touches
// the connection); false means no entry claims it.
func (p *Proxy) Route(path string) (Route, bool) {
	if p.cfg.StatisticsURL != "" && path == p.cfg.StatisticsURL {
		return Route{p: p}, true
	}
	e := p.match(path)
	return Route{p: p, e: e}, e != nil
}

// Serve handles one request whose head has been read: r.Conn is the
// client socket, r.BR a reader over it that already holds whatever followed
// the head (see the package documentation of forward for the forwarding
// rules). It returns Declined=true without touching the connection when no
// entry matches.
func (p *Proxy) Serve(ctx context.Context, r *forward.Request) Result {
	rt, ok := p.Route(r.Req.Path)
	if !ok {
		return Result{Declined: true}
	}
	return rt.Serve(ctx, r)
}

// Serve answers r along the route, as Proxy.Serve does.
func (rt Route) Serve(ctx context.Context, r *forward.Request) Result {
	p := rt.p
	if rt.e == nil {
		return p.serveStatus(r)
	}
	slots, pk := rt.e.picker()
	r.KeepUnderscores = rt.e.cfg.UnderscoresInHeaders
	r.Budget, r.Sticky, r.Forwarded = rt.e.budget, rt.e.cfg.Sticky, rt.e.fwd
	res := p.fwd.Forward(ctx, slots, pk, r)
	if res.Err != nil && res.Status >= 500 {
		p.log.Debug("request failed", "path", r.Req.Path, "status", res.Status, "error", res.Err)
	}
	return Result{Result: res}
}

func (p *Proxy) match(path string) *entry {
	for _, e := range p.entries {
		if e.cfg.MatchPath(path) {
			return e
		}
	}
	return nil
}

// Close stops every resolver and closes the idle backend connections.
func (p *Proxy) Close() error {
	for _, e := range p.entries {
		e.group.Close()
	}
	p.fwd.Close()
	return nil
}
