package upstream

import (
	"net"
	"os"
	"syscall"

	"github.com/capuchin/capuchin/internal/rawsock"
)

// writeWait writes a request inside the poller's read wait of a plain TCP
// connection (see Conn.WriteWait). Its closure is built once per
// connection: no allocation per request.
type writeWait struct {
	fn  func(fd uintptr) bool
	b   []byte // what is left to write
	n   int    // written so far
	err error  // the write's error
}

// WriteWait writes b on a plain TCP connection and waits until its answer
// can be read, with one system call fewer than a write followed by a read
// that finds nothing yet (Go's poller reads before it waits): the write is
// made by the first call of a syscall.RawConn.Read, whose wait is armed
// before it, so an answer that comes at once still ends the wait; the
// read that follows (BR's) finds the answer. It returns how many bytes of
// b it wrote: the caller writes the rest (a socket buffer that was full,
// a TLS connection, one that is not a socket: 0) and reads as usual. The
// read deadline bounds the wait; a wait that ends with an error leaves it
// to the caller's read, which meets the same error. BW must be empty.
//
// The wait's arming forgets a readiness the poller saw before it: a FIN
// that came in the microseconds between Get's stray check and this call
// does not end the wait. A backend that closed for good answers the write
// with a reset, which does (and the request is retried as after any
// reset); one that only half-closed is waited for up to the read
// deadline.
func (c *Conn) WriteWait(b []byte) (int, error) {
	k := &c.check
	if k.raw == nil || k.tls != nil || len(b) == 0 {
		return 0, nil
	}
	w := &c.wait
	if w.fn == nil {
		w.fn = w.step
	}
	w.b, w.n, w.err = b, 0, nil
	_ = k.raw.Read(w.fn) // a wait's error comes again with the caller's read
	w.b = nil
	if w.err != nil { // as net.Conn's Write words it
		return w.n, &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(),
			Err: os.NewSyscallError("write", w.err)}
	}
	return w.n, nil
}

// step is the raw read's callback: its first call writes (false: wait for
// the answer), the next one, or a write that could not finish, ends it.
func (w *writeWait) step(fd uintptr) bool {
	if len(w.b) == 0 {
		return true // readable (or the wait ended): the caller reads
	}
	r, errno := rawsock.Send(fd, w.b)
	switch {
	case errno == syscall.EAGAIN || errno == syscall.EINTR:
		return true // the rest is the caller's, with its blocking write
	case errno != 0:
		w.err = errno
		return true
	}
	w.n += r
	w.b = w.b[r:]
	// All written: false, wait for the answer. A short write (the socket's
	// buffer is full): the rest is the caller's.
	return len(w.b) > 0
}
