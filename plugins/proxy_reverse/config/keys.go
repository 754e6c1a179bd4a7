package config

import (
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/capuchin/capuchin/api/conf"
	"github.com/capuchin/capuchin/internal/claim"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/balance"
)

// parseSection reads the keys of one section. StatisticsURL is only valid in
// [PROXY_DEFAULTS].
func parseSection(s *conf.Section, isDefaults bool) (*section, error) {
	out := &section{sec: s, ints: map[string]int{}, durs: map[string]time.Duration{}, bools: map[string]bool{},
		strs: map[string]conf.Entry{}, policy: map[string]any{}, at: map[string]conf.Entry{}}
	once := func(e conf.Entry, key string) error {
		if first, ok := out.at[key]; ok {
			return e.Errorf("given twice in this section (first at line %d)", first.Line)
		}
		out.at[key] = e
		return nil
	}
	h := map[string]func(conf.Entry) error{
		"serverlist":   out.serverList,
		"match":        out.addMatch,
		"loadbalancer": func(e conf.Entry) error { return out.setBalancer(e, once) },
		"loadbalance":  func(e conf.Entry) error { return out.setBalancer(e, once) },
		"statisticsurl": func(e conf.Entry) error {
			if !isDefaults {
				return e.Errorf("only allowed in [PROXY_DEFAULTS]")
			}
			return out.setStats(e, once)
		},
	}
	h["healthcheck"] = func(e conf.Entry) error { return out.setHealthCheck(e, once) }
	h["healthstatus"] = func(e conf.Entry) error { return out.setHealthStatus(e, once) }
	h["healthbody"] = func(e conf.Entry) error { return out.setHealthBody(e, once) }
	for _, k := range tlsKeys {
		h[k] = func(e conf.Entry) error { return out.setTLSKey(e, k, once) }
	}
	for _, k := range []string{"attemptscount", "maxidleconns", "clientbodyminrate", "healthrise", "healthfall"} {
		h[k] = func(e conf.Entry) error { return out.setInt(e, k, once) }
	}
	durKeys := map[string]bool{"offlinetimeout": true, "connecttimeout": false,
		"responsetimeout": false, "idletimeout": false, "clientbodytimeout": false, "resolveinterval": false,
		"tunnelidletimeout": false, "healthinterval": false, "healthtimeout": false, "slowstart": true}
	for k, zeroOK := range durKeys {
		h[k] = func(e conf.Entry) error { return out.setDur(e, k, zeroOK, once) }
	}
	for k := range policyKeys {
		h[k] = func(e conf.Entry) error { return out.setPolicy(e, k, once) }
	}
	h["requestdeadline"] = func(e conf.Entry) error {
		if !isDefaults {
			return e.Errorf("only allowed in [PROXY_DEFAULTS]")
		}
		return out.setDur(e, "requestdeadline", false, once)
	}
	h["underscoresinheaders"] = func(e conf.Entry) error { return out.setBool(e, "underscoresinheaders", once) }
	if err := s.Visit(h); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *section) setBool(e conf.Entry, key string, once func(conf.Entry, string) error) error {
	if err := once(e, key); err != nil {
		return err
	}
	b, err := e.Bool()
	s.bools[key] = b
	return err
}

// serverList reads "ADDR [weight=N] ADDR ...": a weight=N item weighs the
// server before it on the same line.
func (s *section) serverList(e conf.Entry) error {
	f, err := e.Fields()
	if err != nil {
		return err
	}
	first := len(s.servers)
	for _, item := range f {
		if name, v, ok := strings.Cut(item, "="); ok && strings.EqualFold(name, "weight") {
			if len(s.servers) == first || s.servers[len(s.servers)-1].Weight != 0 {
				return e.Errorf("%q must follow a server (ADDR weight=N)", item)
			}
			if s.servers[len(s.servers)-1].SRV {
				return e.Errorf("%q cannot weigh an srv:// item: its records give the weights", item)
			}
			w, err := strconv.Atoi(v)
			if err != nil || w < 1 || w > MaxWeight {
				return e.Errorf("bad weight %q: want 1-%d", item, MaxWeight)
			}
			s.servers[len(s.servers)-1].Weight = w
			if w > 1 && s.weighted == nil {
				s.weighted = &e
			}
			continue
		}
		srv, err := ParseServer(item)
		if err != nil {
			return e.Errorf("%v", err)
		}
		s.servers = append(s.servers, srv)
	}
	return nil
}

func (s *section) addMatch(e conf.Entry) error {
	re, err := e.Regexp()
	if err != nil {
		return err
	}
	s.match = append(s.match, claim.PathOf(re))
	s.src = append(s.src, e.Value)
	return nil
}

func (s *section) setBalancer(e conf.Entry, once func(conf.Entry, string) error) error {
	if err := once(e, "loadbalancer"); err != nil {
		return err
	}
	v, err := e.String()
	if err != nil {
		return err
	}
	b, err := balance.Parse(v)
	if err != nil {
		return e.Errorf("%v", err)
	}
	s.balancer = &b
	return nil
}

func (s *section) setStats(e conf.Entry, once func(conf.Entry, string) error) error {
	if err := once(e, "statisticsurl"); err != nil {
		return err
	}
	v, err := e.Path()
	if err != nil {
		return err
	}
	s.stats = &v
	return nil
}

func (s *section) setInt(e conf.Entry, key string, once func(conf.Entry, string) error) error {
	if err := once(e, key); err != nil {
		return err
	}
	n, err := e.Int(0, 1<<20)
	if err != nil {
		return err
	}
	s.ints[key] = n
	return nil
}

func (s *section) setDur(e conf.Entry, key string, zeroOK bool, once func(conf.Entry, string) error) error {
	if err := once(e, key); err != nil {
		return err
	}
	d, err := parseDuration(e.Value)
	if err != nil {
		return e.Errorf("%v", err)
	}
	if d == 0 && !zeroOK {
		return e.Errorf("must be greater than zero")
	}
	s.durs[key] = d
	return nil
}

// parseDuration reads whole seconds ("30") or a Go duration ("500ms").
func parseDuration(v string) (time.Duration, error) {
	if v == "" {
		return 0, errorString("missing value")
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 || n > 1<<31 {
			return 0, errorString("want seconds >= 0, got " + strconv.Quote(v))
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, errorString("want seconds or a duration like 500ms, got " + strconv.Quote(v))
	}
	return d, nil
}

type errorString string

func (e errorString) Error() string { return string(e) }

// SRVScheme starts a ServerList item naming DNS SRV records.
const SRVScheme = "srv://"

// ParseServer reads one ServerList item: host:port, a.b.c.d:port or
// [v6]:port, optionally after http:// or https:// (TLS), or srv://NAME (a
// DNS name whose SRV records list the servers, such as
// _http._tcp.api.service.consul).
func ParseServer(item string) (Server, error) {
	if len(item) >= len(SRVScheme) && strings.EqualFold(item[:len(SRVScheme)], SRVScheme) {
		name := item[len(SRVScheme):]
		if !validHostname(name) {
			return Server{}, errorString("bad SRV name in " + strconv.Quote(item))
		}
		return Server{Host: name, SRV: true}, nil
	}
	s, secure := strings.CutPrefix(item, "https://")
	if !secure {
		s, _ = strings.CutPrefix(item, "http://")
	}
	srv, err := parseHostPort(s)
	srv.TLS = secure
	return srv, err
}

func parseHostPort(s string) (Server, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return Server{}, errorString("bad server " + strconv.Quote(s) + ": want host:port or [ipv6]:port")
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return Server{}, errorString("bad port in " + strconv.Quote(s) + ": want 1-65535")
	}
	srv := Server{Host: host, Port: uint16(p)}
	if a, ok := srv.IP(); ok {
		if strings.Contains(host, ":") != a.Is6() || a.Zone() != "" {
			return Server{}, errorString("bad address in " + strconv.Quote(s))
		}
		srv.Host = a.String()
		return srv, nil
	}
	if strings.HasPrefix(s, "[") || !validHostname(host) {
		return Server{}, errorString("bad host in " + strconv.Quote(s))
	}
	return srv, nil
}

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
