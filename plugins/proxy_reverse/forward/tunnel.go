package forward

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/capuchin/capuchin/plugins/proxy_reverse/upstream"
)

// tunnel relays a 101 answer and then copies bytes both ways until either
// side closes, or until no byte has moved either way for the entry's
// TunnelIdleTimeout; the client connection closes afterwards. A tunnel
// lives as long as it has traffic: the host's stage deadline is lifted.
func (x *exchange) tunnel(bc *upstream.Conn) {
	x.up.headDone()
	bc.Server().Succeeded()
	x.stopUpload(bc)
	x.status, x.closing = 101, true
	h := x.head(time.Now())
	b, _ := AppendResponseHead((*x.buf)[:0], &x.resp, h, nil)
	x.out().Write(b)
	x.heads += int64(len(b))
	if !x.flushClient(nil) {
		bc.Server().Release(bc, false, time.Now())
		return
	}
	x.unbound()
	bc.Server().Tunneled()
	t := tunnelState{idle: bc.Server().TunnelIdleTimeout()}
	t.last.Store(time.Now().UnixNano())
	up := make(chan int64, 1)
	go func() {
		n := t.copy(bc.Conn, x.r.BR, x.r.Conn) // client to backend
		bc.Conn.Close()                        // ends the other direction too
		up <- n
	}()
	x.cw.n += t.copy(x.r.Conn, bc.BR, bc.Conn) // backend to client
	t.done.Store(true)
	x.mu.Lock()
	x.r.Conn.SetReadDeadline(time.Unix(1, 0))
	x.mu.Unlock()
	bc.Conn.Close()
	x.up.total += <-up
	bc.Server().Release(bc, false, time.Now())
}

// tunnelState is what both directions of a tunnel share.
type tunnelState struct {
	idle time.Duration
	last atomic.Int64 // unix nanoseconds of the last byte either way
	done atomic.Bool  // the tunnel is ending: a timed-out read stops
}

// copy moves src (read through rc) to dst until EOF, an error, the end of
// the tunnel, or idle time with no byte either way. It returns the bytes
// copied.
func (t *tunnelState) copy(dst net.Conn, src io.Reader, rc net.Conn) int64 {
	buf := make([]byte, 16<<10)
	var n int64
	for {
		rc.SetReadDeadline(time.Unix(0, t.last.Load()).Add(t.idle))
		// The tunnel's end stores done, then sets a past deadline: checked
		// after our own deadline, one of the two always stops this read.
		if t.done.Load() {
			return n
		}
		m, err := src.Read(buf)
		if m > 0 {
			now := time.Now()
			t.last.Store(now.UnixNano())
			dst.SetWriteDeadline(now.Add(t.idle))
			if _, werr := dst.Write(buf[:m]); werr != nil {
				return n
			}
			n += int64(m)
		}
		if err == nil {
			continue
		}
		// A read that timed out while the other direction kept moving
		// goes on; the tunnel is idle only when both are.
		if !errors.Is(err, os.ErrDeadlineExceeded) || t.done.Load() ||
			time.Since(time.Unix(0, t.last.Load())) >= t.idle {
			return n
		}
	}
}
