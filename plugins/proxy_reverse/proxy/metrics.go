package proxy

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/capuchin/capuchin/plugins/proxy_reverse/upstream"
)

// The proxy's metrics, read at each scrape from the servers' Stats and
// Health (no counters of their own). Figures of a backend address (requests,
// failures, response times) are shared by every entry that lists it and
// carry a server label; those of a server in an entry (state, connections)
// carry entry (the entry's position in proxy_reverse.conf, from 1) and
// server labels.
var (
	descRequests = prometheus.NewDesc("capuchin_proxy_server_requests_total",
		"Requests sent to a backend address (attempts, retries included).", []string{"server"}, nil)
	descFailures = prometheus.NewDesc("capuchin_proxy_server_failures_total",
		"Failed attempts at a backend address, by kind (connect, timeout, answer, body).", []string{"server", "kind"}, nil)
	descRetries = prometheus.NewDesc("capuchin_proxy_server_retries_total",
		"Requests sent again after they failed at a backend address before any answer (to the next server, or on a new connection).", []string{"server"}, nil)
	descTunnels = prometheus.NewDesc("capuchin_proxy_server_tunnels_total",
		"Upgraded (WebSocket) tunnels opened to a backend address; they are left out of the response times.", []string{"server"}, nil)
	descStray = prometheus.NewDesc("capuchin_proxy_server_stray_closed_total",
		"Pooled connections to a backend address closed for bytes or EOF while idle.", []string{"server"}, nil)
	descState = prometheus.NewDesc("capuchin_proxy_server_state",
		"1 for the state a server of an entry is in, 0 for the others: up, down (by its active check), offline (AttemptsCount failures in a row, until OfflineTimeOut) or slowstart.",
		[]string{"entry", "server", "state"}, nil)
	descShare = prometheus.NewDesc("capuchin_proxy_server_share",
		"The part of its traffic share a server takes: below 1 during its slow start.", []string{"entry", "server"}, nil)
	descChecks = prometheus.NewDesc("capuchin_proxy_server_checks_total",
		"Active health checks of a server of an entry that ended.", []string{"entry", "server"}, nil)
	descCheckFails = prometheus.NewDesc("capuchin_proxy_server_check_failures_total",
		"Active health checks of a server of an entry that failed.", []string{"entry", "server"}, nil)
	descCheckUp = prometheus.NewDesc("capuchin_proxy_server_check_up",
		"1 while a server's active check finds it up, 0 while down (Fall failures in a row, until Rise good ones).", []string{"entry", "server"}, nil)
	descCheckLast = prometheus.NewDesc("capuchin_proxy_server_check_last_success",
		"1 if the server's last active check succeeded, else 0.", []string{"entry", "server"}, nil)
	descCheckTook = prometheus.NewDesc("capuchin_proxy_server_check_last_duration_seconds",
		"How long the server's last active check took.", []string{"entry", "server"}, nil)
	descActive = prometheus.NewDesc("capuchin_proxy_server_connections_active",
		"Connections to a server of an entry carrying a request now.", []string{"entry", "server"}, nil)
	descIdle = prometheus.NewDesc("capuchin_proxy_server_connections_idle",
		"Pooled idle connections to a server of an entry.", []string{"entry", "server"}, nil)
)

// Describe sends nothing: the proxy's collector is unchecked (its series
// follow the configuration).
func (p *Proxy) Describe(chan<- *prometheus.Desc) {}

// Collect sends the proxy's metrics.
func (p *Proxy) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	seen := map[string]bool{}
	for i, e := range p.entries {
		entry := strconv.Itoa(i + 1)
		for _, s := range e.group.Servers() {
			st := s.Stats(now)
			collectServer(ch, entry, &st)
			if !seen[st.Addr] {
				seen[st.Addr] = true
				collectAddress(ch, s, &st)
			}
		}
	}
}

var states = []string{upstream.StateUp, upstream.StateDown, upstream.StateOffline, upstream.StateSlowStart}

func collectServer(ch chan<- prometheus.Metric, entry string, st *upstream.Stats) {
	cur := st.State()
	for _, state := range states {
		ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, oneIf(state == cur), entry, st.Addr, state)
	}
	ch <- prometheus.MustNewConstMetric(descShare, prometheus.GaugeValue, st.Share, entry, st.Addr)
	ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, float64(st.Active), entry, st.Addr)
	ch <- prometheus.MustNewConstMetric(descIdle, prometheus.GaugeValue, float64(st.Idle), entry, st.Addr)
	if c := st.Check; c != nil {
		collectCheck(ch, entry, st.Addr, c)
	}
}

// collectCheck sends the results of a server's active health check.
func collectCheck(ch chan<- prometheus.Metric, entry, addr string, c *upstream.CheckStats) {
	ch <- prometheus.MustNewConstMetric(descChecks, prometheus.CounterValue, float64(c.Checks), entry, addr)
	ch <- prometheus.MustNewConstMetric(descCheckFails, prometheus.CounterValue, float64(c.Failed), entry, addr)
	ch <- prometheus.MustNewConstMetric(descCheckUp, prometheus.GaugeValue, oneIf(!c.Down), entry, addr)
	if l := c.Last; l != nil {
		ch <- prometheus.MustNewConstMetric(descCheckLast, prometheus.GaugeValue, oneIf(l.OK), entry, addr)
		ch <- prometheus.MustNewConstMetric(descCheckTook, prometheus.GaugeValue, l.Took.Seconds(), entry, addr)
	}
}

func oneIf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func collectAddress(ch chan<- prometheus.Metric, s *upstream.Server, st *upstream.Stats) {
	ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(st.Requests), st.Addr)
	for k := upstream.FailKind(0); k < upstream.NumFailKinds; k++ {
		ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(st.FailKinds[k]), st.Addr, k.String())
	}
	ch <- prometheus.MustNewConstMetric(descRetries, prometheus.CounterValue, float64(st.Retries), st.Addr)
	ch <- prometheus.MustNewConstMetric(descTunnels, prometheus.CounterValue, float64(st.Tunnels), st.Addr)
	ch <- prometheus.MustNewConstMetric(descStray, prometheus.CounterValue, float64(st.Stray), st.Addr)
	s.ResponseTimes().Collect(ch)
}
