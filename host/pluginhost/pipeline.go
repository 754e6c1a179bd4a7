package pluginhost

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/host/stage"
	"github.com/capuchin/capuchin/internal/fdpass"
	"github.com/capuchin/capuchin/internal/transport"
)

// Connect runs stage 10 in load order; the first Close wins.
func (h *Host) Connect(c *stage.Conn) stage.Verdict {
	s := h.cur.Load()
	if len(s.connect) == 0 {
		return stage.Continue
	}
	ev := transport.Event{Kind: transport.EventConnect, Conn: connOf(c)}
	for _, p := range s.connect {
		r, err := h.call(p, &ev, transport.StageConnect)
		if err != nil || r.Err != "" {
			if !p.stages[1].failOpen {
				return stage.Close
			}
			continue
		}
		if r.Verdict == transport.Close {
			return stage.Close
		}
	}
	return stage.Continue
}

// Request runs stage 20 in load order; the first Close or Respond wins.
func (h *Host) Request(c *stage.Conn, req *http1.Request, vhost string) (stage.Verdict, *stage.Reply) {
	s := h.cur.Load()
	if len(s.request) == 0 {
		return stage.Continue, nil
	}
	ev := transport.Event{Kind: transport.EventRequest, Conn: connOf(c), Head: []byte(req.Raw), VHost: vhost}
	for _, p := range s.request {
		r, err := h.call(p, &ev, transport.StageRequest)
		if err != nil || r.Err != "" {
			if !p.stages[2].failOpen {
				return stage.Respond, unavailable()
			}
			continue
		}
		switch r.Verdict {
		case transport.Close:
			return stage.Close, nil
		case transport.Respond:
			return stage.Respond, replyOf(r)
		}
	}
	return stage.Continue, nil
}

func replyOf(r *transport.Reply) *stage.Reply {
	out := &stage.Reply{Status: r.Status, Body: r.Body}
	if out.Status < 100 || out.Status > 999 {
		out.Status = 500
	}
	for _, f := range r.Header {
		out.Header = append(out.Header, http1.Field{Name: f.Name, Value: f.Value})
	}
	return out
}

func unavailable() *stage.Reply {
	return &stage.Reply{
		Status: 503,
		Header: http1.Header{{Name: "Content-Type", Value: "text/html; charset=utf-8"}},
		Body:   http1.ErrorPage(503, ""),
	}
}

// Handle runs stage 30: the plugins whose claim filter matches, in load
// order, until one does not decline.
func (h *Host) Handle(c *stage.Conn, req *http1.Request, ho *stage.Handoff) stage.Result {
	s := h.cur.Load()
	var ev *transport.Event
	for i, p := range s.handle {
		if !p.filter.Match(req) {
			continue
		}
		if ev == nil {
			ev = &transport.Event{Kind: transport.EventHandle, Conn: connOf(c), Head: []byte(req.Raw),
				VHost: ho.VHost, Buffered: ho.Buffered, MaxBody: ho.MaxBody, KeepAlive: ho.KeepAlive}
		}
		ev.Lease = lease(s, i, ho)
		if res := h.handleAt(p, c, ev, ho.Park); res.Verdict != stage.Decline || res.Err != nil {
			return res
		}
	}
	return stage.Result{Verdict: stage.Decline}
}

// lease returns the lease terms for the i-th stage-30 plugin: the host's
// offer only where nothing else would have seen the following requests —
// no plugin hooks stage 20 and no earlier stage-30 plugin could claim them.
func lease(s *snapshot, i int, ho *stage.Handoff) transport.Lease {
	if i > 0 || len(s.request) > 0 || ho.Lease.MaxRequests <= 1 {
		return transport.Lease{MaxRequests: 1}
	}
	l := transport.Lease{MaxRequests: uint32(ho.Lease.MaxRequests), IdleTimeout: ho.Lease.IdleTimeout}
	if len(s.done) > 0 {
		// Someone logs: records come back with the lease, at least every
		// maxLeaseRecords requests.
		l.Records = true
		l.MaxRequests = min(l.MaxRequests, maxLeaseRecords)
	}
	return l
}

// maxLeaseRecords caps a lease whose stage-40 records are wanted, so that
// they come back at least this often.
const maxLeaseRecords = 128

func (h *Host) handleAt(p *plugin, c *stage.Conn, ev *transport.Event, park func()) stage.Result {
	p.inflight.Add(1)
	defer p.inflight.Add(-1)
	t := &p.stages[3]
	in := p.inst.Load()
	if in == nil || c.TCP == nil {
		return policy30(t)
	}
	if _, sent := in.handed.LoadOrStore(c.ID, struct{}{}); !sent {
		if err := in.fds.Send(c.ID, c.TCP, time.Now().Add(t.deadline)); err != nil {
			in.handed.Delete(c.ID)
			p.log.Warn("hand-over failed", "conn", c.ID, "error", err)
			return policy30(t)
		}
	}
	if ev.Lease.MaxRequests > 1 {
		if h.leases.register(c.ID, in) {
			defer h.leases.end(c.ID, in)
		} else {
			ev.Lease = transport.Lease{MaxRequests: 1} // revoked before it began
		}
	}
	base, known := sentBytes(c.TCP)
	r, err := in.leaseTrip(&h.calls, ev, t.deadline, leaseDeadline(t.deadline, ev.Lease), park)
	switch {
	case errors.Is(err, errCrashed), errors.Is(err, errDeadline):
		return lost(p, c, err, base, known, t)
	case err != nil:
		return policy30(t)
	case r.Err != "":
		// The plugin's own count may miss bytes (a panic): trust the kernel's.
		wrote := r.BytesOut
		if now, ok := sentBytes(c.TCP); ok && known {
			wrote = max(wrote, int64(now-base))
		}
		return stage.Result{Verdict: stage.Close, Close: true, BytesOut: wrote,
			Err: fmt.Errorf("plugin %s: %s", p.spec.Name, r.Err)}
	}
	res := stage.Result{Verdict: verdictOf(r.Verdict), Status: r.Status, BytesIn: r.BytesIn,
		BytesOut: r.BytesOut, Leftover: r.Leftover, Close: r.Close, Leased: int(r.Leased),
		Records: leasedRecords(c, ev.VHost, r.Records)}
	if res.Verdict != stage.Decline && res.Verdict != stage.Handled && res.Verdict != stage.Close {
		res = stage.Result{Verdict: stage.Close, Close: true, BytesOut: r.BytesOut,
			Err: fmt.Errorf("plugin %s: verdict %d is not valid at stage 30", p.spec.Name, r.Verdict)}
	}
	return res
}

// leaseDeadline bounds the rest of a lease once its first request is done:
// the stage's deadline for each further request, plus the idle waits
// between them. (The SDK also holds each leased request to the deadline.)
func leaseDeadline(d time.Duration, l transport.Lease) time.Duration {
	if l.MaxRequests <= 1 {
		return d
	}
	per := d + l.IdleTimeout
	if n := time.Duration(l.MaxRequests - 1); per > 0 && n > math.MaxInt64/per {
		return math.MaxInt64 // saturate: the SDK's per-request deadline still holds
	}
	return time.Duration(l.MaxRequests-1) * per
}

// leasedRecords converts the records of requests served under a lease.
func leasedRecords(c *stage.Conn, vhost string, rs []transport.Record) []stage.Record {
	if len(rs) == 0 {
		return nil
	}
	out := make([]stage.Record, len(rs))
	for i, r := range rs {
		out[i] = stage.Record{ConnID: c.ID, Remote: c.Remote, VHost: vhost, Method: r.Method,
			Target: r.Target, Proto: r.Proto, Status: r.Status, Bytes: r.Bytes, Start: r.Start,
			Duration: r.Duration}
	}
	return out
}

// Revoke asks the plugin holding c under a lease to give it back at the
// next request boundary; a lease about to begin is not granted. It does not
// wait for the plugin. It implements stage.Revoker.
func (h *Host) Revoke(c *stage.Conn) {
	if in := h.leases.revoke(c.ID); in != nil {
		in.post(&transport.Event{Kind: transport.EventRevoke, Conn: connOf(c)})
	}
}

// lost answers for a stage-30 call whose plugin crashed or ran late while
// it held the socket. Whether it had started a response is read from the
// kernel's count of bytes sent; unknown counts as started. A late plugin may
// still write, so the connection always closes after this request.
func lost(p *plugin, c *stage.Conn, err error, base uint64, known bool, t *terms) stage.Result {
	var wrote int64 = 1
	if now, ok := sentBytes(c.TCP); ok && known {
		wrote = int64(now - base)
	}
	if errors.Is(err, errCrashed) || wrote > 0 {
		return stage.Result{Verdict: stage.Close, Close: true, BytesOut: wrote,
			Err: fmt.Errorf("plugin %s: %w", p.spec.Name, err)}
	}
	res := policy30(t)
	res.Close = true
	return res
}

// policy30 is the stage-30 answer of a plugin that is down or late.
func policy30(t *terms) stage.Result {
	if t.failOpen {
		return stage.Result{Verdict: stage.Decline}
	}
	return stage.Result{Verdict: stage.Close, Status: 503, Close: true}
}

func verdictOf(v transport.Verdict) stage.Verdict {
	switch v {
	case transport.Continue:
		return stage.Continue
	case transport.Close:
		return stage.Close
	case transport.Respond:
		return stage.Respond
	case transport.Decline:
		return stage.Decline
	case transport.Handled:
		return stage.Handled
	}
	return stage.Verdict(255)
}

// call runs one stage-10 or stage-20 event at p, counting it in flight.
func (h *Host) call(p *plugin, ev *transport.Event, st int) (*transport.Reply, error) {
	p.inflight.Add(1)
	defer p.inflight.Add(-1)
	in := p.inst.Load()
	if in == nil {
		return nil, errNotSent
	}
	return in.roundTrip(&h.calls, ev, p.stages[st/10].deadline)
}

// Done queues a stage-40 notification for every plugin that hooks it.
func (h *Host) Done(rec *stage.Record) {
	s := h.cur.Load()
	if len(s.done) == 0 {
		return
	}
	n := transport.Note{Kind: transport.NoteDone, Record: transport.Record{
		ConnID: rec.ConnID, Remote: rec.Remote.String(), VHost: rec.VHost, Method: rec.Method,
		Target: rec.Target, Proto: rec.Proto, Status: rec.Status, Bytes: rec.Bytes,
		Start: rec.Start, Duration: rec.Duration}}
	for _, p := range s.done {
		p.notify(&n)
	}
}

// Closed queues a stage-50 notification for every plugin that hooks it or
// was handed the connection, and shuts the socket down if any plugin holds
// a copy, so that a leaked copy cannot keep the connection open. Call it
// before closing c.TCP.
func (h *Host) Closed(c *stage.Conn) {
	h.leases.forget(c.ID)
	s := h.cur.Load()
	if len(s.closed) == 0 {
		return
	}
	var n *transport.Note
	handed := false
	for _, p := range s.closed {
		in := p.inst.Load()
		got := false
		if in != nil {
			_, got = in.handed.LoadAndDelete(c.ID)
		}
		if !got && !p.hooks(transport.StageClosed) {
			continue
		}
		handed = handed || got
		if n == nil {
			n = &transport.Note{Kind: transport.NoteClosed, Conn: connOf(c)}
		}
		p.notify(n)
	}
	if handed && c.TCP != nil {
		fdpass.Shutdown(c.TCP)
	}
}

func (p *plugin) notify(n *transport.Note) {
	if in := p.inst.Load(); in != nil {
		in.notify(n)
		return
	}
	p.dropped.Add(1)
}

func connOf(c *stage.Conn) transport.Conn {
	return transport.Conn{ID: c.ID, Remote: c.Remote.String(), Local: c.Local.String()}
}

// Compile-time check that *Host is a stage.Pipeline.
var (
	_ stage.Pipeline = (*Host)(nil)
	_ stage.Revoker  = (*Host)(nil)
)
