package transport

import (
	"io"
	"net"
	"syscall"

	"github.com/capuchin/capuchin/internal/rawsock"
)

// rawIO reads and writes a non-blocking socket with raw system calls, the
// runtime's poller waiting when the socket is not ready. A read or write
// on such a socket never blocks, so it need not tell the runtime it
// enters a system call; the runtime's entersyscall wakes its monitor
// thread (sysmon) whenever that thread sleeps because the process was
// idle, which on a stage-20 peer is at every batch of calls: a wake-up,
// its sleeps and their context switches per batch, for nothing.
type rawIO struct {
	rc syscall.RawConn

	// The operation in progress, for the method values below (made once:
	// a wait allocates nothing). Reads and writes each come from one
	// goroutine at a time (the framer's reader, its writer).
	rb, wb     []byte
	rn, wn     int
	rerr, werr error
	rfn, wfn   func(fd uintptr) bool
}

// newRawIO returns c's raw reader and writer; nil when c offers none.
func newRawIO(c *net.UnixConn) *rawIO {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	r := &rawIO{rc: rc}
	r.rfn, r.wfn = r.read, r.write
	return r
}

// Read reads what the socket holds into b, waiting until it holds bytes.
func (r *rawIO) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	r.rb, r.rn, r.rerr = b, 0, nil
	if err := r.rc.Read(r.rfn); err != nil {
		return 0, err
	}
	n, err := r.rn, r.rerr
	r.rb = nil
	if n == 0 && err == nil {
		return 0, io.EOF
	}
	return n, err
}

func (r *rawIO) read(fd uintptr) bool {
	for {
		n, e := rawsock.Recv(fd, r.rb, 0)
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			return false // wait in the poller
		case e != 0:
			r.rerr = &net.OpError{Op: "read", Net: "unix", Err: e}
		default:
			r.rn = n
		}
		return true
	}
}

// Write writes all of b, waiting while the socket's buffer is full.
func (r *rawIO) Write(b []byte) (int, error) {
	r.wb, r.wn, r.werr = b, 0, nil
	err := r.rc.Write(r.wfn)
	n := r.wn
	if err == nil {
		err = r.werr
	}
	r.wb = nil
	return n, err
}

func (r *rawIO) write(fd uintptr) bool {
	for r.wn < len(r.wb) {
		p := r.wb[r.wn:]
		n, e := rawsock.Send(fd, p)
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			return false // wait in the poller, then write the rest
		case e != 0:
			r.werr = &net.OpError{Op: "write", Net: "unix", Err: e}
			return true
		}
		r.wn += n
	}
	return true
}
