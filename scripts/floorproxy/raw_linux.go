package main

import (
	"errors"
	"net"
	"syscall"
	"time"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/rawsock"
	prupstream "github.com/capuchin/capuchin/plugins/proxy_reverse/upstream"
	"golang.org/x/sys/unix"
)

// serveRaw serves each connection ln accepts on its own goroutine, as
// serveGoroutines does, but with the system calls Capuchin's lease makes
// (internal/idlewait, upstream.Conn.WriteWait): raw recv(2) and send(2)
// inside the runtime poller's waits (syscall.RawConn), a wait for the
// next request that begins without a read that finds nothing, and a
// request written inside its backend connection's read wait. It is the
// floor of the goroutine-per-connection model as Capuchin uses it.
func serveRaw(ln net.Listener, r *router) error { return acceptRaw(ln, r, nil) }

// acceptRaw serves each connection ln accepts with serveRawConn, with
// serveFeatured's work when sh is set.
func acceptRaw(ln net.Listener, r *router, sh *featShared) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go serveRawConn(c.(*net.TCPConn), r, sh)
	}
}

// rawClient is one client connection of serveRaw.
type rawClient struct {
	r *router
	q reqCheck
	inbuf
	skip bool // the last read drained the socket: wait before the next

	featured *featured // serveFeatured's per-request work; nil: serve's
}

// serveRawConn serves c inside one read wait until c closes or a request
// cannot be served.
func serveRawConn(c *net.TCPConn, r *router, sh *featShared) {
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	s := &rawClient{r: r, inbuf: inbuf{buf: make([]byte, 4096)}}
	if sh != nil {
		s.featured = newFeatured(sh, c)
	}
	_ = rc.Read(s.step)
}

// step is the read wait's callback: it reads, serves each whole request,
// and asks for a wait (false) once the socket is drained; true ends the
// connection.
func (s *rawClient) step(fd uintptr) bool {
	for {
		if s.skip {
			s.skip = false
			return false
		}
		if s.full() {
			return true // a head larger than the buffer
		}
		n, errno := s.read(fd, 0)
		switch {
		case errno == syscall.EAGAIN || errno == syscall.EINTR:
			return false
		case errno != 0 || n == 0:
			return true
		}
		drained := !s.full() // a read that filled the buffer may have left bytes
		if !s.serveBuffered(fd) {
			return true
		}
		s.skip = drained
	}
}

// serveBuffered serves the whole request heads in s.buf; false ends the
// connection.
func (s *rawClient) serveBuffered(fd uintptr) bool {
	for {
		_, end, err := http1.HeadEnd(s.buf[:s.n])
		switch {
		case err != nil:
			return false
		case end < 0:
			return true
		case !s.serveOne(fd, s.buf[:end]):
			return false
		}
		s.n = copy(s.buf, s.buf[end:s.n])
	}
}

// serveOne serves one request, with serveFeatured's work when set.
func (s *rawClient) serveOne(fd uintptr, head []byte) bool {
	if s.featured != nil {
		return s.featured.serve(s.r, fd, head)
	}
	return s.serve(fd, head)
}

// serve relays one request to a backend and its answer to the client fd.
func (s *rawClient) serve(fd uintptr, head []byte) bool {
	if s.q.noBody(head) != nil {
		return false
	}
	g := s.r.pick(head)
	up, err := reuseOrDial(g, newRawUpstream)
	if err != nil {
		return false
	}
	ans, err := up.exchange(head)
	if err != nil {
		up.c.Close()
		return false
	}
	ok := writeAll(int(fd), ans) == nil
	g.put(up)
	return ok
}

// rawUpstream is a pooled backend connection of serveRaw.
type rawUpstream struct {
	c    *net.TCPConn
	rc   syscall.RawConn
	fn   func(fd uintptr) bool // step, made once
	head []byte                // the request to send; nil once sent
	inbuf
	ans answerHead
	err error

	reused bool                 // (serveFeatured) it carried a request before
	check  prupstream.IdleCheck // (serveFeatured) the pool's check, made when reused
	readBy time.Time            // (serveFeatured) its read deadline
}

// newRawUpstream makes a pooled connection of nc.
func newRawUpstream(nc net.Conn) (*rawUpstream, error) {
	c := nc.(*net.TCPConn)
	rc, err := c.SyscallConn()
	if err != nil {
		c.Close()
		return nil, err
	}
	u := &rawUpstream{c: c, rc: rc, inbuf: inbuf{buf: make([]byte, 8192)}}
	u.fn = u.step
	return u, nil
}

// errAnswer is an answer the floor cannot relay.
var errAnswer = errors.New("an answer without Content-Length, malformed, or followed by more bytes")

// exchange sends head and returns the whole answer (valid until the next
// exchange).
func (u *rawUpstream) exchange(head []byte) ([]byte, error) {
	u.head, u.n, u.err = head, 0, nil
	u.ans.reset()
	if err := u.rc.Read(u.fn); err != nil {
		return nil, err
	}
	if u.err != nil {
		return nil, u.err
	}
	return u.buf[:u.ans.size()], nil
}

// step is the backend read wait's callback: its first call sends the
// request and waits (the wait was armed before it, so an answer that
// comes at once still ends it); the next ones read until the answer is
// whole.
func (u *rawUpstream) step(fd uintptr) bool {
	if u.head != nil {
		u.err, u.head = writeAll(int(fd), u.head), nil
		return u.err != nil
	}
	for {
		if u.ans.hl == 0 && u.full() { // a head larger than the buffer
			u.err = errAnswer
			return true
		}
		n, errno := u.read(fd, u.ans.size())
		switch {
		case errno == syscall.EAGAIN || errno == syscall.EINTR:
			return false
		case errno != 0 || n == 0:
			u.err = errors.New("the backend closed the connection")
			return true
		}
		if !u.ans.parse(u.buf[:u.n]) || u.ans.whole(u.n) && u.n > u.ans.size() {
			u.err = errAnswer
			return true
		}
		if u.ans.whole(u.n) {
			return true
		}
	}
}

// writeAll writes b to the non-blocking socket fd, waiting with poll(2)
// while its buffer is full.
func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, errno := rawsock.Send(uintptr(fd), b)
		switch errno {
		case 0:
			b = b[n:]
		case syscall.EAGAIN:
			_, _ = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}, -1)
		case syscall.EINTR:
		default:
			return errno
		}
	}
	return nil
}
