package forward

import (
	"errors"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/capuchin/capuchin/internal/clock"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/upstream"
)

// A Content-Length body passed through unchanged moves from the backend
// socket to the client's with splice(2), through the client socket's ReadFrom,
// without being copied into the process: once the bytes read with the
// answer's head are sent, the rest goes in steps of spliceStep, each with
// a fresh client write deadline (the client Timeout: a client must take
// 64 KiB per Timeout, where the copy loop asks 32 KiB per Timeout) and the
// backend's coarse read deadline (ResponseTimeout), so a slow but steady
// transfer is not cut.
const (
	spliceMin  = 16 << 10 // smaller rests go through the copy buffer
	spliceStep = 64 << 10
)

// splice moves the rest of the answer's body when it can; done reports
// whether it took over (then ok is copyBody's result).
func (x *exchange) splice(bc *upstream.Conn) (done, ok bool) {
	left := x.rbody.Direct()
	if left < spliceMin {
		return false, false
	}
	dst, dok := x.r.Conn.(io.ReaderFrom) // a plain client's socket splices (see fdpass)
	src, sok := bc.Conn.(*net.TCPConn)
	if x.r.TLS || !dok || !sok {
		return false, false
	}
	if !x.flushClient(nil) { // the head and the bytes read with it go first
		return true, false
	}
	rt := bc.Server().ResponseTimeout()
	lr := &io.LimitedReader{R: src} // one for the body: it escapes
	for left > 0 {
		now := clock.From(x.now)
		bc.ExtendRead(now, rt)
		x.cw.setBy(now.Add(x.cw.timeout)) // a full Timeout for this step
		x.longLived(now)
		lr.N = min(left, spliceStep)
		want := lr.N
		n, err := dst.ReadFrom(lr)
		x.cw.n += n
		left -= n
		short := n < want
		x.rbody.Moved(n, short, err)
		if short || err != nil {
			return true, x.spliceError(bc, err)
		}
	}
	return true, true
}

// spliceError sorts out a splice that stopped early: a client that went
// away (a write error, or its write deadline passed) closes the client
// connection; anything else is the backend's fault. An ECONNRESET cannot
// be told apart and is taken for the client's, so that a client's reset
// never counts against a backend.
func (x *exchange) spliceError(bc *upstream.Conn, err error) bool {
	var ne net.Error
	client := x.isAborted() || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) ||
		errors.As(err, &ne) && ne.Timeout() && !time.Now().Before(x.cw.by)
	if client {
		return x.flushClient(err)
	}
	if err == nil {
		err = io.ErrUnexpectedEOF // the backend closed mid-body
	}
	bc.Server().FailedAs(time.Now(), upstream.FailBody)
	x.bodyError(bc, err)
	return false
}
