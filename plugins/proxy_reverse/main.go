// Command proxy_reverse is Capuchin's load-balancing reverse proxy plugin.
// It hooks stage 30: requests whose path matches an entry of
// proxy_reverse.conf (or the StatisticsURL) are forwarded to the entry's
// backends on the raw client connection; every other request is declined
// untouched, so static serving keeps working. The engine is package proxy;
// this file wires it to the SDK. See README.md for the configuration.
package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/capuchin/capuchin/api"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/config"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/forward"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/proxy"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/upstream"
)

// engine is a configured proxy with its claims and its stage-30 deadline
// (RequestDeadline): the engine has its own connect, response and client
// timeouts, and a tunnel, or a transfer still moving after half the
// deadline, lifts it (api.Request.ClearDeadline).
type engine struct {
	p        *proxy.Proxy
	claims   []string
	deadline time.Duration
}

// plugin is the SDK side. ctx ends when the host stops the plugin, which
// aborts backend dials and waits of requests in flight.
type plugin struct {
	eng    atomic.Pointer[engine]
	reg    *upstream.Registry // backend health and counters, kept across Configure
	ctx    context.Context
	cancel context.CancelFunc
}

func (pl *plugin) Info() api.Info {
	// Reconfigure: a reload that changes proxy_reverse.conf calls Configure
	// on this process, so backend health and counters survive it.
	d := config.DefaultRequestDeadline
	if e := pl.eng.Load(); e != nil { // Configure runs before the host asks
		d = e.deadline
	}
	return api.Info{Name: "proxy_reverse", Version: "1.0", Reconfigure: true,
		Handle: api.Limits{Deadline: d, Policy: api.FailClosed}}
}

// Configure reads proxy_reverse.conf (required) and builds the engine.
func (pl *plugin) Configure(path string) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	p, err := proxy.New(cfg, api.Logger(), proxy.WithRegistry(pl.reg))
	if err != nil {
		return fmt.Errorf("proxy_reverse: %w", err)
	}
	e := &engine{p: p, claims: p.Claims(), deadline: cfg.RequestDeadline}
	if old := pl.eng.Swap(e); old != nil {
		old.p.Close()
	}
	api.Logger().Info("configured", "entries", len(cfg.Entries), "claims", len(e.claims))
	return nil
}

// Claims returns the engine's path patterns. The host asks once, after
// Configure; Handle still declines, untouched, a request no entry matches.
func (pl *plugin) Claims() api.Claims {
	if e := pl.eng.Load(); e != nil {
		return api.Claims{Paths: e.claims}
	}
	return api.Claims{}
}

// Handle forwards a claimed request on the raw connection.
func (pl *plugin) Handle(r *api.Request, w *api.ResponseWriter) api.Verdict {
	e := pl.eng.Load()
	if e == nil {
		return api.Decline
	}
	rt, ok := e.p.Route(r.Path)
	if !ok || r.Method == "CONNECT" {
		// Before touching the connection. A reverse proxy opens no tunnel
		// to the authority a client names: CONNECT goes to the host (405).
		return api.Decline
	}
	conn, br := r.Conn()
	res := rt.Serve(pl.ctx, &forward.Request{Conn: conn, BR: br, Req: &r.Request, Client: r.Client.Remote, TLS: r.Client.TLS.On(),
		KeepAlive: r.KeepAlive && !r.Request.Close, Server: r.Server, MaxBody: r.MaxBody, ClientTimeout: r.Timeout,
		Deadlines: r, LongAfter: e.deadline / 2, Start: r.Start})
	if res.Upstream.Forwarded() {
		r.SetUpstream(res.Upstream)
	}
	return report(&res, w)
}

// report turns the engine's result into the SDK's verdict.
func report(res *proxy.Result, w *api.ResponseWriter) api.Verdict {
	if res.Declined || res.BytesOut == 0 {
		// Nothing reached the client (the engine declined after all, or
		// failed before its error page): the host sends the error page.
		status := res.Status
		if status < 400 {
			status = 502
		}
		if res.Err != nil {
			api.Logger().Debug("request failed before any response byte", "error", res.Err)
		}
		w.SetErrorStatus(status)
		return api.Close
	}
	w.Report(res.Status, res.BytesOut)
	w.ReportHead(res.HeadOut)
	if res.Close {
		w.SetClose()
	}
	return api.Handled
}

// Collectors gives the host's MetricsURL the proxy's metrics: those of the
// engine in service at each scrape.
func (pl *plugin) Collectors() []prometheus.Collector { return []prometheus.Collector{collector{pl}} }

type collector struct{ pl *plugin }

func (c collector) Describe(chan<- *prometheus.Desc) {} // unchecked: the series follow the configuration

func (c collector) Collect(ch chan<- prometheus.Metric) {
	if e := c.pl.eng.Load(); e != nil {
		e.p.Collect(ch)
	}
}

func main() {
	pl := &plugin{reg: upstream.NewRegistry(api.Logger())}
	pl.ctx, pl.cancel = context.WithCancel(context.Background())
	api.Serve(pl) // returns when the host stops the plugin
	pl.cancel()
	if e := pl.eng.Load(); e != nil {
		e.p.Close()
	}
}
