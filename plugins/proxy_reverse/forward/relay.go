package forward

import (
	"io"
	"time"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/clock"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/balance"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/upstream"
)

// relay sends the final answer's head and body to the client, then
// returns bc to the pool when both messages ended cleanly.
func (x *exchange) relay(bc *upstream.Conn) {
	req, resp := x.r.Req, &x.resp
	x.status = resp.Status
	x.closing = x.closing || !x.r.KeepAlive || req.Close
	h := x.head(x.now)
	b, fr := AppendResponseHead((*x.buf)[:0], resp, h, x.stickyCookie(bc.Server()))
	x.closing = h.Close // a close-delimited body
	x.out().Write(b)
	x.heads += int64(len(b))
	x.rbody.ResetResponse(bc.BR, resp, req.Method)
	ok := x.copyBody(bc, fr)
	consumed := x.stopUpload(bc)
	if !consumed {
		x.closing = true
	}
	reuse := ok && consumed && !resp.Close && x.rbody.Done()
	// x.now is the last clock read of the copy: the connection's idle time
	// may count from a little before the answer's last byte went out.
	bc.Server().Release(bc, reuse, x.now)
}

// copyBody streams the answer's body. It reports false when either side
// failed; the client connection then closes (a short body is never
// presented as complete: a chunked one lacks its last chunk).
//
// Clock reads: the loop starts with x.now, read when the answer head
// arrived, and reads the clock again after each step that may have waited
// (a read that went to the socket, a write to the client), so the
// deadlines set from x.now count from the step's real start; a body that
// came with its head (most small answers) costs no clock read.
func (x *exchange) copyBody(bc *upstream.Conn, fr http1.Framing) bool {
	if fr == http1.FrameNone {
		x.cw.arm(x.now)
		return x.flushClient(nil)
	}
	var w io.Writer = x.bw
	var cw *http1.ChunkedWriter // made only for a chunked body: it escapes
	if fr == http1.FrameChunked {
		cw = &http1.ChunkedWriter{W: x.bw}
		w = cw
	}
	p := *x.buf
	rt := bc.Server().ResponseTimeout()
	for first := true; ; first = false {
		if !first {
			x.now = clock.From(x.now) // the last step wrote to the client
		}
		if fr == http1.FrameLength {
			if done, ok := x.splice(bc); done {
				return ok
			}
		}
		bc.ExtendRead(x.now, rt)
		x.longLived(x.now)
		var err error
		b := x.rbody.ReadBuffered() // what is buffered of a Content-Length body: no wait, no copy
		if len(b) == 0 {
			n, rerr := x.rbody.Read(p)
			b, err, x.now = p[:n], rerr, clock.From(x.now)
		}
		if len(b) > 0 {
			x.cw.arm(x.now)
			if _, werr := w.Write(b); werr != nil || !x.flushClient(nil) {
				return x.flushClient(werr)
			}
		}
		if err == io.EOF || err == nil && x.rbody.Done() {
			break // (the next read would only find the end)
		}
		if err != nil {
			bc.Server().FailedAs(time.Now(), upstream.FailBody)
			x.bodyError(bc, err)
			return false
		}
	}
	if fr == http1.FrameChunked {
		// The backend's trailer goes to every HTTP/1.1 client, as nginx
		// does: one that cannot use it ignores it (RFC 9110 §6.5.1).
		x.trailer = trailerFields(x.trailer, x.rbody.Trailer())
		cw.CloseTrailer(x.trailer)
	}
	return x.flushClient(nil)
}

// bodyError handles a broken answer body. While the client has received
// nothing of the answer (the head waits in the buffer for the first body
// bytes), the head is dropped and the client gets a 502 page; otherwise the
// client connection closes.
func (x *exchange) bodyError(bc *upstream.Conn, err error) {
	if x.cw.n == x.sentPre {
		x.stopUpload(bc) // before fail reads the upload's outcome
		x.bw.Reset(&x.cw)
		x.fail(502, err, "the backend server sent no valid answer")
		return
	}
	x.closing, x.err = true, err
}

// flushClient flushes client output; on failure (or a given write error)
// the client connection closes.
func (x *exchange) flushClient(err error) bool {
	if err == nil {
		err = x.bw.Flush()
	}
	if err != nil {
		x.closing = true
		if x.err == nil {
			x.err = err
		}
		return false
	}
	return true
}

// stickyCookie returns the Set-Cookie field naming s when the entry is
// sticky and the request's cookie (read once, for the picker) does not
// name s already (a new client, or its server was down); nil otherwise.
func (x *exchange) stickyCookie(s *upstream.Server) []byte {
	st := x.r.Sticky
	if st == nil {
		return nil
	}
	id := balance.StickyID(s.Addr)
	if x.pick.Sticky && x.pick.StickyID == id {
		return nil
	}
	x.extra = st.AppendSetCookie(x.extra[:0], id)
	return x.extra
}
