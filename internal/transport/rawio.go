package transport

import (
	"net"
	"syscall"

	"github.com/capuchin/capuchin/internal/rawsock"
)

// rawIO reads and writes a framed socket with rawsock.IO, raw system
// calls in the runtime poller's waits, its errors worded as a unix
// net.Conn's. Go's syscall bookkeeping (see package rawsock) would cost
// each end of a framed socket at every batch: an end idle between
// batches wakes the runtime's monitor thread, and a write that wakes the
// other end on the same core is preempted on its way out, with the
// processor handed to another thread meanwhile.
type rawIO struct{ io rawsock.IO }

// newRawIO returns c's raw reader and writer (a *net.UnixConn's
// SyscallConn fails only when the connection is nil).
func newRawIO(c *net.UnixConn) *rawIO {
	rc, _ := c.SyscallConn()
	r := &rawIO{}
	r.io.Init(rc)
	return r
}

// Read reads what the socket holds into b, waiting until it holds bytes.
// Reads come from one goroutine at a time (the framer's reader).
func (r *rawIO) Read(b []byte) (int, error) {
	n, err := r.io.Read(b)
	return n, unixError("read", err)
}

// Write writes all of b, waiting while the socket's buffer is full.
// Writes come from one goroutine at a time (the framer's writer).
func (r *rawIO) Write(b []byte) (int, error) {
	n, err := r.io.Write(b)
	return n, unixError("write", err)
}

// unixError words a system call's errno as a unix net.Conn's op would.
func unixError(op string, err error) error {
	if e, ok := err.(syscall.Errno); ok {
		return &net.OpError{Op: op, Net: "unix", Err: e}
	}
	return err
}
