package idlepark

import (
	"container/heap"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Set is one epoll set of parked sockets and the goroutine that waits on
// it; the zero value is ready (the set is made at the first Park).
type Set struct {
	once     sync.Once
	epfd     int // -1: epoll is not available; nothing is parked
	wake     int // eventfd that ends the current wait (a nearer deadline, or Stop)
	base     time.Time
	done     chan struct{}
	mu       sync.Mutex
	slots    []*Slot // by descriptor
	due      dueHeap // by deadline
	stopping bool    // the wait loop ends
}

// Slot is a parked socket's place in a Set: embed one in what owns the
// socket. Its zero value is not parked; Wake must be set before Park.
type Slot struct {
	// Wake takes the owner on, on a new goroutine, once the Set took the
	// socket out: expired says its deadline passed (or the Set stopped),
	// else it is readable (bytes, an EOF or an error).
	Wake func(expired bool)
	fd   int           // the parked socket + 1; 0: not parked
	due  time.Duration // the deadline, from the Set's base
	at   int           // the place in the heap
}

// Socket returns the socket parked in s, or -1 when s is not parked.
func (p *Set) Socket(s *Slot) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return s.fd - 1
}

// Start makes the epoll set and its wait loop, once; false: epoll is not
// available (or the Set stopped before it started).
func (p *Set) Start() bool {
	p.once.Do(func() {
		p.epfd, p.done = -1, make(chan struct{})
		ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			close(p.done)
			return
		}
		ev, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
		if err == nil {
			err = unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, ev, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(ev)})
		}
		if err != nil {
			unix.Close(ep)
			close(p.done)
			return
		}
		p.epfd, p.wake, p.base = ep, ev, time.Now()
		go p.loop() // ends at Stop
	})
	return p.epfd >= 0
}

// Park registers s, whose socket is fd, until fd is readable or wait has
// passed; then s.Wake runs. False: s was not parked (no epoll, the Set
// stopped, or fd cannot be watched); its owner keeps it.
func (p *Set) Park(s *Slot, fd int, wait time.Duration) bool {
	if !p.Start() {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopping {
		return false
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(fd)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return false
	}
	for len(p.slots) <= fd {
		p.slots = append(p.slots, nil)
	}
	p.slots[fd] = s
	s.fd, s.due = fd+1, time.Since(p.base)+wait
	heap.Push(&p.due, s)
	if s.at == 0 { // the nearest deadline: the wait must end sooner
		p.signal()
	}
	return true
}

// Take takes s out of the Set if it is parked, and reports whether it
// was: its owner then has it back, and Wake will not run for this park.
func (p *Set) Take(s *Slot) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.take(s)
}

// take is Take with p.mu held.
func (p *Set) take(s *Slot) bool {
	if s.fd == 0 {
		return false
	}
	fd := s.fd - 1
	s.fd = 0
	p.slots[fd] = nil
	heap.Remove(&p.due, s.at)
	_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	return true
}

// Len returns how many sockets are parked.
func (p *Set) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.due)
}

// signal ends the loop's current wait; p.mu is held.
func (p *Set) signal() {
	var one = [8]byte{1}
	_, _ = unix.Write(p.wake, one[:])
}

// loop waits for parked sockets to become readable and for their
// deadlines, until Stop.
func (p *Set) loop() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(p.epfd, events, p.timeout())
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return
		}
		for _, ev := range events[:n] {
			if int(ev.Fd) == p.wake {
				if p.drain() {
					return
				}
				continue
			}
			p.release(int(ev.Fd))
		}
		p.expire()
	}
}

// release wakes the slot parked on fd, if it still is.
func (p *Set) release(fd int) {
	p.mu.Lock()
	s := p.slots[fd]
	taken := s != nil && p.take(s)
	p.mu.Unlock()
	if taken {
		go s.Wake(false) // owns what s belongs to from here
	}
}

// timeout is the epoll wait's, in milliseconds, until the nearest
// deadline (rounded up); -1: none.
func (p *Set) timeout() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.due) == 0 {
		return -1
	}
	left := p.due[0].due - time.Since(p.base)
	return int(max(0, (left+time.Millisecond-1)/time.Millisecond))
}

// expire wakes the slots whose deadline passed.
func (p *Set) expire() {
	for {
		p.mu.Lock()
		var s *Slot
		if len(p.due) > 0 && p.due[0].due <= time.Since(p.base) {
			s = p.due[0]
			p.take(s)
		}
		p.mu.Unlock()
		if s == nil {
			return
		}
		go s.Wake(true)
	}
}

// drain empties the eventfd and reports whether the loop must end.
func (p *Set) drain() bool {
	var b [8]byte
	_, _ = unix.Read(p.wake, b[:])
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopping
}

// Stop ends the wait loop and closes the epoll set: the slots still
// parked are woken as expired; none is parked after it.
func (p *Set) Stop() {
	p.once.Do(func() { p.epfd = -1 }) // never started: it never will be
	if p.epfd < 0 {
		return
	}
	p.mu.Lock()
	if p.stopping {
		p.mu.Unlock()
		<-p.done
		return
	}
	p.stopping = true
	p.signal()
	p.mu.Unlock()
	<-p.done
	p.mu.Lock()
	left := make([]*Slot, 0, len(p.due))
	for len(p.due) > 0 {
		s := p.due[0]
		p.take(s)
		left = append(left, s)
	}
	p.mu.Unlock()
	unix.Close(p.wake)
	unix.Close(p.epfd)
	for _, s := range left {
		go s.Wake(true)
	}
}

// dueHeap orders parked slots by deadline; each knows its index.
type dueHeap []*Slot

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].at, h[j].at = i, j
}
func (h *dueHeap) Push(x any) {
	s := x.(*Slot)
	s.at = len(*h)
	*h = append(*h, s)
}
func (h *dueHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	s.at = -1
	return s
}
