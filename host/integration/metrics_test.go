package integration

import (
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/capuchin/capuchin/host/metrics"
)

// TestMetricsHost: the host's own figures at MetricsURL, parsed with
// expfmt, match the requests and connections sent: static answers by
// class, a bad request, a connection shed by MaxConnections; the scrape
// is answered on any virtual host, GET and HEAD only.
func TestMetricsHost(t *testing.T) {
	s := newSite(t)
	s.Server = []string{"MetricsURL /metrics", "MaxConnections 2", "KeepAliveTimeout 30"}
	s.Start()
	c := dial(t, s.Addr())
	for _, p := range []string{"/index.html", "/index.html", "/missing"} {
		c.Get(p)
	}
	bad := dial(t, s.Addr())
	bad.Send("GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Field: x\r\n\r\n")
	if r := bad.MustRead("GET"); r.Status != 400 {
		t.Fatalf("bad request: %d", r.Status)
	}
	held := dial(t, s.Addr()) // with c: the cap of 2
	held.Get("/index.html")
	shed := dial(t, s.Addr())
	shed.Send("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	if r := shed.MustRead("GET"); r.Status != 503 {
		t.Fatalf("past MaxConnections: %d", r.Status)
	}

	if r := c.RoundTrip("POST /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\nhi"); r.Status != 405 || r.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST to MetricsURL: %d %q", r.Status, r.Raw)
	}
	if r := c.RoundTrip("HEAD /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); r.Status != 200 || len(r.Body) != 0 {
		t.Fatalf("HEAD of MetricsURL: %d, %d body bytes", r.Status, len(r.Body))
	}
	r := c.RoundTrip("GET /metrics HTTP/1.1\r\nHost: another.example\r\n\r\n")
	if r.Status != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("scrape: %d %q", r.Status, r.Raw)
	}
	mfs, err := metrics.Parse(r.Header.Get("Content-Type"), r.Body)
	if err != nil {
		t.Fatalf("scrape does not parse: %v\n%s", err, r.Body)
	}
	fams := map[string]*dto.MetricFamily{}
	for _, f := range mfs {
		fams[f.GetName()] = f
	}
	for _, w := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"capuchin_requests_total", map[string]string{"handler": "static", "class": "2xx"}, 3},
		{"capuchin_requests_total", map[string]string{"handler": "static", "class": "4xx"}, 1},
		{"capuchin_requests_total", map[string]string{"handler": "host", "class": "4xx"}, 1},
		{"capuchin_requests_total", map[string]string{"handler": "metrics", "class": "4xx"}, 1},
		{"capuchin_requests_total", map[string]string{"handler": "metrics", "class": "2xx"}, 1},
		{"capuchin_connections_shed_total", nil, 1},
		{"capuchin_connections_accepted_total", nil, 5}, // the start-up probe, c, bad, held, shed
	} {
		if got := sample(fams[w.name], w.labels); got != w.want {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.want)
		}
	}
	if fams["go_goroutines"] == nil || fams["process_open_fds"] == nil {
		t.Error("no Go runtime or process metrics")
	}
}

// sample returns the value of the counter or gauge of f whose labels
// include want; -1 when there is none.
func sample(f *dto.MetricFamily, want map[string]string) float64 {
	if f == nil {
		return -1
	}
	for _, m := range f.Metric {
		n := 0
		for _, l := range m.Label {
			if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
				n++
			}
		}
		if n != len(want) {
			continue
		}
		if m.Counter != nil {
			return m.Counter.GetValue()
		}
		return m.Gauge.GetValue()
	}
	return -1
}

// TestMetricsOff: without MetricsURL the path is an ordinary one, and a
// MetricsURL that is not a path is a configuration error with its line.
func TestMetricsOff(t *testing.T) {
	s := newSite(t)
	s.Start()
	if r := dial(t, s.Addr()).Get("/metrics"); r.Status != 404 {
		t.Fatalf("/metrics without MetricsURL: %d, want the static 404", r.Status)
	}
	s2 := newSite(t)
	s2.Server = []string{"MetricsURL metrics"}
	s2.WriteConf()
	code, out := runCapuchin(t, "-t", "-c", s2.Dir)
	if code == 0 || !strings.Contains(out, "capuchin.conf:3: MetricsURL") {
		t.Fatalf("exit %d, output %q", code, out)
	}
}
