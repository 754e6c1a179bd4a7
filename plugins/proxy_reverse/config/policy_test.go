package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// The policy keys, inherited from [PROXY_DEFAULTS], their defaults, and
// srv:// items.
func TestPolicyKeys(t *testing.T) {
	cfg, err := Parse("p.conf", strings.NewReader(`[PROXY_DEFAULTS]
    RetryBudget 25% min=5
    ForwardedTrust 10.0.0.0/8 ::1
    Resolver 127.0.0.1:5353
[PROXY_ENTRY]
    Match ^/a
    ServerList srv://_http._tcp.api.service.consul 10.0.0.1:80
    Sticky cookie srv Max-Age=60
    Forwarded on
    ForwardedBy 2001:db8::1
[PROXY_ENTRY]
    Match ^/b
    ServerList 10.0.0.1:80
    RetryBudget off
[PROXY_ENTRY]
    Match ^/c
    ServerList api.internal:80
    RetryBudget 10%
    Forwarded on
    ForwardedBy _proxy-1
    Resolver [::1]:53
`))
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := cfg.Entries[0], cfg.Entries[1], cfg.Entries[2]
	if srv := a.Servers[0]; !srv.SRV || srv.Host != "_http._tcp.api.service.consul" ||
		srv.String() != "srv://_http._tcp.api.service.consul" || a.Servers[1].SRV {
		t.Errorf("srv item: %+v", a.Servers)
	}
	if a.Sticky == nil || a.Sticky.Name != "srv" || a.Sticky.Attrs != "; Max-Age=60" || b.Sticky != nil {
		t.Errorf("Sticky: %+v %+v", a.Sticky, b.Sticky)
	}
	if a.RetryBudget != (RetryBudget{25, 5}) || b.RetryBudget != (RetryBudget{}) || c.RetryBudget != (RetryBudget{10, 3}) {
		t.Errorf("RetryBudget: %+v %+v %+v", a.RetryBudget, b.RetryBudget, c.RetryBudget)
	}
	if !a.Forwarded || b.Forwarded || a.ForwardedBy != `"[2001:db8::1]"` || c.ForwardedBy != "_proxy-1" || b.ForwardedBy != "" {
		t.Errorf("Forwarded: %v %q %v %q", a.Forwarded, a.ForwardedBy, b.Forwarded, c.ForwardedBy)
	}
	if want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}; !slices.Equal(b.ForwardedTrust, want) {
		t.Errorf("ForwardedTrust: %v, want %v", b.ForwardedTrust, want) // forward's trusts tests the matching
	}
	if a.Resolver != "127.0.0.1:5353" || c.Resolver != "[::1]:53" {
		t.Errorf("Resolver: %q %q", a.Resolver, c.Resolver)
	}
	d, err := Parse("p.conf", strings.NewReader("[PROXY_ENTRY]\n    Match ^/\n    ServerList 10.0.0.1:80\n"))
	if err != nil {
		t.Fatal(err)
	}
	if e := d.Entries[0]; e.Sticky != nil || e.RetryBudget.Percent != 0 || e.Forwarded || e.ForwardedTrust != nil || e.Resolver != "" {
		t.Errorf("defaults: %+v", e)
	}
}

// Bad values are errors at their line.
func TestPolicyKeyErrors(t *testing.T) {
	for line, want := range map[string]string{
		"Sticky header x":                      "p.conf:4: Sticky: want cookie NAME",
		"Sticky cookie srv Path=x":             `p.conf:4: Sticky: bad cookie attribute "Path=x"`,
		"RetryBudget 20":                       "p.conf:4: RetryBudget: want P% [min=N]",
		"RetryBudget 0%":                       "p.conf:4: RetryBudget: want P% [min=N]",
		"RetryBudget 101%":                     "p.conf:4: RetryBudget: want P% [min=N]",
		"RetryBudget 20% max=3":                "p.conf:4: RetryBudget: want P% [min=N]",
		"Forwarded maybe":                      "p.conf:4: Forwarded:",
		"ForwardedBy proxy1":                   "p.conf:4: ForwardedBy: want an IP address, _identifier or unknown",
		"ForwardedTrust 10.0.0.0/33":           "p.conf:4: ForwardedTrust: want addresses or CIDR prefixes",
		"Resolver dns.example:53":              "p.conf:4: Resolver: want IP:port of a DNS server",
		"Resolver 127.0.0.1":                   "p.conf:4: Resolver: want IP:port of a DNS server",
		"ServerList srv://bad_name!":           `p.conf:4: ServerList: bad SRV name in "srv://bad_name!"`,
		"ServerList srv://_a._tcp.b weight=2":  `p.conf:4: ServerList: "weight=2" cannot weigh an srv:// item`,
		"Sticky cookie a\n    Sticky cookie b": "p.conf:5: Sticky: given twice",
	} {
		_, err := Parse("p.conf", strings.NewReader("[PROXY_ENTRY]\n    Match ^/\n    ServerList 10.0.0.1:80\n    "+line+"\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", line, err, want)
		}
	}
}
