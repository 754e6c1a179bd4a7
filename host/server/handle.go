package server

import (
	"cmp"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/host/config"
	"github.com/capuchin/capuchin/host/stage"
)

// handle answers the request in c.req: the core's checks, stage 20, stage
// 30 and the static fallback. It returns the status and bytes sent, and
// false when the connection must close.
func (c *conn) handle(sn *snapshot, site *config.Site) (int, int64, bool) {
	req := &c.req
	if st := c.check(sn); st != 0 {
		return c.fail(st)
	}
	if c.isMetrics(&sn.cfg.Server) {
		return c.serveMetrics(sn) // before any plugin: answered on every connection
	}
	v, reply := c.s.pipeline.Request(&c.info, req, siteName(site))
	switch v {
	case stage.Close:
		c.handler = handlerStage20
		return 0, 0, false
	case stage.Respond:
		c.handler = handlerStage20
		return c.sendReply(sn, reply)
	}
	if site.Redirect != "" {
		return c.redirect(sn, site.Redirect+req.Target)
	}
	if site.RedirectHTTPS != 0 && c.tls == nil {
		return c.redirect(sn, httpsURL(cmp.Or(req.Host, c.info.Local.Addr().String()), site.RedirectHTTPS, req.Target))
	}
	return c.content(sn, site)
}

// content runs stage 30 and, when every handler declines, the static-file
// handler. A call that offers a lease is left to a new goroutine: content
// sets c.leasing, and serveOne starts lease.
func (c *conn) content(sn *snapshot, site *config.Site) (int, int64, bool) {
	if ok := c.flushBeforeHandoff(); !ok {
		return 0, 0, false
	}
	ho := c.handoff(sn, site)
	if ho.Lease.MaxRequests > 1 {
		// Leased first, then checked: a Reload or Shutdown that the check
		// misses sees the state and revokes the lease.
		c.state.Store(stateLeased)
		if c.s.closing.Load() || c.s.snap.Load() != sn {
			ho.Lease = stage.Lease{MaxRequests: 1}
		}
		ho.Held = c
	}
	if ho.Lease.MaxRequests > 1 {
		c.leasing = true // serveOne makes the call on a new goroutine (see lease)
		return 0, 0, true
	}
	return c.stage30(sn, site)
}

// stage30 makes the stage-30 call on c.hand and, when every handler
// declines, runs the static-file handler. What follows the call is apart
// (afterStage30), so that this frame, under the call for as long as a
// lease lasts, is small.
func (c *conn) stage30(sn *snapshot, site *config.Site) (int, int64, bool) {
	res := c.s.pipeline.Handle(&c.info, &c.req, &c.hand)
	return c.afterStage30(sn, site, &res)
}

// afterStage30 takes the connection back after the stage-30 call.
func (c *conn) afterStage30(sn *snapshot, site *config.Site, res *stage.Result) (int, int64, bool) {
	c.state.Store(stateActive)
	if res.Verdict != stage.Decline || res.Err != nil {
		c.handler, c.upstream, c.idleSpent = res.Handler, res.Upstream, res.Idle
	}
	if c.keepParked(res) {
		c.account(res)
		return res.Status, res.BytesOut, !res.Close
	}
	if !c.unpark() {
		return res.Status, res.BytesOut, false
	}
	if res.Verdict != stage.Decline {
		st, n, ok := c.handled(res)
		c.takeRelayed()
		return st, n, ok
	}
	c.takeRelayed()
	return c.serveStatic(sn, site)
}

// keepParked reports whether a lease that ended left nothing for the host
// to read or write on its socket, which then stays parked rather than
// made a net.Conn again: the lease ended with the connection (the client
// closed it, or the answer did), closed as it is (see finish); or it was
// given back idle with no bytes of a next request, and goes to the idler
// as it is (see givenBack).
func (c *conn) keepParked(res *stage.Result) bool {
	if c.parked < 0 || res.Verdict != stage.Handled || res.Err != nil {
		return false
	}
	return res.Close || res.Idle > 0 && len(res.Leftover) == 0
}

// check makes the core's checks before any stage sees the request and
// returns the error status, or 0.
func (c *conn) check(sn *snapshot) int {
	req := &c.req
	// Any token method goes on to the stages (a plugin may forward it; the
	// static handler answers 405 with Allow), and a POST or PUT without
	// Content-Length or chunked has an empty body (RFC 9112 §6.3).
	if sn.cfg.Server.MaxRequestSize > 0 && req.ContentLength > sn.cfg.Server.MaxRequestSize {
		return 413
	}
	return 0
}

// fail sends an error page and closes the connection.
func (c *conn) fail(status int) (int, int64, bool) {
	c.nc.SetWriteDeadline(deadline(c.w.Timeout)) // a read may have used up the deadline
	c.w.SetClose()
	c.lingers = true
	c.w.Error(status, "")
	return status, c.w.Bytes, false
}

// drainBody reads and drops the request body when the response does not
// need it, so that the connection can serve the next request. A client
// waiting for 100 Continue never sends it: the connection closes instead.
func (c *conn) drainBody(sn *snapshot) (ok bool, status int) {
	req := &c.req
	if !req.HasBody() {
		return true, 0
	}
	if req.Expect100 {
		c.w.SetClose()
		c.lingers = true // the client may send its body after all once it tires of waiting
		return true, 0
	}
	if err := c.body.ResetRequest(c.br, req, sn.cfg.Server.MaxRequestSize); err != nil {
		return false, http1.StatusOf(err)
	}
	if _, err := io.Copy(io.Discard, &c.body); err != nil {
		return false, http1.StatusOf(err)
	}
	return true, 0
}

func (c *conn) sendReply(sn *snapshot, r *stage.Reply) (int, int64, bool) {
	if ok, st := c.drainBody(sn); !ok {
		return c.fail(st)
	}
	if r == nil || r.Status < 200 || r.Status > 599 {
		return c.fail(500)
	}
	if len(r.Body) == 0 && r.Status >= 400 {
		c.w.Error(r.Status, "")
		return r.Status, c.w.Bytes, true
	}
	for _, f := range r.Header {
		c.w.AddField(f.Name, f.Value)
	}
	c.w.WriteHead(r.Status, int64(len(r.Body)))
	c.w.Write(r.Body)
	return r.Status, c.w.Bytes, true
}

func (c *conn) redirect(sn *snapshot, location string) (int, int64, bool) {
	c.handler = handlerRedirect
	if ok, st := c.drainBody(sn); !ok {
		return c.fail(st)
	}
	c.w.AddField("Location", location)
	c.w.Error(301, "")
	return 301, c.w.Bytes, true
}

func (c *conn) serveStatic(sn *snapshot, site *config.Site) (int, int64, bool) {
	c.handler = handlerStatic
	if ok, st := c.drainBody(sn); !ok {
		return c.fail(st)
	}
	if err := sn.static.Serve(&c.w, &c.req, site.Root); err != nil {
		return c.w.Status, c.w.Bytes, false
	}
	return c.w.Status, c.w.Bytes, true
}

// flushBeforeHandoff sends responses still buffered for earlier pipelined
// requests, since a plugin may write to the socket next.
func (c *conn) flushBeforeHandoff() bool {
	if c.w.BW.Buffered() == 0 {
		return true
	}
	return c.w.Flush() == nil
}

// handoff describes the connection's state for a stage-30 handler.
func (c *conn) handoff(sn *snapshot, site *config.Site) *stage.Handoff {
	buf, _ := c.br.Peek(c.br.Buffered())
	if len(c.src.Pre) > 0 { // rare: more left over than the reader holds
		buf = append(append([]byte(nil), buf...), c.src.Pre...)
	}
	c.hand = stage.Handoff{
		VHost:     siteName(site),
		Buffered:  buf,
		MaxBody:   sn.cfg.Server.MaxRequestSize,
		Timeout:   sn.cfg.Server.Timeout,
		MaxHead:   sn.cfg.Server.MaxHeaderSize,
		KeepAlive: !c.w.Closing(),
		Lease:     stage.Lease{MaxRequests: 1},
		Server:    sn.server,
		Unsent:    c.served == 1 && c.tls == nil,
	}
	sv := &sn.cfg.Server
	// The last request the connection may serve stays with the host, so
	// every leased request may keep the connection alive.
	if left := sv.MaxKeepAliveRequest - c.served - 1; !c.w.Closing() && left > 0 && !c.s.closing.Load() &&
		c.s.leaser != nil && c.s.leaser.MayLease(&c.req) {
		// The host's own paths come back unserved, and the requests it
		// counts (MetricsURL) are reported as they go, or the pipeline
		// bounds the lease (contract.LeaseRecordBatch).
		counts := sv.MetricsURL != ""
		c.hand.Lease = stage.Lease{MaxRequests: 1 + left, IdleTimeout: sv.KeepAliveTimeout,
			GiveBack: sn.giveBack, ErrorPages: site.ErrorPages, PeerTimes: counts, ReportCounts: counts, Served: c.served - 1}
	}
	return &c.hand
}

// handled takes over after a stage-30 handler answered (or failed).
func (c *conn) handled(res *stage.Result) (int, int64, bool) {
	switch {
	case res.Err != nil && res.BytesOut == 0:
		c.s.log.Warn("content handler failed", "error", res.Err)
		c.discardBuffered()
		return c.fail(502)
	case res.Err != nil:
		c.headOut = res.HeadOut
		return res.Status, res.BytesOut, false
	case res.Verdict == stage.Close:
		st := res.Status
		if st == 0 {
			st = 403
		}
		c.discardBuffered()
		return c.fail(st)
	}
	c.discardBuffered()
	c.src.Pre = append(c.src.Pre[:0], res.Leftover...)
	c.account(res)
	return res.Status, res.BytesOut, !res.Close
}

// account takes the handler's account of what it answered: the stage-40
// records and status classes of the requests it served under a lease, and
// the bytes of the response heads.
func (c *conn) account(res *stage.Result) {
	c.keepLeased(&res.Records)
	c.countLeased(res)
	c.headOut = res.HeadOut
}

// countLeased adds the counts of requests a handler served under a lease.
func (c *conn) countLeased(res *stage.Result) {
	c.nLease += res.Leased
	for i := range res.Classes {
		c.classes[i] += res.Classes[i] - res.PeerClasses[i]
		c.peerClasses[i] += res.PeerClasses[i]
	}
}

// Report takes the counts and records of requests a plugin served under
// a lease so far (stage.Holder): the server's figures count them now, not
// when the lease ends, and stage 40 runs for them once it ran for the
// lease's first request (Park); until then they wait with the
// connection, as the records of the lease's final reply do.
func (c *conn) Report(res *stage.Result) {
	c.countLeased(res)
	c.addLeased(res.Handler)
	if c.recorded {
		c.doneLeased(res.Records)
	} else {
		c.keepLeased(&res.Records)
	}
}

// keepLeased keeps records of leased requests until stage 40 runs for
// them (leasedDone): the reply's own, not copied, when the connection
// holds none yet.
func (c *conn) keepLeased(rs *stage.Records) {
	if c.leased.Len() == 0 {
		c.leased = *rs
		return
	}
	c.leased.Add(rs)
}

// takeRelayed queues, after what the handler gave back, the client bytes
// of a TLS connection that the relay read and the handler did not.
func (c *conn) takeRelayed() {
	if c.relay != nil {
		c.src.Pre = append(c.src.Pre, c.relay.Pending()...)
	}
}

// httpsURL is the https:// address of target on host (its port replaced).
func httpsURL(host string, port int, target string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	if port != 443 {
		host += ":" + strconv.Itoa(port)
	}
	return "https://" + host + target
}

// discardBuffered drops what the host had buffered: the handler has
// consumed it (or the connection is closing).
func (c *conn) discardBuffered() {
	c.br.Discard(c.br.Buffered())
	c.src.Pre = c.src.Pre[:0]
}
