// Package claim is the request filter: which requests a content plugin
// claims at stage 30, or a stage-20 hook wants to see. The host evaluates
// it in-process so that a request no filter matches costs no plugin call,
// and the SDK evaluates the same filters for the requests a plugin serves
// under a connection lease (its own claims, and the stage-20 filters that
// send a request back to the host).
package claim

import (
	"fmt"
	"strings"

	"github.com/capuchin/capuchin/api/http1"
)

// Filter is a compiled claim filter: a request matches when every
// non-empty list has a match. The zero value matches everything.
type Filter struct {
	paths   []Path
	hosts   []string
	methods []string
}

// Compile builds a filter from path regexps (Go syntax, unanchored, against
// the percent-decoded path), host names (case-insensitive, port ignored)
// and exact methods.
func Compile(paths, hosts, methods []string) (*Filter, error) {
	f := &Filter{methods: append([]string(nil), methods...)}
	for _, p := range paths {
		re, err := CompilePath(p)
		if err != nil {
			return nil, fmt.Errorf("claim filter path %q: %w", p, err)
		}
		f.paths = append(f.paths, re)
	}
	for _, h := range hosts {
		f.hosts = append(f.hosts, strings.ToLower(h))
	}
	return f, nil
}

// Match reports whether the filter claims req. A nil filter claims nothing.
func (f *Filter) Match(req *http1.Request) bool {
	if f == nil {
		return false
	}
	if len(f.methods) > 0 && !f.matchMethod(req.Method) {
		return false
	}
	if len(f.hosts) > 0 && !f.matchHost(req.Host) {
		return false
	}
	if len(f.paths) == 0 {
		return true
	}
	for _, re := range f.paths {
		if re.MatchString(req.Path) {
			return true
		}
	}
	return false
}

func (f *Filter) matchMethod(m string) bool {
	for _, x := range f.methods {
		if x == m {
			return true
		}
	}
	return false
}

func (f *Filter) matchHost(h string) bool {
	h = stripPort(h)
	for _, x := range f.hosts {
		if http1.EqualFold(x, h) {
			return true
		}
	}
	return false
}

// stripPort removes ":port" from a Host value, keeping IPv6 brackets.
func stripPort(h string) string {
	i := strings.LastIndexByte(h, ':')
	if i < 0 || strings.IndexByte(h[i:], ']') >= 0 {
		return h
	}
	return h[:i]
}
