package main

import (
	"fmt"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"github.com/capuchin/capuchin/api/http1"
	"golang.org/x/sys/unix"
)

// loop serves every socket from one goroutine with its own epoll
// instance, edge-triggered, as nginx's worker does. It takes the events
// that are there without waiting (epoll_wait with no timeout, a raw system
// call), and when there are none it waits for its epoll instance in Go's
// poller, which watches it as it would a socket: a loop that blocked in
// epoll_wait would have the runtime hand its processor to another thread
// each time, and back. A socket is read when epoll says it has bytes,
// until a read that finds nothing or that takes less than its buffer
// (then the socket is drained, and the next bytes wake epoll again).
// Writes that the socket's buffer cannot take at once wait with poll(2),
// which stalls the loop: the benchmark's answers over loopback seldom do.
type loop struct {
	ep, lfd, wake int
	epf           *os.File        // ep in Go's poller
	epr           syscall.RawConn // epf's
	conns         map[int]*econn
	r             *router
	q             reqCheck // the loop's one request parser
	events        []unix.EpollEvent
}

// econn is a client or backend socket of the loop.
type econn struct {
	fd   int
	g    *pool  // a backend's group; nil for a client
	peer *econn // a client's backend while its request is out; a backend's client
	inbuf
	ready bool // the socket may hold bytes not read yet
	dead  bool // closed

	ans answerHead // a backend's answer in progress
}

// newLoop listens on addr ("host:port") for r's requests.
func newLoop(addr string, r *router) (*loop, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		return nil, fmt.Errorf("-listen %q: want an IPv4 address and port", addr)
	}
	l := &loop{ep: -1, lfd: -1, wake: -1, conns: map[int]*econn{}, r: r, events: make([]unix.EpollEvent, 256)}
	if err := l.open(ap); err != nil {
		l.close()
		return nil, err
	}
	return l, nil
}

// open makes the loop's epoll instance, its wake-up eventfd and its
// listening socket.
func (l *loop) open(ap netip.AddrPort) error {
	var err error
	if l.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return fmt.Errorf("epoll: %w", err)
	}
	if err = unix.SetNonblock(l.ep, true); err != nil { // (so that os.NewFile puts it in the poller)
		return fmt.Errorf("epoll: %w", err)
	}
	l.epf = os.NewFile(uintptr(l.ep), "epoll")
	l.epr, _ = l.epf.SyscallConn() // (it fails only for a nil File)
	if l.wake, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		return fmt.Errorf("eventfd: %w", err)
	}
	if l.lfd, err = listenFD(ap); err != nil {
		return err
	}
	if err = l.watch(l.lfd); err != nil {
		return err
	}
	return l.watch(l.wake)
}

// listenFD is a non-blocking listening socket on ap.
func listenFD(ap netip.AddrPort) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("listen %s: %w", ap, err)
	}
	if err := unix.Listen(fd, 1024); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("listen %s: %w", ap, err)
	}
	return fd, nil
}

// watch adds fd to the epoll set, edge-triggered.
func (l *loop) watch(fd int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd)}
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

// run serves until stop; then it closes every socket.
func (l *loop) run() error {
	defer l.close()
	var n int
	var errno syscall.Errno
	take := func(fd uintptr) bool {
		n, errno = epollTake(fd, l.events)
		return n > 0 || errno != 0 && errno != syscall.EINTR
	}
	for {
		if err := l.epr.Read(take); err != nil {
			return fmt.Errorf("epoll: %w", err)
		}
		if errno != 0 {
			return fmt.Errorf("epoll_wait: %w", errno)
		}
		for _, ev := range l.events[:n] {
			switch fd := int(ev.Fd); fd {
			case l.wake:
				return nil
			case l.lfd:
				l.accept()
			default:
				l.ready(fd)
			}
		}
	}
}

// close closes the loop's sockets and descriptors (those made so far).
func (l *loop) close() {
	for _, c := range l.conns {
		unix.Close(c.fd)
	}
	for _, fd := range []int{l.lfd, l.wake} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	switch {
	case l.epf != nil:
		l.epf.Close()
	case l.ep >= 0:
		unix.Close(l.ep)
	}
}

// epollTake takes the events epoll instance ep holds into evs, without
// waiting.
func epollTake(ep uintptr, evs []unix.EpollEvent) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, ep, uintptr(unsafe.Pointer(&evs[0])), uintptr(len(evs)), 0, 0, 0)
	return int(n), errno
}

// accept takes the connections waiting on the listener.
func (l *loop) accept() {
	for {
		fd, _, err := unix.Accept4(l.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			return
		}
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		if l.watch(fd) != nil {
			unix.Close(fd)
			continue
		}
		l.conns[fd] = &econn{fd: fd, inbuf: inbuf{buf: make([]byte, 4096)}}
	}
}

// ready handles epoll's word that fd has bytes (or was closed).
func (l *loop) ready(fd int) {
	c := l.conns[fd]
	if c == nil {
		return
	}
	c.ready = true
	switch {
	case c.g != nil && c.peer == nil:
		l.idle(c)
	case c.g != nil:
		l.answer(c)
	case c.peer == nil:
		l.request(c)
	}
}

// idle checks an idle backend connection that epoll reported: it was
// closed (or sent bytes unasked, and is out of step), or the report is
// one of bytes read already (epoll reports each arrival, and an answer
// may come in two).
func (l *loop) idle(b *econn) {
	if l.fill(b, 0) && b.n > 0 {
		l.drop(b)
	}
}

// drop closes c.
func (l *loop) drop(c *econn) {
	c.dead = true
	delete(l.conns, c.fd)
	unix.Close(c.fd)
}

// fill reads what c's socket holds into c.buf (growing it to want bytes);
// false when c was dropped.
func (l *loop) fill(c *econn, want int) bool {
	n, errno := c.read(uintptr(c.fd), want)
	switch {
	case errno == syscall.EAGAIN || errno == syscall.EINTR:
		c.ready = false
		return true
	case errno != 0 || n == 0:
		l.drop(c)
		return false
	}
	c.ready = c.full() // a read that filled the buffer may have left bytes
	return true
}

// request forwards c's next request once its head is in (as much of it as
// was read may already be in c.buf).
func (l *loop) request(c *econn) {
	for {
		_, end, err := http1.HeadEnd(c.buf[:c.n])
		switch {
		case err != nil, end < 0 && c.full(): // malformed, or larger than the buffer
			l.drop(c)
			return
		case end >= 0:
			l.forward(c, end)
			return
		case !c.ready:
			return
		}
		if !l.fill(c, 0) {
			return
		}
	}
}

// forward sends the request head c.buf[:end] to a backend connection.
func (l *loop) forward(c *econn, end int) {
	head := c.buf[:end]
	if l.q.noBody(head) != nil {
		l.drop(c)
		return
	}
	b, err := l.backend(l.r.pick(head))
	if err != nil {
		l.drop(c)
		return
	}
	if writeAll(b.fd, head) != nil {
		l.drop(b)
		l.drop(c)
		return
	}
	c.n = copy(c.buf, c.buf[end:c.n])
	b.peer, c.peer = c, b
}

// backend returns an idle connection of g, or a new one.
func (l *loop) backend(g *pool) (*econn, error) {
	for {
		v, addr := g.get()
		if v == nil {
			return l.dial(g, addr)
		}
		if b := v.(*econn); !b.dead {
			return b, nil
		}
	}
}

// dial connects to addr (a blocking connect: the loop waits for it).
func (l *loop) dial(g *pool, addr string) (*econn, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		return nil, fmt.Errorf("backend %q: want an IPv4 address and port", addr)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	if err = unix.Connect(fd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err == nil {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		err = l.watch(fd)
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("backend %s: %w", addr, err)
	}
	b := &econn{fd: fd, g: g, inbuf: inbuf{buf: make([]byte, 8192)}}
	l.conns[fd] = b
	return b, nil
}

// answer reads backend b's answer and sends it to its client once it is
// whole.
func (l *loop) answer(b *econn) {
	for b.ready {
		if b.ans.hl == 0 && b.full() { // a head larger than the buffer
			l.fail(b)
			return
		}
		if !l.fill(b, b.ans.size()) {
			l.fail(b)
			return
		}
		if !b.ans.parse(b.buf[:b.n]) {
			l.fail(b)
			return
		}
		if b.ans.whole(b.n) {
			l.reply(b)
			return
		}
	}
}

// fail drops backend b and its client.
func (l *loop) fail(b *econn) {
	if c := b.peer; c != nil && !c.dead {
		l.drop(c)
	}
	if !b.dead {
		l.drop(b)
	}
}

// reply sends b's whole answer to its client, makes b idle, and goes on
// with the client's next request.
func (l *loop) reply(b *econn) {
	c, size := b.peer, b.ans.size()
	if b.n > size { // bytes after the answer: the connection is out of step
		l.fail(b)
		return
	}
	b.peer, c.peer = nil, nil
	if !c.dead && writeAll(c.fd, b.buf[:size]) != nil {
		l.drop(c)
	}
	b.n = 0
	b.ans.reset()
	b.g.put(b)
	if !c.dead {
		l.request(c)
	}
}
