package server

import (
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// idler waits for the next request of many idle keep-alive connections
// with one epoll wait, so that a connection idle for longer than idleHold
// holds no goroutine (nor buffer): its goroutine parks it here and ends,
// and a new one takes it on when a byte, an EOF or its idle deadline
// comes, or when the server shuts down. The socket stays open and in Go's
// poller meanwhile; epoll watches it too (one-shot), and it is removed
// from the epoll set before anyone closes it.
type idler struct {
	once  sync.Once
	epfd  int // -1: epoll is not available; connections wait on their goroutines
	wake  int // eventfd that ends the wait loop
	done  chan struct{}
	mu    sync.Mutex
	conns map[int32]*conn // by descriptor
}

// idleHold is how long a connection waits for its next request on its own
// goroutine before it is parked: parking costs a few system calls, which
// a busy keep-alive connection should not pay per request.
const idleHold = time.Second

// start makes the epoll set and its wait loop, once.
func (d *idler) start() bool {
	d.once.Do(func() {
		d.epfd, d.done = -1, make(chan struct{})
		ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			close(d.done)
			return
		}
		ev, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
		if err == nil {
			err = unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, ev, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(ev)})
		}
		if err != nil {
			unix.Close(ep)
			close(d.done)
			return
		}
		d.epfd, d.wake, d.conns = ep, ev, map[int32]*conn{}
		go d.loop() // ends at stop
	})
	return d.epfd >= 0
}

// park registers c, whose socket is fd, until it is readable or until its
// idle deadline in wait; false: c was not parked (its goroutine waits on).
// The caller holds c.mu.
func (d *idler) park(c *conn, fd int, wait time.Duration) bool {
	if !d.start() {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(fd)}
	if err := unix.EpollCtl(d.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return false
	}
	d.conns[int32(fd)] = c
	c.idleFD = fd
	c.idleTimer = time.AfterFunc(wait, func() { d.release(c, true) })
	return true
}

// release takes c out of the set, if it is still parked, and hands it to a
// new goroutine; expired says its idle deadline passed.
func (d *idler) release(c *conn, expired bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d.unpark(c, expired)
}

// unpark is release with c.mu held; it reports whether c was parked.
func (d *idler) unpark(c *conn, expired bool) bool {
	d.mu.Lock()
	fd := c.idleFD
	if fd < 0 {
		d.mu.Unlock()
		return false
	}
	c.idleFD = -1
	delete(d.conns, int32(fd))
	_ = unix.EpollCtl(d.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	d.mu.Unlock()
	c.idleTimer.Stop()
	c.idleTimer = nil
	go c.resume(expired) // owns the connection from here to its end
	return true
}

// loop waits for parked sockets to become readable, until stop.
func (d *idler) loop() {
	defer close(d.done)
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(d.epfd, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return
		}
		for _, ev := range events[:n] {
			if int(ev.Fd) == d.wake {
				return
			}
			d.mu.Lock()
			c := d.conns[ev.Fd]
			d.mu.Unlock()
			if c != nil {
				d.release(c, false)
			}
		}
	}
}

// stop ends the wait loop (call it once no connection is parked) and
// closes the epoll set; no connection is parked after it.
func (d *idler) stop() {
	d.once.Do(func() { d.epfd = -1 }) // never started: it never will be
	if d.epfd < 0 {
		return
	}
	var one = [8]byte{1}
	_, _ = unix.Write(d.wake, one[:])
	<-d.done
	unix.Close(d.wake)
	unix.Close(d.epfd)
}
