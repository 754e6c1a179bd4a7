package upstream

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/capuchin/capuchin/internal/rawsock"
)

// sockReader reads a plain TCP connection for its BR with recv(2) inside
// the poller's wait (syscall.RawConn.Read; see package rawsock for why).
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
	var op *net.OpError
	switch {
	case errors.As(err, &op): // the deadline passed, or the connection was closed:
		err = op.Err // worded below as a read, not a raw-read
	case err != nil:
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
		n, errno := rawsock.Recv(fd, r.b, 0)
		switch errno {
		case 0:
			r.n = n
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
