package server

import (
	"regexp"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/capuchin/capuchin/host/config"
	"github.com/capuchin/capuchin/internal/contract"
)

// Exporter answers a scrape of the MetricsURL: the body in the format the
// Accept field asks for (Prometheus' content negotiation), and its type.
type Exporter interface {
	Export(accept string) (contentType string, body []byte, err error)
}

// SetExporter sets what answers the MetricsURL; without one the path is an
// ordinary path. Call it before Start.
func (s *Server) SetExporter(e Exporter) { s.exporter = e }

// Handler labels of capuchin_requests_total besides plugin names.
const (
	handlerStatic   = "static"   // the static-file handler
	handlerStage20  = "stage20"  // a stage-20 plugin's reply
	handlerRedirect = "redirect" // a site's Redirect
	handlerHost     = "host"     // the host's own answer: a bad request, 413, a failed hand-over
	handlerMetrics  = "metrics"  // the MetricsURL
)

// requestCounts counts answered requests by handler and status class
// (capuchin_requests_total). The counters of a handler are looked up once.
type requestCounts struct {
	vec *prometheus.CounterVec
	m   sync.Map // handler -> *counters
}

func newRequestCounts() *requestCounts {
	return &requestCounts{vec: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "capuchin_requests_total",
		Help: "Requests answered, by handler (static, stage20, redirect, host, metrics or the plugin's name) and status class.",
	}, []string{"handler", "class"})}
}

// classes are the class labels, by contract.ClassOf.
var classes = [len(contract.Classes{})]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// counters are the counters of one handler, by contract.ClassOf.
type counters [len(classes)]prometheus.Counter

// of returns the counters of handler.
func (rc *requestCounts) of(handler string) *counters {
	v, ok := rc.m.Load(handler)
	if !ok {
		var cs counters
		for i, c := range classes {
			cs[i] = rc.vec.WithLabelValues(handler, c)
		}
		v, _ = rc.m.LoadOrStore(handler, &cs)
	}
	return v.(*counters)
}

// add counts one request of handler answered with status (0: none sent).
func (rc *requestCounts) add(handler string, status int) {
	rc.of(handler)[contract.ClassOf(status)].Inc()
}

// addClasses counts the requests of handler in cs.
func (rc *requestCounts) addClasses(handler string, cs *contract.Classes) {
	var cnt *counters
	for i, n := range cs {
		if n > 0 {
			if cnt == nil {
				cnt = rc.of(handler)
			}
			cnt[i].Add(float64(n))
		}
	}
}

// Collector returns the server's metrics: connections and requests.
func (s *Server) Collector() prometheus.Collector {
	return serverCollector{s}
}

type serverCollector struct{ s *Server }

var (
	descOpen = prometheus.NewDesc("capuchin_connections_open",
		"Client connections being served.", nil, nil)
	descAccepted = prometheus.NewDesc("capuchin_connections_accepted_total",
		"Client connections accepted, shed ones included.", nil, nil)
	descShed = prometheus.NewDesc("capuchin_connections_shed_total",
		"Client connections answered 503 and closed because MaxConnections was reached.", nil, nil)
)

func (c serverCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descOpen
	ch <- descAccepted
	ch <- descShed
	c.s.reqs.vec.Describe(ch)
}

func (c serverCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	shed := float64(s.shedCount.Load())
	ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(s.open.Load()))
	ch <- prometheus.MustNewConstMetric(descAccepted, prometheus.CounterValue, float64(s.nextID.Load())+shed)
	ch <- prometheus.MustNewConstMetric(descShed, prometheus.CounterValue, shed)
	s.reqs.vec.Collect(ch)
}

// isMetrics reports whether the request is a scrape of the MetricsURL.
func (c *conn) isMetrics(sv *config.Server) bool {
	return sv.MetricsURL != "" && c.s.exporter != nil && c.req.Path == sv.MetricsURL
}

// serveMetrics answers a scrape: GET or HEAD, any virtual host.
func (c *conn) serveMetrics(sn *snapshot) (int, int64, bool) {
	c.handler = handlerMetrics
	if ok, st := c.drainBody(sn); !ok {
		return c.fail(st)
	}
	if c.req.Method != "GET" && c.req.Method != "HEAD" {
		c.w.AddField("Allow", "GET, HEAD")
		c.w.Error(405, "")
		return 405, c.w.Bytes, true
	}
	ct, body, err := c.s.exporter.Export(c.req.Header.Get("Accept"))
	if err != nil {
		c.s.log.Warn("metrics scrape incomplete", "error", err)
	}
	c.w.AddField("Content-Type", ct)
	c.w.AddField("Cache-Control", "no-store")
	c.w.WriteHead(200, int64(len(body)))
	c.w.Write(body)
	return 200, c.w.Bytes, true
}

// hostGiveBack is the lease give-back rule of the MetricsURL: a scrape
// that comes on a leased connection goes back to the host, which answers
// it, whatever the plugin's claims.
func hostGiveBack(sv *config.Server) []contract.Claims {
	if sv.MetricsURL == "" {
		return nil
	}
	return []contract.Claims{{Paths: []string{"^" + regexp.QuoteMeta(sv.MetricsURL) + "$"}}}
}
