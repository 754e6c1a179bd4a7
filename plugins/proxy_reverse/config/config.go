// Package config reads proxy_reverse.conf, the reverse proxy's configuration
// in Monkey's format, into typed entries.
//
//	[PROXY_DEFAULTS]          at most one; entries inherit every key they lack
//	    ServerList ADDR ...   host:port, a.b.c.d:port or [v6]:port; repetition is weight;
//	                          srv://NAME: the targets of NAME's DNS SRV records;
//	                          ADDR weight=N (1-256) for the balancers that read weights
//	    LoadBalancer NAME ... also spelled LoadBalance; a name of the balance registry
//	                          and its arguments (default balance.Default, first-alive)
//	    Match REGEX           repeatable
//	    AttemptsCount N       consecutive failures before a server goes offline (0: HA off)
//	    OfflineTimeOut S      seconds a server stays offline after its last failure
//	    ConnectTimeout T      backend connect timeout
//	    ResponseTimeout T     time a backend has to send a response head
//	    IdleTimeout T         how long an idle pooled backend connection is kept
//	    MaxIdleConns N        idle pooled connections kept per server (default: no
//	                          bound but IdleTimeout; 0 turns pooling off)
//	    ResolveInterval T     how often hostnames are re-resolved
//	    ClientBodyTimeout T   longest wait for request body bytes from the client (408);
//	                          unset: the host's Timeout
//	    ClientBodyMinRate N   bytes per second a request body must average, on top of
//	                          one ClientBodyTimeout (408 below it); 0 = no minimum;
//	                          default 500
//	    UnderscoresInHeaders B  forward request fields with '_' in the name (default off)
//	    TunnelIdleTimeout T   an upgraded (WebSocket) tunnel with no traffic either way
//	                          this long is closed; default 1h
//	    TLSCA, TLSCertificate, TLSKey, TLSServerName   https:// servers (tls.go)
//	    Sticky, RetryBudget, Forwarded, ForwardedBy, ForwardedTrust, Resolver: policy.go
//	    StatisticsURL PATH    [PROXY_DEFAULTS] only: the status page's path
//	    HealthCheck M /P [H]  active HTTP check (method, path, optional Host), or
//	                          "HealthCheck tcp" for a connect check; default none
//	    HealthStatus R ...    status codes a check accepts: 200-399 (default), 200,204
//	    HealthBody TEXT       substring the check's answer body must contain (default none)
//	    HealthInterval T      time between checks (default 2s)
//	    HealthTimeout T       time a check may take (default 1s)
//	    HealthRise N          consecutive good checks that bring a server up (default 2)
//	    HealthFall N          consecutive bad checks that take a server down (default 3)
//	    SlowStart T           a recovered server's share ramps up over T (default 0: off)
//	    RequestDeadline T     [PROXY_DEFAULTS] only: the host's stage-30 deadline for a
//	                          proxied request; tunnels, and transfers still moving after
//	                          half of it, lift it; read at start-up; default 10m
//	[PROXY_ENTRY]             any number, tried in file order
//
// T is whole seconds ("3") or a Go duration ("500ms", "2m"). Every error
// names the file and line. A key that would have no effect (HealthStatus
// without an HTTP HealthCheck, ForwardedTrust without Forwarded on, ...) is
// an error at its line (noeffect.go).
package config

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/capuchin/capuchin/api/conf"
	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/claim"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/balance"
)

// Defaults of the keys that have one. The default balancer is the zero
// balance.Spec, balance.Default.
const (
	DefaultAttemptsCount   = 3
	DefaultOfflineTimeout  = 10 * time.Second
	DefaultConnectTimeout  = 3 * time.Second
	DefaultResponseTimeout = 60 * time.Second
	DefaultIdleTimeout     = 60 * time.Second
	// DefaultMaxIdleConns (NoLimit) keeps every returned connection until
	// IdleTimeout: the pool then fits the concurrency the proxy sees, and
	// steady load opens no new backend connections.
	DefaultMaxIdleConns    = NoLimit
	DefaultResolveInterval = 30 * time.Second
	// DefaultClientBodyTimeout 0 means the host's Timeout, which the host
	// sends with each request.
	DefaultClientBodyTimeout = 0
	// DefaultClientBodyMinRate is mod_reqtimeout's: a body that trickles
	// in slower than this (R-U-Dead-Yet) is cut even though each read
	// comes within ClientBodyTimeout.
	DefaultClientBodyMinRate = http1.DefaultBodyMinRate
	// DefaultTunnelIdleTimeout is HAProxy's usual "timeout tunnel".
	DefaultTunnelIdleTimeout = time.Hour
	DefaultRequestDeadline   = 10 * time.Minute
)

// NoLimit is the MaxIdleConns of an unbounded pool.
const NoLimit = -1

// Config is a parsed proxy_reverse.conf.
type Config struct {
	Entries       []*Entry
	StatisticsURL string // "" when there is no status page
	// RequestDeadline is the stage-30 deadline the plugin declares: the
	// longest a proxied request may take unless it is a tunnel or a
	// transfer still moving after half of it.
	RequestDeadline time.Duration
}

// Entry is one [PROXY_ENTRY], with the defaults filled in.
type Entry struct {
	Where           string // file:line of its section header
	Servers         []Server
	Balancer        balance.Spec // the zero Spec is balance.Default
	Match           []claim.Path // compiled case-insensitive, unanchored
	MatchSrc        []string     // as written
	AttemptsCount   int
	OfflineTimeout  time.Duration
	ConnectTimeout  time.Duration
	ResponseTimeout time.Duration
	IdleTimeout     time.Duration
	MaxIdleConns    int
	ResolveInterval time.Duration
	// ClientBodyTimeout bounds each wait for request body bytes from the
	// client; a client that stalls longer gets 408. 0: the host's Timeout.
	ClientBodyTimeout time.Duration
	// TLS is the base TLS configuration of the https:// servers (tls.go);
	// nil when the entry has none. ServerName is set when TLSServerName is.
	TLS *tls.Config
	// ClientBodyMinRate is the lowest average rate, in bytes per second,
	// of a request body after its first ClientBodyTimeout; 0: none.
	ClientBodyMinRate int
	// TunnelIdleTimeout closes an upgraded tunnel idle both ways this long.
	TunnelIdleTimeout time.Duration
	// UnderscoresInHeaders forwards request fields whose names contain
	// '_'; off (the default, as nginx's underscores_in_headers) drops them.
	UnderscoresInHeaders bool
	// Sticky, RetryBudget, Forwarded*, Resolver: see policy.go.
	Sticky         *balance.Sticky // nil: no stickiness
	RetryBudget    RetryBudget
	Forwarded      bool
	ForwardedBy    string // the by= node, "" for none
	ForwardedTrust []netip.Prefix
	Resolver       string // IP:port of the DNS server, "" for the system's
	// Health is the active health check; nil: none (health.go).
	Health *HealthCheck
	// SlowStart is how long a recovered server's share takes to ramp up
	// from nothing to full; 0: at once.
	SlowStart time.Duration
}

// Server is one ServerList item. Host is an IP literal or a hostname.
type Server struct {
	Host string
	Port uint16
	TLS  bool // https://: reached over TLS (Entry.TLS)
	// SRV marks an srv://NAME item: Host is a DNS SRV name whose records
	// give the targets, ports and weights (upstream/srv.go); Port is 0.
	SRV bool
	// Weight is the explicit weight=N (1-256), 0 when none was given;
	// only the balancers that read weights accept one above 1.
	Weight int
}

// MaxWeight is the largest weight=N (HAProxy's limit).
const MaxWeight = 256

// IP returns the address when Host is an IP literal.
func (s Server) IP() (netip.Addr, bool) {
	a, err := netip.ParseAddr(s.Host)
	return a.Unmap(), err == nil
}

// String returns host:port, bracketing IPv6 literals, after https:// for
// a TLS server.
func (s Server) String() string {
	if s.SRV {
		return SRVScheme + s.Host
	}
	hp := net.JoinHostPort(s.Host, strconv.Itoa(int(s.Port)))
	if s.TLS {
		return "https://" + hp
	}
	return hp
}

// MatchPath reports whether one of the entry's rules matches path.
func (e *Entry) MatchPath(path string) bool {
	for _, re := range e.Match {
		if re.MatchString(path) {
			return true
		}
	}
	return false
}

// Load reads the file at path.
func Load(path string) (*Config, error) {
	f, err := conf.ParseFile(path)
	if err != nil {
		return nil, err
	}
	return build(f)
}

// Parse reads configuration text from r; path names it in errors.
func Parse(path string, r io.Reader) (*Config, error) {
	f, err := conf.Parse(path, r)
	if err != nil {
		return nil, err
	}
	return build(f)
}

// section is what one section sets; nil/zero fields were not set.
type section struct {
	sec      *conf.Section
	servers  []Server
	weighted *conf.Entry // the first ServerList line with a weight above 1
	balancer *balance.Spec
	match    []claim.Path
	src      []string
	ints     map[string]int
	durs     map[string]time.Duration
	strs     map[string]conf.Entry // the TLS keys
	bools    map[string]bool
	stats    *string
	policy   map[string]any // policyKeys (policy.go)
	health   healthSection
	at       map[string]conf.Entry // the line of each key given once (lower case)
}

func build(f *conf.File) (*Config, error) {
	var defaults *section
	var entries []*section
	for _, s := range f.Sections {
		switch {
		case s.Is("PROXY_DEFAULTS"):
			if defaults != nil {
				return nil, s.Errorf("[PROXY_DEFAULTS] given twice (first at line %d)", defaults.sec.Line)
			}
			d, err := parseSection(s, true)
			if err != nil {
				return nil, err
			}
			defaults = d
		case s.Is("PROXY_ENTRY"):
			e, err := parseSection(s, false)
			if err != nil {
				return nil, err
			}
			entries = append(entries, e)
		default:
			return nil, s.Errorf("unknown section [%s]: want [PROXY_DEFAULTS] or [PROXY_ENTRY]", s.Name)
		}
	}
	if defaults == nil {
		defaults = &section{at: map[string]conf.Entry{}}
	}
	cfg := &Config{}
	if defaults.stats != nil {
		cfg.StatisticsURL = *defaults.stats
	}
	cfg.RequestDeadline = durKey(defaults, defaults, "requestdeadline", DefaultRequestDeadline)
	for _, s := range entries {
		e, err := merge(defaults, s)
		if err != nil {
			return nil, err
		}
		cfg.Entries = append(cfg.Entries, e)
	}
	if err := checkDefaultsEffect(defaults, entries, cfg.Entries); err != nil {
		return nil, err
	}
	return cfg, nil
}

// merge fills an entry from its own section, then the defaults, then the
// built-in defaults.
func merge(d, s *section) (*Entry, error) {
	e := &Entry{
		Where:   fmt.Sprintf("%s:%d", s.sec.File, s.sec.Line),
		Servers: pick(s.servers, d.servers),
	}
	if s.balancer != nil {
		e.Balancer = *s.balancer
	} else if d.balancer != nil {
		e.Balancer = *d.balancer
	}
	e.Match, e.MatchSrc = pick(s.match, d.match), pick(s.src, d.src)
	if len(e.Servers) == 0 {
		return nil, s.sec.Errorf("[PROXY_ENTRY] has no ServerList (and [PROXY_DEFAULTS] gives none)")
	}
	from := d // the section the servers came from
	if len(s.servers) > 0 {
		from = s
	}
	if err := checkWeights(from, e); err != nil {
		return nil, err
	}
	if len(e.Match) == 0 {
		return nil, s.sec.Errorf("[PROXY_ENTRY] has no Match rule (and [PROXY_DEFAULTS] gives none)")
	}
	e.AttemptsCount = intKey(s, d, "attemptscount", DefaultAttemptsCount)
	e.MaxIdleConns = intKey(s, d, "maxidleconns", DefaultMaxIdleConns)
	e.OfflineTimeout = durKey(s, d, "offlinetimeout", DefaultOfflineTimeout)
	e.ConnectTimeout = durKey(s, d, "connecttimeout", DefaultConnectTimeout)
	e.ResponseTimeout = durKey(s, d, "responsetimeout", DefaultResponseTimeout)
	e.IdleTimeout = durKey(s, d, "idletimeout", DefaultIdleTimeout)
	e.ResolveInterval = durKey(s, d, "resolveinterval", DefaultResolveInterval)
	e.ClientBodyTimeout = durKey(s, d, "clientbodytimeout", DefaultClientBodyTimeout)
	e.ClientBodyMinRate = intKey(s, d, "clientbodyminrate", DefaultClientBodyMinRate)
	e.TunnelIdleTimeout = durKey(s, d, "tunnelidletimeout", DefaultTunnelIdleTimeout)
	e.UnderscoresInHeaders = boolKey(s, d, "underscoresinheaders", false)
	mergePolicy(s, d, e)
	var err error
	if e.TLS, err = backendTLS(s, d, e.Servers); err != nil {
		return nil, err
	}
	if err := mergeHealth(d, s, e); err != nil {
		return nil, err
	}
	if err := checkEntryEffect(s, e); err != nil {
		return nil, err
	}
	return e, nil
}

func boolKey(s, d *section, key string, def bool) bool {
	if v, ok := s.bools[key]; ok {
		return v
	}
	if v, ok := d.bools[key]; ok {
		return v
	}
	return def
}

func pick[T any](own, inherited []T) []T {
	if len(own) > 0 {
		return own
	}
	return inherited
}

func intKey(s, d *section, key string, def int) int {
	if v, ok := s.ints[key]; ok {
		return v
	}
	if v, ok := d.ints[key]; ok {
		return v
	}
	return def
}

func durKey(s, d *section, key string, def time.Duration) time.Duration {
	if v, ok := s.durs[key]; ok {
		return v
	}
	if v, ok := d.durs[key]; ok {
		return v
	}
	return def
}

// checkWeights refuses weight=N above 1 (given in section from) with a
// balancer that would ignore it; the error names the ServerList line and the
// entry.
func checkWeights(from *section, e *Entry) error {
	if from.weighted == nil || e.Balancer.Weighted() {
		return nil
	}
	return from.weighted.Errorf("weight=N is read by %s only, not by %s (the balancer of the entry at %s); "+
		"list a server N times instead", balance.WeightedNames(), e.Balancer.Name(), e.Where)
}
