package forward

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/capuchin/capuchin/api"
	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/clock"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/balance"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/upstream"
)

// exchange is the state of one forwarded request; pooled.
type exchange struct {
	f       *Forwarder
	r       *Request // &req
	req     Request  // a copy of the caller's, which then stays on its stack
	cw      countWriter
	bw      *bufio.Writer // client output; kept across pooling
	buf     *[]byte       // copy buffer; kept across pooling
	rbody   http1.Body
	trailer http1.Header // buffer of the forwarded trailer fields
	resp    http1.Response
	hd      http1.ResponseHead // the client side of resp's head (see head)
	up      upload
	order   []int              // the balancer's order of slots, kept across pooling
	tried   []*upstream.Server // the servers tried for this request
	extra   []byte             // fields added to the answer (a sticky cookie), kept across pooling

	pick balance.Request // what the balancer read of the request (its sticky cookie, read once)

	status  int
	gotByte bool  // a byte of an answer arrived on the current connection
	interim int   // 1xx answers read for this request
	sentPre int64 // bytes of relayed 1xx answers: the final answer starts after them
	heads   int64 // bytes of the answer heads sent to the client (1xx included)
	closing bool
	err     error

	upAddr   string    // the server of the last attempt
	upStatus int       // its answer's status
	upStart  time.Time // when the attempt started
	sent     time.Time // when the request went out on the current connection
	now      time.Time // the clock read last, since the last wait (see copyBody)

	began     time.Time   // when forwarding started
	unbounded atomic.Bool // the stage deadline was lifted

	mu      sync.Mutex // guards bc and aborted against abort
	bc      *upstream.Conn
	aborted bool

	in         *inflight // the list x is linked in, guarded by its mu
	prev, next *exchange
}

// maxInterim caps the 1xx answers relayed for one request (100 Continue,
// 103 Early Hints...): a backend sending more is cut off with a 502, so
// that it cannot keep a request (and the client) busy forever.
const maxInterim = 8

var errTooManyInterim = errors.New("too many 1xx answers from the backend")

type outcome uint8

const (
	outcomeDone  outcome = iota
	outcomeRetry         // send again on another connection to the same server
	outcomeNext          // send again on the next server
)

func (f *Forwarder) getExchange(r *Request) *exchange {
	x, _ := f.states.Get().(*exchange)
	if x == nil {
		x = &exchange{f: f}
	}
	x.req = *r
	x.r, x.began = &x.req, r.Start
	if x.began.IsZero() {
		x.began = time.Now()
	}
	x.cw = countWriter{c: r.Conn, timeout: r.ClientTimeoutOrDefault(), dl: r.Deadlines}
	if r.Deadlines != nil {
		x.cw.by = r.Deadlines.WriteDeadline() // as the connection's last request left it
	}
	if x.buf == nil { // a new exchange: its copy buffer stays with it in the pool
		x.buf = f.getBuf()
	}
	return x
}

// out returns the client output. An exchange takes its writer from the
// pool at its first write to the client, once the answer is there: the
// requests waiting for answers hold none, and the writer taken is the one
// the last exchange gave back, still in the CPU's cache.
func (x *exchange) out() *bufio.Writer {
	if x.bw == nil {
		x.bw, _ = x.f.writers.Get().(*bufio.Writer)
		if x.bw == nil {
			x.bw = bufio.NewWriterSize(nil, copyBufSize+512)
		}
		x.bw.Reset(&x.cw)
	}
	return x.bw
}

func (f *Forwarder) putExchange(x *exchange) {
	if x.bw != nil {
		x.bw.Reset(nil)
		f.writers.Put(x.bw)
		x.bw = nil
	}
	x.r, x.bc = nil, nil
	x.req = Request{} // keeps no connection alive
	x.rbody.Release() // nor its backend connection's read buffer, given back while pooled
	x.pick = balance.Request{}
	x.status, x.closing, x.err, x.aborted = 0, false, nil, false
	x.unbounded.Store(false)
	x.interim, x.sentPre, x.heads, x.gotByte = 0, 0, 0, false
	x.upAddr, x.upStatus = "", 0
	x.up.reset()
	clear(x.tried) // holds no server
	x.tried = x.tried[:0]
	f.states.Put(x)
}

func (f *Forwarder) getBuf() *[]byte {
	if b, ok := f.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, copyBufSize)
	return &b
}

func (x *exchange) result() Result {
	res := Result{Status: x.status, BytesIn: x.up.total, BytesOut: x.cw.n, HeadOut: min(x.heads, x.cw.n), Close: x.closing, Err: x.err}
	if x.upAddr != "" {
		res.Upstream = api.Upstream{Addr: x.upAddr, Status: x.upStatus, Duration: time.Since(x.upStart)}
	}
	return res
}

// unbound lifts the host's stage deadline from the request, once: a tunnel
// or a long transfer is bounded by idle timeouts from then on.
func (x *exchange) unbound() {
	if x.r.Deadlines != nil && x.unbounded.CompareAndSwap(false, true) {
		x.r.Deadlines.ClearDeadline()
	}
}

// longLived lifts the deadline once a transfer still moving at now has run
// for LongAfter.
func (x *exchange) longLived(now time.Time) {
	if d := x.r.LongAfter; d > 0 && now.Sub(x.began) > d {
		x.unbound()
	}
}

// abort unblocks every read and write of the request (context cancelled).
func (x *exchange) abort() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.aborted = true
	x.r.Conn.SetDeadline(time.Unix(1, 0))
	if x.bc != nil {
		x.bc.Conn.Close()
	}
}

func (x *exchange) setConn(bc *upstream.Conn) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.bc = bc
	return !x.aborted
}

// exchange sends the request on bc and relays the answer.
func (x *exchange) exchange(bc *upstream.Conn) outcome {
	s := bc.Server()
	if !x.setConn(bc) {
		s.Release(bc, false, time.Now())
		x.aborting()
		return outcomeDone
	}
	defer x.setConn(nil)
	req := x.r.Req
	x.gotByte = false
	if err := x.send(bc, s, AppendRequestHead((*x.buf)[:0], req, x.r.Client, x.r.TLS, s.HostPort(),
		x.r.KeepUnderscores, x.r.Forwarded)); err != nil {
		return x.backendError(bc, err)
	}
	if req.HasBody() {
		x.startUpload(bc)
	}
	x.up.touch(bc, s, false, x.sent) // (without an upload, send set the first wait's deadline)
	for {
		err := x.readAnswer(bc)
		if err == nil {
			x.upStatus = x.resp.Status
		}
		switch {
		case err != nil && x.awaitingClient(err):
			x.up.touch(bc, s, true, time.Now())
			continue
		case err != nil:
			return x.backendError(bc, err)
		case x.resp.Status == 101 && forwardsUpgrade(req):
			x.tunnel(bc)
			return outcomeDone
		case x.resp.Status == 101:
			return x.backendError(bc, &http1.Error{Status: 502, Reason: "101 to a request without Upgrade"})
		case x.resp.Status < 200:
			if x.interim++; x.interim > maxInterim {
				return x.backendError(bc, errTooManyInterim)
			}
			if err := x.interim1xx(); err != nil {
				x.clientGone(bc, err)
				return outcomeDone
			}
			if x.resp.Status == 100 && x.up.started {
				x.continued(s)
			}
			x.up.touch(bc, s, true, time.Now()) // the wait for the next answer
			continue
		}
		break
	}
	x.up.headDone()
	now := clock.From(x.sent)
	x.now = now
	s.Answered(now, now.Sub(x.sent), x.resp.Status)
	s.Succeeded()
	x.relay(bc)
	return outcomeDone
}

// send writes the request head on bc; a request without a body is
// written by WriteWait, which waits for the answer's first bytes with it,
// under the answer's read deadline.
func (x *exchange) send(bc *upstream.Conn, s *upstream.Server, head []byte) error {
	n := 0
	if !x.r.Req.HasBody() {
		bc.ExtendRead(x.sent, s.ResponseTimeout()) // no upload runs: touch's lock is not needed
		var err error
		if n, err = bc.WriteWait(head); err != nil {
			return err
		}
	}
	bc.TakeBuffers() // after WriteWait's wait (see TakeBuffers), or before the upload, which writes to BW
	if n == len(head) {
		return nil
	}
	bc.BW.Write(head[n:])
	return bc.BW.Flush()
}

// readAnswer reads an answer head; it notes whether any byte of it
// arrived, which decides whether a connection error may be retried.
func (x *exchange) readAnswer(bc *upstream.Conn) error {
	if _, err := bc.BR.Peek(1); err != nil {
		return err
	}
	x.gotByte = true
	return http1.ReadResponse(bc.BR, nil, &x.resp)
}

// forwardsUpgrade reports whether the request's Upgrade goes to the backend:
// any protocol but h2c. The h2c upgrade (deprecated by RFC 9113 §3.1) would
// hand the client a raw HTTP/2 connection to the backend, past every
// per-request rule of the proxy (h2c smuggling); such a request goes on as
// plain HTTP/1.1 without its Upgrade.
func forwardsUpgrade(req *http1.Request) bool {
	if !req.Upgrade {
		return false
	}
	h2c := false
	req.Header.Values("Upgrade", func(v string) { h2c = h2c || http1.HasToken(v, "h2c") })
	return !h2c
}

// interim1xx relays a 1xx answer to an HTTP/1.1 client.
func (x *exchange) interim1xx() error {
	if x.r.Req.Minor == 0 {
		return nil
	}
	h := x.head(time.Now())
	b, _ := AppendResponseHead((*x.buf)[:0], &x.resp, h, nil)
	w := x.out()
	w.Write(b)
	x.heads += int64(len(b))
	err := w.Flush()
	x.sentPre = x.cw.n
	return err
}

// answerStarted reports whether part of the final answer went out (or is
// buffered): an error must then close the connection, not send a page.
func (x *exchange) answerStarted() bool {
	return x.cw.n > x.sentPre || x.bw != nil && x.bw.Buffered() > 0
}

// head is the client side of the answer's head: the request's method and
// version, the connection's state, and the Date (of now) and Server to add.
// It lives in x (x.hd), not on the stack of the request's deepest calls.
func (x *exchange) head(now time.Time) *http1.ResponseHead {
	x.hd = http1.ResponseHead{Date: x.f.clock.DateAt(now), Server: x.r.Server, Method: x.r.Req.Method,
		Minor: x.r.Req.Minor, Close: x.closing}
	return &x.hd
}

// backendError handles a failure to send the request or to read an answer.
// A connection error before any answer byte of an idempotent request
// whose body was not started is retried: on a new connection to the same
// server when the connection came from the pool (the backend had closed
// it while idle), else on the next server (nginx's proxy_next_upstream
// error); either way it counts as a retry of the server.
func (x *exchange) backendError(bc *upstream.Conn, err error) outcome {
	s := bc.Server()
	if x.retryable(err) {
		s.Release(bc, false, time.Now())
		if bc.Reused {
			return x.retrySame(s)
		}
		s.FailedAs(time.Now(), upstream.FailAnswer)
		x.err = err
		return outcomeNext
	}
	consumed := x.stopUpload(bc)
	s.Release(bc, false, time.Now())
	var ne net.Error
	switch {
	case x.isAborted():
		x.aborting()
	case x.up.clientErr:
		x.fail(http1.StatusOf(x.up.err), x.up.err, "the request body could not be read")
	case errors.As(err, &ne) && ne.Timeout():
		if consumed {
			s.FailedAs(time.Now(), upstream.FailTimeout)
		}
		x.fail(504, err, "the backend server did not answer in time")
	default:
		s.FailedAs(time.Now(), upstream.FailAnswer)
		x.fail(502, err, "the backend server sent no valid answer")
	}
	return outcomeDone
}

// retrySame sends the request again on a new connection to s when the
// retry budget allows it; otherwise the request fails with 502.
func (x *exchange) retrySame(s *upstream.Server) outcome {
	if !x.r.Budget.Allow() {
		x.fail(502, ErrBudget, "the backend server sent no valid answer")
		return outcomeDone
	}
	s.Retried()
	return outcomeRetry
}

// aborting answers a request aborted by the end of its context: the
// client connection closes (abort set its deadlines in the past).
func (x *exchange) aborting() {
	x.closing = true
	x.fail(502, errors.New("request aborted"), "")
}

func (x *exchange) isAborted() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.aborted
}

// retryable: a connection error (closed or reset) before any answer byte,
// nothing of the request's body sent, no 1xx relayed, an idempotent method.
func (x *exchange) retryable(err error) bool {
	if x.gotByte || x.up.started || x.interim > 0 || x.isAborted() || !idempotent(x.r.Req.Method) {
		return false
	}
	return err == io.EOF || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func idempotent(m string) bool {
	switch m {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// fail answers with an error page when nothing of the final answer was sent
// yet (relayed 1xx answers do not count); otherwise the client connection is
// closed, so a cut response never looks complete.
func (x *exchange) fail(status int, err error, detail string) {
	x.status, x.err = status, err
	if x.answerStarted() {
		x.closing = true
		return
	}
	consumed := !x.r.Req.HasBody() || x.up.started && x.up.err == nil && x.up.readAll.Load()
	x.closing = x.closing || !x.r.KeepAlive || x.r.Req.Close || !consumed
	h := x.head(time.Now())
	h.Status = status
	b := h.AppendError((*x.buf)[:0], nil, detail)
	w := x.out()
	w.Write(b)
	if _, end, _ := http1.HeadEnd(b); end > 0 {
		x.heads += int64(end)
	}
	if w.Flush() != nil {
		x.closing = true
	}
}

func (x *exchange) clientGone(bc *upstream.Conn, err error) {
	x.stopUpload(bc)
	bc.Server().Release(bc, false, time.Now())
	x.closing, x.err = true, err
	if x.status == 0 {
		x.status = x.resp.Status
	}
}

// countWriter counts bytes written to the client and bounds each write,
// coarsely: the write deadline moves only when the one set last is less
// than 3/4 of the timeout away, so that a body's writes, and with
// Request.Deadlines the following requests of a keep-alive connection,
// spare the poller's timer update.
type countWriter struct {
	c       net.Conn
	dl      Deadlines // nil: set c's deadline, known for this request only
	n       int64
	timeout time.Duration
	by      time.Time // the write deadline set last
	// now is the time of the write in progress: given by arm (a clock
	// read the caller has just made) for the next write, else read by
	// the write itself.
	now   time.Time
	armed bool
}

// arm gives the next write the time now, read by the caller since its
// last wait: the write then spares its own clock read.
func (w *countWriter) arm(now time.Time) { w.now, w.armed = now, true }

// setBy sets the client connection's write deadline to t.
func (w *countWriter) setBy(t time.Time) {
	w.by = t
	if w.dl != nil {
		w.dl.SetWriteDeadline(t)
		return
	}
	w.c.SetWriteDeadline(t)
}

func (w *countWriter) Write(p []byte) (int, error) {
	// Inline, not a call: one more frame on this, the deepest path of a
	// request, grows the goroutine's stack from 4 to 8 KiB for good (and
	// a leased connection keeps it while idle).
	if !w.armed {
		w.now = time.Now()
	}
	w.armed = false
	if w.by.Sub(w.now) < w.timeout-w.timeout/4 { // setBy, inline
		w.by = w.now.Add(w.timeout)
		if w.dl != nil {
			w.dl.SetWriteDeadline(w.by)
		} else {
			w.c.SetWriteDeadline(w.by)
		}
	}
	n, err := w.c.Write(p)
	w.n += int64(n)
	return n, err
}
