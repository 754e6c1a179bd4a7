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

// sockConn is a received client socket as a net.Conn. It joins the
// runtime's poller only at the first call that may wait for the socket (a
// read, a write the socket's buffer cannot take at once, a raw read or
// write: see file); until then its writes are send(2) calls on the
// descriptor, which cannot block (the host passes only non-blocking
// sockets, and rawsock's calls say MSG_DONTWAIT besides). So a connection
// that is handed over, answered and closed (a client without keep-alive)
// never joins it, sparing two epoll_ctl calls (add, delete), the os.File
// and, since the socket is known to be non-blocking, the fcntl that would
// check it (1.2 % of a new connection's CPU on one core). Joining makes
// an os.File polled as net.FileConn's would be, with deadlines, for an
// fcntl and an epoll_ctl, where net.FileConn costs thirteen system calls
// (a duplicate, its close, getsockopt, getsockname, getpeername, fcntl,
// epoll_ctl and six setsockopt: TCP_NODELAY, which the host set already,
// keep-alive probes on and their three timings, and off again, see
// FileConn). Its addresses are read when first asked for. ReadFrom moves
// a TCP socket's bytes with splice(2), as net.TCPConn's does. Its read
// deadline is kept coarsely (see readDeadline). It must be closed: before
// it joins the poller no os.File closes its descriptor when it is
// collected.
type sockConn struct {
	fd     int                     // the descriptor (f's, once f is made)
	fp     atomic.Pointer[os.File] // f: nil until the socket joins the poller
	raw    syscall.RawConn         // f's, set before fp
	fmu    sync.Mutex              // guards making f, and the calls on fd before it
	closed bool                    // Close came before f was made; under fmu
	wby    time.Time               // the write deadline, kept until f is made; under fmu
	once   sync.Once
	local  net.Addr
	peer   net.Addr
	rd     readDeadline
	wmu    sync.Mutex
	w      rawsock.IO  // reads, and writes under wmu, through lazyRaw
	held   atomic.Bool // see SetHeld
}

// readDeadline is a sockConn's read deadline as set on the poller. Each
// change of it costs the poller three clock reads and a timer change, and
// a keep-alive connection's server sets one before each wait for the next
// request and clears it after: so a deadline cleared stays on the poller
// until a Read comes (stale), and SetReadDeadlineNear keeps the one set
// when it is a little after the one asked for. Raw reads (SyscallConn)
// do not clear a stale deadline: a caller that reads raw sets its own
// deadline first. Before the socket joins the poller, set is only kept
// here, and file puts it on the poller.
type readDeadline struct {
	mu      sync.Mutex
	set     time.Time    // on the poller (or for it); zero: none
	stale   atomic.Bool  // set is cleared: the next Read clears it on the poller
	reading atomic.Int32 // Reads in progress: a clear then takes effect at once
}

// Conn wraps the socket descriptor fd, which it then owns, as a received
// one is (see sockConn): the host takes a parked client socket back so,
// with no system call where FileConn costs thirteen. fd must be
// non-blocking, as every socket the host accepts or passes is.
func Conn(fd int) (net.Conn, error) { return sockConnOf(fd, nil, nil), nil }

// sockConnOf wraps fd, a non-blocking socket whose addresses are local
// and peer (nil: read when first asked for).
func sockConnOf(fd int, local, peer net.Addr) *sockConn {
	c := &sockConn{fd: fd, local: local, peer: peer}
	c.w.Init(lazyRaw{c})
	return c
}

// file returns the socket as an os.File in the runtime's poller, making
// it (which joins the poller) the first time, with the deadlines set so
// far. Callers hold neither c.rd.mu nor c.fmu.
func (c *sockConn) file() (*os.File, error) {
	if f := c.fp.Load(); f != nil {
		return f, nil
	}
	// rd.mu first: setRead holds it while it looks at fp, so a read
	// deadline set meanwhile is either put on f by setRead or seen here.
	c.rd.mu.Lock()
	defer c.rd.mu.Unlock()
	c.fmu.Lock()
	defer c.fmu.Unlock()
	if f := c.fp.Load(); f != nil {
		return f, nil
	}
	if c.closed {
		return nil, os.ErrClosed
	}
	f := os.NewFile(uintptr(c.fd), sockName)
	raw, _ := f.SyscallConn() // (it fails only for a nil File)
	switch {
	case c.rd.stale.Load(): // cleared since it was set: nothing to put on the poller
		c.rd.stale.Store(false)
		c.rd.set = time.Time{}
	case !c.rd.set.IsZero():
		f.SetReadDeadline(c.rd.set)
	}
	if !c.wby.IsZero() {
		f.SetWriteDeadline(c.wby)
	}
	c.raw = raw
	c.fp.Store(f)
	return f, nil
}

// sockName is the name of the socket's os.File, which its errors give.
const sockName = "client"

// Read reads with rawsock.IO, recv(2) inside the poller's read wait. Before
// the socket joins the poller, a first recv that finds bytes (a new
// connection's request has mostly come by the time it is accepted) or the
// peer's close needs no wait, so a connection answered once and closed
// never joins it.
func (c *sockConn) Read(b []byte) (int, error) {
	if c.held.Load() {
		return c.heldRead(b)
	}
	c.rd.reading.Add(1)
	defer c.rd.reading.Add(-1)
	if c.rd.stale.Load() {
		c.clearStale()
	}
	n, done, err := c.w.ReadNow(b, c.ReadNow)
	if !done {
		if _, err := c.file(); err != nil {
			return 0, &os.PathError{Op: "read", Path: sockName, Err: err}
		}
		n, err = c.w.Read(b)
	}
	if err != nil && err != io.EOF {
		err = &os.PathError{Op: "read", Path: sockName, Err: err}
	}
	return n, err
}

// ReadNow calls fn, a raw read, once on the descriptor while the socket
// has not joined the poller and no read deadline has passed (one that has
// fails a read, as the poller's would): done when fn returned true (or
// the socket is closed: os.ErrClosed). A new connection's request has
// mostly come by the time it is accepted, so its read then needs no wait
// and the socket no poller (idlewait.Waiter.Read tries it first). fn runs
// under the socket's lock: it must not use the socket otherwise.
func (c *sockConn) ReadNow(fn func(fd uintptr) bool) (done bool, err error) {
	if c.fp.Load() != nil || c.rd.passed() {
		return false, nil
	}
	return c.unpolled(fn)
}

// passed reports whether a read deadline is set and has passed (a stale
// one is none: the poller's is cleared when the socket joins it).
func (d *readDeadline) passed() bool {
	d.mu.Lock()
	set := d.set
	d.mu.Unlock()
	return !d.stale.Load() && !set.IsZero() && !time.Now().Before(set)
}

// Close closes the socket: its os.File, or its descriptor if it never
// joined the poller.
func (c *sockConn) Close() error {
	c.fmu.Lock()
	if f := c.fp.Load(); f != nil {
		c.fmu.Unlock()
		return f.Close()
	}
	defer c.fmu.Unlock()
	if c.closed {
		return &os.PathError{Op: "close", Path: sockName, Err: os.ErrClosed}
	}
	c.closed = true
	if errno := rawsock.Close(uintptr(c.fd)); errno != 0 {
		return &os.PathError{Op: "close", Path: sockName, Err: errno}
	}
	return nil
}

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
	// A held wait has made f already; its raw connection's Control holds
	// none of this socket's locks while the poll below waits.
	if _, err := c.file(); err != nil {
		return 0, &os.PathError{Op: "read", Path: sockName, Err: err}
	}
	raw := c.raw
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
		err = &os.PathError{Op: "read", Path: sockName, Err: err}
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

// Write writes b with rawsock.IO, send(2) inside the poller's write wait
// (see package rawsock for why), under the write deadline; before the
// socket joins the poller, a buffer that takes the bytes at once needs no
// wait (see lazyRaw.Write). Writes are serialised, as net.Conn's are.
func (c *sockConn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
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
	return &os.PathError{Op: "write", Path: sockName, Err: err}
}

func (c *sockConn) SetDeadline(t time.Time) error {
	err := c.SetReadDeadline(t)
	if werr := c.SetWriteDeadline(t); err == nil {
		err = werr
	}
	return err
}

// SetWriteDeadline sets the write deadline as net.Conn's does. Before the
// socket joins the poller it is kept for it; one that has passed already
// (a caller stopping the connection's writes) makes the socket join it, so
// that the writes that follow fail at once.
func (c *sockConn) SetWriteDeadline(t time.Time) error {
	c.fmu.Lock()
	if c.fp.Load() == nil && !c.closed && (t.IsZero() || t.After(time.Now())) {
		c.wby = t
		c.fmu.Unlock()
		return nil
	}
	c.fmu.Unlock()
	f, err := c.file()
	if err != nil {
		return &os.PathError{Op: "SetWriteDeadline", Path: sockName, Err: err}
	}
	return f.SetWriteDeadline(t)
}

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

// setRead puts t on the poller (or keeps it for it, see file); c.rd.mu
// is held.
func (c *sockConn) setRead(t time.Time) error {
	c.rd.stale.Store(false)
	c.rd.set = t
	if f := c.fp.Load(); f != nil {
		return f.SetReadDeadline(t)
	}
	return nil
}

// clearStale clears a stale read deadline on the poller.
func (c *sockConn) clearStale() {
	c.rd.mu.Lock()
	defer c.rd.mu.Unlock()
	if c.rd.stale.Load() {
		c.rd.stale.Store(false)
		c.rd.set = time.Time{}
		if f := c.fp.Load(); f != nil {
			_ = f.SetReadDeadline(time.Time{})
		}
	}
}

// SyscallConn gives the socket's descriptor to raw reads, writes and
// controls: a raw read makes the socket join the poller (it may wait), a
// raw write only once the socket's buffer refused bytes, a control never.
func (c *sockConn) SyscallConn() (syscall.RawConn, error) { return lazyRaw{c}, nil }

// lazyRaw is a sockConn's syscall.RawConn.
type lazyRaw struct{ c *sockConn }

func (r lazyRaw) Control(fn func(fd uintptr)) error {
	if done, err := r.c.unpolled(func(fd uintptr) bool { fn(fd); return true }); done {
		return err
	}
	return r.c.raw.Control(fn)
}

func (r lazyRaw) Read(fn func(fd uintptr) bool) error {
	if _, err := r.c.file(); err != nil {
		return err
	}
	return r.c.raw.Read(fn)
}

// Write calls fn on the descriptor once before the socket joins the
// poller: a send(2) cannot block, so only a buffer that refused bytes
// (fn returns false) makes it join, and the poller's write wait goes on.
func (r lazyRaw) Write(fn func(fd uintptr) bool) error {
	c := r.c
	if c.fp.Load() == nil {
		if done, err := c.unpolled(fn); done {
			return err
		}
		if _, err := c.file(); err != nil {
			return err
		}
	}
	return c.raw.Write(fn)
}

// unpolled calls fn on the descriptor, under fmu, while the socket is not
// in the poller: not done when it is (the caller goes through c.raw), or
// when fn returns false; os.ErrClosed once Close came first.
func (c *sockConn) unpolled(fn func(fd uintptr) bool) (done bool, err error) {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	switch {
	case c.fp.Load() != nil:
		return false, nil
	case c.closed:
		return true, os.ErrClosed
	}
	return fn(uintptr(c.fd)), nil
}

// CloseWrite shuts the socket's sending side, as net.TCPConn's does.
func (c *sockConn) CloseWrite() error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var errno syscall.Errno
	if cerr := raw.Control(func(fd uintptr) { errno = rawsock.Shutdown(fd, syscall.SHUT_WR) }); cerr != nil {
		return cerr
	}
	if errno != 0 {
		return os.NewSyscallError("shutdown", errno)
	}
	return nil
}

// ReadFrom copies from r: from a file (also through an io.LimitedReader)
// with sendfile(2), as net.TCPConn's does, and from a TCP connection with
// splice(2).
func (c *sockConn) ReadFrom(r io.Reader) (int64, error) {
	if src, lr := fileSource(r); src != nil {
		if n, done, err := c.sendFile(src, lr); done {
			return n, err
		}
	}
	f, err := c.file()
	if err != nil {
		return 0, &os.PathError{Op: "readfrom", Path: sockName, Err: err}
	}
	return f.ReadFrom(r)
}

// fileSource returns the file r reads, and the io.LimitedReader around it
// if any; nil when r is not a file.
func fileSource(r io.Reader) (*os.File, *io.LimitedReader) {
	lr, _ := r.(*io.LimitedReader)
	if lr != nil {
		r = lr.R
	}
	f, _ := r.(*os.File)
	return f, lr
}

// sendFile writes src from its offset on, up to lr.N bytes when lr is set
// (which it then lowers), with sendfile(2) inside the socket's write wait
// and under its write deadline; it stops at the file's end. Not done: the
// file cannot be sent so (not a regular file) and nothing was written.
func (c *sockConn) sendFile(src *os.File, lr *io.LimitedReader) (n int64, done bool, err error) {
	fs := fileSend{left: 1<<63 - 1}
	if lr != nil {
		fs.left = lr.N
	}
	raw, err := src.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	var werr error
	c.wmu.Lock()
	defer c.wmu.Unlock()
	cerr := raw.Control(func(sfd uintptr) {
		fs.src = sfd
		werr = lazyRaw{c}.Write(fs.step)
	})
	if fs.n == 0 && (fs.err == syscall.EINVAL || fs.err == syscall.ENOSYS) {
		return 0, false, nil
	}
	if lr != nil {
		lr.N -= fs.n
	}
	if err := errors.Join(cerr, werr, fs.err); err != nil {
		return fs.n, true, c.writeError(err)
	}
	return fs.n, true, nil
}

// fileSend is one sendFile's copy: from the descriptor src, left bytes
// more at most, n so far, and sendfile's error.
type fileSend struct {
	src     uintptr
	left, n int64
	err     error
}

// step is the socket's raw write callback: it sends until done (true),
// or until the socket's buffer is full (false: wait).
func (fs *fileSend) step(fd uintptr) bool {
	for fs.left > 0 {
		m, err := unix.Sendfile(int(fd), int(fs.src), nil, int(min(fs.left, 1<<30)))
		switch {
		case err == syscall.EAGAIN:
			return false
		case err == syscall.EINTR:
			continue
		case err != nil:
			fs.err = err
			return true
		case m == 0:
			return true // the file's end
		}
		fs.n, fs.left = fs.n+int64(m), fs.left-int64(m)
	}
	return true
}

func (c *sockConn) LocalAddr() net.Addr  { c.once.Do(c.addrs); return c.local }
func (c *sockConn) RemoteAddr() net.Addr { c.once.Do(c.addrs); return c.peer }

// addrs reads the socket's addresses (nil where they cannot be read)
// that it was not given.
func (c *sockConn) addrs() {
	if c.local != nil && c.peer != nil { // from the listener and accept
		return
	}
	lazyRaw{c}.Control(func(fd uintptr) {
		if c.local == nil {
			c.local = rawsock.LocalAddr(fd)
		}
		if c.peer == nil {
			c.peer = rawsock.PeerAddr(fd)
		}
	})
}
