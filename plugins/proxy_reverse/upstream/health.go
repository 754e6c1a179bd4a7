package upstream

import (
	"crypto/tls"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/capuchin/capuchin/plugins/proxy_reverse/config"
)

// Health is the state of one backend address, shared by every entry that
// lists the address and kept while the plugin is reconfigured: its run of
// failures (high availability) and its counters. A dead backend listed in
// many entries is thus found dead once, and the status page's counters
// survive a reload.
type Health struct {
	fails    atomic.Int32 // consecutive failures
	lastBad  atomic.Int64 // unix nanoseconds of the last failure
	requests atomic.Uint64
	failures atomic.Uint64
	stray    atomic.Uint64               // pooled connections closed for bytes or EOF while idle
	retries  atomic.Uint64               // requests sent again after a failure here (see Server.Retried)
	tunnels  atomic.Uint64               // upgraded (101) tunnels opened (see Server.Tunneled)
	kinds    [NumFailKinds]atomic.Uint64 // failures by kind
	rtime    prometheus.Histogram        // time to the answer head, labelled server=address

	// offlineSeen is set when an entry skipped the address as offline
	// (passive); the recovery that clears it starts a slow start.
	offlineSeen atomic.Bool
	upSince     atomic.Int64 // unix nanoseconds of the last recovery; 0: none
	win         window       // recent traffic, in 10 s buckets
}

// revive ends a run of passive failures (an answer from real traffic, or
// Rise good health checks); an address some entry skipped as offline
// starts its slow start at now.
func (h *Health) revive(now time.Time) {
	h.fails.Store(0)
	h.recovered(now)
}

// reviveFrom is revive for a run of failures counted at fails, unless
// more came since (a failure a health check did not see is not undone).
func (h *Health) reviveFrom(fails int32, now time.Time) {
	if h.fails.CompareAndSwap(fails, 0) {
		h.recovered(now)
	}
}

// markOffline records that an entry skipped the address as offline after
// attempts failures, so that its recovery starts a slow start. A recovery
// that came between the entry's check and this mark saw no mark: the
// failures it cleared show that, and the slow start it skipped starts
// here (without this, the mark would stay and start one at the next
// recovery, long after).
func (h *Health) markOffline(now time.Time, attempts int) {
	if h.offlineSeen.Load() {
		return
	}
	h.offlineSeen.Store(true)
	if int(h.fails.Load()) < attempts {
		h.recovered(now)
	}
}

// recovered starts the slow start of an address some entry skipped as
// offline.
func (h *Health) recovered(now time.Time) {
	if h.offlineSeen.Load() && h.offlineSeen.Swap(false) {
		h.upSince.Store(now.UnixNano())
	}
}

// FailKind says how an attempt at a backend failed.
type FailKind uint8

// The kinds of failure, for the metrics (capuchin_proxy_server_failures_total).
const (
	FailConnect FailKind = iota // the connection could not be opened
	FailTimeout                 // no answer head within ResponseTimeout
	FailAnswer                  // no valid answer head: closed, reset, malformed
	FailBody                    // the answer's body broke off
	NumFailKinds
)

// String names the kind, as the metrics' kind label.
func (k FailKind) String() string {
	return [...]string{"connect", "timeout", "answer", "body", "unknown"}[min(k, NumFailKinds)]
}

// responseBuckets are the bounds of the response-time histogram: 1 ms to
// about 65 s.
var responseBuckets = prometheus.ExponentialBuckets(0.001, 2, 17)

func newHealth(ap netip.AddrPort) *Health {
	return &Health{rtime: prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:        "capuchin_proxy_server_response_seconds",
		Help:        "Time from the request sent to a backend to its answer head, per backend address.",
		Buckets:     responseBuckets,
		ConstLabels: prometheus.Labels{"server": ap.String()},
	})}
}

// Registry holds the Health of every backend address. Safe for concurrent
// use.
type Registry struct {
	mu     sync.Mutex
	m      map[netip.AddrPort]*Health
	checks map[checkKey]*Checker // running active checks, by address and check
	log    hclog.Logger
	bufs   bufPool // the buffers of the connections carrying a request
}

// NewRegistry returns an empty registry. log (nil: none) names the
// health-check transitions.
func NewRegistry(log ...hclog.Logger) *Registry {
	r := &Registry{m: map[netip.AddrPort]*Health{}, checks: map[checkKey]*Checker{}, log: hclog.NewNullLogger()}
	if len(log) > 0 && log[0] != nil {
		r.log = log[0].Named("health")
	}
	return r
}

// acquireCheck returns the checker of cfg for ap, started on first use;
// every acquireCheck is paired with a releaseCheck. tc (nil: plain) is the
// TLS of an https:// server: an HTTP check then speaks TLS too.
func (r *Registry) acquireCheck(ap netip.AddrPort, cfg *config.HealthCheck, tc *tls.Config) *Checker {
	key := checkKey{ap, cfg.String()}
	if tc != nil && !cfg.TCP {
		key.spec += " tls=" + tc.ServerName
	}
	h := r.health(ap)
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.checks[key]
	if c == nil {
		c = newChecker(key, *cfg, tc, h, r.log)
		r.checks[key] = c
	}
	c.refs++
	return c
}

// releaseCheck drops a reference to c; the last one stops its goroutine
// (and waits for it).
func (r *Registry) releaseCheck(c *Checker) {
	r.mu.Lock()
	c.refs--
	last := c.refs == 0
	if last {
		delete(r.checks, c.key)
	}
	r.mu.Unlock()
	if last {
		c.stop()
	}
}

// Checks returns the number of running checkers.
func (r *Registry) Checks() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.checks)
}

// health returns the Health of ap, created on first use.
func (r *Registry) health(ap netip.AddrPort) *Health {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.m[ap]
	if h == nil {
		h = newHealth(ap)
		r.m[ap] = h
	}
	return h
}

// Retain forgets every address for which keep is false: those no entry
// lists any more after a reconfiguration.
func (r *Registry) Retain(keep func(netip.AddrPort) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for ap := range r.m {
		if !keep(ap) {
			delete(r.m, ap)
		}
	}
}
