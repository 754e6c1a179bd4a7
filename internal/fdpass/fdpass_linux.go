package fdpass

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/capuchin/capuchin/internal/rawsock"
)

// Supported reports whether this platform can pass descriptors.
const Supported = true

// Sender is the host end of a socketpair. Safe for concurrent use: every
// message is one atomic datagram.
type Sender struct {
	c    *net.UnixConn
	rc   syscall.RawConn
	turn chan struct{} // held by the one sender waiting for room (see sendWait)
}

// Pair creates a socketpair. The host keeps the Sender; peer goes to the
// plugin (exec.Cmd.ExtraFiles) and should be closed by the host after the
// plugin started.
func Pair() (*Sender, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("fdpass: socketpair: %w", err)
	}
	hf := os.NewFile(uintptr(fds[0]), "fdpass-host")
	peer := os.NewFile(uintptr(fds[1]), "fdpass-plugin")
	c, err := net.FileConn(hf)
	hf.Close()
	if err != nil {
		peer.Close()
		return nil, nil, fmt.Errorf("fdpass: host end: %w", err)
	}
	uc := c.(*net.UnixConn)
	rc, err := uc.SyscallConn()
	if err != nil {
		uc.Close()
		peer.Close()
		return nil, nil, fmt.Errorf("fdpass: host end: %w", err)
	}
	return &Sender{c: uc, rc: rc, turn: make(chan struct{}, 1)}, peer, nil
}

// Send passes conn's descriptor tagged with id. A socket with room takes
// it at once; a full one (the plugin is behind, or has stopped reading) is
// waited for at most wait (0: no limit).
func (s *Sender) Send(id uint64, conn syscall.Conn, wait time.Duration) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("fdpass: conn %d: %w", id, err)
	}
	var msg [8]byte
	binary.LittleEndian.PutUint64(msg[:], id)
	var serr error
	cerr := rc.Control(func(fd uintptr) { serr = s.send(msg[:], int(fd), wait) })
	if cerr != nil {
		return fmt.Errorf("fdpass: conn %d: %w", id, cerr)
	}
	if serr != nil {
		return fmt.Errorf("fdpass: send conn %d: %w", id, serr)
	}
	return nil
}

// send writes msg with fd attached, waiting for room when the socket is
// full (sendWait).
func (s *Sender) send(msg []byte, fd int, wait time.Duration) error {
	var e syscall.Errno
	if err := s.rc.Control(func(sock uintptr) { e = sendRights(sock, msg, fd) }); err != nil {
		return err
	}
	if e != syscall.EAGAIN {
		return errnoErr(e)
	}
	var deadline time.Time
	if wait > 0 {
		deadline = time.Now().Add(wait)
	}
	return s.sendWait(msg, fd, deadline)
}

// sendWait waits in the poller for room in the full socket, until
// deadline (zero: no limit). The deadline is the socket's, one for every
// sender, so senders wait for room one at a time: each waits for its turn
// at most until its own deadline, then under it. (When every waiter set
// the socket's deadline, each new one moved it for all: a plugin that
// stopped reading held every hand-over until new ones stopped coming.)
func (s *Sender) sendWait(msg []byte, fd int, deadline time.Time) error {
	if !s.takeTurn(deadline) {
		return os.ErrDeadlineExceeded
	}
	defer func() { <-s.turn }()
	if err := s.c.SetWriteDeadline(deadline); err != nil {
		return err
	}
	var serr error
	werr := s.rc.Write(func(sock uintptr) bool {
		e := sendRights(sock, msg, fd)
		serr = errnoErr(e)
		return e != syscall.EAGAIN
	})
	return cmp.Or(werr, serr)
}

// takeTurn waits until deadline (zero: no limit) for the turn to wait for
// room, and reports whether it got it.
func (s *Sender) takeTurn(deadline time.Time) bool {
	select {
	case s.turn <- struct{}{}:
		return true
	default:
	}
	var expired <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		expired = t.C
	}
	select {
	case s.turn <- struct{}{}:
		return true
	case <-expired:
		return false
	}
}

// sendRights makes one sendmsg of msg with fd attached (retried on EINTR).
func sendRights(sock uintptr, msg []byte, fd int) syscall.Errno {
	for {
		if e := rawsock.SendRights(sock, msg, fd); e != syscall.EINTR {
			return e
		}
	}
}

// errnoErr is e as an error: nil for 0.
func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// Close closes the host end; the plugin's Receiver then stops.
func (s *Sender) Close() error { return s.c.Close() }

// Receiver is the plugin end. Run it in one goroutine; Wait and Drop are
// safe for concurrent use.
type Receiver struct {
	c      *net.UnixConn
	rc     syscall.RawConn
	mu     sync.Mutex
	slots  map[uint64]*slot
	closed bool
}

type slot struct {
	ready chan struct{}
	conn  net.Conn
	err   error
}

// NewReceiver wraps the plugin's end of the pair (the file is taken over).
func NewReceiver(f *os.File) (*Receiver, error) {
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("fdpass: plugin end: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("fdpass: plugin end is a %T, not a unix socket", c)
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		uc.Close()
		return nil, fmt.Errorf("fdpass: plugin end: %w", err)
	}
	return &Receiver{c: uc, rc: rc, slots: map[uint64]*slot{}}, nil
}

// Run reads descriptors until the socket closes (the host went away or
// Close was called), then fails every waiter.
func (r *Receiver) Run() error {
	var buf [8]byte
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		n, oobn, err := r.recv(buf[:], oob)
		if err != nil || n == 0 {
			r.shut()
			return err
		}
		id := binary.LittleEndian.Uint64(buf[:])
		conn, cerr := connFromOOB(oob[:oobn])
		r.deliver(id, conn, cerr)
	}
}

// recv reads one message and its descriptors, waiting in the poller until
// one is there; n is 0 when the host's end closed.
func (r *Receiver) recv(b, oob []byte) (n, oobn int, err error) {
	var e syscall.Errno
	err = r.rc.Read(func(sock uintptr) bool {
		for {
			n, oobn, e = rawsock.RecvRights(sock, b, oob)
			switch e {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false
			}
			return true
		}
	})
	if err == nil && e != 0 {
		err = e
	}
	return n, oobn, err
}

func connFromOOB(oob []byte) (net.Conn, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("fdpass: control message: %w", err)
	}
	var fds []int
	for i := range msgs {
		f, err := unix.ParseUnixRights(&msgs[i])
		if err == nil {
			fds = append(fds, f...)
		}
	}
	if len(fds) == 0 {
		return nil, fmt.Errorf("fdpass: message without a descriptor")
	}
	for _, extra := range fds[1:] {
		unix.Close(extra)
	}
	return sockConnOf(fds[0], nil, nil), nil
}

func (r *Receiver) deliver(id uint64, conn net.Conn, err error) {
	r.mu.Lock()
	s := r.slots[id]
	if s == nil {
		s = &slot{ready: make(chan struct{})}
		r.slots[id] = s
	}
	if s.conn != nil { // a second descriptor for the same id: keep the first
		r.mu.Unlock()
		if conn != nil {
			conn.Close()
		}
		return
	}
	s.conn, s.err = conn, err
	r.mu.Unlock()
	close(s.ready)
}

// Wait returns the connection passed for id, waiting at most timeout.
// Each id is claimed once.
func (r *Receiver) Wait(id uint64, timeout time.Duration) (net.Conn, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	s := r.slots[id]
	if s == nil {
		s = &slot{ready: make(chan struct{})}
		r.slots[id] = s
	}
	r.mu.Unlock()
	select {
	case <-s.ready:
	default:
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-s.ready:
		case <-t.C:
			return nil, ErrTimeout
		}
	}
	r.mu.Lock()
	delete(r.slots, id)
	r.mu.Unlock()
	if s.conn == nil && s.err == nil {
		return nil, ErrClosed
	}
	return s.conn, s.err
}

// Drop forgets id, closing a descriptor nobody claimed.
func (r *Receiver) Drop(id uint64) {
	r.mu.Lock()
	s := r.slots[id]
	if s == nil {
		r.mu.Unlock()
		return
	}
	select {
	case <-s.ready:
		delete(r.slots, id)
	default: // a waiter may still come; the descriptor has not arrived
		s = nil
	}
	r.mu.Unlock()
	if s != nil && s.conn != nil {
		s.conn.Close()
	}
}

// Close stops Run.
func (r *Receiver) Close() error { return r.c.Close() }

func (r *Receiver) shut() {
	r.mu.Lock()
	r.closed = true
	slots := r.slots
	r.slots = map[uint64]*slot{}
	r.mu.Unlock()
	for _, s := range slots {
		select {
		case <-s.ready:
			if s.conn != nil {
				s.conn.Close()
			}
		default:
			close(s.ready)
		}
	}
}

// Shutdown shuts the socket of conn down both ways. Unlike Close it acts
// on the socket itself, whatever other descriptors refer to it: a copy
// passed to another process can no longer keep the connection open, and
// that copy's reads and writes fail.
func Shutdown(conn syscall.Conn) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) { rawsock.Shutdown(fd, unix.SHUT_RDWR) })
}
