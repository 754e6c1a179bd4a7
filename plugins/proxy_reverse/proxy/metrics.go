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
	descStray = prometheus.NewDesc("capuchin_proxy_server_stray_closed_total",
		"Pooled connections to a backend address closed for bytes or EOF while idle.", []string{"server"}, nil)
	descState = prometheus.NewDesc("capuchin_proxy_server_state",
		"1 for the state a server of an entry is in (up or offline: AttemptsCount failures in a row, until OfflineTimeOut), 0 for the other.",
		[]string{"entry", "server", "state"}, nil)
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

func collectServer(ch chan<- prometheus.Metric, entry string, st *upstream.Stats) {
	up, off := 1.0, 0.0
	if !st.Online {
		up, off = 0, 1
	}
	ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, up, entry, st.Addr, "up")
	ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, off, entry, st.Addr, "offline")
	ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, float64(st.Active), entry, st.Addr)
	ch <- prometheus.MustNewConstMetric(descIdle, prometheus.GaugeValue, float64(st.Idle), entry, st.Addr)
}

func collectAddress(ch chan<- prometheus.Metric, s *upstream.Server, st *upstream.Stats) {
	ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(st.Requests), st.Addr)
	for k := upstream.FailKind(0); k < upstream.NumFailKinds; k++ {
		ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(st.FailKinds[k]), st.Addr, k.String())
	}
	ch <- prometheus.MustNewConstMetric(descRetries, prometheus.CounterValue, float64(st.Retries), st.Addr)
	ch <- prometheus.MustNewConstMetric(descStray, prometheus.CounterValue, float64(st.Stray), st.Addr)
	s.ResponseTimes().Collect(ch)
}
