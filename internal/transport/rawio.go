package transport

import (
	"net"
	"syscall"

	"github.com/capuchin/capuchin/internal/rawsock"
)

// rawIO reads and writes a stage-20 peer's socket with rawsock.IO, raw
// system calls in the runtime poller's waits (see package rawsock: Go's
// syscall bookkeeping would wake its monitor thread at every batch of
// calls of an otherwise idle peer), its errors worded as a unix
// net.Conn's.
type rawIO struct{ io rawsock.IO }

// newRawIO returns c's raw reader and writer; nil when c offers none.
func newRawIO(c *net.UnixConn) *rawIO {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
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
