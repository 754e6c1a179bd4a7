package pluginhost

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"syscall"
	"time"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/host/stage"
	"github.com/capuchin/capuchin/internal/contract"
	"github.com/capuchin/capuchin/internal/fdpass"
	"github.com/capuchin/capuchin/internal/transport"
)

// Connect runs stage 10 in load order for the plugins whose filter takes
// the client; the first Close wins.
func (h *Host) Connect(c *stage.Conn) stage.Verdict {
	s := h.cur.Load()
	if len(s.connect) == 0 {
		return stage.Continue
	}
	ev := transport.Event{Kind: transport.EventConnect, Conn: c.Conn}
	for _, p := range s.connect {
		if !p.wantsConn(c.Remote.Addr()) {
			continue
		}
		r, err := h.call(p, &ev, contract.StageConnect)
		if err != nil || r.Err != "" {
			if !p.termsAt(contract.StageConnect).failOpen {
				return stage.Close
			}
			continue
		}
		if r.Verdict == stage.Close {
			return stage.Close
		}
	}
	return stage.Continue
}

// Request runs stage 20 in load order for the plugins whose filter takes
// the request; the first Close or Respond wins.
func (h *Host) Request(c *stage.Conn, req *http1.Request, vhost string) (stage.Verdict, *stage.Reply) {
	s := h.cur.Load()
	var ev *transport.Event
	for _, p := range s.request {
		if !p.wantsRequest(req) {
			continue
		}
		if ev == nil {
			ev = &transport.Event{Kind: transport.EventRequest, Conn: c.Conn, Head: []byte(req.Raw), VHost: vhost}
		}
		r, err := h.call(p, ev, contract.StageRequest)
		if err != nil || r.Err != "" {
			if !p.termsAt(contract.StageRequest).failOpen {
				return stage.Respond, contract.Unavailable()
			}
			continue
		}
		switch r.Verdict {
		case stage.Close:
			return stage.Close, nil
		case stage.Respond:
			return stage.Respond, replyOf(r)
		}
	}
	return stage.Continue, nil
}

// replyOf is a stage-20 plugin's Reply, with a status it cannot have made 500.
func replyOf(r *transport.Reply) *stage.Reply {
	out := r.Reply
	if out.Status < 100 || out.Status > 999 {
		out.Status = 500
	}
	return &out
}

// Handle runs stage 30: the plugins whose claim filter matches, in load
// order, until one does not decline.
func (h *Host) Handle(c *stage.Conn, req *http1.Request, ho *stage.Handoff) stage.Result {
	s := h.cur.Load()
	var ev *transport.Event
	unsent := ho.Unsent
	for i, p := range s.handle {
		if !p.filter.Load().Match(req) {
			continue
		}
		if ev == nil {
			ev = &transport.Event{Kind: transport.EventHandle, Conn: c.Conn, Head: []byte(req.Raw),
				VHost: ho.VHost, Buffered: ho.Buffered, MaxBody: ho.MaxBody, KeepAlive: ho.KeepAlive, Server: ho.Server,
				Timeout: ho.Timeout, MaxHead: ho.MaxHead}
		}
		ev.Lease = h.lease(s, i, ho)
		if res := h.handleAt(p, c, ev, ho.Held, unsent); res.Verdict != stage.Decline || res.Err != nil {
			res.Handler = p.spec.Name
			return res
		}
		unsent = false // the plugin that declined held the socket
	}
	return stage.Result{Verdict: stage.Decline}
}

// MayLease reports whether a stage-30 call for req could be granted a
// lease: the first stage-30 plugin takes it (lease) and is running. It
// implements stage.Leaser.
func (h *Host) MayLease(req *http1.Request) bool {
	s := h.cur.Load()
	return s.leasable && len(s.handle) > 0 && s.handle[0].inst.Load() != nil && s.handle[0].filter.Load().Match(req)
}

// lease returns the lease terms for the i-th stage-30 plugin: the host's
// offer only where nothing else would have seen the following requests
// unasked — no earlier stage-30 plugin could claim them, and every
// stage-20 plugin has a filter, which goes with the lease so that a
// request it matches comes back to the host (s.giveBack), or takes peer
// calls from the lease holder (s.peers).
func (h *Host) lease(s *snapshot, i int, ho *stage.Handoff) stage.Lease {
	if i > 0 || !s.leasable || ho.Lease.MaxRequests <= 1 {
		return stage.Lease{MaxRequests: 1}
	}
	l := stage.Lease{MaxRequests: ho.Lease.MaxRequests, IdleTimeout: ho.Lease.IdleTimeout, GiveBack: giveBack(s, ho),
		ErrorPages: ho.Lease.ErrorPages, Served: ho.Lease.Served}
	if len(s.peers) > 0 {
		var ok bool
		if l.Peers, ok = h.peers.terms(s); !ok {
			return stage.Lease{MaxRequests: 1}
		}
		l.PeerTimes = ho.Lease.PeerTimes // the host times stage-20 calls (MetricsURL)
	}
	// Someone logs: records come back with the lease. The host counts
	// requests (MetricsURL) or logs them: a plugin that reports as it goes
	// (with the records, when records are wanted and the connection takes
	// reports) is asked to; the others' leases are bounded, so that counts
	// and records come back at least every contract.LeaseRecordBatch requests.
	l.Records = len(s.done) > 0
	man := &s.handle[i].man
	reports := man.LeaseReports && (!l.Records || man.LeaseRecords && ho.Held != nil)
	l.ReportCounts = reports && (ho.Lease.ReportCounts || l.Records)
	if (ho.Lease.ReportCounts || l.Records) && !l.ReportCounts {
		l.MaxRequests = min(l.MaxRequests, contract.LeaseRecordBatch)
	}
	return l
}

// giveBack is what a lease gives back to the host: the requests the
// stage-20 plugins' filters match, and the host's own paths (the server's
// offer: MetricsURL).
func giveBack(s *snapshot, ho *stage.Handoff) []contract.Claims {
	switch {
	case len(ho.Lease.GiveBack) == 0:
		return s.giveBack
	case len(s.giveBack) == 0:
		return ho.Lease.GiveBack
	}
	return append(slices.Clip(s.giveBack), ho.Lease.GiveBack...)
}

// handleAt makes p's stage-30 call for ev, handing it c's socket. unsent
// says no byte has been sent on the socket yet, which spares the kernel's
// count before the call (see lost).
func (h *Host) handleAt(p *plugin, c *stage.Conn, ev *transport.Event, held stage.Holder, unsent bool) stage.Result {
	p.inflight.Add(1)
	defer p.inflight.Add(-1)
	t := p.termsAt(contract.StageHandle)
	in := p.inst.Load()
	if in == nil {
		return policy30(t)
	}
	sock, err := begin(c)
	if err != nil {
		p.log.Warn("hand-over failed", "conn", c.ID, "error", err)
		return policy30(t)
	}
	if err := in.sendSocket(c.ID, sock, t.deadline); err != nil {
		end(c)
		p.log.Warn("hand-over failed", "conn", c.ID, "error", err)
		return policy30(t)
	}
	if ev.Lease.MaxRequests > 1 {
		if h.leases.register(c.ID, in) {
			defer h.leases.end(c.ID, in)
		} else {
			ev.Lease = stage.Lease{MaxRequests: 1} // revoked before it began
		}
	}
	base, known := uint64(0), true // a socket nothing was sent on: the kernel's count is 0
	if !unsent {
		base, known = sentBytes(c)
	}
	tm := h.met.timeHandle(p, ev.Lease, held)
	r, err := in.leaseTrip(&h.calls, ev, t.deadline, leaseDeadline(t.deadline, ev.Lease), &tm)
	tm.done(r, err)
	if err == nil {
		h.met.observePeers(ev.Lease.Peers, r.PeerTimes)
	}
	switch {
	case err == nil && r.Idle > 0:
		in.handed.Delete(c.ID) // the plugin let its copy go: the next hand-over sends the socket again
	case err == nil && r.Close && r.Released:
		in.handed.Store(c.ID, releasedCopy) // Closed sends it no Note (and still shuts the socket down)
	}
	end(c)
	return result(p, c, r, err, base, known, t)
}

// sendSocket passes the socket of connection id to the instance's process,
// unless the process holds a copy already (instance.handed).
func (in *instance) sendSocket(id uint64, sock syscall.Conn, deadline time.Duration) error {
	v, sent := in.handed.LoadOrStore(id, struct{}{})
	if sent && v != releasedCopy {
		return nil
	}
	if sent { // the host kept the connection after a close reply: the plugin has no copy
		in.handed.Store(id, struct{}{})
	}
	if err := in.fds.Send(id, sock, deadline); err != nil {
		in.handed.Delete(id)
		return err
	}
	return nil
}

// begin returns the socket to hand to a plugin: the client's, or on a TLS
// connection the relay's, which starts relaying.
func begin(c *stage.Conn) (syscall.Conn, error) {
	if c.Relay != nil {
		return c.Relay.Begin()
	}
	if c.TCP == nil {
		return nil, errors.New("no socket to hand over")
	}
	return c.TCP, nil
}

// end stops a TLS connection's relay once the plugin has answered.
func end(c *stage.Conn) {
	if c.Relay != nil {
		c.Relay.End()
	}
}

// result turns a plugin's stage-30 reply (or failure) into the Result.
func result(p *plugin, c *stage.Conn, r *transport.Reply, err error, base uint64, known bool, t *terms) stage.Result {
	switch {
	case errors.Is(err, errCrashed), errors.Is(err, errDeadline):
		return lost(p, c, err, base, known, t)
	case err != nil:
		return policy30(t)
	case r.Err != "":
		// The plugin's own count may miss bytes (a panic): trust the kernel's.
		wrote := r.BytesOut
		if now, ok := sentBytes(c); ok && known {
			wrote = max(wrote, int64(now-base))
		}
		return stage.Result{Verdict: stage.Close, Close: true, BytesOut: wrote,
			Err: fmt.Errorf("plugin %s: %s", p.spec.Name, r.Err)}
	}
	switch r.Verdict {
	case stage.Decline, stage.Handled, stage.Close:
	default:
		return stage.Result{Verdict: stage.Close, Close: true, BytesOut: r.BytesOut,
			Err: fmt.Errorf("plugin %s: verdict %v is not valid at stage 30", p.spec.Name, r.Verdict)}
	}
	return stage.Result{Verdict: r.Verdict, Status: r.Status, BytesIn: r.BytesIn,
		BytesOut: r.BytesOut, HeadOut: r.HeadOut, Leftover: r.Leftover, Close: r.Close, Leased: r.Leased,
		Classes: r.Classes, PeerClasses: r.PeerClasses, Records: r.Records, Upstream: r.Upstream, Idle: r.Idle}
}

// leaseDeadline bounds the rest of a lease once its first request is done:
// the stage's deadline for each further request, plus the idle waits
// between them. (The SDK also holds each leased request to the deadline.)
func leaseDeadline(d time.Duration, l stage.Lease) time.Duration {
	if l.MaxRequests <= 1 {
		return d
	}
	per := d + l.IdleTimeout
	for _, p := range l.Peers {
		per += p.Deadline // each leased request may wait for every peer first
	}
	if n := time.Duration(l.MaxRequests - 1); per > 0 && n > math.MaxInt64/per {
		return math.MaxInt64 // saturate: the SDK's per-request deadline still holds
	}
	return time.Duration(l.MaxRequests-1) * per
}

// Revoke asks the plugin holding c under a lease to give it back at the
// next request boundary; a lease about to begin is not granted. It does not
// wait for the plugin. It implements stage.Leaser.
func (h *Host) Revoke(c *stage.Conn) {
	if in := h.leases.revoke(c.ID); in != nil {
		in.post(&transport.Event{Kind: transport.EventRevoke, Conn: c.Conn})
	}
}

// lost answers for a stage-30 call whose plugin crashed or ran late while
// it held the socket. Whether it had started a response is read from the
// kernel's count of bytes sent; unknown counts as started. A late plugin may
// still write, so the connection always closes after this request.
func lost(p *plugin, c *stage.Conn, err error, base uint64, known bool, t *terms) stage.Result {
	var wrote int64 = 1
	if now, ok := sentBytes(c); ok && known {
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

// call runs one stage-10 or stage-20 event at p, counting it in flight.
func (h *Host) call(p *plugin, ev *transport.Event, st contract.Stage) (*transport.Reply, error) {
	p.inflight.Add(1)
	defer p.inflight.Add(-1)
	in := p.inst.Load()
	if in == nil {
		return nil, errNotSent
	}
	defer h.met.observe(p, st, time.Now())
	return in.roundTrip(&h.calls, ev, p.termsAt(st).deadline)
}

// Done queues a stage-40 notification for every plugin that hooks it.
func (h *Host) Done(rec *stage.Record) {
	s := h.cur.Load()
	if len(s.done) == 0 {
		return
	}
	var q queued
	q.records.Append(rec)
	for _, p := range s.done {
		p.notify(&q)
	}
}

// DoneLeased queues the records of requests served under a lease for
// every plugin that hooks stage 40, as one item of each one's queue (see
// notes.go). It implements stage.Pipeline.
func (h *Host) DoneLeased(rs stage.Records) {
	if rs.Len() == 0 {
		return
	}
	q := queued{records: rs}
	for _, p := range h.cur.Load().done {
		p.notify(&q)
	}
}

// Closed queues a stage-50 notification for every plugin that hooks it or
// holds a copy of the connection's socket (it was handed the connection
// and did not release its copy, Reply.Released), and shuts the socket down
// if any plugin was handed it, so that a leaked copy cannot keep the
// connection open. Call it before closing c.TCP.
func (h *Host) Closed(c *stage.Conn) {
	h.leases.forget(c.ID)
	s := h.cur.Load()
	if len(s.closed) == 0 {
		return
	}
	var q *queued
	handed := false
	for _, p := range s.closed {
		in := p.inst.Load()
		got, holds := false, false
		if in != nil {
			var v any
			v, got = in.handed.LoadAndDelete(c.ID)
			holds = got && v != releasedCopy
		}
		handed = handed || got
		if !holds && !p.hooks(contract.StageClosed) {
			continue
		}
		if q == nil {
			q = &queued{closed: c.Conn}
		}
		p.notify(q)
	}
	switch {
	case !handed:
	case c.Relay != nil: // the plugins hold the relay's socket, not the client's
		c.Relay.Shutdown()
	case c.TCP != nil:
		fdpass.Shutdown(c.TCP)
	}
}

// Compile-time check that *Host is a stage.Pipeline.
var (
	_ stage.Pipeline = (*Host)(nil)
	_ stage.Leaser   = (*Host)(nil)
)

// releasedCopy marks in instance.handed a connection whose plugin closed
// its copy of the socket when it replied close (Reply.Released): it needs
// no Note to let the copy go, and a later hand-over (the host's failure
// policy kept the connection) sends the socket again.
var releasedCopy = new(int)
