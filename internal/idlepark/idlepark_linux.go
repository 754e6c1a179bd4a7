package idlepark

import (
	"container/heap"
	"errors"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Set is one epoll set of parked sockets and the goroutine that waits on
// it; the zero value is ready (the set is made at the first Park). The
// goroutine waits in Go's poller, which watches the epoll set as it would
// a socket, and the nearest deadline is the set's read deadline: a wait
// in epoll_wait itself would block a thread, and the runtime would hand
// its processor to another thread at each wait and back at each wake-up.
type Set struct {
	once     sync.Once
	epfd     int      // -1: epoll is not available; nothing is parked
	file     *os.File // epfd, in Go's poller
	raw      syscall.RawConn
	base     time.Time
	done     chan struct{}
	mu       sync.Mutex
	slots    []*Slot       // by descriptor
	due      dueHeap       // by deadline
	armed    time.Duration // the wait's deadline, from base; -1: none, -2: to be set again
	stopping bool          // the wait loop ends
}

// Slot is a parked socket's place in a Set: embed one in what owns the
// socket. Its zero value is not parked; Owner must be set before Park.
type Slot struct {
	Owner Owner
	due   time.Duration // the deadline, from the Set's base
	fd    int32         // the parked socket + 1; 0: not parked
	at    int32         // the place in the heap
}

// Owner is what a Slot belongs to (an interface, not a func: a method
// value would be an allocation per connection).
type Owner interface {
	// Wake hands the owner on once the Set took its socket out: expired
	// says its deadline passed (or the Set stopped), else it is readable
	// (bytes, an EOF or an error). It runs on the Set's goroutine and must
	// not block: it starts what takes the owner on (a goroutine).
	Wake(expired bool)
}

// Start makes the epoll set and its wait loop, once; false: epoll is not
// available (or the Set stopped before it started).
func (p *Set) Start() bool {
	p.once.Do(func() {
		p.epfd, p.done = -1, make(chan struct{})
		ep, f, raw, err := epollFile()
		if err != nil {
			close(p.done)
			return
		}
		p.file, p.raw, p.epfd, p.base, p.armed = f, raw, ep, time.Now(), -1
		go p.loop() // ends at Stop
	})
	return p.epfd >= 0
}

// epollFile makes an epoll set that Go's poller watches (it must be
// non-blocking for os.NewFile to put it there; and f.Fd would make it
// blocking again, so the descriptor is returned as made).
func epollFile() (int, *os.File, syscall.RawConn, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return -1, nil, nil, err
	}
	if err := unix.SetNonblock(ep, true); err != nil {
		unix.Close(ep)
		return -1, nil, nil, err
	}
	f := os.NewFile(uintptr(ep), "idlepark")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return -1, nil, nil, err
	}
	return ep, f, raw, nil
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
	s.fd, s.due = int32(fd+1), time.Since(p.base)+wait
	heap.Push(&p.due, s)
	if s.at == 0 { // the nearest deadline: the wait must end sooner
		p.arm()
	}
	return true
}

// arm sets the wait's deadline to the nearest slot's, unless it is set
// so already (a deadline is a timer change in the poller); p.mu is held.
func (p *Set) arm() {
	var at time.Time // none
	due := time.Duration(-1)
	switch {
	case p.stopping:
		at, due = p.base, 0 // past: the wait ends now
	case len(p.due) > 0:
		due = p.due[0].due
		at = p.base.Add(due)
	}
	if due == p.armed {
		return
	}
	p.armed = due
	_ = p.file.SetReadDeadline(at)
}

// Socket returns the socket parked in s, or -1 when s is not parked.
func (p *Set) Socket(s *Slot) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return int(s.fd - 1)
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
	fd := int(s.fd - 1)
	s.fd = 0
	p.slots[fd] = nil
	heap.Remove(&p.due, int(s.at))
	_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	return true
}

// Len returns how many sockets are parked.
func (p *Set) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.due)
}

// loop waits for parked sockets to become readable and for their
// deadlines, until Stop.
func (p *Set) loop() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 128)
	var n int
	var errno syscall.Errno
	take := func(fd uintptr) bool {
		if n, errno = epollTake(fd, events); errno == syscall.EINTR {
			n, errno = 0, 0 // try again when the poller says so
		}
		return n > 0 || errno != 0
	}
	for {
		n, errno = 0, 0
		err := p.raw.Read(take)
		if p.ending() || err != nil && !errors.Is(err, os.ErrDeadlineExceeded) || errno != 0 {
			return
		}
		if err != nil { // the deadline passed: expire sets the next one, even if the same
			p.mu.Lock()
			p.armed = -2
			p.mu.Unlock()
		}
		for _, ev := range events[:n] {
			p.release(int(ev.Fd))
		}
		p.expire()
	}
}

// epollTake takes the events epoll set ep holds into evs, without
// waiting.
func epollTake(ep uintptr, evs []unix.EpollEvent) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, ep, uintptr(unsafe.Pointer(&evs[0])), uintptr(len(evs)), 0, 0, 0)
	return int(n), errno
}

// ending reports whether Stop ends the loop.
func (p *Set) ending() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopping
}

// release wakes the slot parked on fd, if it still is.
func (p *Set) release(fd int) {
	p.mu.Lock()
	s := p.slots[fd]
	taken := s != nil && p.take(s)
	p.mu.Unlock()
	if taken {
		s.Owner.Wake(false)
	}
}

// expire wakes the slots whose deadline passed, and sets the wait's
// deadline to the next one.
func (p *Set) expire() {
	for {
		p.mu.Lock()
		var s *Slot
		if len(p.due) > 0 && p.due[0].due <= time.Since(p.base) {
			s = p.due[0]
			p.take(s)
		}
		if s == nil {
			p.arm()
		}
		p.mu.Unlock()
		if s == nil {
			return
		}
		s.Owner.Wake(true)
	}
}

// Stop ends the wait loop and closes the epoll set: the slots still
// parked are woken as expired (on the caller's goroutine); none is parked
// after it.
func (p *Set) Stop() {
	p.once.Do(func() { p.epfd = -1 }) // never started: it never will be
	if p.epfd < 0 {
		return
	}
	p.mu.Lock()
	first := !p.stopping
	p.stopping = true
	p.arm()
	p.mu.Unlock()
	<-p.done
	if !first {
		return
	}
	p.mu.Lock()
	left := make([]*Slot, 0, len(p.due))
	for len(p.due) > 0 {
		s := p.due[0]
		p.take(s)
		left = append(left, s)
	}
	p.mu.Unlock()
	p.file.Close()
	for _, s := range left {
		s.Owner.Wake(true)
	}
}

// dueHeap orders parked slots by deadline; each knows its index.
type dueHeap []*Slot

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].at, h[j].at = int32(i), int32(j)
}
func (h *dueHeap) Push(x any) {
	s := x.(*Slot)
	s.at = int32(len(*h))
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
