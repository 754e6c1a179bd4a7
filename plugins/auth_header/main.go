// Command auth_header is a stage-20 plugin that lets through only requests
// carrying a known token in a header field, as an API gateway's key check
// does. It sees every request (or every request whose path matches its
// rules) before any content handler, so it guards proxied and static
// content alike.
//
// Configuration (auth_header.conf, required: an authentication plugin
// without tokens is a mistake, not an open door):
//
//	[AUTH_HEADER]
//	    Header NAME        the field holding the token; default Authorization
//	    Token VALUE        repeatable, at least one; the whole field value,
//	                       e.g. "Bearer 3f9c..." (compared in constant time)
//	    Match REGEX        repeatable; Go regexp, case-insensitive, unanchored,
//	                       against the decoded path; default: every path
//	    Challenge VALUE    WWW-Authenticate of the 401; default Bearer realm="capuchin"
//
// A guarded request without the field, with a value that is no Token, or
// with the field more than once gets 401 Unauthorized; the connection stays
// usable. The stage is fail-closed: if the plugin is down or misses its
// deadline (1 s), the host answers 503. With Match patterns it declares
// them as its stage-20 filter: other requests cost no call. Either way
// keep-alive connections stay leased to a content plugin such as
// proxy_reverse, which asks the plugin itself about the requests it must
// see (peer calls).
package main

import (
	"crypto/sha256"
	"crypto/subtle"

	"github.com/capuchin/capuchin/api"
	"github.com/capuchin/capuchin/api/http1"
)

// authHeader is the plugin; rules is set once by Configure, before any call.
type authHeader struct {
	rules *rules
}

// Info: the zero Limits mean the host's default deadline and fail-closed.
func (a *authHeader) Info() api.Info { return api.Info{Name: "auth_header", Version: "1.0"} }

// Configure reads auth_header.conf.
func (a *authHeader) Configure(path string) error {
	r, err := loadRules(path)
	if err != nil {
		return err
	}
	a.rules = r
	api.Logger().Info("rules loaded", "header", r.header, "tokens", len(r.tokens), "every_path", r.match == nil)
	return nil
}

// RequestFilter: stage 20 sees only the requests whose path a Match
// pattern may guard (the patterns, and every path that cleans to another,
// since guarded also tests the cleaned path); without Match, every
// request.
func (a *authHeader) RequestFilter() api.Claims {
	if a.rules.match == nil {
		return api.Claims{}
	}
	return api.Claims{Paths: http1.PathFilter(a.rules.match)}
}

// InlineRequest: Request decides from the request and the rules in memory
// and never waits, so the SDK runs it on the goroutine that read the call.
func (a *authHeader) InlineRequest() bool { return true }

// unauthorized is the page sent with a 401.
var unauthorized = []byte("<!DOCTYPE html>\n<html><head><title>401 Unauthorized</title></head>" +
	"<body><h1>401 Unauthorized</h1><p>This URL needs a valid token.</p></body></html>\n")

// Request answers 401 to guarded requests without a known token (stage 20).
func (a *authHeader) Request(c *api.Conn, req *http1.Request, vhost string) (api.Verdict, *api.Reply) {
	if !a.rules.guarded(req.Path) || a.rules.allowed(req.Header) {
		return api.Continue, nil
	}
	return api.Respond, &api.Reply{
		Status: 401,
		Header: http1.Header{
			{Name: "WWW-Authenticate", Value: a.rules.challenge},
			{Name: "Content-Type", Value: "text/html; charset=utf-8"},
		},
		Body: unauthorized,
	}
}

// allowed reports whether h holds the token field exactly once, with a
// value that is one of the tokens. Every token is compared, in constant
// time, on hashes of equal length, so the timing tells nothing about
// which token or how much of it matched.
func (r *rules) allowed(h http1.Header) bool {
	n, v := 0, ""
	for i := range h {
		if http1.EqualFold(h[i].Name, r.header) {
			n, v = n+1, h[i].Value
		}
	}
	if n != 1 {
		return false
	}
	sum := sha256.Sum256([]byte(v))
	ok := 0
	for i := range r.tokens {
		ok |= subtle.ConstantTimeCompare(sum[:], r.tokens[i][:])
	}
	return ok == 1
}

func main() { api.Serve(&authHeader{}) }
