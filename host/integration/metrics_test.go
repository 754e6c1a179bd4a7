package integration

import (
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/capuchin/capuchin/host/metrics"
	"github.com/capuchin/capuchin/internal/hosttest"
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
	scrapes := openConns(t, c, 1) // the start-up probe's connection is gone
	held := dial(t, s.Addr())     // with c: the cap of 2
	if r := held.Get("/index.html"); r.Status != 200 {
		t.Fatalf("second connection: %d", r.Status)
	}
	shed := dial(t, s.Addr())
	shed.Send("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	if r := shed.MustRead("GET"); r.Status != 503 {
		t.Fatalf("past MaxConnections: %d", r.Status)
	}
	held.Send("GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Field: x\r\n\r\n")
	if r := held.MustRead("GET"); r.Status != 400 {
		t.Fatalf("bad request: %d", r.Status)
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
		{"capuchin_requests_total", map[string]string{"handler": "metrics", "class": "2xx"}, 1 + scrapes},
		{"capuchin_connections_shed_total", nil, 1},
		{"capuchin_connections_accepted_total", nil, 4}, // the start-up probe, c, held, shed
	} {
		if got := sample(fams[w.name], w.labels); got != w.want {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.want)
		}
	}
	if fams["go_goroutines"] == nil || fams["process_open_fds"] == nil {
		t.Error("no Go runtime or process metrics")
	}
}

// openConns scrapes MetricsURL on c until the host counts n open
// connections (a connection a client closed counts until the host has
// read its end), and returns how many scrapes it took.
func openConns(t *testing.T, c *client, n float64) float64 {
	t.Helper()
	for i := 1.0; ; i++ {
		r := c.Get("/metrics")
		mfs, err := metrics.Parse(r.Header.Get("Content-Type"), r.Body)
		if err != nil {
			t.Fatalf("scrape: %v", err)
		}
		for _, f := range mfs {
			if f.GetName() == "capuchin_connections_open" && sample(f, nil) == n {
				return i
			}
		}
		if i == 500 {
			t.Fatalf("the host still counts other connections than %v after 5 s", n)
		}
		time.Sleep(10 * time.Millisecond)
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

// TestMetricsPlugins: with test plugins on stages 10, 20 and 30, a scrape
// counts stage-20 replies, the stage latencies per plugin and stage, and a
// plugin's restart after it was killed; the test plugins export no metrics
// of their own, so none carry their label but the host's.
func TestMetricsPlugins(t *testing.T) {
	pluginTest(t)
	s := newSite(t)
	s.Server = []string{"MetricsURL /metrics"}
	s.LoadFrom(testPlugins(t), "gate", "hello")
	s.StartChecked()
	pid := pluginPid(t, s, "hello", 0)
	c := dial(t, s.Addr())
	if r := c.Get("/deny"); r.Status != 403 {
		t.Fatalf("/deny: %d", r.Status)
	}
	if r := c.Get("/hello"); r.Status != 200 {
		t.Fatalf("/hello: %d", r.Status)
	}
	// The plugin answers the client before it replies to the host: the next
	// request on c is read only once the host has the reply.
	if r := c.Get("/index.html"); r.Status != 200 {
		t.Fatalf("/index.html: %d", r.Status)
	}
	killHard(t, pid)
	pluginPid(t, s, "hello", pid) // restarting: configured
	// Back in service once its streams are open too.
	sc := dial(t, s.Addr())
	fams := scrapeFams(t, sc)
	if !hosttest.Poll(5*time.Second, func() bool {
		fams = scrapeFams(t, sc)
		return sample(fams["capuchin_plugin_up"], map[string]string{"plugin": "hello"}) == 1
	}) {
		t.Fatal("hello not up again after its restart")
	}
	for _, w := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"capuchin_requests_total", map[string]string{"handler": "stage20", "class": "4xx"}, 1},
		{"capuchin_requests_total", map[string]string{"handler": "hello", "class": "2xx"}, 1},
		{"capuchin_plugin_restarts_total", map[string]string{"plugin": "hello"}, 1},
		{"capuchin_plugin_restarts_total", map[string]string{"plugin": "gate"}, 0},
		{"capuchin_plugin_up", map[string]string{"plugin": "hello"}, 1},
	} {
		if got := sample(fams[w.name], w.labels); got != w.want {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.want)
		}
	}
	// Stage 10 ran for every connection (the start-up probe, c, the
	// scraper's), stage 20 for the three requests on c (not for the
	// scrapes), stage 30 for /hello.
	for st, want := range map[string]uint64{"10": 3, "20": 3} {
		if got := histCount(fams["capuchin_plugin_stage_duration_seconds"], "gate", st); got != want {
			t.Errorf("gate stage %s observed %d times, want %d", st, got, want)
		}
	}
	if got := histCount(fams["capuchin_plugin_stage_duration_seconds"], "hello", "30"); got != 1 {
		t.Errorf("hello stage 30 observed %d times, want 1", got)
	}
}

func scrapeFams(t *testing.T, c *client) map[string]*dto.MetricFamily {
	t.Helper()
	r := c.Get("/metrics")
	mfs, err := metrics.Parse(r.Header.Get("Content-Type"), r.Body)
	if r.Status != 200 || err != nil {
		t.Fatalf("scrape: %d %v", r.Status, err)
	}
	fams := map[string]*dto.MetricFamily{}
	for _, f := range mfs {
		fams[f.GetName()] = f
	}
	return fams
}

// histCount is the observation count of the histogram of f with plugin and
// stage labels.
func histCount(f *dto.MetricFamily, plugin, stage string) uint64 {
	if f == nil {
		return 0
	}
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["plugin"] == plugin && labels["stage"] == stage {
			return m.Histogram.GetSampleCount()
		}
	}
	return 0
}
