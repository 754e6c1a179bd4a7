package proxy

import (
	"fmt"
	"time"

	"github.com/capuchin/capuchin/plugins/proxy_reverse/forward"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/status"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/upstream"
)

// serveStatus answers the StatisticsURL with the status package.
func (p *Proxy) serveStatus(r *forward.Request) Result {
	return Result{Result: status.Serve(r, p.clock.Date(), p.Snapshot)}
}

// Snapshot returns the current state of every entry and server.
func (p *Proxy) Snapshot() *status.Page {
	now := time.Now()
	pg := &status.Page{Time: now}
	for _, e := range p.entries {
		se := status.Entry{Where: e.cfg.Where, Balancer: e.pol.Name(), Match: e.cfg.MatchSrc,
			AttemptsCount: e.cfg.AttemptsCount, OfflineTimeout: e.cfg.OfflineTimeout.String()}
		if st := e.cfg.Sticky; st != nil {
			se.Sticky = "cookie " + st.Name
		}
		if e.budget != nil {
			bs := e.budget.Stats()
			se.RetryBudget = &status.Budget{Percent: e.cfg.RetryBudget.Percent, MinPerSec: e.cfg.RetryBudget.MinPerSec,
				WindowRequests: bs.Requests, WindowRetries: bs.Retries, Allowed: bs.Allowed, Denied: bs.Denied}
		}
		if e.cfg.Health != nil {
			se.HealthCheck = e.cfg.Health.String()
		}
		if e.cfg.SlowStart > 0 {
			se.SlowStart = e.cfg.SlowStart.String()
		}
		slots := e.group.Slots()
		for _, s := range e.group.Servers() {
			ss := serverStatus(s.Stats(now), now)
			for i, t := range slots.Servers {
				if t == s {
					ss.Weight += slots.Weight(i) // repetition and weight=N
				}
			}
			se.Servers = append(se.Servers, ss)
		}
		pg.Entries = append(pg.Entries, se)
	}
	return pg
}

// serverStatus turns a server's counters into its status page row.
func serverStatus(st upstream.Stats, now time.Time) status.Server {
	ss := status.Server{Name: st.Name, Addr: st.Addr, State: "online", Status: st.State(), Share: st.Share,
		Active: st.Active, Idle: st.Idle, Requests: st.Requests, Failures: st.Failures, Stray: st.Stray,
		Retries: st.Retries, Tunnels: st.Tunnels, Consecutive: st.Consecutive, LastMinute: traffic(st.LastMinute), LastFive: traffic(st.LastFive)}
	if !st.Online {
		ss.OfflineUntil = &st.OfflineUntil
	}
	if ss.Status == upstream.StateDown || ss.Status == upstream.StateOffline {
		ss.State = "offline"
	}
	if c := st.Check; c != nil {
		ss.Check = &status.Check{Down: c.Down, Run: c.Run, Rise: c.Rise, Fall: c.Fall, Checks: c.Checks, Failed: c.Failed}
		if l := c.Last; l != nil {
			at := l.At
			ss.Check.LastAt, ss.Check.LastOK, ss.Check.Reason, ss.Check.TookMS = &at, l.OK, l.Reason, millis(l.Took)
		}
	}
	ss.StatusText = statusText(&st, now)
	return ss
}

// statusText says a server's state in words, with its reason, as HAProxy's
// "UP 1/3" (going down) and "DOWN 1/2" (going up).
func statusText(st *upstream.Stats, now time.Time) string {
	c := st.Check
	switch st.State() {
	case upstream.StateDown:
		why := "down by health check"
		if c.Last != nil {
			why += ": " + c.Last.Reason
		}
		if c.Run > 0 {
			why += fmt.Sprintf(" (going up, %d/%d)", c.Run, c.Rise)
		}
		return why
	case upstream.StateOffline:
		return fmt.Sprintf("offline by passive HA after %s in a row, retried in %s",
			plural(st.Consecutive, "failure"), st.OfflineUntil.Sub(now).Round(time.Second))
	case upstream.StateSlowStart:
		return fmt.Sprintf("slow start: %.1f%% of its share", 100*st.Share)
	}
	switch {
	case c != nil && c.Run < 0:
		return fmt.Sprintf("up, check failing (going down, %d/%d)", -c.Run, c.Fall)
	case st.Consecutive > 0:
		return fmt.Sprintf("up, %s in a row", plural(st.Consecutive, "failure"))
	case c != nil:
		return "up, health check passing"
	}
	return "up"
}

func traffic(w upstream.Window) status.Traffic {
	return status.Traffic{Span: w.Span.Seconds(), Requests: w.Requests, Errors: w.Errors, Rate: w.Rate(),
		ErrorRatio: w.ErrorRatio(), P50: millis(w.Percentile(.5)), P90: millis(w.Percentile(.9)),
		P99: millis(w.Percentile(.99))}
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
