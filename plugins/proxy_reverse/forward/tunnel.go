package forward

import (
	"io"
	"time"

	"github.com/capuchin/capuchin/plugins/proxy_reverse/upstream"
)

// tunnel relays a 101 answer and then copies bytes both ways until either
// side closes; the client connection closes afterwards.
func (x *exchange) tunnel(bc *upstream.Conn) {
	x.up.headDone()
	bc.Server().Succeeded()
	x.stopUpload(bc)
	x.status, x.closing = 101, true
	h := x.head()
	b, _ := appendResponseHead((*x.buf)[:0], &x.resp, &h)
	x.bw.Write(b)
	if !x.flushClient(nil) {
		bc.Server().Release(bc, false, time.Now())
		return
	}
	var zero time.Time
	bc.Conn.SetDeadline(zero)
	x.mu.Lock()
	if !x.aborted { // no deadline left from the request (or a lease) on a tunnel
		x.r.Conn.SetDeadline(zero)
	}
	x.mu.Unlock()
	up := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(bc.Conn, x.r.BR) // client to backend
		bc.Conn.Close()                  // ends the other direction too
		up <- n
	}()
	n, _ := io.Copy(x.r.Conn, bc.BR) // backend to client
	x.cw.n += n
	x.r.Conn.SetReadDeadline(time.Unix(1, 0))
	bc.Conn.Close()
	x.up.total += <-up
	bc.Server().Release(bc, false, time.Now())
}
