// Command mandril is Capuchin's access-control plugin, after Monkey's
// plugin of the same name. It hooks two stages:
//
//	10  a connection from a denied address is closed before any byte is read
//	20  a request whose path matches a denied pattern gets 403 Forbidden
//
// Configuration (mandril.conf, required: an access-control plugin without
// its rules is a mistake, not an open door):
//
//	[MANDRIL]
//	    DenyIP ADDR|CIDR ...   repeatable; IPv4 or IPv6, e.g. 10.0.0.0/8, ::1
//	    DenyURL REGEX          repeatable; Go regexp, case-insensitive,
//	                           unanchored, against the percent-decoded path
//
// Both stages are fail-closed: if mandril is down or misses its deadline the
// host closes the connection (stage 10) or answers 503 (stage 20).
//
// Both stages are filtered by the host: mandril declares its DenyIP
// networks as its stage-10 filter and its DenyURL patterns (plus every
// path that cleans to another) as its stage-20 filter, so a request no
// rule can deny costs no call and a proxied connection stays leased.
package main

import (
	"github.com/capuchin/capuchin/api"
	"github.com/capuchin/capuchin/api/http1"
)

// mandril is the plugin; rules is set once by Configure, before any call.
type mandril struct {
	rules *rules
}

func (m *mandril) Info() api.Info {
	// The zero Limits: the host's default deadline and fail-closed.
	return api.Info{Name: "mandril", Version: "1.0"}
}

// Configure reads mandril.conf.
func (m *mandril) Configure(path string) error {
	r, err := loadRules(path)
	if err != nil {
		return err
	}
	m.rules = r
	api.Logger().Info("rules loaded", "deny_ip", len(r.nets), "deny_url", r.urlCount)
	return nil
}

// Connect closes connections from denied addresses (stage 10).
func (m *mandril) Connect(c *api.Conn) api.Verdict {
	if m.rules.deniedAddr(c.Remote.Addr()) {
		return api.Close
	}
	return api.Continue
}

// ConnectFilter: stage 10 sees only clients in a denied network.
func (m *mandril) ConnectFilter() api.Networks { return m.rules.nets }

// RequestFilter: stage 20 sees only requests whose path a DenyURL pattern
// may deny (see rules.filter).
func (m *mandril) RequestFilter() api.Claims { return api.Claims{Paths: m.rules.filter()} }

// InlineRequest: Request matches the path against rules in memory and
// never waits, so the SDK runs it on the goroutine that read the call.
func (m *mandril) InlineRequest() bool { return true }

// forbidden is the page sent for a denied URL.
var forbidden = []byte("<!DOCTYPE html>\n<html><head><title>403 Forbidden</title></head>" +
	"<body><h1>403 Forbidden</h1><p>Access to this URL is denied.</p></body></html>\n")

// Request answers 403 to requests for denied URLs (stage 20).
func (m *mandril) Request(c *api.Conn, req *http1.Request, vhost string) (api.Verdict, *api.Reply) {
	if !m.rules.deniedPath(req.Path) {
		return api.Continue, nil
	}
	return api.Respond, &api.Reply{
		Status: 403,
		Header: http1.Header{{Name: "Content-Type", Value: "text/html; charset=utf-8"}},
		Body:   forbidden,
	}
}

func main() { api.Serve(&mandril{}) }
