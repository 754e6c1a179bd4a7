package fdpass

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/capuchin/capuchin/internal/rawsock"
	"golang.org/x/sys/unix"
)

// sockConn is a received client socket as a net.Conn, made with
// os.NewFile: a socket that is already non-blocking (the host's are) is
// then polled by the runtime as net.FileConn's would be, with deadlines,
// and costs two system calls (fcntl, epoll_ctl) where net.FileConn costs
// thirteen (a duplicate, its close, getsockopt, getsockname, getpeername,
// fcntl, epoll_ctl and six setsockopt: TCP_NODELAY, which the host set
// already, keep-alive probes on and their three timings, and off again,
// see FileConn). Its addresses are read when first asked for. ReadFrom
// moves a TCP socket's bytes with splice(2), as net.TCPConn's does. Its
// read deadline is kept coarsely (see readDeadline).
type sockConn struct {
	f     *os.File
	once  sync.Once
	local net.Addr
	peer  net.Addr
	rd    readDeadline
	wmu   sync.Mutex
	w     rawsock.IO  // writes, under wmu
	held  atomic.Bool // see SetHeld
}

// readDeadline is a sockConn's read deadline as set on the poller. Each
// change of it costs the poller three clock reads and a timer change, and
// a keep-alive connection's server sets one before each wait for the next
// request and clears it after: so a deadline cleared stays on the poller
// until a Read comes (stale), and SetReadDeadlineNear keeps the one set
// when it is a little after the one asked for. Raw reads (SyscallConn)
// do not clear a stale deadline: a caller that reads raw sets its own
// deadline first.
type readDeadline struct {
	mu      sync.Mutex
	set     time.Time    // on the poller; zero: none
	stale   atomic.Bool  // set is cleared: the next Read clears it on the poller
	reading atomic.Int32 // Reads in progress: a clear then takes effect at once
}

// newSockConn wraps fd; a descriptor that cannot be polled (a blocking
// one) goes through FileConn instead.
func newSockConn(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "client")
	if f.SetReadDeadline(time.Time{}) == nil { // polled: deadlines work
		return &sockConn{f: f}, nil
	}
	defer f.Close()
	return FileConn(f)
}

func (c *sockConn) Read(b []byte) (int, error) {
	if c.held.Load() {
		return c.heldRead(b)
	}
	c.rd.reading.Add(1)
	defer c.rd.reading.Add(-1)
	if c.rd.stale.Load() {
		c.clearStale()
	}
	return c.f.Read(b)
}

func (c *sockConn) Close() error { return c.f.Close() }

// SetHeld says whether a raw read holds the socket's read wait and runs
// the caller's code inside it (idlewait.Waiter.Serve, in which the SDK
// serves requests; it is an idlewait.Holder): a Read meanwhile, which
// would wait for the held wait's lock forever, reads the descriptor
// instead (see heldRead).
func (c *sockConn) SetHeld(on bool) { c.held.Store(on) }

// heldRead is Read while the socket's read wait is held: recv(2) on the
// descriptor, waiting for bytes with poll(2) until the read deadline
// (a blocking call: the runtime gives the processor to another thread
// meanwhile). It serves a handler that reads the client socket where the
// SDK expects it not to (a request without a body); it is correct, not
// fast.
func (c *sockConn) heldRead(b []byte) (n int, err error) {
	if len(b) == 0 {
		return 0, nil
	}
	raw, err := c.f.SyscallConn()
	if err != nil {
		return 0, err
	}
	c.rd.mu.Lock()
	by := c.rd.set
	if c.rd.stale.Load() {
		by = time.Time{}
	}
	c.rd.mu.Unlock()
	if cerr := raw.Control(func(fd uintptr) { n, err = pollRecv(fd, b, by) }); cerr != nil {
		return 0, cerr
	}
	if err != nil && err != io.EOF {
		err = &os.PathError{Op: "read", Path: c.f.Name(), Err: err}
	}
	return n, err
}

// pollRecv reads fd into b (not empty), waiting with poll(2) in steps of
// at most 100 ms until bytes come, the peer closes or by passes (if set).
func pollRecv(fd uintptr, b []byte, by time.Time) (int, error) {
	for {
		n, errno := rawsock.Recv(fd, b, 0)
		switch {
		case errno == 0 && n == 0:
			return 0, io.EOF
		case errno == 0:
			return n, nil
		case errno != syscall.EAGAIN && errno != syscall.EINTR:
			return 0, errno
		}
		wait := 100 * time.Millisecond
		if !by.IsZero() {
			if wait = min(wait, time.Until(by)); wait <= 0 {
				return 0, os.ErrDeadlineExceeded
			}
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		_, _ = unix.Poll(fds, int(wait/time.Millisecond)+1)
	}
}

// Write writes b with rawsock.IO: send(2) inside the poller's write wait
// (see package rawsock for why), under the write deadline. Writes are
// serialised, as net.Conn's are.
func (c *sockConn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.w.Ready() {
		raw, err := c.f.SyscallConn()
		if err != nil {
			return 0, err
		}
		c.w.Init(raw)
	}
	n, err := c.w.Write(b)
	if err == nil {
		return n, nil
	}
	return n, c.writeError(err)
}

// writeError words a failed Write's error as os.File's Write does (apart
// from Write, so that a write that went well allocates nothing for it).
func (c *sockConn) writeError(err error) error {
	var e syscall.Errno
	if !errors.As(err, &e) && !errors.Is(err, os.ErrDeadlineExceeded) {
		err = os.ErrClosed // as os.File's Write words its closing
	}
	return &os.PathError{Op: "write", Path: c.f.Name(), Err: err}
}

func (c *sockConn) SetDeadline(t time.Time) error {
	err := c.SetReadDeadline(t)
	if werr := c.f.SetWriteDeadline(t); err == nil {
		err = werr
	}
	return err
}

func (c *sockConn) SetWriteDeadline(t time.Time) error { return c.f.SetWriteDeadline(t) }

// SetReadDeadline sets the read deadline as net.Conn's does; clearing it
// (the zero time) takes effect at the next Read, or at once for a Read in
// progress.
func (c *sockConn) SetReadDeadline(t time.Time) error {
	c.rd.mu.Lock()
	defer c.rd.mu.Unlock()
	if !t.IsZero() {
		return c.setRead(t)
	}
	c.rd.stale.Store(!c.rd.set.IsZero())
	if c.rd.stale.Load() && c.rd.reading.Load() > 0 { // (a Read that begins now sees stale)
		return c.setRead(time.Time{})
	}
	return nil
}

// SetReadDeadlineNear sets the read deadline to within slack after t: it
// keeps the one set when that one is (the deadline then passes up to
// slack late, never early), and else sets t+slack, which the calls for a
// t up to slack later keep.
func (c *sockConn) SetReadDeadlineNear(t time.Time, slack time.Duration) error {
	c.rd.mu.Lock()
	defer c.rd.mu.Unlock()
	if set := c.rd.set; !set.Before(t) && set.Sub(t) <= slack {
		c.rd.stale.Store(false)
		return nil
	}
	return c.setRead(t.Add(slack))
}

// setRead puts t on the poller; c.rd.mu is held.
func (c *sockConn) setRead(t time.Time) error {
	c.rd.stale.Store(false)
	c.rd.set = t
	return c.f.SetReadDeadline(t)
}

// clearStale clears a stale read deadline on the poller.
func (c *sockConn) clearStale() {
	c.rd.mu.Lock()
	defer c.rd.mu.Unlock()
	if c.rd.stale.Load() {
		c.rd.stale.Store(false)
		c.rd.set = time.Time{}
		_ = c.f.SetReadDeadline(time.Time{})
	}
}

// SyscallConn gives the socket's descriptor to raw reads and controls.
func (c *sockConn) SyscallConn() (syscall.RawConn, error) { return c.f.SyscallConn() }

// CloseWrite shuts the socket's sending side, as net.TCPConn's does.
func (c *sockConn) CloseWrite() error {
	raw, err := c.f.SyscallConn()
	if err != nil {
		return err
	}
	if cerr := raw.Control(func(fd uintptr) { err = syscall.Shutdown(int(fd), syscall.SHUT_WR) }); cerr != nil {
		return cerr
	}
	return os.NewSyscallError("shutdown", err)
}

// ReadFrom copies from r, with splice(2) when r is a TCP connection.
func (c *sockConn) ReadFrom(r io.Reader) (int64, error) { return c.f.ReadFrom(r) }

func (c *sockConn) LocalAddr() net.Addr  { c.once.Do(c.addrs); return c.local }
func (c *sockConn) RemoteAddr() net.Addr { c.once.Do(c.addrs); return c.peer }

// addrs reads the socket's addresses (nil where they cannot be read).
func (c *sockConn) addrs() {
	raw, err := c.f.SyscallConn()
	if err != nil {
		return
	}
	raw.Control(func(fd uintptr) {
		if sa, err := syscall.Getsockname(int(fd)); err == nil {
			c.local = sockAddr(sa)
		}
		if sa, err := syscall.Getpeername(int(fd)); err == nil {
			c.peer = sockAddr(sa)
		}
	})
}

// sockAddr is sa as a net.Addr.
func sockAddr(sa syscall.Sockaddr) net.Addr {
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(sa.Addr[:]).To16(), Port: sa.Port}
	case *syscall.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(sa.Addr[:]), Port: sa.Port}
	case *syscall.SockaddrUnix:
		return &net.UnixAddr{Name: sa.Name, Net: "unix"}
	}
	return nil
}
