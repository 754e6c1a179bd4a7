package upstream

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// sockReader reads a plain TCP connection for its BR with recv(2) inside
// the poller's wait (syscall.RawConn.Read): the kernel's recv costs less
// than the read(2) net.Conn's Read makes (no file-layer checks), and the
// socket being non-blocking, the raw form needs no scheduler hand-off.
// Errors are worded as net.Conn's. Its closure is built once per
// connection; reads of one connection do not race (one exchange owns it).
type sockReader struct {
	c   net.Conn
	raw syscall.RawConn
	fn  func(fd uintptr) bool
	b   []byte
	n   int
	err error
}

func (r *sockReader) init(c net.Conn, raw syscall.RawConn) {
	r.c, r.raw, r.fn = c, raw, r.step
}

func (r *sockReader) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	r.b, r.n, r.err = b, 0, nil
	err := r.raw.Read(r.fn)
	r.b = nil
	switch {
	case err != nil: // the deadline passed, or the connection was closed
	case r.err != nil:
		err = os.NewSyscallError("read", r.err)
	case r.n == 0:
		return 0, io.EOF
	default:
		return r.n, nil
	}
	return 0, &net.OpError{Op: "read", Net: "tcp", Source: r.c.LocalAddr(), Addr: r.c.RemoteAddr(), Err: err}
}

// step is the raw read's callback: false when nothing is there yet.
func (r *sockReader) step(fd uintptr) bool {
	for {
		n, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&r.b[0])), uintptr(len(r.b)), 0, 0, 0)
		switch errno {
		case 0:
			r.n = int(n)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		r.err = errno
		return true
	}
}
