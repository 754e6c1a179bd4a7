package api

import (
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/claim"
	"github.com/capuchin/capuchin/internal/clock"
	"github.com/capuchin/capuchin/internal/contract"
	"github.com/capuchin/capuchin/internal/fdpass"
	"github.com/capuchin/capuchin/internal/idlewait"
	"github.com/capuchin/capuchin/internal/transport"
)

// A connection lease (docs/plugin-contract.md, "Connection lease"): after the first
// request of a hand-over, the SDK keeps the connection and serves the
// following requests itself while they are ones the host would have handed
// to this plugin anyway — the same Host, a head and body within the
// limits, and a match of the plugin's claim filter —
// within the lease's request count and idle timeout, until the host revokes
// it. The first request it will not serve goes back to the host unread, in
// the reply's leftover bytes; the counts and stage-40 records of the
// requests served go back with it, or in reports as they go when the host
// asks (see report).

// leaseEnd says why a lease stopped.
type leaseEnd uint8

const (
	leaseNext      leaseEnd = iota // a request head is buffered whole
	leaseGiveBack                  // return the connection to the host
	leaseCloseIdle                 // nothing arrived: close the connection
	leaseHeld                      // nothing arrived for idleHold: return it
)

// serveLease serves the requests that follow the first one on cs, as far
// as ev's lease allows; rep is the first request's reply.
func (rt *runtime) serveLease(c *Conn, cs *connState, ev *transport.Event, rep *transport.Reply, calls transport.PluginCalls) {
	if rep.Verdict != Handled || rep.Close || rep.Err != "" || ev.Lease.MaxRequests <= 1 {
		return
	}
	// The host holds the first request to the stage deadline: tell it that
	// one is done, and its answer for its record; from here on the SDK
	// holds each request to it.
	_ = calls.Send(&transport.Reply{ID: rep.ID, Interim: true, Reply: contract.Reply{Status: rep.Status},
		BytesOut: rep.BytesOut, HeadOut: rep.HeadOut, Upstream: rep.Upstream})
	giveBack, ok := rt.giveBack.compiled(ev.Lease.GiveBack)
	if !ok {
		return // a filter the SDK cannot compile: the host serves the rest
	}
	l := &leaseRun{rt: rt, c: c, cs: cs, ev: ev, rep: rep, calls: calls, host: cs.req.Host, giveBack: giveBack, n: 1,
		since: cs.req.Start, reported: cs.req.Start}
	l.inlineFn = l.inline
	defer func() { l.peers.report(rep) }()
	for !l.over && l.n < ev.Lease.MaxRequests {
		head, size, end := l.nextHead()
		switch {
		case end == leaseCloseIdle:
			rep.Close = true
			return
		case end == leaseHeld:
			rep.Idle = l.hold // the host waits only the rest of the idle timeout
			return
		case end != leaseNext, !rt.leaseable(cs, head, l.host, ev, giveBack):
			return
		}
		l.serve(head, size)
	}
}

// leaseRun is one lease's loop: the requests that follow a hand-over's
// first one, served one at a time.
type leaseRun struct {
	rt       *runtime
	c        *Conn
	cs       *connState
	ev       *transport.Event
	rep      *transport.Reply
	calls    transport.PluginCalls // for reports (Lease.ReportCounts)
	host     string                // the first request's Host: the lease serves no other
	giveBack []*claim.Filter       // what the lease's stage-20 plugins want to see
	peers    *leasePeers           // looked up at the first leased request: many leases serve none
	inlineFn func([]byte, error) idlewait.Next
	n        int           // requests served, the hand-over's first one included
	hold     time.Duration // the hold of the last wait begun
	since    time.Time     // when the lease's first request began (see longHold)
	reported time.Time     // the start of the request that was last reported (see report)
	longer   time.Duration // the next wait's hold, counted as hold is, when holdLonger extends it; else 0
	over     bool          // the lease ended while the wait served requests; rep says how
}

// serve serves a leaseable request whose head (size buffered bytes) is
// at the front of the read buffer.
func (l *leaseRun) serve(head string, size int) {
	l.cs.br.Discard(size)
	if l.peers == nil {
		l.peers = l.rt.leasePeers(l.c, l.ev)
	}
	l.n++
	if !l.rt.serveLeased(l.c, l.cs, l.ev, head, l.rep, l.peers) {
		l.over = true
		return
	}
	// Records (encoded as each request ends, about 100-200 bytes) go once
	// there are contract.LeaseRecordBatch: a report costs about 19 µs, 0.15
	// µs per request at that count.
	if l.ev.Lease.ReportCounts && (l.cs.req.Start.Sub(l.reported) >= reportEvery || l.rep.Records.Len() >= contract.LeaseRecordBatch) {
		l.report()
	}
}

// reportEvery bounds how stale the host's counts of a lease's requests
// get when it asks for them as they go (Lease.ReportCounts): a report
// every reportEvery while requests come (counted from the requests'
// starts: no clock read), and one when a wait's hold passes with requests
// unreported. The host so counts a long lease's requests without ending
// it: before, it ended a lease it counted every 128 requests, and the new
// hand-overs cost 6-8 % of the CPU per request on busy keep-alive
// connections. A report costs about 19 µs of host and plugin CPU, more
// where the host's state is cold: at 256 busy connections, reports every
// second cost about 2 %, every 5 s nothing measurable
// (docs/performance.md). Counts take no memory as they grow, so a busy
// lease reports by time, or when it holds contract.LeaseRecordBatch
// records.
const reportEvery = 5 * time.Second

// report sends the counts of the requests served since the last report
// (and the times of their peer calls, and their records when the lease
// asks for records) in an interim reply, when the lease asks for them as
// they go; the final reply carries the rest.
func (l *leaseRun) report() {
	rep := l.rep
	l.reported = l.cs.req.Start
	if !l.ev.Lease.ReportCounts || rep.Leased == 0 {
		return
	}
	r := transport.Reply{ID: rep.ID, Interim: true, Leased: rep.Leased, Classes: rep.Classes, PeerClasses: rep.PeerClasses,
		Records: rep.Records}
	l.peers.report(&r)
	if l.calls.Send(&r) != nil { // (converted before it returns: the times and records may be cleared)
		return // the next report or the final reply carries them
	}
	l.peers.clearTimes()
	rep.Records.Reset()
	rep.Leased, rep.Classes, rep.PeerClasses = 0, contract.Classes{}, contract.Classes{}
}

// idle starts the wait for the next request with its hold; false means
// the lease was revoked.
func (l *leaseRun) idle() bool {
	hold, spent := min(l.ev.Lease.IdleTimeout, idleHold), time.Duration(0)
	switch {
	case l.longer > 0: // the hold passed, which is idle time spent: wait on (see holdLonger)
		hold, spent, l.longer = l.longer, l.hold, 0
	case l.n == 1 && l.ev.Lease.Served == 0: // one request so far: see idlewait.MaxHeld
		hold = l.cs.bufs.raw.Hold(hold)
	}
	l.hold = hold
	return l.cs.setIdle(hold - spent)
}

// holdLonger reports whether a wait whose hold passed goes on, to the
// end of the lease's idle timeout (or of its longHold, if sooner, when
// the lease carries stage-40 records and the host takes no reports): for
// a client that comes back (more
// than one request), while fewer than idlewait.MaxHeld connections wait.
// It is decided when the hold passes, not at each request: busy
// connections pay nothing for it.
func (l *leaseRun) holdLonger() bool {
	if l.n == 1 && l.ev.Lease.Served == 0 || l.cs.bufs.raw.Idle.Waiting() >= idlewait.MaxHeld {
		return false
	}
	total := l.ev.Lease.IdleTimeout
	if l.ev.Lease.Records && !l.ev.Lease.ReportCounts { // counted from the request's start, as the hold is: no clock read
		total = min(total, longHold-l.cs.req.Start.Sub(l.since))
	}
	if total > l.hold {
		l.longer = total
	}
	return l.longer > 0
}

// idleHold is how long the SDK holds a leased connection on which nothing
// arrives before it gives the connection back (when the lease's idle
// timeout is longer): an idle connection then holds no goroutine and no
// lease state in the plugin, and the host, which waits for it without
// one, hands it over again when its next request comes. It is half
// a second (it was 1 s) because everything a held connection keeps (its
// goroutine, its socket's poll descriptor and timers, and the host's
// goroutine waiting on the lease) is kept by the Go runtime at the peak
// it reaches, and the peak is the connections busy within idleHold. It is
// not shorter because a connection idle for longer pays for a new
// hand-over with its next request: at 100 ms a client waiting 300 ms
// between requests (scripts/bench.sh, the think-time case) cost three
// times the CPU per request. Beyond idlewait.MaxHeld idle connections the
// hold of one that served a single request is idlewait.FullHold.
const idleHold = 500 * time.Millisecond

// longHold bounds, from the lease's first request, how long the lease of
// a client that comes back (more than one request) holds its connection
// idle when the lease carries stage-40 records (access logs) and the host
// takes no reports: the records then come with its reply, at most about
// longHold after their requests. Otherwise such a lease is held to its
// idle timeout (see holdLonger), its counts and records going in reports
// (see report). Either way a
// client that pauses for longer than idleHold between requests (a
// browser, an API client calling now and then) is not given back at each
// pause, which made each of its requests pay a new hand-over: 512 clients
// pausing 1 s cost 7 times nginx's CPU per request, about 2.7 times held
// so. A wait held so is bounded as idleHold says: at most
// idlewait.MaxHeld connections wait so at once, and the others have the
// usual hold. (Parking such a lease in an epoll set instead, as the host
// parks idle connections, was tried: with the host's goroutine still
// waiting for the lease's reply it saved no memory, and each wake-up on a
// new goroutine, its stack grown again, cost 1.6-2 times the CPU of the
// held wait.)
const longHold = 10 * time.Second

// nextHead waits until the next request head is buffered whole and
// returns it (request line and fields with their CRLFs) with the number
// of buffered bytes it spans (leaseNext), or says why the lease ends.
// The wait may serve requests itself (see inline); when it ends the
// lease so, nextHead says leaseGiveBack and rep says the rest.
func (l *leaseRun) nextHead() (string, int, leaseEnd) {
	defer l.cs.setBusy()
	if end := l.await(); end != leaseNext {
		return "", 0, end
	}
	return l.cs.readHead()
}

// await waits for the next request's first bytes up to the hold, and
// when the hold is shorter than the lease's idle timeout, gives the
// connection back after it (leaseHeld). It leaves the idle deadline set:
// nextHead clears it.
func (l *leaseRun) await() leaseEnd {
	for {
		if !l.idle() {
			return leaseGiveBack
		}
		served := l.n
		if err := l.waitIdle(); err != nil {
			switch {
			case l.cs.takeRevoke():
				return leaseGiveBack
			case l.holdLonger():
				l.report() // the wait goes on: the host need not wait for these
				continue
			case l.hold < l.ev.Lease.IdleTimeout:
				return leaseHeld
			}
			return leaseCloseIdle // idle timeout
		}
		switch {
		case l.over || l.n >= l.ev.Lease.MaxRequests:
			return leaseGiveBack
		case l.n == served:
			return leaseNext
		}
		// The wait served requests and stopped at bytes it would not
		// serve: they are read on under a new idle deadline.
	}
}

// readHead reads on until the request head is buffered whole (see
// nextHead), under the idle deadline.
func (cs *connState) readHead() (string, int, leaseEnd) {
	for {
		buf, _ := cs.br.Peek(cs.br.Buffered())
		switch start, end, err := http1.HeadEnd(buf); {
		case err != nil:
			return "", 0, leaseGiveBack // a malformed head: the host answers it
		case end >= 0:
			return string(buf[start : end-2]), end, leaseNext
		}
		if len(buf) == cs.br.Size() {
			return "", 0, leaseGiveBack // a head larger than our buffer: the host reads it
		}
		if _, err := cs.br.Peek(len(buf) + 1); err != nil {
			if len(buf) == 0 && !cs.takeRevoke() {
				return "", 0, leaseCloseIdle // idle timeout or the client closed
			}
			return "", 0, leaseGiveBack // a partial head: the host answers it
		}
	}
}

// waitIdle waits for the next request's first bytes without holding a
// read buffer, when none is buffered: an idle leased connection costs no
// buffer memory. An error means the idle deadline passed (a timeout, or a
// revoke that set it to now). Where the waiter can (Serves), the wait
// serves the requests that it can itself (inline).
func (l *leaseRun) waitIdle() error {
	cs := l.cs
	if cs.br.Buffered() > 0 || len(cs.pr.Pre) > 0 {
		return nil
	}
	cs.release()
	if !cs.wait.Serves() {
		b, err := cs.wait.Read()
		cs.acquire()
		cs.pr.Load(cs.br, b)
		cs.wait.Put()
		return err
	}
	err := cs.wait.Serve(l.inlineFn)
	cs.acquire()
	return err
}

// inline serves, inside the read wait (idlewait.Waiter.Serve), the
// requests that came in b, when each one's head is buffered whole, is
// leaseable, and has no body and no tunnel to follow (its handler then
// reads nothing more from the socket). It then asks for the next wait,
// which begins without a read that finds nothing (nginx's keep-alive
// wait costs the same). Anything else stops the wait: nextHead goes on
// with the bytes buffered, outside it.
func (l *leaseRun) inline(b []byte, _ error) idlewait.Next {
	cs := l.cs
	cs.acquire()
	cs.pr.Load(cs.br, b)
	for len(b) > 0 {
		head, size, ok := cs.bufferedHead()
		if !ok {
			break
		}
		if !l.rt.leaseable(cs, head, l.host, l.ev, l.giveBack) {
			l.over = true // the host serves it (and the rest)
			return idlewait.Stop
		}
		if !inlineable(&cs.req.Request) {
			break
		}
		cs.setBusy()
		l.serve(head, size)
		switch {
		case l.over || l.n >= l.ev.Lease.MaxRequests:
			return idlewait.Stop
		case cs.br.Buffered() > 0:
			continue // a pipelined request
		case !l.idle():
			l.over = true // revoked
			return idlewait.Stop
		}
		cs.release()
		return idlewait.Wait
	}
	return idlewait.Stop
}

// inlineable reports whether a request can be served inside the read
// wait: its handler reads nothing more from the client socket.
func inlineable(r *http1.Request) bool {
	return !r.HasBody() && !r.Upgrade && r.Method != "CONNECT"
}

// bufferedHead returns the request head buffered whole at the front of
// the read buffer and the bytes it spans; false when there is none (yet).
func (cs *connState) bufferedHead() (string, int, bool) {
	buf, _ := cs.br.Peek(cs.br.Buffered())
	start, end, err := http1.HeadEnd(buf)
	if err != nil || end < 0 {
		return "", 0, false
	}
	return string(buf[start : end-2]), end, true
}

// leaseable parses head into cs.req and reports whether the plugin may
// serve it under the lease: anything the host would treat differently from
// handing it to this plugin goes back to the host, and so does a request
// a stage-20 plugin wants to see (giveBack).
func (rt *runtime) leaseable(cs *connState, head, host string, ev *transport.Event, giveBack []*claim.Filter) bool {
	r := &cs.req.Request
	if cs.takeRevoke() || ev.MaxHead > 0 && len(head)+2 > ev.MaxHead || http1.ParseRequest(head, nil, r) != nil {
		return false // over MaxHeaderSize: the host answers 431
	}
	switch {
	case ev.MaxBody > 0 && r.ContentLength > ev.MaxBody:
		return false
	case !http1.EqualFold(r.Host, host):
		return false
	}
	for _, f := range giveBack {
		if f.Match(r) {
			return false
		}
	}
	return rt.filter.Load().Match(r)
}

// giveBackCache keeps the compiled stage-20 filters of the last lease:
// the host sends the same ones with every lease until a reload, so a
// hand-over only compares them (no lock).
type giveBackCache struct {
	last atomic.Pointer[giveBackSet]
}

// giveBackSet is one set of filters, as sent and compiled; never modified.
type giveBackSet struct {
	claims  []Claims
	filters []*claim.Filter
}

// compiled returns cs compiled; false if one does not compile.
func (g *giveBackCache) compiled(cs []Claims) ([]*claim.Filter, bool) {
	if len(cs) == 0 {
		return nil, true
	}
	if last := g.last.Load(); last != nil && slices.EqualFunc(cs, last.claims, sameClaims) {
		return last.filters, true
	}
	fs := make([]*claim.Filter, len(cs))
	for i, c := range cs {
		f, err := claim.Compile(c.Paths, c.Hosts, c.Methods)
		if err != nil {
			Logger().Error("the host sent a stage-20 filter that does not compile; giving leased connections back", "error", err)
			return nil, false
		}
		fs[i] = f
	}
	g.last.Store(&giveBackSet{claims: cs, filters: fs})
	return fs, true
}

func sameClaims(a, b Claims) bool {
	return slices.Equal(a.Paths, b.Paths) && slices.Equal(a.Hosts, b.Hosts) && slices.Equal(a.Methods, b.Methods)
}

// serveLeased runs stage 20 at the lease's peers and then the handler
// for one leased request whose head was consumed; false ends the lease.
func (rt *runtime) serveLeased(c *Conn, cs *connState, ev *transport.Event, head string, rep *transport.Reply, peers *leasePeers) bool {
	start := time.Now()
	r := &cs.req
	r.reset(c, ev, start)
	cs.cnt.n = 0
	cs.w.reset(r, !r.Close, &rt.clock)
	cs.w.pages = ev.Lease.ErrorPages
	po := peers.ask(cs, head)
	switch {
	case po.toHost:
		cs.handBackHead(rep, head)
		return false
	case po.verdict == Close: // closed without a response, as the host does
		rt.record(cs, ev, rep, start, &outcome{})
		rep.PeerClasses.Add(0)
		rep.Close = true
		return false
	}
	if peers != nil { // the stage-20 calls took time: the handler's clock starts after them
		r.Start = time.Now()
	}
	cs.armDeadline(r.Start, rt.handleDeadline(), true)
	v := Handled
	if po.verdict == Respond {
		cs.w.reply(po.reply)
	} else {
		v = rt.content.Handle(r, &cs.w)
	}
	if !cs.stopDeadline() { // the handler ran late: its connection was shut
		rep.Close = true
		return false
	}
	if v == Close { // in a lease the SDK sends the error page the host would have sent
		cs.w.errorPage()
		v = Handled
		cs.w.close = true
	}
	one := rt.finish(cs, v)
	if one.verdict == Decline {
		cs.handBackHead(rep, head)
		return false
	}
	rt.record(cs, ev, rep, start, &one)
	if po.verdict == Respond {
		rep.PeerClasses.Add(one.status)
	}
	if one.close || one.err != "" {
		rep.Close = true
		return false
	}
	return true
}

// handBackHead gives the connection back with the request whose head was
// consumed (head, without the CRLF that ends it) unread, and the bytes
// after it: the host parses them next.
func (cs *connState) handBackHead(rep *transport.Reply, head string) {
	rest := cs.leftover()
	b := make([]byte, 0, len(head)+2+len(rest))
	rep.Leftover = append(append(append(b, head...), "\r\n"...), rest...)
}

// record counts a leased request in rep, by its status class, with its
// stage-40 record when the lease asks for records; one is its outcome.
func (rt *runtime) record(cs *connState, ev *transport.Event, rep *transport.Reply, start time.Time, one *outcome) {
	rep.Leased++
	rep.Classes.Add(one.status)
	if !ev.Lease.Records {
		return
	}
	r := &cs.req
	rep.Records.Append(&Record{Method: r.Method, Target: r.Target,
		Proto: r.Proto(), Status: one.status, Bytes: one.bytesOut, HeadBytes: one.headOut, Start: start, Duration: time.Since(start),
		Referer: r.Header.Get("Referer"), UserAgent: r.Header.Get("User-Agent"), Upstream: one.upstream})
}

// setIdle starts the wait for the next request, with its idle deadline;
// false means the lease was revoked (and the revoke is consumed).
func (cs *connState) setIdle(idle time.Duration) bool {
	cs.leaseMu.Lock()
	defer cs.leaseMu.Unlock()
	if cs.revoked.Swap(false) {
		return false
	}
	cs.idle = true
	by := clock.From(cs.req.Start).Add(idle) // the request's start carried forward: one clock read
	if nr, ok := cs.nc.(nearReader); ok {
		nr.SetReadDeadlineNear(by, min(idle, idleHold)/4) // a long hold (see holdLonger) ends within idleHold/4 of its time
	} else {
		cs.nc.SetReadDeadline(by)
	}
	return true
}

// nearReader is a connection whose read deadline can be set coarsely, as
// fdpass's received sockets' can: the wait for a keep-alive request then
// spares the poller's timer change (the wait may last up to a quarter of
// its hold longer, at most idleHold/4, never shorter), and so does
// setBusy's clear.
type nearReader interface {
	SetReadDeadlineNear(t time.Time, slack time.Duration) error
}

// setBusy ends the wait: the request's reads have no idle deadline.
func (cs *connState) setBusy() {
	cs.leaseMu.Lock()
	cs.idle = false
	cs.nc.SetReadDeadline(time.Time{})
	cs.leaseMu.Unlock()
}

// takeRevoke reports (and consumes) a revoke that came in.
func (cs *connState) takeRevoke() bool {
	return cs.revoked.Load() && cs.revoked.Swap(false) // (a load first: no locked instruction on the way of every request)
}

// revoke ends the lease on a connection at the next request boundary: an
// idle wait ends now, a request in progress finishes first. A revoke for a
// connection not known yet (its first hand-over is on its way) is kept
// until it is.
func (rt *runtime) revoke(id uint64) {
	v, ok := rt.conns.Load(id)
	if !ok {
		rt.pendingRevoke.Store(id, struct{}{})
		return
	}
	cs := v.(*connState)
	cs.leaseMu.Lock()
	cs.revoked.Store(true)
	if cs.idle {
		cs.nc.SetReadDeadline(time.Now())
	}
	cs.leaseMu.Unlock()
}

// handleDeadline is the plugin's stage-30 deadline.
func (rt *runtime) handleDeadline() time.Duration {
	return contract.Limits{Deadline: time.Duration(rt.handleD.Load())}.DeadlineAt(contract.StageHandle)
}

// armDeadline starts the clock of a request that began at now. If the
// handler is not done within d: for the first request of a hand-over the
// host answers in its place (the failure policy), so the SDK only fences
// the response writer — the handler's later writes through it fail and
// cannot mix with the host's answer; for a leased request nobody else
// answers, so the connection is shut down both ways, as the host does to a
// late plugin's connection.
func (cs *connState) armDeadline(now time.Time, d time.Duration, leased bool) {
	cs.cnt.fenced.Store(false)
	cs.shutLate.Store(leased)
	cs.clock.begin(now, d)
}

// stopDeadline ends the request's clock; false means it missed its
// deadline (one the handler lifted with ClearDeadline never misses).
func (cs *connState) stopDeadline() bool { return cs.clock.end() }

// late runs when a request missed its deadline.
func (cs *connState) late() {
	cs.cnt.fenced.Store(true)
	if sc, ok := cs.nc.(syscall.Conn); ok && cs.shutLate.Load() { // TCP, or a TLS connection's relay socket
		fdpass.Shutdown(sc)
	}
}
