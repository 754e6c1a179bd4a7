package pluginhost

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/capuchin/capuchin/host/stage"
	"github.com/capuchin/capuchin/internal/contract"
	"github.com/capuchin/capuchin/internal/transport"
)

// hostMetrics are the plugin host's own figures: stage latencies per
// plugin, leases, and (read from the plugins at each scrape) restarts and
// dropped notifications.
type hostMetrics struct {
	stageDur *prometheus.HistogramVec
	granted  *prometheus.CounterVec
	returned *prometheus.CounterVec
	leased   *prometheus.CounterVec
	obs      sync.Map // *plugin -> *[contract.NumStages]prometheus.Observer
}

func newHostMetrics() *hostMetrics {
	return &hostMetrics{
		stageDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "capuchin_plugin_stage_duration_seconds",
			Help: "Time from an event sent to a plugin to its reply, by plugin and stage (10, 20, 30; under a lease, stage 30 until the first request is done, and stage 20 also the calls the lease holder made itself).",
			// From 50 µs (a local round trip) to 60 s (the stage-30 deadline).
			Buckets: prometheus.ExponentialBucketsRange(50e-6, 60, 16),
		}, []string{"plugin", "stage"}),
		granted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "capuchin_leases_granted_total",
			Help: "Connections handed to a stage-30 plugin under a lease.",
		}, []string{"plugin"}),
		returned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "capuchin_leases_returned_total",
			Help: "Leases that ended with the connection given back to the host open.",
		}, []string{"plugin"}),
		leased: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "capuchin_leased_requests_total",
			Help: "Requests a plugin served under a lease after the first of its hand-over.",
		}, []string{"plugin"}),
	}
}

// observe records the latency of one call of p at stage st since start.
func (m *hostMetrics) observe(p *plugin, st contract.Stage, start time.Time) {
	v, ok := m.obs.Load(p)
	if !ok {
		var o [contract.NumStages]prometheus.Observer
		for _, s := range []contract.Stage{contract.StageConnect, contract.StageRequest, contract.StageHandle} {
			if p.hooks(s) {
				o[s.Index()] = m.stageDur.WithLabelValues(p.spec.Name, stageLabel(s))
			}
		}
		v, _ = m.obs.LoadOrStore(p, &o)
	}
	v.(*[contract.NumStages]prometheus.Observer)[st.Index()].Observe(time.Since(start).Seconds())
}

// observePeers records the times of the stage-20 calls a lease holder
// made to its peers (by peer, in the lease's order), as the host's own
// stage-20 calls are.
func (m *hostMetrics) observePeers(peers []contract.Peer, times [][]time.Duration) {
	for i, ts := range times[:min(len(times), len(peers))] {
		if len(ts) == 0 {
			continue
		}
		o := m.stageDur.WithLabelValues(peers[i].Name, stageLabel(contract.StageRequest))
		for _, d := range ts {
			o.Observe(d.Seconds())
		}
	}
}

func stageLabel(s contract.Stage) string {
	return [...]string{"10", "20", "30", "40", "50"}[s.Index()]
}

// handleTimer times one stage-30 call: until its reply, or under a lease
// until the first request is done (the interim reply). It lives on its
// caller's stack: timing a call allocates nothing.
type handleTimer struct {
	m      *hostMetrics
	p      *plugin
	start  time.Time
	leased bool
	timed  bool            // the call's time was observed
	held   stage.Holder    // what the lease's interim replies must also tell
	peers  []contract.Peer // the lease's peers, whose times reports carry
}

// timeHandle starts timing a stage-30 call of p with lease terms l; held
// is what the lease's interim replies must also tell.
func (m *hostMetrics) timeHandle(p *plugin, l stage.Lease, held stage.Holder) handleTimer {
	t := handleTimer{m: m, p: p, start: time.Now(), leased: l.MaxRequests > 1, held: held, peers: l.Peers}
	if t.leased {
		m.granted.WithLabelValues(p.spec.Name).Inc()
	}
	return t
}

// interim is what leaseTrip calls at an interim reply. The time observed
// ends there: the lease's first request is done, or the request turned
// into a tunnel or long transfer (unbounded), which would otherwise count
// whole.
func (t *handleTimer) interim(r *transport.Reply) {
	t.observe()
	if r.Unbounded || t.held == nil {
		return
	}
	var first *stage.Result // the plugin tells the first request's answer (LeaseRecords), or not
	if t.p.man.LeaseRecords {
		first = &stage.Result{Verdict: stage.Handled, Status: r.Status, BytesOut: r.BytesOut, HeadOut: r.HeadOut,
			Upstream: r.Upstream, Handler: t.p.spec.Name}
	}
	t.held.Park(first)
}

// report is what leaseTrip calls at a report (an interim reply with
// leased requests, Lease.ReportCounts): their counts go to the metrics
// and the connection now, not when the lease ends, and so do their
// records.
func (t *handleTimer) report(r *transport.Reply) {
	t.m.leased.WithLabelValues(t.p.spec.Name).Add(float64(r.Leased))
	t.m.observePeers(t.peers, r.PeerTimes)
	if t.held != nil {
		t.held.Report(&stage.Result{Handler: t.p.spec.Name, Leased: r.Leased, Classes: r.Classes, PeerClasses: r.PeerClasses,
			Records: r.Records})
	}
}

// observe records the call's time once.
func (t *handleTimer) observe() {
	if !t.timed {
		t.timed = true
		t.m.observe(t.p, contract.StageHandle, t.start)
	}
}

// done ends the timing with the call's outcome.
func (t *handleTimer) done(r *transport.Reply, err error) {
	t.observe()
	if !t.leased || r == nil {
		return
	}
	if r.Leased > 0 {
		t.m.leased.WithLabelValues(t.p.spec.Name).Add(float64(r.Leased))
	}
	if err == nil && !r.Close && r.Err == "" {
		t.m.returned.WithLabelValues(t.p.spec.Name).Inc()
	}
}

var (
	descRestarts = prometheus.NewDesc("capuchin_plugin_restarts_total",
		"Plugin processes started again after one exited.", []string{"plugin"}, nil)
	descDropped = prometheus.NewDesc("capuchin_plugin_notes_dropped_total",
		"Stage-40/50 notifications dropped because the plugin's queue was full or the plugin was down.", []string{"plugin"}, nil)
	descUp = prometheus.NewDesc("capuchin_plugin_up",
		"1 while the plugin's process is running, 0 while it is being restarted.", []string{"plugin"}, nil)
)

// Collector returns the plugin host's metrics (not the plugins' own: see
// Scrape).
func (h *Host) Collector() prometheus.Collector { return hostCollector{h} }

type hostCollector struct{ h *Host }

func (c hostCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descRestarts
	ch <- descDropped
	ch <- descUp
	m := c.h.met
	m.stageDur.Describe(ch)
	m.granted.Describe(ch)
	m.returned.Describe(ch)
	m.leased.Describe(ch)
}

func (c hostCollector) Collect(ch chan<- prometheus.Metric) {
	dropped := c.h.Dropped()
	for _, p := range c.h.cur.Load().all {
		name := p.spec.Name
		up := 0.0
		if p.inst.Load() != nil {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(p.restarts.Load()), name)
		ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(dropped[name]), name)
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up, name)
	}
	m := c.h.met
	m.stageDur.Collect(ch)
	m.granted.Collect(ch)
	m.returned.Collect(ch)
	m.leased.Collect(ch)
}

// PluginMetrics is one plugin's answer to a scrape.
type PluginMetrics struct {
	Plugin string
	transport.Metrics
	Err error
}

// Scrape asks every running plugin for its metrics, all at once, each
// within timeout. Plugins without metrics (empty Data, or a plugin that
// does not implement the call) are left out; a failed call is returned
// with its error.
func (h *Host) Scrape(ctx context.Context, timeout time.Duration) []PluginMetrics {
	ps := h.cur.Load().all
	out := make([]PluginMetrics, len(ps))
	callAll(ctx, timeout, ps, func(ctx context.Context, i int, in *instance) {
		m, err := in.tc.Metrics(ctx)
		out[i] = PluginMetrics{Plugin: ps[i].spec.Name, Metrics: m, Err: err}
	})
	kept := out[:0]
	for _, m := range out {
		if errors.Is(m.Err, transport.ErrUnimplemented) || m.Err == nil && len(m.Data) == 0 {
			continue
		}
		kept = append(kept, m)
	}
	return kept
}

// Reopen asks every running plugin to reopen the files it writes (SIGUSR1)
// and returns the failures, by plugin name.
func (h *Host) Reopen(ctx context.Context, timeout time.Duration) map[string]error {
	ps := h.cur.Load().all
	errs := make([]error, len(ps))
	callAll(ctx, timeout, ps, func(ctx context.Context, i int, in *instance) {
		if err := in.tc.Reopen(ctx); err != nil && !errors.Is(err, transport.ErrUnimplemented) {
			errs[i] = err
		}
	})
	out := map[string]error{}
	for i, err := range errs {
		if err != nil {
			out[ps[i].spec.Name] = err
		}
	}
	return out
}

// callAll runs f for the running instance of every plugin of ps at once,
// each with its own timeout, and waits for them all.
func callAll(ctx context.Context, timeout time.Duration, ps []*plugin, f func(ctx context.Context, i int, in *instance)) {
	var wg sync.WaitGroup
	for i, p := range ps {
		in := p.inst.Load()
		if in == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			f(cctx, i, in)
		}()
	}
	wg.Wait()
}
