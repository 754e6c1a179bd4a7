package upstream

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/capuchin/capuchin/plugins/proxy_reverse/config"
)

// DNS discovery. A ServerList item srv://NAME (Consul's
// _web._tcp.service.consul, a Kubernetes headless service's
// _http._tcp.api.ns.svc.cluster.local) stands for the targets of NAME's
// SRV records (RFC 2782), re-resolved every ResolveInterval like host
// names:
//   - the records of the lowest priority value are the servers the
//     balancer spreads requests over; the others are backups (RFC 2782),
//     tried in order of priority, then target and port, only when a
//     request found every preferred server offline or failing (as nginx's
//     "backup" servers);
//   - each target's addresses at the record's port are servers, of the
//     record's weight (0 counts as 1, above config.MaxWeight as
//     MaxWeight), which the balancers that read weights follow
//     (Smooth-Weighted-Round-Robin, Consistent-Hash);
//   - a target "." (RFC 2782: no service) adds nothing;
//   - a lookup that fails keeps the name's last good records, and a
//     target that fails to resolve keeps its last good addresses.
//
// Lookups go to the entry's Resolver (IP:port) when set, else to the
// system's resolver.

// SRVLookupFunc returns the SRV records of name.
type SRVLookupFunc func(ctx context.Context, name string) ([]*net.SRV, error)

// srvTarget is one SRV record kept: its target, port and weight.
type srvTarget struct {
	host   string
	port   uint16
	weight int
	backup bool // not of the lowest priority value
	prio   uint16
}

// target is one server of the list with its weight.
type target struct {
	ap     netip.AddrPort
	host   string // host:port for a Host field
	weight int
	backup bool
}

// resolverFor returns the entry's resolver: Go's resolver talking to the
// entry's Resolver, or the system's.
func resolverFor(e *config.Entry) *net.Resolver {
	if e.Resolver == "" {
		return net.DefaultResolver
	}
	addr := e.Resolver
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

func srvLookup(rs *net.Resolver) SRVLookupFunc {
	return func(ctx context.Context, name string) ([]*net.SRV, error) {
		_, recs, err := rs.LookupSRV(ctx, "", "", name)
		return recs, err
	}
}

// targets returns the servers of one ServerList item with their weights.
func (g *Group) targets(ctx context.Context, it config.Server) []target {
	if it.SRV {
		return g.srvTargets(ctx, it.Host)
	}
	var out []target
	for _, a := range g.addrs(ctx, it) {
		out = append(out, target{ap: netip.AddrPortFrom(a, it.Port), weight: max(1, it.Weight),
			host: net.JoinHostPort(it.Host, strconv.Itoa(int(it.Port)))})
	}
	return out
}

// srvTargets resolves an srv:// name and then its targets.
func (g *Group) srvTargets(ctx context.Context, name string) []target {
	recs := g.srvRecords(ctx, name)
	var out []target
	for _, r := range recs {
		for _, a := range g.addrs(ctx, config.Server{Host: r.host, Port: r.port}) {
			out = append(out, target{ap: netip.AddrPortFrom(a, r.port), weight: r.weight, backup: r.backup,
				host: net.JoinHostPort(r.host, strconv.Itoa(int(r.port)))})
		}
	}
	return out
}

// srvRecords returns the records of name by priority, target and port,
// the backups marked, or the last good ones when the lookup fails.
func (g *Group) srvRecords(ctx context.Context, name string) []srvTarget {
	lctx, cancel := context.WithTimeout(ctx, g.entry.ConnectTimeout)
	defer cancel()
	recs, err := g.srvLk(lctx, name)
	if err != nil || len(recs) == 0 {
		if !isCanceled(ctx) {
			g.log.Warn("cannot resolve SRV records", "server", config.SRVScheme+name, "error", errOr(err))
		}
		return g.srv[name]
	}
	best := slices.MinFunc(recs, func(a, b *net.SRV) int { return int(a.Priority) - int(b.Priority) }).Priority
	var out []srvTarget
	for _, r := range recs {
		host := strings.TrimSuffix(r.Target, ".")
		if host == "" || r.Port == 0 {
			continue
		}
		out = append(out, srvTarget{host: host, port: r.Port, weight: min(max(1, int(r.Weight)), config.MaxWeight),
			backup: r.Priority != best, prio: r.Priority})
	}
	slices.SortFunc(out, func(a, b srvTarget) int {
		if a.prio != b.prio {
			return int(a.prio) - int(b.prio)
		}
		if c := strings.Compare(a.host, b.host); c != 0 {
			return c
		}
		return int(a.port) - int(b.port)
	})
	g.srv[name] = out
	return out
}
