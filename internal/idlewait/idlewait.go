// Package idlewait reads the first bytes of an idle socket's next request
// without holding a read buffer while it waits, so that a keep-alive
// connection between requests costs no buffer memory: the caller gives its
// buffers back to a pool, calls Read, and takes them again with the bytes
// Read returns.
//
// Read costs the system calls a blocking read would: a read that finds
// nothing (EAGAIN), the poller's wait, the read that gets the bytes. Its
// buffer is taken from the pool only for a read, and given back when the
// read finds nothing.
//
// The pool also counts the connections waiting (a memback.Idle): after a
// burst of connections has gone idle, it gives back the stacks that their
// goroutines grew while they served; and it bounds how long a connection
// may wait on its goroutine once many do (see Hold).
package idlewait

import (
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/capuchin/capuchin/internal/memback"
	"github.com/capuchin/capuchin/internal/rawsock"
)

// MaxHeld is how many connections after their first request a process
// lets wait on their goroutines for the whole of its usual hold; FullHold
// is the hold of the ones that go idle beyond it. A connection that waits
// on a goroutine leaves what the Go runtime never frees (the goroutine's
// record, its socket's poll descriptor: about 700 bytes) at the peak of
// such waits, so a burst of clients that each send one request and go
// idle (10,000 of them) would leave it 10,000 times. A connection that
// served more than one request is a client that comes back: it keeps the
// usual hold whatever the count (bounding those too cost 2,048 clients
// waiting 300 ms between requests three times the CPU per request, each
// request of the clients beyond the first 1,024 paying a new hand-over),
// and the SDK holds its lease longer while fewer than MaxHeld wait
// (api/lease.go, longHold).
// The bound is soft: a connection is counted once its wait begins, so a
// burst that goes idle at once overshoots it a little. The host counts
// its stage-30 calls that lease a connection as waits too: they hold a
// goroutine each.
const (
	MaxHeld  = 1024
	FullHold = 50 * time.Millisecond
)

// Size is the size of the buffers Read takes from its pool.
const Size = 4096

// Pool holds the buffers of the waits of one process (or server) and
// counts the waits in progress; the zero value is ready.
type Pool struct {
	bufs sync.Pool // *[]byte of Size
	Idle memback.Idle
}

// Get returns a buffer of Size from the pool (a new one when it is empty).
func (p *Pool) Get() *[]byte {
	if b, _ := p.bufs.Get().(*[]byte); b != nil {
		return b
	}
	b := make([]byte, Size)
	return &b
}

// Put gives a buffer of Get back.
func (p *Pool) Put(b *[]byte) { p.bufs.Put(b) }

// Hold returns how long a connection going idle after its first request
// may wait on its goroutine before it is parked (or given back): hold, or
// at most FullHold while MaxHeld connections are waiting already.
func (p *Pool) Hold(hold time.Duration) time.Duration {
	if p.Idle.Waiting() >= MaxHeld {
		return min(hold, FullHold)
	}
	return hold
}

// Waiter reads from one connection; its closure is built once, so a wait
// allocates nothing. The zero value (or one for a connection that is not a
// socket) returns no bytes and no error from Read at once, and the
// caller's own read then blocks as usual.
type Waiter struct {
	raw  syscall.RawConn
	fn   func(fd uintptr) bool
	sfn  func(fd uintptr) bool // step, for Serve
	held Holder                // the connection, if Serve can hold it
	now  ReaderNow             // the connection, if it can be read before it joins the poller
	pool *Pool

	buf     *[]byte
	n       int
	err     error
	waiting bool // counted in pool.Idle: a read found nothing

	serve func(b []byte, err error) Next // Serve's callback
	skip  bool                           // Serve: wait before the next read
	reads int                            // system calls that read (for the tests)
}

// Holder is a connection whose Read works while Serve holds its read wait
// (fdpass's received sockets): Serve tells it when it does.
type Holder interface {
	SetHeld(on bool)
}

// ReaderNow is a connection that can be read before it joins the poller
// (fdpass's sockets): ReadNow calls a raw read once, and reports whether
// it was done, so that a socket whose bytes are there never joins it.
type ReaderNow interface {
	ReadNow(fn func(fd uintptr) bool) (done bool, err error)
}

// Init prepares w for c, with buffers from pool.
func (w *Waiter) Init(c net.Conn, pool *Pool) {
	w.raw, w.fn, w.sfn, w.pool = nil, nil, nil, pool
	w.held, _ = c.(Holder)
	w.now, _ = c.(ReaderNow)
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	w.raw = raw
	w.fn, w.sfn = w.read, w.step
}

// read is the raw read: true when it got bytes, EOF or an error. A read
// that finds nothing counts the connection as waiting.
func (w *Waiter) read(fd uintptr) bool {
	b, n, err := w.recv(fd)
	if b == nil {
		return false
	}
	w.buf, w.n = b, n
	if err != nil {
		w.err = err
	}
	return true
}

// recv reads fd into a buffer from the pool: nil when it found nothing
// (the connection then counts as waiting), else the bytes (none at EOF)
// or the error.
func (w *Waiter) recv(fd uintptr) (*[]byte, int, error) {
	b := w.pool.Get()
	n, errno := rawsock.Recv(fd, *b, 0)
	w.reads++
	switch errno {
	case syscall.EAGAIN, syscall.EINTR:
		w.pool.Put(b)
		w.enter()
		return nil, 0, nil
	case 0:
		return b, n, nil
	}
	return b, 0, errno
}

// Read waits until the connection has bytes, EOF or an error, and returns
// the bytes read in a buffer from the pool (to be given back with Put once
// consumed). EOF is io.EOF-free: no bytes and a nil error from a socket
// mean EOF, and so does the caller's next read. A read deadline that
// passes ends the wait with os.ErrDeadlineExceeded, as a read would.
func (w *Waiter) Read() ([]byte, error) {
	if w.raw == nil {
		return nil, nil
	}
	w.buf, w.n, w.err = nil, 0, nil
	var done bool
	var err error
	if w.now != nil {
		done, err = w.now.ReadNow(w.fn)
	}
	if !done {
		err = w.raw.Read(w.fn)
	}
	w.leave()
	if err != nil {
		return nil, err
	}
	if w.err != nil || w.n <= 0 {
		w.Put()
		return nil, w.err
	}
	return (*w.buf)[:w.n], nil
}

// Put gives the last buffer Read returned back to the pool.
func (w *Waiter) Put() {
	if w.buf != nil {
		w.pool.Put(w.buf)
		w.buf = nil
	}
}

// enter counts the connection as waiting, once.
func (w *Waiter) enter() {
	if !w.waiting {
		w.waiting = true
		w.pool.Idle.Enter()
	}
}

// leave ends the count of enter.
func (w *Waiter) leave() {
	if w.waiting {
		w.waiting = false
		w.pool.Idle.Leave()
	}
}

// Next is what a Serve callback asks for after the bytes it was given.
type Next uint8

const (
	Stop Next = iota // Serve returns
	Wait             // the bytes were consumed: wait for more
)

// Serve waits for bytes as Read does and gives each read's bytes to fn,
// all inside one wait of the runtime poller (syscall.RawConn's Read), so
// that a wait after bytes fn consumed whole begins without a read that
// finds nothing, as nginx's does: the read that got them took all there
// was (it got less than its buffer), and the poller's readiness is not
// reset between (a new wait would reset it, and a read must then look
// first), so bytes that come later wake the wait. What such a read does
// not tell is a FIN behind its bytes (nginx learns it from epoll's
// EPOLLRDHUP, which Go's poller keeps to itself): a peer that half-closes
// right after bytes it sent before the wait woke is seen at the next read
// only, and the wait after Wait lasts until more bytes or its deadline.
//
// fn gets a read's bytes in a pool buffer that it must not keep, or none
// at EOF (then err is nil) or with the read's error; after either, Serve
// returns. fn runs while the wait holds the connection's read lock, so
// Serve tells the connection (Holder) and its Reads meanwhile go to its
// descriptor, not to that lock, which they would wait for forever. Such a
// read loses no wake-up: bytes that came after Serve's last read, and
// that it left, woke the poller, which the next wait sees.
// Serve returns nil when fn says Stop, or the wait's error: the read
// deadline passed. Only a connection that is a socket and a Holder can be
// served (Serves); for another, Serve returns nil at once.
func (w *Waiter) Serve(fn func(b []byte, err error) Next) error {
	if !w.Serves() {
		return nil
	}
	w.serve, w.skip = fn, false
	w.held.SetHeld(true)
	err := w.raw.Read(w.sfn)
	w.held.SetHeld(false)
	w.serve = nil
	w.leave()
	return err
}

// Serves reports whether Serve can serve the connection.
func (w *Waiter) Serves() bool { return w.raw != nil && w.held != nil }

// step is Serve's raw read: it reads and calls serve until serve says
// Stop (true) or a wait is due (false). A wait is due when a read finds
// nothing, or after bytes serve consumed whole from a read that got less
// than its buffer: the poller then wakes the wait for the next bytes.
func (w *Waiter) step(fd uintptr) bool {
	for {
		if w.skip {
			w.skip = false
			w.enter()
			return false
		}
		b, n, err := w.recv(fd)
		if b == nil {
			return false
		}
		w.leave()
		next := w.serve((*b)[:n], err)
		w.pool.Put(b)
		if next == Stop || n == 0 {
			return true
		}
		w.skip = n < len(*b) // else more may be there: read on
	}
}
