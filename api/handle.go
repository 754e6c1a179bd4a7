package api

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/idlewait"
	"github.com/capuchin/capuchin/internal/memback"
	"github.com/capuchin/capuchin/internal/transport"
)

// connState is the plugin's side of one handed connection, kept until the
// host reports the connection closed. Requests on one connection come one
// at a time, so its buffers are reused without locking.
type connState struct {
	*session // nil while the host holds the connection idle (see attach and detach)

	nc  net.Conn
	pr  http1.PrefixReader
	br  *bufio.Reader // nil between requests (see acquire and release)
	cnt countWriter
	bw  *bufio.Writer // nil until the ResponseWriter writes (see out)

	bufs *bufPools // br, bw and the session come from here and go back between requests

	leaseMu  sync.Mutex  // guards idle, the setting of revoked, and the read deadline they set
	idle     bool        // waiting for the next request of a lease
	revoked  atomic.Bool // the host wants the connection back (set under leaseMu; takeRevoke reads it without)
	clock    reqClock    // the request's deadline (see armDeadline)
	writeBy  time.Time   // the write deadline set last through Request.SetWriteDeadline
	ptimer   *time.Timer // the deadline of a call to a stage-20 peer (peers.go)
	shutLate atomic.Bool // on deadline, shut the socket (leased requests)

	// The hand-over's reply channel, for ClearDeadline's interim reply.
	calls     transport.PluginCalls
	replyID   uint64
	clearMu   sync.Mutex // serialises ClearDeadline
	unbounded bool       // the host was told: no stage deadline for this call; guarded by clearMu
}

// session is what a connection needs while a hand-over lasts: the
// request, the response writer and the wait for a leased request. A
// connection given back idle (Reply.Idle) gives its session back to the
// pool, as it does its buffers: a connection the host parks costs the
// plugin little more than its socket.
type session struct {
	req  Request
	w    ResponseWriter
	wait idlewait.Waiter // waits for a leased request without br
}

// attach gives cs a session from the pool, if it has none.
func (cs *connState) attach() {
	if cs.session != nil {
		return
	}
	s, _ := cs.bufs.sessions.Get().(*session)
	if s == nil {
		s = new(session)
	}
	s.req.cs, s.w.cs = cs, cs
	s.wait.Init(cs.nc, &cs.bufs.raw)
	cs.session = s
}

// detach gives cs's session back to the pool, emptied of what another
// connection must not see or keep alive, and drops the request's timer:
// the connection goes idle. The request's fields and the writer's buffers
// keep their arrays for the session's next use.
func (cs *connState) detach() {
	s := cs.session
	if s == nil {
		return
	}
	cs.session = nil
	s.req = Request{Request: s.req.Request}
	s.w = ResponseWriter{fields: s.w.fields[:0], head: s.w.head[:0]}
	s.wait.Init(nil, &cs.bufs.raw)
	cs.bufs.sessions.Put(s)
	cs.clock.stop(true) // the next hand-over makes another timer
}

// countWriter counts the bytes written to the socket through the writer.
type countWriter struct {
	w      io.Writer
	n      int64
	fenced atomic.Bool // the request missed its deadline: no more writes
}

var errLate = errors.New("api: the request missed its deadline")

func (c *countWriter) Write(b []byte) (int, error) {
	if c.fenced.Load() {
		return 0, errLate
	}
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

func (rt *runtime) conn(id uint64, ev *transport.Event) (*connState, error) {
	if v, ok := rt.conns.Load(id); ok {
		return v.(*connState), nil
	}
	if rt.fds == nil {
		return nil, errors.New("no descriptor channel from the host")
	}
	nc, err := rt.fds.Wait(id, fdWait)
	if err != nil {
		return nil, fmt.Errorf("receive connection %d: %w", id, err)
	}
	cs := &connState{nc: nc, bufs: &rt.bufs}
	if _, ok := rt.pendingRevoke.LoadAndDelete(id); ok {
		cs.revoked.Store(true)
	}
	cs.pr.R = nc
	cs.cnt.w = nc
	cs.clock.late = cs.late
	rt.conns.Store(id, cs)
	return cs, nil
}

// handle runs the content handler for one Handle event: the first request,
// then those of the lease. Its own frame is kept small, the first request
// being served by first: a lease waits for the next request on top of it,
// and Go shrinks the waiting goroutine's stack (8 KiB once the proxy's
// handler has run) at a collection only if the wait uses under a quarter
// of it, less 800 bytes: under 1248 bytes of frames, from the worker's
// loop down to the poller (1232 now; 1264 with this frame at 104 bytes).
func (rt *runtime) handle(c *Conn, ev *transport.Event, rep *transport.Reply, calls transport.PluginCalls) {
	rt.bufs.mem.Opened() // a connection in a hand-over holds a goroutine and buffers
	defer rt.handedBack(rep)
	if cs := rt.first(c, ev, rep, calls); cs != nil {
		rt.serveLease(c, cs, ev, rep, calls)
		cs.handBack(rep)
	}
	if rep.Idle > 0 || rep.Close {
		// Forget a connection given back idle or closing and close the
		// plugin's copy of its socket before the reply says so: an idle
		// connection then costs the plugin nothing, and the host, which
		// forgets that it handed it over, sends the socket again with its
		// next request; a closing one needs no Note from the host
		// (Released) to let its copy go.
		rt.release(c.ID)
		rep.Released = rep.Close
	}
}

// handedBack counts the end of a hand-over (memback): a connection given
// back idle stays open, holding nothing here.
func (rt *runtime) handedBack(rep *transport.Reply) {
	if rep.Idle > 0 {
		rt.bufs.mem.Parked()
		return
	}
	rt.bufs.mem.Closed()
}

// first serves the hand-over's request; nil means rep is final (no
// connection, a bad head, or the handler missed its deadline).
func (rt *runtime) first(c *Conn, ev *transport.Event, rep *transport.Reply, calls transport.PluginCalls) *connState {
	cs, err := rt.conn(c.ID, ev)
	if err != nil {
		rep.Err = err.Error()
		return nil
	}
	cs.attach()
	r := &cs.req
	if err := http1.ParseRequest(string(ev.Head), nil, &r.Request); err != nil {
		rep.Err = "bad request head from host: " + err.Error()
		return nil
	}
	start := time.Now()
	r.reset(c, ev, start)
	cs.pr.Pre = ev.Buffered
	cs.acquire()
	cs.br.Reset(&cs.pr)
	cs.cnt.n = 0
	cs.w.reset(r, ev.KeepAlive && !r.Close, &rt.clock)
	cs.calls, cs.replyID, cs.unbounded = calls, rep.ID, false
	cs.armDeadline(start, rt.handleDeadline(), false)
	v := rt.content.Handle(r, &cs.w)
	if !cs.stopDeadline() {
		// Late: the host answers for this request; the writer was fenced.
		rep.Verdict, rep.Close, rep.Err = Close, true, "handler missed its deadline"
		cs.release()
		cs.dropInterim()
		return nil
	}
	o := rt.finish(cs, v)
	o.to(rep)
	return cs
}

// handBack ends a hand-over: the bytes read past the last request served
// go back to the host, and the buffers to their pools; a connection given
// back idle gives its session back too.
func (cs *connState) handBack(rep *transport.Reply) {
	if !rep.Close && rep.Leftover == nil && rep.Verdict != Decline {
		rep.Leftover = cs.leftover()
	}
	cs.release()
	cs.dropInterim()
	cs.clock.stop(false)
	if rep.Idle > 0 {
		cs.detach()
	}
}

// dropInterim forgets the hand-over's reply channel once it is over: a
// ClearDeadline after that sends nothing.
func (cs *connState) dropInterim() {
	cs.clearMu.Lock()
	cs.calls = nil
	cs.clearMu.Unlock()
}

// bufPools holds the connections' buffers while they wait: an idle
// connection holds none.
type bufPools struct {
	readers  sync.Pool       // *bufio.Reader of connBufSize
	writers  sync.Pool       // *bufio.Writer of connBufSize
	sessions sync.Pool       // *session of connections given back idle
	raw      idlewait.Pool   // a waiting connection's first read; gives memory back after a burst goes idle
	mem      memback.Tracker // gives memory back after a burst of hand-overs ends
}

const connBufSize = idlewait.Size

// acquire gives cs a read buffer, if it has none.
func (cs *connState) acquire() {
	if cs.br != nil {
		return
	}
	cs.br, _ = cs.bufs.readers.Get().(*bufio.Reader)
	if cs.br == nil {
		cs.br = bufio.NewReaderSize(nil, connBufSize)
	}
	cs.br.Reset(&cs.pr)
}

// release gives cs's buffers back between requests; only empty ones (the
// leftover bytes went back to the host, or were copied) are given back.
func (cs *connState) release() {
	if cs.br != nil && cs.br.Buffered() == 0 {
		cs.br.Reset(nil)
		cs.bufs.readers.Put(cs.br)
		cs.br = nil
	}
	if cs.bw != nil && cs.bw.Buffered() == 0 {
		cs.bw.Reset(nil)
		cs.bufs.writers.Put(cs.bw)
		cs.bw = nil
	}
}

// out is the response writer's buffer, taken when it first writes.
func (cs *connState) out() *bufio.Writer {
	if cs.bw == nil {
		cs.bw, _ = cs.bufs.writers.Get().(*bufio.Writer)
		if cs.bw == nil {
			cs.bw = bufio.NewWriterSize(nil, connBufSize)
		}
		cs.bw.Reset(&cs.cnt)
	}
	return cs.bw
}

// outcome is what a request's handling came to: the parts of a reply
// that finish fills (small, so that a leased request zeroes little).
type outcome struct {
	verdict                    Verdict
	close                      bool
	status                     int
	err                        string
	bytesIn, bytesOut, headOut int64
	upstream                   Upstream
}

// to writes o into the reply rep.
func (o *outcome) to(rep *transport.Reply) {
	rep.Verdict, rep.Close, rep.Status, rep.Err = o.verdict, o.close, o.status, o.err
	rep.BytesIn, rep.BytesOut, rep.HeadOut, rep.Upstream = o.bytesIn, o.bytesOut, o.headOut, o.upstream
}

// finish ends a request the handler returned v for: its response is
// flushed and its body drained, and the outcome says what the host (or
// the lease's reply) is told.
func (rt *runtime) finish(cs *connState, v Verdict) (o outcome) {
	r, w := &cs.req, &cs.w
	switch {
	case v == Decline && !r.touched && !w.wroteHead && cs.cnt.n == 0:
		o.verdict = Decline
		return o
	case v == Decline:
		o.err = "handler declined after touching the connection"
		o.verdict, o.close = Close, true
	case v == Close:
		o.verdict, o.close, o.status = Close, true, w.errStatus
	default:
		o.verdict = Handled
		w.finish()
		if !r.raw && !r.drain() {
			w.close = true
		}
		o.status, o.close = w.status, w.close
		if w.err != nil {
			o.err, o.close = w.err.Error(), true
		}
	}
	if r.bodySet {
		o.bytesIn = r.body.Total()
	}
	o.bytesOut, o.headOut = cs.cnt.n+w.reported, w.heads
	o.upstream = r.upstream
	return o
}

// leftover copies the bytes read past the request: the host parses them next.
func (cs *connState) leftover() []byte {
	n := cs.br.Buffered() + len(cs.pr.Pre)
	if n == 0 {
		return nil
	}
	out := make([]byte, 0, n)
	b, _ := cs.br.Peek(cs.br.Buffered())
	out = append(out, b...)
	out = append(out, cs.pr.Pre...)
	cs.pr.Pre = nil
	cs.br.Discard(cs.br.Buffered())
	return out
}

// maxDrain is how much unread request body the SDK discards after a
// handler so that the connection can be kept; past it the connection closes.
const maxDrain = 256 << 10

// Request is a stage-30 request: the parsed head plus the connection it
// came on. It is valid only during Handle.
type Request struct {
	http1.Request
	Client    Conn // the client connection
	VHost     string
	Server    string // the Server field value of the host's responses; the ResponseWriter sends it
	MaxBody   int64  // 0: no limit
	KeepAlive bool   // the host allows the connection to stay open
	// Timeout is the server's Timeout: the longest a client may stall
	// between body bytes (Body applies it to each read); 0: none.
	Timeout time.Duration
	// Start is when the request began for the SDK (its clock read as the
	// head arrived): a handler that needs the time at its start can use
	// it rather than read the clock again.
	Start time.Time

	cs       *connState
	upstream Upstream
	body     http1.Body
	bodySet  bool
	touched  bool
	raw      bool
	sent100  bool
	bodyErr  error
	clock    http1.BodyClock // the body reads' deadlines
}

func (r *Request) reset(c *Conn, ev *transport.Event, start time.Time) {
	r.Client, r.VHost, r.Server, r.MaxBody, r.KeepAlive, r.Start = *c, ev.VHost, ev.Server, ev.MaxBody, ev.KeepAlive, start
	r.Timeout, r.upstream = ev.Timeout, Upstream{}
	r.bodySet, r.touched, r.raw, r.sent100, r.bodyErr = false, false, false, false, nil
}

// SetUpstream records the backend exchange of a request the handler
// forwarded (its address, status and response time) for the stage-40
// record, so that access logs can show it. The last call wins.
func (r *Request) SetUpstream(u Upstream) { r.upstream = u }

// ClearDeadline lifts the stage-30 deadline from this request: a tunnel
// or a long download then lasts as long as the handler's own idle timeouts
// allow, and the handler must have some. It reports false when the
// deadline has already passed (the request is late; its writes fail). The
// host is told once per hand-over (one interim reply); later leased
// requests are held to the deadline again. It is safe to call from any
// goroutine while the handler runs (an upload copier, say).
func (r *Request) ClearDeadline() bool {
	cs := r.cs
	cs.clearMu.Lock()
	defer cs.clearMu.Unlock()
	if !cs.clock.clear() { // late, or called after Handle returned
		return false
	}
	if !cs.unbounded && cs.calls != nil {
		cs.unbounded = true
		_ = cs.calls.Send(&transport.Reply{ID: cs.replyID, Interim: true, Unbounded: true})
	}
	return true
}

// Body returns the request body, read from the client socket exactly to the
// end of its framing (Content-Length or chunked). Calling it commits the
// handler: it may no longer decline. An Expect: 100-continue is answered on
// the first call.
func (r *Request) Body() io.Reader {
	if !r.bodySet {
		r.touched, r.bodySet = true, true
		if r.Expect100 && r.HasBody() {
			r.sent100 = true
			n, _ := r.cs.cnt.Write(http1.AppendContinue(nil))
			r.cs.w.heads += int64(n)
		}
		r.bodyErr = r.body.ResetRequest(r.cs.br, &r.Request, r.MaxBody)
		r.clock = http1.BodyClock{Timeout: r.Timeout, MinRate: http1.DefaultBodyMinRate}
	}
	return bodyReader{r}
}

// bodyReader reads the body with the server's Timeout on each read and
// http1.DefaultBodyMinRate on average (http1.BodyClock), so a client that
// stalls or trickles mid-body fails the read (StatusOf: 408) instead of
// holding the handler until the stage deadline.
type bodyReader struct{ r *Request }

func (b bodyReader) Read(p []byte) (int, error) {
	r := b.r
	if r.Timeout > 0 && r.cs.br.Buffered() == 0 {
		_ = r.cs.nc.SetReadDeadline(r.clock.Deadline(time.Now(), r.body.Total()))
		defer r.cs.nc.SetReadDeadline(time.Time{})
	}
	n, err := r.body.Read(p)
	if err != nil { // (first: ne escapes, and is made only here)
		if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
			err = &http1.Error{Status: 408, Reason: "timed out reading the request body"}
		}
	}
	return n, err
}

// SetWriteDeadline sets the client connection's write deadline, as
// net.Conn's does, and keeps it for WriteDeadline. Only the handler's
// goroutine may call it.
func (r *Request) SetWriteDeadline(t time.Time) error {
	r.cs.writeBy = t
	return r.cs.nc.SetWriteDeadline(t)
}

// WriteDeadline returns the client connection's write deadline as last
// set with SetWriteDeadline, by this request or an earlier one on the
// same connection (zero: none). A handler that writes to the raw
// connection can thus move the deadline coarsely, only when the one set
// is near, and spare most requests of a keep-alive connection the
// poller's timer update (three clock reads and a timer change).
func (r *Request) WriteDeadline() time.Time { return r.cs.writeBy }

// Conn returns the raw client connection and a reader positioned at the
// start of the request body, for handlers (such as a proxy) that move bytes
// themselves. After Handle returns, the bytes left in the reader past the
// request are handed back to the host. A handler that writes to the
// connection directly reports what it sent with ResponseWriter.Report.
func (r *Request) Conn() (net.Conn, *bufio.Reader) {
	r.touched, r.raw = true, true
	return r.cs.nc, r.cs.br
}

// drain reads what the handler left of the body; false means the
// connection cannot be kept.
func (r *Request) drain() bool {
	if !r.HasBody() {
		return true
	}
	if !r.bodySet {
		if r.Expect100 {
			return false // the client waits for 100-continue: do not invite the body
		}
		r.Body()
	}
	if r.bodyErr != nil {
		return false
	}
	n, err := io.CopyN(io.Discard, bodyReader{r}, maxDrain)
	return err == io.EOF || n < maxDrain && err == nil && r.body.Done()
}
