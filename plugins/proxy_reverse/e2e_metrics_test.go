package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/capuchin/capuchin/host/metrics"
	"github.com/capuchin/capuchin/internal/hosttest"
)

// TestMetricsMatchTraffic sends known traffic through the real host and
// plugin — proxied requests on one kept-alive (leased) connection, static
// requests, a request to a dead backend — then scrapes MetricsURL on the
// leased connection (the entry's Match claims the path, so the lease must
// give it back) and checks, with expfmt's parser, that the host's and the
// proxy's counters match what was sent.
func TestMetricsMatchTraffic(t *testing.T) {
	bs := namedBackends(t, 2)
	dead, checked := deadAddr(t), deadAddr(t)
	conf := "[PROXY_ENTRY]\n    Match ^/(api/|metrics)\n    LoadBalancer Round-Robin\n    ServerList " + addrs(bs...) + "\n" +
		"[PROXY_ENTRY]\n    Match ^/dead/\n    LoadBalancer Round-Robin\n    ServerList " + dead + "\n" +
		"[PROXY_ENTRY]\n    Match ^/checked/\n    ServerList " + checked + "\n    HealthCheck tcp\n    HealthInterval 50ms\n    HealthFall 2\n"
	s, _ := startProxy(t, conf, "MetricsURL /metrics")

	// More proxied requests than a lease held when the host counted
	// requests (128): one lease now, which reports its counts as it goes
	// (Lease.ReportCounts), and every request counted from their status
	// classes.
	const proxied, static = 150, 3
	c := hosttest.Dial(t, s.Addr())
	base := scrape(t, c) // before any hand-over: the host answers it
	for i := 0; i < proxied; i++ {
		if r := c.Get(fmt.Sprintf("/api/%d", i)); r.Status != 200 {
			t.Fatalf("proxied request %d: %d %q", i, r.Status, r.Body)
		}
	}
	sc := hosttest.Dial(t, s.Addr())
	for i := 0; i < static; i++ {
		if r := sc.Get("/index.html"); r.Status != 200 {
			t.Fatalf("static request %d: %d", i, r.Status)
		}
	}
	// The last request closes sc: the lease on it ends with the answer.
	if r := sc.RoundTrip("GET /dead/x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"); r.Status != 502 {
		t.Fatalf("request to a dead backend: %d, want 502", r.Status)
	}

	// On the leased connection. A plugin writes its answer before it
	// replies to the host, so the host may count sc's last request and
	// close sc a moment after the client read the answer: scrape until
	// that shows.
	fams := scrape(t, c)
	hosttest.Poll(5*time.Second, func() bool {
		if value(t, fams, "capuchin_connections_open", nil) == 1 {
			return true
		}
		fams = scrape(t, c)
		return false
	})

	wantValue(t, fams, "capuchin_requests_total", map[string]string{"handler": "proxy_reverse", "class": "2xx"}, proxied)
	wantValue(t, fams, "capuchin_requests_total", map[string]string{"handler": "proxy_reverse", "class": "5xx"}, 1)
	wantValue(t, fams, "capuchin_requests_total", map[string]string{"handler": "static", "class": "2xx"}, static)
	wantValue(t, fams, "capuchin_connections_accepted_total", nil, value(t, base, "capuchin_connections_accepted_total", nil)+1)
	wantValue(t, fams, "capuchin_connections_open", nil, 1)
	wantValue(t, fams, "capuchin_leases_granted_total", map[string]string{"plugin": "proxy_reverse"}, 1) // c (sc asked to close)
	wantValue(t, fams, "capuchin_leased_requests_total", map[string]string{"plugin": "proxy_reverse"}, proxied-1)
	wantValue(t, fams, "capuchin_leases_returned_total", map[string]string{"plugin": "proxy_reverse"}, 1)
	wantValue(t, fams, "capuchin_plugin_restarts_total", map[string]string{"plugin": "proxy_reverse"}, 0)
	wantValue(t, fams, "capuchin_plugin_up", map[string]string{"plugin": "proxy_reverse"}, 1)
	// Stage 30 timed once per hand-over: the first request of the lease
	// and the request to the dead backend.
	wantValue(t, fams, "capuchin_plugin_stage_duration_seconds", map[string]string{"plugin": "proxy_reverse", "stage": "30"}, 2)

	// The proxy's own figures, labelled with the plugin's name.
	var sent float64
	for _, b := range bs {
		lab := map[string]string{"plugin": "proxy_reverse", "server": b.hostPort()}
		sent += value(t, fams, "capuchin_proxy_server_requests_total", lab)
		if got, want := value(t, fams, "capuchin_proxy_server_response_seconds", lab), float64(b.hits.Load()); got != want {
			t.Errorf("response-time observations of %s: %v, want %v (its hits)", b.hostPort(), got, want)
		}
		wantValue(t, fams, "capuchin_proxy_server_state", map[string]string{"plugin": "proxy_reverse", "entry": "1",
			"server": b.hostPort(), "state": "up"}, 1)
	}
	if sent != proxied || bs[0].hits.Load()+bs[1].hits.Load() != proxied {
		t.Errorf("proxy counted %v requests to the backends, they got %d and %d; want %d", sent, bs[0].hits.Load(), bs[1].hits.Load(), proxied)
	}
	wantValue(t, fams, "capuchin_proxy_server_failures_total", map[string]string{"plugin": "proxy_reverse", "server": dead, "kind": "connect"}, 1)
	wantValue(t, fams, "capuchin_proxy_server_failures_total", map[string]string{"plugin": "proxy_reverse", "server": dead, "kind": "timeout"}, 0)
	// Its entry has no other server to retry on.
	wantValue(t, fams, "capuchin_proxy_server_retries_total", map[string]string{"plugin": "proxy_reverse", "server": dead}, 0)

	// The third entry's active check finds its server down (nothing
	// listens): state down, the check's failures counted.
	checkLab := map[string]string{"plugin": "proxy_reverse", "entry": "3", "server": checked}
	if !hosttest.Poll(5*time.Second, func() bool {
		fams = scrape(t, c)
		return value(t, fams, "capuchin_proxy_server_check_up", checkLab) == 0
	}) {
		t.Fatal("the active check did not find the dead server down")
	}
	downLab := map[string]string{"plugin": "proxy_reverse", "entry": "3", "server": checked, "state": "down"}
	wantValue(t, fams, "capuchin_proxy_server_state", downLab, 1)
	if n, f := value(t, fams, "capuchin_proxy_server_checks_total", checkLab), value(t, fams, "capuchin_proxy_server_check_failures_total", checkLab); f < 2 || n != f {
		t.Errorf("checks %v, failed %v: want at least Fall (2), all failed", n, f)
	}
	wantValue(t, fams, "capuchin_proxy_server_check_last_success", checkLab, 0)

	// A scrape in the protobuf format counts the earlier ones.
	n := value(t, fams, "capuchin_requests_total", map[string]string{"handler": "metrics", "class": "2xx"})
	c.Send("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: " + string(expfmt.NewFormat(expfmt.TypeProtoDelim)) + "\r\n\r\n")
	r := c.MustRead("GET")
	ct := r.Header.Get("Content-Type")
	fams2, err := metrics.Parse(ct, r.Body)
	if err != nil || !strings.Contains(ct, "protobuf") {
		t.Fatalf("protobuf scrape (%s): %v", ct, err)
	}
	wantValue(t, index(fams2), "capuchin_requests_total", map[string]string{"handler": "metrics", "class": "2xx"}, n+1)
}

// scrape gets MetricsURL on c and parses it as the text format.
func scrape(t *testing.T, c *hosttest.Client) map[string]*dto.MetricFamily {
	t.Helper()
	r := c.Get("/metrics")
	if r.Status != 200 || !bytes.Contains(r.Body, []byte("capuchin_connections_accepted_total")) {
		t.Fatalf("scrape: %d %.200q (not the host's answer?)", r.Status, r.Body)
	}
	return parseText(t, r.Body)
}

func parseText(t *testing.T, body []byte) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := metrics.Parse(string(expfmt.NewFormat(expfmt.TypeTextPlain)), body)
	if err != nil {
		t.Fatalf("the scrape does not parse: %v\n%s", err, body)
	}
	return index(fams)
}

func index(fams []*dto.MetricFamily) map[string]*dto.MetricFamily {
	m := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		m[f.GetName()] = f
	}
	return m
}

// value returns the sample of family name whose labels include want: a
// counter's or gauge's value, a histogram's count. It fails the test when
// there is none.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no family %s in the scrape", name)
	}
	for _, m := range f.Metric {
		if !hasLabels(m, want) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("no sample of %s with labels %v", name, want)
	return 0
}

func wantValue(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string, want float64) {
	t.Helper()
	if got := value(t, fams, name, labels); got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.Label {
		if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
			n++
		}
	}
	return n == len(want)
}
