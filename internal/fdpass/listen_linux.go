package fdpass

import (
	"cmp"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"syscall"

	"github.com/capuchin/capuchin/internal/rawsock"
)

// listener is a TCP listening socket whose connections are sockConns,
// accepted with accept4(2) made as a raw call in the poller's read wait.
type listener struct {
	f      *os.File // the socket, in the poller
	raw    syscall.RawConn
	addr   net.Addr
	local  net.Addr // its connections' local address (nil: a wildcard's, read when asked for)
	closed atomic.Bool
}

// Listen turns ln into a listener whose connections are this package's
// sockets (see sockConn), as the host's parked ones become when taken
// back: a connection answered once and closed then makes no call that
// waits (see rawsock) and never joins the poller, where net.TCPListener's
// makes each one a net.TCPConn in it (the accept, getsockname and
// setsockopt calls with the scheduler's bookkeeping, and two epoll_ctl).
// TCP_NODELAY is set on the listening socket, whose connections inherit
// it. ln's descriptor is closed; the socket stays open in the listener.
func Listen(ln *net.TCPListener) (net.Listener, error) {
	addr := ln.Addr()
	f, err := ln.File()
	ln.Close()
	if err != nil {
		return nil, fmt.Errorf("fdpass: listener %s: %w", addr, err)
	}
	raw, err := f.SyscallConn()
	if err == nil {
		cerr := raw.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1) })
		err = cmp.Or(cerr, err)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("fdpass: listener %s: %w", addr, err)
	}
	l := &listener{f: f, raw: raw, addr: addr}
	if ta, ok := addr.(*net.TCPAddr); ok && !ta.IP.IsUnspecified() {
		l.local = addr
	}
	return l, nil
}

// Accept waits for a connection and returns it as a sockConn.
func (l *listener) Accept() (net.Conn, error) {
	fd := -1
	var peer net.Addr
	var errno syscall.Errno
	err := l.raw.Read(func(ln uintptr) bool {
		for {
			fd, peer, errno = rawsock.Accept(ln)
			switch errno {
			case syscall.EINTR, syscall.ECONNABORTED:
				continue
			case syscall.EAGAIN:
				return false
			}
			return true
		}
	})
	switch {
	case l.closed.Load():
		err = net.ErrClosed
	case err == nil && errno != 0:
		err = os.NewSyscallError("accept4", errno)
	}
	if err != nil {
		if fd >= 0 && errno == 0 {
			rawsock.Close(uintptr(fd))
		}
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.addr, Err: err}
	}
	return sockConnOf(fd, l.local, peer), nil
}

// SetDeferAccept says whether the kernel holds a new connection until its
// first bytes come (TCP_DEFER_ACCEPT, as nginx's "deferred" and HAProxy's
// "defer-accept"): its request is then there when it is accepted, read
// with one recv, and its socket does not join the poller to wait for it
// (two epoll_ctl calls, a wake-up, and the close of an os.File, which
// wakes Go's monitor thread). A connection that sends nothing is
// accepted all the same after about a second (when the kernel sends its
// SYN-ACK again and the client answers it), and one that closes first
// when it closes.
func (l *listener) SetDeferAccept(on bool) error {
	secs := 0
	if on {
		secs = 1
	}
	var err error
	cerr := l.raw.Control(func(fd uintptr) {
		err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, secs)
	})
	return cmp.Or(cerr, os.NewSyscallError("setsockopt TCP_DEFER_ACCEPT", err))
}

// Close closes the listening socket; Accept then fails with net.ErrClosed.
func (l *listener) Close() error {
	l.closed.Store(true)
	return l.f.Close()
}

func (l *listener) Addr() net.Addr { return l.addr }
