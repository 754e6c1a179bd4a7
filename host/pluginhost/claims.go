package pluginhost

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/api/transport"
)

// claimFilter is a stage-30 claim filter compiled once at start-up. Every
// non-empty list must match.
type claimFilter struct {
	paths   []*regexp.Regexp
	hosts   []string
	methods []string
}

func compileClaims(c transport.Claims) (*claimFilter, error) {
	f := &claimFilter{hosts: c.Hosts, methods: c.Methods}
	for _, p := range c.Paths {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("claim filter path %q: %w", p, err)
		}
		f.paths = append(f.paths, re)
	}
	for i, h := range f.hosts {
		f.hosts[i] = strings.ToLower(h)
	}
	return f, nil
}

func (f *claimFilter) match(req *http1.Request) bool {
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

func (f *claimFilter) matchMethod(m string) bool {
	for _, x := range f.methods {
		if x == m {
			return true
		}
	}
	return false
}

func (f *claimFilter) matchHost(h string) bool {
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
