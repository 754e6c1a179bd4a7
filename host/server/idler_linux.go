package server

import (
	"container/heap"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// idler waits for the next request of many idle keep-alive connections
// with one epoll wait, so that a connection idle for longer than idleHold
// holds no goroutine (nor buffer, nor net.Conn: see conn.parkIdle): its
// goroutine parks it here and ends, and a new one takes it on when a byte,
// an EOF or its idle deadline comes, or when the server shuts down. The
// parked connection's bare socket is in the epoll set (one-shot) until it
// is taken out, before anyone closes it. The idle deadlines are kept in a
// heap and end the epoll wait: no timer per connection.
type idler struct {
	once     sync.Once
	epfd     int // -1: epoll is not available; connections wait on their goroutines
	wake     int // eventfd that ends the current wait (a nearer deadline, or stop)
	base     time.Time
	done     chan struct{}
	mu       sync.Mutex
	conns    []*conn // by descriptor
	due      dueHeap // by idle deadline
	stopping bool    // the wait loop ends
}

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
		d.epfd, d.wake, d.base = ep, ev, time.Now()
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
	for len(d.conns) <= fd {
		d.conns = append(d.conns, nil)
	}
	d.conns[fd] = c
	c.idleFD, c.idleDue = fd, time.Since(d.base)+wait
	heap.Push(&d.due, c)
	if c.idleAt == 0 { // the nearest deadline: the wait must end sooner
		d.signal()
	}
	return true
}

// signal ends the loop's current wait; d.mu is held.
func (d *idler) signal() {
	var one = [8]byte{1}
	_, _ = unix.Write(d.wake, one[:])
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
	d.conns[fd] = nil
	heap.Remove(&d.due, c.idleAt)
	_ = unix.EpollCtl(d.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	d.mu.Unlock()
	go c.resume(expired) // owns the connection from here to its end
	return true
}

// loop waits for parked sockets to become readable and for their idle
// deadlines, until stop.
func (d *idler) loop() {
	defer close(d.done)
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(d.epfd, events, d.timeout())
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return
		}
		for _, ev := range events[:n] {
			if int(ev.Fd) == d.wake {
				if d.drain() {
					return
				}
				continue
			}
			d.mu.Lock()
			c := d.conns[ev.Fd]
			d.mu.Unlock()
			if c != nil {
				d.release(c, false)
			}
		}
		d.expire()
	}
}

// timeout is the epoll wait's, in milliseconds, until the nearest idle
// deadline (rounded up); -1: none.
func (d *idler) timeout() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.due) == 0 {
		return -1
	}
	left := d.due[0].idleDue - time.Since(d.base)
	return int(max(0, (left+time.Millisecond-1)/time.Millisecond))
}

// expire hands the connections whose idle deadline passed to their new
// goroutines.
func (d *idler) expire() {
	for {
		d.mu.Lock()
		var c *conn
		if len(d.due) > 0 && d.due[0].idleDue <= time.Since(d.base) {
			c = d.due[0]
		}
		d.mu.Unlock()
		if c == nil {
			return
		}
		d.release(c, true)
	}
}

// drain empties the eventfd and reports whether the loop must end.
func (d *idler) drain() bool {
	var b [8]byte
	_, _ = unix.Read(d.wake, b[:])
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopping
}

// stop ends the wait loop (call it once no connection is parked) and
// closes the epoll set; no connection is parked after it.
func (d *idler) stop() {
	d.once.Do(func() { d.epfd = -1 }) // never started: it never will be
	if d.epfd < 0 {
		return
	}
	d.mu.Lock()
	d.stopping = true
	d.signal()
	d.mu.Unlock()
	<-d.done
	unix.Close(d.wake)
	unix.Close(d.epfd)
}

// dueHeap orders parked connections by idle deadline; each knows its
// index (conn.idleAt).
type dueHeap []*conn

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].idleDue < h[j].idleDue }
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idleAt, h[j].idleAt = i, j
}
func (h *dueHeap) Push(x any) {
	c := x.(*conn)
	c.idleAt = len(*h)
	*h = append(*h, c)
}
func (h *dueHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	c.idleAt = -1
	return c
}
