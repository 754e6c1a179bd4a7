package forward

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/clock"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/upstream"
)

// errStopped ends an upload that stopUpload or abort cut short.
var errStopped = errors.New("request body abandoned")

// upload streams the request body to the backend on its own goroutine
// while the exchange waits for the answer, so a backend may answer early
// and 100-continue works: the Expect field is forwarded and the backend's
// 100 relayed, and the client's body is read only as it arrives.
type upload struct {
	started   bool
	done      chan struct{}
	body      http1.Body
	readAll   atomic.Bool  // the client's body was read to its end
	stopping  bool         // stopUpload cut the client read short; guarded by exchange.mu
	err       error        // set before done closes
	clientErr bool         // err came from reading the client
	total     int64        // body bytes read; valid after done
	trailer   http1.Header // buffer of the forwarded trailer fields

	clock http1.BodyClock // ClientBodyTimeout and ClientBodyMinRate

	// onClient says the upload waits for the client's bytes under a
	// deadline of the client's own (see awaitingClient); continued that a
	// 100 (Continue) went to the client, guarded by exchange.mu.
	onClient  atomic.Bool
	continued bool

	mu      sync.Mutex
	gotHead bool // the final answer's head arrived: stop moving the deadline
}

// armClient sets the deadline of the next client read, the body clock's
// (ClientBodyTimeout and ClientBodyMinRate), or none while an Expect:
// 100-continue client waits for the backend's 100 before its first byte
// (the backend's ResponseTimeout bounds that wait; see continued). It
// reports false once stopUpload or abort has set a past deadline, which
// must not be overwritten.
func (x *exchange) armClient() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.aborted || x.up.stopping {
		return false
	}
	var t time.Time
	if !x.r.Req.Expect100 || x.up.total > 0 || x.up.continued {
		now := clock.From(x.began)
		t = x.up.clock.Deadline(now, x.up.total)
		x.longLived(now)
	}
	x.r.Conn.SetReadDeadline(t)
	x.up.onClient.Store(!t.IsZero())
	return true
}

// continued arms the client's read deadline once the backend's 100
// (Continue) went out: the body is the client's to send now, within
// ClientBodyTimeout (a client that sends none gets 408, not the backend's
// 504).
func (x *exchange) continued(s *upstream.Server) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.aborted || x.up.stopping || x.up.continued {
		return
	}
	x.up.continued = true
	x.r.Conn.SetReadDeadline(time.Now().Add(x.bodyTimeout(s)))
	x.up.onClient.Store(true)
}

// awaitingClient reports whether a backend read that timed out with no
// byte of an answer did so while the upload waits for the client's body
// under the client's own deadline: the wait for the answer counts from
// the request's last byte (as nginx's proxy_read_timeout does), so it goes
// on, and a client that stalls gets 408 when its deadline passes.
func (x *exchange) awaitingClient(err error) bool {
	var ne net.Error
	return !x.gotByte && x.up.started && x.up.onClient.Load() && errors.As(err, &ne) && ne.Timeout()
}

// cutShort reports whether stopUpload or abort has cut the client read short.
func (x *exchange) cutShort() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.aborted || x.up.stopping
}

func (u *upload) reset() {
	u.started, u.done, u.err, u.clientErr, u.total, u.gotHead = false, nil, nil, false, 0, false
	u.clock = http1.BodyClock{}
	u.stopping, u.continued = false, false
	u.readAll.Store(false)
	u.onClient.Store(false)
}

// touch moves the backend read deadline to ResponseTimeout from now (a
// clock read just made) while no final answer head has arrived. The
// timeout for the answer thus counts from the last request byte sent.
func (u *upload) touch(bc *upstream.Conn, s *upstream.Server, force bool, now time.Time) {
	if !force && !u.started {
		return
	}
	u.mu.Lock()
	if !u.gotHead {
		bc.ExtendRead(now, s.ResponseTimeout())
	}
	u.mu.Unlock()
}

func (u *upload) headDone() {
	if !u.started { // no upload touches the deadline: nothing to stop
		return
	}
	u.mu.Lock()
	u.gotHead = true
	u.mu.Unlock()
}

func (x *exchange) startUpload(bc *upstream.Conn) {
	u := &x.up
	u.started, u.done = true, make(chan struct{})
	u.body.ResetRequest(x.r.BR, x.r.Req, x.r.MaxBody)
	go x.uploadBody(bc)
}

// uploadBody copies the body: Content-Length as is, chunked re-chunked.
func (x *exchange) uploadBody(bc *upstream.Conn) {
	u := &x.up
	defer close(u.done)
	buf := x.f.getBuf()
	defer x.f.bufs.Put(buf)
	p := (*buf)[:16<<10]
	var w io.Writer = bc.BW
	var cw *http1.ChunkedWriter // made only for a chunked body: it escapes
	if x.r.Req.Chunked {
		cw = &http1.ChunkedWriter{W: bc.BW}
		w = cw
	}
	s := bc.Server()
	u.clock = http1.BodyClock{Timeout: x.bodyTimeout(s), MinRate: int64(s.ClientBodyMinRate())}
	for {
		if !x.armClient() {
			u.err = errStopped // the backend side decided; its error stands
			bc.Conn.Close()
			return
		}
		n, err := u.body.Read(p)
		u.onClient.Store(false)
		u.total += int64(n)
		// Mark the body read before its last bytes go out: the backend
		// may answer as soon as it has them, and stopUpload must then
		// wait for this goroutine rather than cut a complete body.
		last := err == io.EOF || err == nil && u.body.Done()
		if last {
			u.readAll.Store(true)
		}
		if n > 0 {
			if _, werr := w.Write(p[:n]); werr != nil {
				u.err = werr
				return
			}
		}
		if last {
			break
		}
		if err != nil {
			// A read that stopUpload or abort cut short (a past deadline)
			// is not the client's fault: the backend side's error stands.
			u.err, u.clientErr = err, !x.cutShort()
			bc.Conn.Close() // the backend must not take a cut body as complete
			return
		}
		if u.err = bc.BW.Flush(); u.err != nil {
			return
		}
		u.touch(bc, s, false, time.Now())
	}
	if x.r.Req.Chunked {
		u.trailer = trailerFields(u.trailer, u.body.Trailer())
		cw.CloseTrailer(u.trailer)
	}
	u.err = bc.BW.Flush()
	u.touch(bc, s, false, time.Now())
}

// stopUpload ends the upload goroutine and reports whether the client's
// body was read to its end. A body still arriving is abandoned: the client
// connection must then close.
func (x *exchange) stopUpload(bc *upstream.Conn) bool {
	u := &x.up
	if !u.started {
		return !x.r.Req.HasBody()
	}
	select {
	case <-u.done:
	default:
		if u.readAll.Load() {
			bc.Conn.SetWriteDeadline(time.Now().Add(bc.Server().ResponseTimeout()))
		} else {
			x.mu.Lock()
			u.stopping = true
			x.r.Conn.SetReadDeadline(time.Unix(1, 0))
			x.mu.Unlock()
			bc.Conn.Close()
		}
		<-u.done
	}
	return u.err == nil && u.readAll.Load()
}

// bodyTimeout is the entry's ClientBodyTimeout, else the host's Timeout.
func (x *exchange) bodyTimeout(s *upstream.Server) time.Duration {
	if d := s.ClientBodyTimeout(); d > 0 {
		return d
	}
	return x.r.ClientTimeoutOrDefault()
}

// ClientTimeoutOrDefault is the host's Timeout, or its default: it bounds
// each write to the client.
func (r *Request) ClientTimeoutOrDefault() time.Duration {
	if r.ClientTimeout > 0 {
		return r.ClientTimeout
	}
	return fallbackClientTimeout
}
