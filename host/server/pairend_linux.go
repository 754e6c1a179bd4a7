package server

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/capuchin/capuchin/internal/rawsock"
	"golang.org/x/sys/unix"
)

// socketpair makes the relay's pair of connected unix sockets.
func socketpair() ([]int, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	return fds[:], err
}

// pairEnd is the host's end of the pair. It is kept out of Go's poller,
// which watches every socket for writing as well as reading: a unix
// socket tells its watchers it is writable each time the peer reads from
// it, so each request the plugin read would wake the host for nothing
// (and, on a shared core, cut into the plugin's turn). Its waits go
// through epoll instances of its own, each in Go's poller: rd watches it
// for reading (the out-pump's wait), and wr, made when a write first
// finds the pair full, watches it for writing while such a write waits.
type pairEnd struct {
	fd    int
	rd    *os.File
	rdRaw syscall.RawConn

	mu    sync.Mutex // guards wr and dl: End sets the deadline while a write may make wr
	wr    *os.File
	wrRaw syscall.RawConn
	dl    time.Time // the deadline of both waits
}

// newPairEnd takes fd into a pairEnd (closing it on failure).
func newPairEnd(fd int) (*pairEnd, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("relay: host end: %w", err)
	}
	e := &pairEnd{fd: fd}
	var err error
	if e.rd, e.rdRaw, err = watch(fd, unix.EPOLLIN|unix.EPOLLRDHUP); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return e, nil
}

// watch makes an epoll instance, in Go's poller, that is readable while fd
// has one of events (0: watch nothing yet).
func watch(fd int, events uint32) (*os.File, syscall.RawConn, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, nil, fmt.Errorf("relay: epoll: %w", err)
	}
	if err := unix.SetNonblock(ep, true); err != nil {
		unix.Close(ep)
		return nil, nil, fmt.Errorf("relay: epoll: %w", err)
	}
	if events != 0 {
		ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			unix.Close(ep)
			return nil, nil, fmt.Errorf("relay: epoll: %w", err)
		}
	}
	f := os.NewFile(uintptr(ep), "relay-epoll")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("relay: epoll: %w", err)
	}
	return f, raw, nil
}

// write writes all of b, waiting while the pair is full; a deadline that
// passes ends the wait (os.ErrDeadlineExceeded).
func (e *pairEnd) write(b []byte) (int, error) {
	n, err := e.tryWrite(b)
	if err != unix.EAGAIN {
		return n, err
	}
	wr, err := e.writeWatch()
	if err != nil {
		return n, err
	}
	var wfd int
	wr.Control(func(fd uintptr) { wfd = int(fd) })
	ev := unix.EpollEvent{Events: unix.EPOLLOUT, Fd: int32(e.fd)}
	if err := unix.EpollCtl(wfd, unix.EPOLL_CTL_ADD, e.fd, &ev); err != nil {
		return n, fmt.Errorf("relay: epoll: %w", err)
	}
	defer unix.EpollCtl(wfd, unix.EPOLL_CTL_DEL, e.fd, nil)
	werr := wr.Read(func(uintptr) bool {
		var w int
		w, err = e.tryWrite(b[n:])
		n += w
		return err != unix.EAGAIN
	})
	if werr != nil {
		return n, werr
	}
	return n, err
}

// writeWatch returns the epoll instance for writes, made the first time
// one is needed.
func (e *pairEnd) writeWatch() (syscall.RawConn, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.wr == nil {
		wr, raw, err := watch(e.fd, 0)
		if err != nil {
			return nil, err
		}
		e.wr, e.wrRaw = wr, raw
		e.wr.SetReadDeadline(e.dl)
	}
	return e.wrRaw, nil
}

// tryWrite writes b until all is written, the pair is full (EAGAIN) or
// the write fails.
func (e *pairEnd) tryWrite(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		w, err := rawsock.Send(uintptr(e.fd), b[n:])
		if w > 0 {
			n += w
		}
		if err == unix.EINTR {
			continue
		}
		if err != 0 {
			return n, err
		}
	}
	return n, nil
}

// setDeadline sets when the end's waits give up.
func (e *pairEnd) setDeadline(t time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.dl = t
	e.rd.SetReadDeadline(t)
	if e.wr != nil {
		e.wr.SetReadDeadline(t)
	}
}

func (e *pairEnd) closeWrite() { unix.Shutdown(e.fd, unix.SHUT_WR) }

func (e *pairEnd) close() {
	e.rd.Close()
	if e.wr != nil {
		e.wr.Close()
	}
	unix.Close(e.fd)
}
