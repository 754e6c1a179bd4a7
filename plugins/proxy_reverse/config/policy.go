package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/capuchin/capuchin/api/conf"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/balance"
)

// Keys of stickiness, retries, the Forwarded field and DNS discovery, in an
// entry or in [PROXY_DEFAULTS] (an entry's own line wins):
//
//	Sticky cookie NAME [ATTR ...]  cookie stickiness (balance.ParseSticky); default off
//	RetryBudget P% [min=N]         retries and fail-overs at most P% of the requests of the
//	                               last 10 s, and always N per second; default off
//	                               (RetryBudget off); N defaults to 3
//	Forwarded on|off               send an RFC 7239 Forwarded field; default off
//	ForwardedBy NODE               by= of that field: _obfuscated, an IP or "unknown";
//	                               default: no by=
//	ForwardedTrust CIDR ...        clients whose Forwarded field is kept and appended to;
//	                               default: none (an incoming Forwarded is replaced)
//	Resolver HOST:PORT             DNS server for ServerList names and srv:// items;
//	                               default: the system's resolver
var policyKeys = map[string]func(e conf.Entry) (any, error){
	"sticky":         parseStickyKey,
	"retrybudget":    parseRetryBudget,
	"forwarded":      func(e conf.Entry) (any, error) { return e.Bool() },
	"forwardedby":    parseForwardedBy,
	"forwardedtrust": parseTrust,
	"resolver":       parseResolver,
}

// RetryBudget bounds retries and fail-overs (Envoy's retry budget,
// Finagle's RetryBudget). The zero value is no budget.
type RetryBudget struct {
	Percent   float64 // retries allowed per 100 requests; 0: no budget
	MinPerSec int     // retries allowed in any second whatever the requests
}

// DefaultRetryMinPerSec is the min= of a RetryBudget that gives none
// (Envoy's min_retry_concurrency, 3).
const DefaultRetryMinPerSec = 3

// setPolicy records one of policyKeys, once per section.
func (s *section) setPolicy(e conf.Entry, key string, once func(conf.Entry, string) error) error {
	if err := once(e, key); err != nil {
		return err
	}
	if _, err := e.String(); err != nil {
		return err
	}
	v, err := policyKeys[key](e)
	if err != nil {
		return err
	}
	s.policy[key] = v
	return nil
}

// policyKey returns key's value from the section, else the defaults.
func policyKey[T any](s, d *section, key string, def T) T {
	if v, ok := s.policy[key]; ok {
		return v.(T)
	}
	if v, ok := d.policy[key]; ok {
		return v.(T)
	}
	return def
}

// mergePolicy fills the entry's policy keys.
func mergePolicy(s, d *section, e *Entry) {
	e.Sticky = policyKey[*balance.Sticky](s, d, "sticky", nil)
	e.RetryBudget = policyKey(s, d, "retrybudget", RetryBudget{})
	e.Forwarded = policyKey(s, d, "forwarded", false)
	e.ForwardedBy = policyKey(s, d, "forwardedby", "")
	e.ForwardedTrust = policyKey[[]netip.Prefix](s, d, "forwardedtrust", nil)
	e.Resolver = policyKey(s, d, "resolver", "")
}

func parseStickyKey(e conf.Entry) (any, error) {
	st, err := balance.ParseSticky(strings.Fields(e.Value))
	if err != nil {
		return nil, e.Errorf("%v", err)
	}
	return st, nil
}

// parseRetryBudget reads "P% [min=N]" or "off".
func parseRetryBudget(e conf.Entry) (any, error) {
	f := strings.Fields(e.Value)
	if len(f) == 1 && strings.EqualFold(f[0], "off") {
		return RetryBudget{}, nil
	}
	bad := e.Errorf("want P%% [min=N] (0 < P <= 100, N in 0-1000) or off, got %q", e.Value)
	if len(f) < 1 || len(f) > 2 || !strings.HasSuffix(f[0], "%") {
		return nil, bad
	}
	p, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
	if err != nil || p <= 0 || p > 100 {
		return nil, bad
	}
	b := RetryBudget{Percent: p, MinPerSec: DefaultRetryMinPerSec}
	if len(f) == 2 {
		v, ok := strings.CutPrefix(strings.ToLower(f[1]), "min=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < 0 || n > 1000 {
			return nil, bad
		}
		b.MinPerSec = n
	}
	return b, nil
}

// parseForwardedBy reads a node of RFC 7239 §6: "unknown", an obfuscated
// identifier (_[A-Za-z0-9._-]+) or an IP address, which the field then
// carries quoted and bracketed when IPv6.
func parseForwardedBy(e conf.Entry) (any, error) {
	v := e.Value
	if a, err := netip.ParseAddr(v); err == nil && a.Zone() == "" {
		return ForwardedNode(a), nil
	}
	ok := strings.EqualFold(v, "unknown") || len(v) > 1 && v[0] == '_' &&
		!strings.ContainsFunc(v[1:], func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
		})
	if !ok {
		return nil, e.Errorf("want an IP address, _identifier or unknown, got %q", v)
	}
	return v, nil
}

// ForwardedNode returns a as a node of a Forwarded field: IPv4 as is,
// IPv6 quoted and bracketed (RFC 7239 §6).
func ForwardedNode(a netip.Addr) string {
	if a = a.Unmap(); a.Is4() {
		return a.String()
	}
	return `"[` + a.String() + `]"`
}

// parseTrust reads CIDR prefixes or addresses.
func parseTrust(e conf.Entry) (any, error) {
	var out []netip.Prefix
	for _, f := range strings.Fields(e.Value) {
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil || a.Zone() != "" {
				return nil, e.Errorf("want addresses or CIDR prefixes like 10.0.0.0/8, got %q", f)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// parseResolver reads HOST:PORT of a DNS server; IP literals only, since
// the resolver cannot resolve its own name.
func parseResolver(e conf.Entry) (any, error) {
	host, port, err := net.SplitHostPort(e.Value)
	if err == nil {
		if _, perr := netip.ParseAddr(host); perr != nil {
			err = perr
		} else if p, perr := strconv.ParseUint(port, 10, 16); perr != nil || p == 0 {
			err = fmt.Errorf("bad port")
		}
	}
	if err != nil {
		return nil, e.Errorf("want IP:port of a DNS server, like 127.0.0.1:53 or [::1]:53, got %q", e.Value)
	}
	return e.Value, nil
}
