package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"regexp"
	"strings"

	"github.com/capuchin/capuchin/api/conf"
	"github.com/capuchin/capuchin/api/http1"
)

// rules are mandril's deny lists. They are read-only after loadRules, so
// concurrent calls need no lock.
type rules struct {
	nets     []netip.Prefix // denied networks; addresses are /32 or /128
	url      *regexp.Regexp // every DenyURL as one alternation; nil if none
	urlCount int
}

// loadRules reads the [MANDRIL] section of the file at path. The file must
// exist; every error names the file and line.
func loadRules(path string) (*rules, error) {
	f, err := conf.ParseFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (mandril needs its rules there; an empty [MANDRIL] section allows everything)", err)
	}
	if err != nil {
		return nil, err
	}
	r := &rules{}
	var urls []string
	for _, s := range f.Sections {
		if !s.Is("MANDRIL") {
			return nil, s.Errorf("unknown section [%s] (want [MANDRIL])", s.Name)
		}
		err := s.Visit(map[string]func(conf.Entry) error{
			"denyip": r.addIP,
			"denyurl": func(e conf.Entry) error {
				re, err := compileURL(e)
				urls = append(urls, re)
				return err
			},
		})
		if err != nil {
			return nil, err
		}
	}
	if r.url, err = http1.CompilePaths(urls); err != nil {
		return nil, fmt.Errorf("%s: DenyURL patterns together: %w", path, err)
	}
	r.urlCount = len(urls)
	return r, nil
}

// addIP adds the addresses and networks of one DenyIP line.
func (r *rules) addIP(e conf.Entry) error {
	fields, err := e.Fields()
	if err != nil {
		return err
	}
	for _, v := range fields {
		p, err := parseNet(v)
		if err != nil {
			return e.Errorf("%v", err)
		}
		r.nets = append(r.nets, p)
	}
	return nil
}

// parseNet reads "ADDR" or "ADDR/BITS". IPv4-mapped IPv6 forms are turned
// into IPv4, as client addresses are.
func parseNet(v string) (netip.Prefix, error) {
	if strings.ContainsRune(v, '/') {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return p, fmt.Errorf("bad network %q: want ADDR/BITS, e.g. 10.0.0.0/8 or fd00::/8", v)
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("bad address %q: want an IPv4 or IPv6 address or a network", v)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// compileURL checks one DenyURL pattern and returns it.
func compileURL(e conf.Entry) (string, error) {
	if _, err := e.Regexp(); err != nil {
		return "", err
	}
	return e.Value, nil
}

// deniedAddr reports whether a is in a denied network.
func (r *rules) deniedAddr(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range r.nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// deniedPath reports whether the decoded path p, or its cleaned form
// ("//a/./b/../c" is "/a/c"), matches a DenyURL pattern: a request cannot
// slip past a rule by spelling the same file differently.
func (r *rules) deniedPath(p string) bool {
	return http1.MatchPath(r.url, p)
}

// nothing is a stage-20 filter pattern that matches no path.
const nothing = `[^\x00-\x{10FFFF}]`

// filter returns the host-side stage-20 filter: at least every path
// deniedPath denies. A path matches the patterns themselves, or, if its
// cleaned form differs, http1.UncleanPath (a false positive costs only a
// call; a false negative would let a denied request through).
func (r *rules) filter() []string {
	if r.url == nil {
		return []string{nothing}
	}
	return http1.PathFilter(r.url)
}
