package server

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/host/config"
	"github.com/capuchin/capuchin/host/respond"
	"github.com/capuchin/capuchin/host/stage"
	"github.com/capuchin/capuchin/internal/fdpass"
	"github.com/capuchin/capuchin/internal/idlepark"
	"github.com/capuchin/capuchin/internal/idlewait"
	"github.com/capuchin/capuchin/internal/rawsock"
)

const (
	readBufferSize  = 4 << 10
	writeBufferSize = 4 << 10
	stateActive     = 0
	stateIdle       = 1
	stateLeased     = 2 // a stage-30 handler holds the connection under a lease
)

// conn is one client connection, served by one goroutine. What only a
// request being served needs is in its exchange, which a connection
// parked while idle gives back to the server's pool (see parkIdle).
type conn struct {
	*exchange // nil while parked idle

	s    *Server
	nc   net.Conn
	info stage.Conn
	src  http1.PrefixReader // bytes a plugin gave back, then the socket
	br   *bufio.Reader
	// idleSpent is how long a plugin held the connection idle before it
	// gave its lease back: the next wait is shorter by as much.
	idleSpent time.Duration
	state     atomic.Int32
	// parked is a bare duplicate of the socket while a plugin holds it
	// under a lease or it is parked idle; -1 when none. Guarded by mu.
	parked int32
	served int
	// lingers says the connection ends after an error answer that may
	// have left the client's bytes unread (see end).
	lingers bool

	tls    *tls.Conn  // nil on a plain connection; then nc
	tlsSrc *tlsSource // the socket under tls
	relay  *relay     // the stage-30 relay of a TLS connection

	// slot is the connection's place in the server's idler while it is
	// parked there idle (no goroutine); see Wake.
	slot idlepark.Slot
	mu   sync.Mutex // guards nc, info.TCP, relay and parked against Shutdown
}

// exchange is a connection's state for serving requests: the request,
// the response writer, the stage-30 hand-over and what it brought back.
// A connection parked while idle holds none (see attach and detach).
type exchange struct {
	w           respond.Writer
	req         http1.Request
	body        http1.Body
	hand        stage.Handoff // reused for every stage-30 call
	leased      stage.Records // records of the requests a handler served under a lease
	leasing     bool          // the request's stage-30 call offers a lease: it is made on a new goroutine
	nLease      int           // how many it served
	classes     stage.Classes // and their status classes: those it answered
	peerClasses stage.Classes // and those a stage-20 peer answered

	// Of the request being answered, for the metrics and the access log.
	handler  string         // who answered, for capuchin_requests_total
	upstream stage.Upstream // the backend exchange a stage-30 handler reported
	headOut  int64          // the response heads' bytes a handler reported; -1: the host wrote the response
	start    time.Time      // when the request began (its head's first read)
	// answered is when a stage-30 handler said the request was answered
	// and went on to hold the connection under a lease (Park); zero
	// otherwise. The request's time ends there, not with the lease.
	answered time.Time
	// recorded: stage 40 ran for the request when the handler said it was
	// answered (Park), before the records of the requests it served after
	// it under the lease; not again when the lease ends.
	recorded bool

	idle idlewait.Waiter // waits for the next request without buffers
}

// attach gives the connection x, or an exchange from the server's pool
// when x is nil.
func (c *conn) attach(x *exchange) {
	if x == nil {
		x, _ = c.s.exchanges.Get().(*exchange)
	}
	if x == nil {
		x = &exchange{w: respond.Writer{Clock: &c.s.clock, Draining: &c.s.closing}}
	}
	x.w.Conn = c.nc
	x.idle.Init(c.nc, &c.s.raw)
	c.exchange = x
}

// detach takes the connection's exchange, emptied of what the next
// connection to use it must not see, for the server's pool; the caller
// puts it there (see parkIdle).
func (c *conn) detach() *exchange {
	x := c.exchange
	c.exchange = nil
	x.w.Conn, x.w.BW = nil, nil // BW: given back by release, or holding bytes no one will send
	x.hand = stage.Handoff{}    // it holds the snapshot's lease filters and the old read buffer
	x.upstream = stage.Upstream{}
	x.idle.Init(nil, &c.s.raw)
	return x
}

func (s *Server) newConn(nc net.Conn, secure bool) *conn {
	c := &conn{s: s}
	c.info.ID = s.nextID.Add(1)
	c.info.Remote = addrPort(nc.RemoteAddr())
	c.info.Local = addrPort(nc.LocalAddr())
	c.info.TCP = tcpSocket(nc)
	if secure {
		c.tlsSrc = &tlsSource{Conn: nc}
		c.tls = tls.Server(c.tlsSrc, s.tlsConf)
		nc = c.tls
	}
	c.nc = nc
	c.src.R = nc
	c.attach(nil)
	c.acquire()
	c.parked, c.slot.Owner = -1, c
	return c
}

// tcpSocket returns nc as a stage.Socket when it is a TCP connection (the
// listener's fdpass socket, or a *net.TCPConn), else nil.
func tcpSocket(nc net.Conn) stage.Socket {
	if sock, ok := nc.(stage.Socket); ok {
		return sock
	}
	return nil
}

// acquire gives the connection its read and write buffers from the
// server's pools, if it does not hold them.
func (c *conn) acquire() {
	if c.br == nil {
		c.br, _ = c.s.readers.Get().(*bufio.Reader)
		if c.br == nil {
			c.br = bufio.NewReaderSize(nil, readBufferSize)
		}
		c.br.Reset(&c.src)
	}
	if c.w.BW == nil {
		c.w.BW, _ = c.s.writers.Get().(*bufio.Writer)
		if c.w.BW == nil {
			c.w.BW = bufio.NewWriterSize(nil, writeBufferSize)
		}
		c.w.BW.Reset(c.nc)
	}
}

// release gives empty buffers back to the pools while the connection
// waits (for its next request, or for a handler that holds it under a
// lease); buffers holding bytes are kept.
func (c *conn) release() {
	if c.br != nil && c.br.Buffered() == 0 {
		c.br.Reset(nil)
		c.s.readers.Put(c.br)
		c.br = nil
	}
	if c.w.BW != nil && c.w.BW.Buffered() == 0 {
		c.w.BW.Reset(nil)
		c.s.writers.Put(c.w.BW)
		c.w.BW = nil
	}
}

func addrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort()
	}
	return netip.AddrPort{}
}

// serve runs the connection: stage 10, then requests until one ends it.
func (c *conn) serve() {
	if c.tls != nil && !c.handshake(c.s.snap.Load().cfg.Server.Timeout) {
		c.finish()
		return
	}
	if c.s.pipeline.Connect(&c.info) != stage.Continue {
		c.finish()
		return
	}
	c.loop()
}

// loop serves requests until one ends the connection, or until a stage-30
// handler is offered a lease or the connection is parked while idle: then
// the connection goes on on a goroutine of its own (see lease, parkIdle)
// and this one ends.
func (c *conn) loop() {
	for {
		switch c.serveOne() {
		case stepMoved:
			return
		case stepEnd:
			c.end()
			return
		}
	}
}

// end sends what is buffered and finishes the connection, lingering
// first after an error answer that left the client's bytes unread (see
// linger).
func (c *conn) end() {
	c.acquire()
	c.w.Flush()
	if c.lingers && c.nc != nil && !c.s.closing.Load() {
		linger(c.nc, c.info.TCP, deadline(lingerTime))
	}
	c.finish()
}

// finish closes the connection, runs stage 50 and ends the connection's
// count in the server's wait group.
func (c *conn) finish() {
	defer c.s.wg.Done()
	// Before Close: the pipeline shuts the socket down if a plugin holds a
	// copy of it.
	c.s.pipeline.Closed(&c.info)
	if c.relay != nil {
		c.relay.Close()
	}
	if c.nc != nil { // nil: lost when it could not be unparked, or parked
		c.nc.Close()
	}
	c.closeParked()
	c.s.track(c, false)
	c.release()
	c.s.exchanges.Put(c.detach()) // for the next connection
}

// shut shuts the socket itself down both ways (used when Shutdown gives up
// on a connection): a plugin may hold a copy
// of the descriptor, which must not keep the connection open.
func (c *conn) shut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.relay != nil {
		c.relay.Shutdown()
	}
	switch {
	case c.parked >= 0:
		syscall.Shutdown(int(c.parked), syscall.SHUT_RDWR)
	case c.info.TCP != nil:
		fdpass.Shutdown(c.info.TCP)
	}
}

// closeNow closes the connection from another goroutine (Shutdown giving
// up on it): a TLS connection's socket is closed under it, without the
// close_notify that could wait on a write in progress.
func (c *conn) closeNow() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tls != nil {
		c.tls.NetConn().Close()
		return
	}
	if c.nc != nil { // nil: parked, or lost when it could not be unparked
		c.nc.Close()
	}
}

// Park is told that a plugin answered the request and holds the
// connection under a lease (the connection is the hand-over's
// stage.Holder): the request's time ends now, stage 40 runs for it when
// the plugin told its answer (so the records of the leased requests
// reports bring follow it), and the socket is parked.
func (c *conn) Park(first *stage.Result) {
	if c.recorded {
		return // parked at the first interim reply (another one would be a plugin's fault)
	}
	c.answered = time.Now()
	if first != nil {
		c.handler, c.upstream, c.headOut = first.Handler, first.Upstream, first.HeadOut
		c.record(c.hand.VHost, first.Status, first.BytesOut)
		c.recorded = true
	}
	c.park()
}

// park stops the host watching the socket while a plugin holds it under a
// lease, so that the plugin's traffic on it does not wake the host's
// poller, and while it is parked idle (see parkIdle): it keeps a bare
// duplicate of the descriptor (in no poller) and closes the net.Conn,
// which takes the socket out of the poller. unpark undoes it.
func (c *conn) park() {
	if c.info.TCP == nil || c.tls != nil { // a TLS connection's relay keeps running
		return
	}
	raw, err := c.info.TCP.SyscallConn()
	if err != nil {
		return
	}
	dup := -1
	var errno syscall.Errno
	raw.Control(func(fd uintptr) { dup, errno = rawsock.Dup(fd) })
	if errno != 0 {
		return
	}
	c.mu.Lock()
	c.parked = int32(dup)
	nc := c.nc
	// No reference to the closed net.Conn is kept: its descriptor's state
	// (some hundred bytes) would stay for as long as the lease lasts.
	c.nc, c.info.TCP, c.src.R, c.w.Conn = nil, nil, nil, nil
	c.idle.Init(nil, &c.s.raw)
	c.mu.Unlock()
	nc.Close()
	// The handler consumed what the host had buffered (or hands it back):
	// no buffer is needed until the lease ends.
	if c.br != nil {
		c.br.Discard(c.br.Buffered())
	}
	c.release()
}

// closeParked closes the socket of a connection that ends parked (its
// lease ended with it, see afterStage30; or it was parked idle until its
// deadline or the server's shutdown, see resume), with no net.Conn made
// for the close. It is shut down first, as Closed shuts down a socket
// handed to a plugin, in case a plugin still holds a copy.
func (c *conn) closeParked() {
	c.mu.Lock()
	fd := int(c.parked)
	c.parked = -1
	c.mu.Unlock()
	if fd >= 0 {
		rawsock.Shutdown(uintptr(fd), syscall.SHUT_RDWR)
		rawsock.Close(uintptr(fd))
	}
}

// unpark wraps a parked socket in a new net.Conn (fdpass.Conn: no system
// call, and the poller only once it is read); false means it could not
// be, and the connection is lost (its descriptor closed).
func (c *conn) unpark() bool {
	c.mu.Lock()
	fd := int(c.parked)
	c.parked = -1 // fdpass.Conn owns it from here, even when it fails: no one else may shut it down
	c.mu.Unlock()
	if fd < 0 {
		return true
	}
	nc, err := fdpass.Conn(fd)
	sock, ok := nc.(stage.Socket)
	if err == nil && ok {
		c.mu.Lock()
		c.nc, c.info.TCP, c.src.R, c.w.Conn = nc, sock, nc, nc
		c.idle.Init(nc, &c.s.raw)
		c.mu.Unlock()
	} else if nc != nil {
		nc.Close()
	}
	c.acquire()
	return err == nil && ok
}

// wakeIfIdle makes an idle connection's wait end now (used by Shutdown)
// and reports whether the connection is held under a lease instead.
func (c *conn) wakeIfIdle() (leased bool) {
	switch c.state.Load() {
	case stateIdle:
		c.mu.Lock()
		// A parked one's new goroutine ends it; one being parked (no
		// net.Conn) sees the server closing (see parkIdle).
		if c.s.idler.Take(&c.slot) {
			c.Wake(true)
		} else if c.nc != nil {
			c.nc.SetReadDeadline(time.Now())
		}
		c.mu.Unlock()
	case stateLeased:
		return true
	}
	return false
}

// waitRequest waits for the first byte of the next request: stepNext, or
// stepEnd to close silently (idle timeout, peer closed, shutdown), or
// stepMoved when the connection was parked (see parkIdle).
func (c *conn) waitRequest(sv *config.Server) step {
	if c.parked >= 0 { // a plugin gave it back idle (see afterStage30)
		switch c.givenBack(sv) {
		case errParked:
			return stepMoved
		case errLost:
			return stepEnd
		}
	}
	if c.br.Buffered() > 0 && c.headBuffered() {
		return stepNext // pipelined: answer it before flushing
	}
	if err := c.w.Flush(); err != nil {
		return stepEnd
	}
	if c.br.Buffered() > 0 {
		return stepNext
	}
	idle := sv.KeepAliveTimeout
	if c.served == 0 {
		idle = sv.Timeout
	}
	spent := c.idleSpent
	idle, c.idleSpent = max(idle-spent, time.Millisecond), 0
	c.state.Store(stateIdle)
	if c.s.closing.Load() && c.served > 0 {
		return stepEnd
	}
	// Wait without buffers: an idle connection holds none.
	var err error
	if len(c.src.Pre) == 0 {
		if err = c.holdIdle(idle, spent); err == errParked {
			return stepMoved
		}
	}
	if err == nil {
		_, err = c.br.Peek(1)
	}
	c.state.Store(stateActive)
	if err != nil {
		return stepEnd
	}
	return stepNext
}

// errParked is holdIdle's word for a connection it parked, errClosing for
// one it did not park because the server is shutting down, and errLost for
// one whose socket could not be taken back.
var (
	errParked  = errors.New("parked")
	errClosing = errors.New("server closing")
	errLost    = errors.New("connection lost")
)

// idleHold is how long a connection waits for its next request on its own
// goroutine before it is parked: parking costs a few system calls, which
// a busy keep-alive connection should not pay per request. It is half a
// second (as the Go SDK's hold of an idle leased connection, api/lease.go,
// which says why), because the runtime keeps the goroutine records, poll
// descriptors and threads of the peak of connections waiting on
// goroutines: the peak of those busy within idleHold. A connection a
// plugin gave back idle is parked at once, and beyond idlewait.MaxHeld
// waiting connections the hold of one that served a single request is
// idlewait.FullHold (see holdIdle).
const idleHold = 500 * time.Millisecond

// holdIdle waits up to idle for the next request's first bytes: on this
// goroutine for idleHold (idlewait.FullHold after a first request when
// many wait already), then,
// on a plain connection, parked in the server's idler with no goroutine at
// all (errParked). A connection a plugin gave back after holding it idle
// (spent) is parked at once: it was idle for the plugin's hold already.
func (c *conn) holdIdle(idle, spent time.Duration) error {
	hold := idleHold
	if c.served <= 1 { // one request so far: see idlewait.MaxHeld
		hold = c.s.raw.Hold(hold)
	}
	if spent > 0 {
		hold = 0
	}
	if c.tls != nil { // its waiter cannot wait without buffers: the read does
		c.nc.SetReadDeadline(deadline(idle))
		return nil
	}
	if idle <= hold {
		c.nc.SetReadDeadline(deadline(idle))
		return c.waitIdle()
	}
	if hold > 0 {
		c.nc.SetReadDeadline(deadline(hold))
		err := c.waitIdle()
		if !errors.Is(err, os.ErrDeadlineExceeded) || c.s.closing.Load() {
			return err
		}
	}
	if err := c.parkIdle(idle - hold); err != nil {
		return err
	}
	if c.s.closing.Load() {
		return errClosing
	}
	c.nc.SetReadDeadline(deadline(idle - hold))
	return c.waitIdle()
}

// parkIdle parks the connection in the server's idler until its next
// request or wait has passed (errParked). A parked connection holds no
// goroutine, buffer, exchange or net.Conn: a bare duplicate of its socket
// (see park). nil: it was not parked and waits on (epoll is not available,
// or the server is shutting down: Shutdown wakes the parked ones); errLost:
// it was not, and its socket could not be taken back.
func (c *conn) parkIdle(wait time.Duration) error {
	if c.info.TCP == nil || c.s.closing.Load() || !c.s.idler.Start() {
		return nil
	}
	if c.park(); c.parked < 0 {
		return nil // no duplicate: the net.Conn is kept
	}
	return c.toIdler(wait)
}

// givenBack parks a connection a plugin gave back idle, still parked from
// its lease, in the idler for what is left of its idle timeout as it is:
// no net.Conn is made for it only to be parked again. nil: it was taken
// back instead (the idler is not available, or the server is shutting
// down), and waits as any idle connection.
func (c *conn) givenBack(sv *config.Server) error {
	if c.s.closing.Load() || !c.s.idler.Start() {
		if !c.unpark() {
			return errLost
		}
		return nil
	}
	spent := c.idleSpent
	c.idleSpent = 0 // before it is parked: its next goroutine reads it
	c.state.Store(stateIdle)
	err := c.toIdler(max(sv.KeepAliveTimeout-spent, time.Millisecond))
	if err == nil {
		c.idleSpent = spent // not parked: this goroutine still owns it
	}
	return err
}

// toIdler hands a parked connection to the server's idler until its next
// request or wait has passed (errParked). One the idler does not take (the
// server is shutting down) is taken back: nil, or errLost when its socket
// could not be.
func (c *conn) toIdler(wait time.Duration) error {
	x := c.detach()
	c.src.Pre = nil // empty (see waitRequest); its array is not kept either
	c.mu.Lock()
	parked := !c.s.closing.Load() && c.s.idler.Park(&c.slot, int(c.parked), wait)
	c.mu.Unlock()
	if !parked {
		c.attach(x)
		if !c.unpark() {
			return errLost
		}
		return nil
	}
	c.s.exchanges.Put(x)
	c.s.mem.Parked() // its goroutine ends: memory is given back after a burst
	return errParked
}

// Wake takes a connection parked in the server's idler on (idlepark.Owner).
func (c *conn) Wake(expired bool) {
	c.s.work.run(job{c: c, resume: true, expired: expired}) // owns the connection from here to its end
}

// resume takes a parked connection on, on a goroutine of the server's
// workers: to its end when its idle deadline passed or the server is
// shutting down (the parked socket is closed as it is: see finish), else
// to its next request.
func (c *conn) resume(expired bool) {
	c.s.mem.Opened()
	c.mu.Lock() // what a parked connection holds changes under mu (see parkedConns' test)
	c.attach(nil)
	c.mu.Unlock()
	if expired || c.s.closing.Load() || !c.unpark() { // !unpark: lost, its socket shut down
		c.state.Store(stateActive)
		c.end()
		return
	}
	c.loop()
}

// waitIdle waits for the next request without buffers (an idle
// connection holds none) and leaves its first bytes in the read buffer.
func (c *conn) waitIdle() error {
	c.release()
	b, err := c.idle.Read()
	c.acquire()
	c.src.Load(c.br, b)
	c.idle.Put()
	return err
}

// headBuffered reports whether a whole request head (or a fault the head
// reader stops at) is already buffered, so that reading it cannot block.
func (c *conn) headBuffered() bool {
	b, _ := c.br.Peek(c.br.Buffered())
	_, end, err := http1.HeadEnd(b)
	return end >= 0 || err != nil
}

// step is what serveOne leaves the connection in.
type step uint8

const (
	stepNext  step = iota // serve the next request
	stepEnd               // end the connection
	stepMoved             // another goroutine owns the connection, or will (see lease, parkIdle)
)

// serveOne reads and answers one request. A request whose stage-30 call
// offers a lease is answered on a new goroutine (see lease).
func (c *conn) serveOne() step {
	if st := c.waitRequest(&c.s.snap.Load().cfg.Server); st != stepNext {
		return st
	}
	sn := c.s.snap.Load() // a reload during the wait applies to this request
	sv := &sn.cfg.Server
	c.nc.SetDeadline(deadline(sv.Timeout))
	c.start = time.Now()
	c.req.Method = "" // set again once a request line parses (see badRequest)
	if c.tls == nil && c.served == 0 && c.tlsHello() {
		c.badRequest(sn, &http1.Error{Status: 400, Reason: "TLS handshake on a plain HTTP port"})
		return stepEnd
	}
	if err := http1.ReadRequest(c.br, &sn.limits, &c.req); err != nil {
		c.badRequest(sn, err)
		return stepEnd
	}
	c.served++
	site := sn.site(c.req.Host)
	c.w.Server, c.w.Timeout = sn.server, sv.Timeout
	c.w.Reset(&c.req, !c.keepAlive(sv), site.ErrorPages)
	c.handler, c.upstream, c.headOut = handlerHost, stage.Upstream{}, -1
	status, bytes, ok := c.handle(sn, site)
	if c.leasing {
		go c.lease(sn, site)
		return stepMoved
	}
	return c.done(site, status, bytes, ok)
}

// lease makes a stage-30 call that offers the handler a lease, then serves
// the connection on to its end. It runs on a goroutine of its own, which
// the call blocks for as long as the handler holds the connection: a new
// goroutine's stack is small, while the one that read the request may
// have grown, and Go shrinks a stack only during a collection.
//
// While the call lasts the connection counts as waiting (memback.Idle),
// as it does between requests: after a burst of leases memory is given
// back.
func (c *conn) lease(sn *snapshot, site *config.Site) {
	c.leasing = false
	c.s.raw.Idle.Enter()
	status, bytes, ok := c.stage30(sn, site)
	c.s.raw.Idle.Leave()
	if c.done(site, status, bytes, ok) == stepNext {
		c.loop()
		return
	}
	c.end()
}

// done completes a request that was answered: stage 40 for it (unless
// it ran at Park) and for those a handler served under a lease, and the
// request counts.
func (c *conn) done(site *config.Site, status int, bytes int64, ok bool) step {
	if !c.recorded {
		c.record(siteName(site), status, bytes)
	}
	c.recorded = false
	c.leasedDone()
	if ok && !c.w.Closing() {
		return stepNext
	}
	return stepEnd
}

// record runs stage 40 for the request answered and counts it.
func (c *conn) record(vhost string, status int, bytes int64) {
	rec, _ := c.s.recs.Get().(*stage.Record) // pooled: a connection holds none between requests
	if rec == nil {
		rec = new(stage.Record)
	}
	end := c.answered
	if end.IsZero() {
		end = time.Now()
	}
	c.answered = time.Time{}
	*rec = stage.Record{
		ConnID: c.info.ID, Remote: c.info.Remote, VHost: vhost,
		Status: status, Bytes: bytes, HeadBytes: c.headBytes(), Start: c.start, Duration: end.Sub(c.start),
		Upstream: c.upstream,
	}
	if c.req.Method != "" { // else a head refused before its request line parsed: nothing of it is known
		rec.Method, rec.Target, rec.Proto = c.req.Method, c.req.Target, c.req.Proto()
		rec.Referer, rec.UserAgent = c.req.Header.Get("Referer"), c.req.Header.Get("User-Agent")
	}
	c.s.reqs.add(c.handler, status)
	c.s.pipeline.Done(rec)
	*rec = stage.Record{}
	c.s.recs.Put(rec)
}

// tlsHello reports whether the connection starts with a TLS handshake
// record: a client speaking HTTPS to a plain port, answered at once
// instead of waiting for a request line that never comes.
func (c *conn) tlsHello() bool {
	b, err := c.br.Peek(1)
	return err == nil && b[0] == 0x16
}

// headBytes returns the bytes of the response heads of the request
// answered: what its handler reported, or what the host wrote.
func (c *conn) headBytes() int64 {
	if c.headOut >= 0 {
		return c.headOut
	}
	return c.w.HeadBytes
}

// leasedDone runs stage 40 for the requests a handler served under a lease
// and counts them against MaxKeepAliveRequest.
func (c *conn) leasedDone() {
	c.doneLeased(c.leased)
	// Not kept for the next lease: the records (up to a batch, encoded) would
	// stay with the connection while it idles.
	c.leased = stage.Records{}
	c.addLeased(c.handler) // the plugin that held the lease answered them
}

// doneLeased runs stage 40 for records of requests served under a lease,
// completed with what only the host knows: the connection and the
// virtual host. The pipeline keeps them.
func (c *conn) doneLeased(rs stage.Records) {
	if rs.Len() == 0 {
		return
	}
	rs.SetConn(c.info.ID, c.info.Remote, c.hand.VHost)
	c.s.pipeline.DoneLeased(rs)
}

// addLeased adds the leased requests counted so far, which handler
// answered but for those a stage-20 peer did, to the server's figures and
// to the requests the connection served.
func (c *conn) addLeased(handler string) {
	c.s.reqs.addClasses(handler, &c.classes)
	c.s.reqs.addClasses(handlerStage20, &c.peerClasses)
	c.served += c.nLease
	c.nLease, c.classes, c.peerClasses = 0, stage.Classes{}, stage.Classes{}
}

// keepAlive reports whether the connection may stay open after this request.
func (c *conn) keepAlive(sv *config.Server) bool {
	return sv.KeepAlive && !c.req.Close && c.served < sv.MaxKeepAliveRequest && !c.s.closing.Load()
}

// badRequest answers a request head that could not be read. Errors with a
// status get an error page; an idle close or a reset gets nothing.
func (c *conn) badRequest(sn *snapshot, err error) {
	if e, ok := err.(*http1.Error); ok {
		c.lingers = e.Status != 408 // a client that timed out is not sending
		c.w.Server, c.w.Timeout = sn.server, sn.cfg.Server.Timeout
		c.w.Reset(nil, true, sn.sites[0].ErrorPages)
		c.nc.SetWriteDeadline(deadline(c.w.Timeout))
		c.w.Error(e.Status, "")
		c.w.Flush()
		c.handler, c.upstream, c.headOut = handlerHost, stage.Upstream{}, -1
		c.record(siteName(sn.sites[0]), e.Status, c.w.Bytes) // logged as nginx logs them: what parsed of the request
		if c.s.log.IsDebug() {
			c.s.log.Debug("bad request", "remote", c.info.Remote.String(), "error", err)
		}
	}
}
