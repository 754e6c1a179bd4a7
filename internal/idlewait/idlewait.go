// Package idlewait waits for an idle socket to become readable without
// holding a read buffer, so that a keep-alive connection between requests
// costs no buffer memory: the caller gives its buffers back to a pool,
// waits, and takes them again when the next request arrives.
//
// The wait costs no more system calls than a blocking read would: one
// non-blocking MSG_PEEK recv (which a blocking read's first, failing
// attempt would have cost), the poller's wait, then the caller's read.
package idlewait

import (
	"net"
	"syscall"
	"unsafe"
)

// Waiter waits on one connection; its closure is built once, so a wait
// allocates nothing. The zero value (or one for a connection that is not a
// socket) returns at once from Wait, and the caller's read then blocks as
// usual.
type Waiter struct {
	raw    syscall.RawConn
	fn     func(fd uintptr) bool
	waited bool
}

// Init prepares w for c.
func (w *Waiter) Init(c net.Conn) {
	w.raw, w.fn = nil, nil
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	w.raw = raw
	w.fn = func(fd uintptr) bool {
		if w.waited {
			return true // the poller saw the socket readable (or closed)
		}
		var b [1]byte
		// Non-blocking, so the raw form (no scheduler hand-off) is right.
		_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		if errno == syscall.EAGAIN || errno == syscall.EINTR {
			w.waited = true
			return false
		}
		return true // bytes, EOF or an error: the caller's read reports it
	}
}

// Wait blocks until the connection has bytes, EOF or an error to report,
// or its read deadline passes (os.ErrDeadlineExceeded, as a read would
// return). A nil error says only that a read will not block for long: it
// may still find an error or EOF.
func (w *Waiter) Wait() error {
	if w.raw == nil {
		return nil
	}
	w.waited = false
	return w.raw.Read(w.fn)
}
