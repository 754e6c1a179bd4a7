package idlewait

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

func tcpPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if a, err = net.Dial("tcp", ln.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if b, err = ln.Accept(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// Read waits for bytes that come later, returns them in a pool buffer
// (given back by Put; sync.Pool itself drops items at random under -race,
// so the pool's content is not checked), ends at the read deadline, and reports EOF as no
// bytes and no error.
func TestReadWaitsWithoutHoldingABuffer(t *testing.T) {
	a, b := tcpPair(t)
	var pool Pool
	var w Waiter
	w.Init(b, &pool)
	go func() {
		time.Sleep(50 * time.Millisecond)
		a.Write([]byte("GET / HTTP/1.1\r\n"))
	}()
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := w.Read()
	if err != nil || string(got) != "GET / HTTP/1.1\r\n" {
		t.Fatalf("read %q, %v", got, err)
	}
	if cap(got) != Size || w.buf == nil {
		t.Fatalf("bytes not in a pool buffer of %d: cap %d", Size, cap(got))
	}
	w.Put()
	if w.buf != nil {
		t.Fatal("Put kept the buffer")
	}

	b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if got, err := w.Read(); !errors.Is(err, os.ErrDeadlineExceeded) || got != nil {
		t.Fatalf("idle past the deadline: %q, %v", got, err)
	}

	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	a.Close()
	if got, err := w.Read(); err != nil || got != nil {
		t.Fatalf("EOF: %q, %v", got, err)
	}
}

// A connection that is not a socket returns at once: the caller's own
// read blocks.
func TestReadNotASocket(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	var w Waiter
	w.Init(b, new(Pool))
	if got, err := w.Read(); got != nil || err != nil {
		t.Fatalf("%q, %v", got, err)
	}
}

// A wait that finds nothing to read counts the connection as waiting until
// the bytes come; one that finds them at once is not counted.
func TestReadCountsWaitingConnections(t *testing.T) {
	a, b := tcpPair(t)
	var pool Pool
	var w Waiter
	w.Init(b, &pool)
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	done := make(chan error, 1)
	go func() { // ends when Read does: bytes come below, or the deadline passes
		got, err := w.Read()
		if err == nil && string(got) != "x" {
			err = errors.New("read " + string(got))
		}
		w.Put()
		done <- err
	}()
	for deadline := time.Now().Add(5 * time.Second); pool.Idle.Waiting() != 1; {
		if time.Now().After(deadline) {
			t.Fatalf("waiting %d while Read waits, want 1", pool.Idle.Waiting())
		}
		time.Sleep(time.Millisecond)
	}
	a.Write([]byte("x"))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := pool.Idle.Waiting(); n != 0 {
		t.Fatalf("waiting %d after Read returned, want 0", n)
	}
	a.Write([]byte("y"))
	time.Sleep(20 * time.Millisecond) // let the byte arrive: Read then finds it at once
	if got, err := w.Read(); err != nil || string(got) != "y" {
		t.Fatalf("read %q, %v", got, err)
	}
	w.Put()
	if n := pool.Idle.Waiting(); n != 0 {
		t.Fatalf("waiting %d after a read that found bytes, want 0", n)
	}
}

// Hold keeps the usual hold until MaxHeld connections wait, then shortens
// it to FullHold (never lengthens it), and gives it back once they stop.
func TestHoldShortensBeyondMaxHeld(t *testing.T) {
	var pool Pool
	const hold = 500 * time.Millisecond
	for range MaxHeld - 1 {
		pool.Idle.Enter()
	}
	if got := pool.Hold(hold); got != hold {
		t.Fatalf("hold with %d waiting: %v, want %v", MaxHeld-1, got, hold)
	}
	pool.Idle.Enter()
	if got := pool.Hold(hold); got != FullHold {
		t.Fatalf("hold with %d waiting: %v, want %v", MaxHeld, got, FullHold)
	}
	if got := pool.Hold(FullHold / 2); got != FullHold/2 {
		t.Fatalf("a shorter hold with %d waiting: %v, want it kept", MaxHeld, got)
	}
	pool.Idle.Leave()
	if got := pool.Hold(hold); got != hold {
		t.Fatalf("hold after one stopped waiting: %v, want %v", got, hold)
	}
}

// heldConn is a TCP connection that records whether Serve holds its
// read wait (a Holder, as fdpass's sockets are).
type heldConn struct {
	*net.TCPConn
	on   bool
	seen bool // on was true while a callback ran
}

func (h *heldConn) SetHeld(on bool) { h.on = on }

func held(t *testing.T, c net.Conn) *heldConn {
	t.Helper()
	return &heldConn{TCPConn: c.(*net.TCPConn)}
}

// serveRecorder is a Serve callback that records what it was given and
// answers with the next of its answers (Stop when they run out); during
// its first call it runs during (a peer's write racing the callback).
type serveRecorder struct {
	got     []string
	errs    []error
	answers []Next
	during  func()
}

func (s *serveRecorder) fn(b []byte, err error) Next {
	s.got, s.errs = append(s.got, string(b)), append(s.errs, err)
	if len(s.got) == 1 && s.during != nil {
		s.during()
	}
	if len(s.answers) == 0 {
		return Stop
	}
	next := s.answers[0]
	s.answers = s.answers[1:]
	return next
}

// After bytes the callback consumed whole (Wait), Serve waits for the
// next ones without a read that finds nothing first, and still wakes for
// bytes that came while the callback ran (the poller's readiness is kept
// within the one wait): two reads for two requests, where Read's loop
// takes three.
func TestServeWaitsWithoutAnEmptyRead(t *testing.T) {
	a, b := tcpPair(t)
	var w Waiter
	h := held(t, b)
	w.Init(h, new(Pool))
	a.Write([]byte("one"))
	time.Sleep(20 * time.Millisecond) // the first read finds it
	s := &serveRecorder{answers: []Next{Wait, Stop}, during: func() {
		h.seen = h.on
		a.Write([]byte("two"))
		time.Sleep(20 * time.Millisecond) // arrives while the callback runs
	}}
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := w.Serve(s.fn); err != nil {
		t.Fatalf("Serve: %v after %q", err, s.got)
	}
	if len(s.got) != 2 || s.got[0] != "one" || s.got[1] != "two" {
		t.Fatalf("callback got %q, want one, two", s.got)
	}
	if w.reads != 2 {
		t.Fatalf("%d reads for two callbacks, want 2", w.reads)
	}
	if !h.seen || h.on {
		t.Fatalf("connection held during the callback: %v, after Serve: %v; want true, false", h.seen, h.on)
	}

	// A connection that is no Holder is not served: its reads would wait
	// for the held wait.
	w.Init(b, new(Pool))
	a.Write([]byte("three"))
	if err := w.Serve(s.fn); err != nil || len(s.got) != 2 || w.Serves() {
		t.Fatalf("Serve of a connection that is no Holder: %v, callbacks %q", err, s.got)
	}
}

// Bytes that filled the read buffer are not taken for all there was: Serve
// reads again before it waits, whatever the callback said.
func TestServeReadsOnAfterAFullBuffer(t *testing.T) {
	a, b := tcpPair(t)
	var w Waiter
	w.Init(held(t, b), new(Pool))
	a.Write(make([]byte, Size+10))
	time.Sleep(20 * time.Millisecond)
	s := &serveRecorder{answers: []Next{Wait, Stop}}
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := w.Serve(s.fn); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if len(s.got) != 2 || len(s.got[0]) != Size || len(s.got[1]) != 10 {
		t.Fatalf("callback got %d reads, want %d then 10 bytes", len(s.got), Size)
	}
}

// A wait that nothing ends returns the deadline's error; EOF and a reset
// reach the callback as no bytes (with the reset's error), and Serve
// returns.
func TestServeEnds(t *testing.T) {
	a, b := tcpPair(t)
	var w Waiter
	w.Init(held(t, b), new(Pool))
	a.Write([]byte("x"))
	s := &serveRecorder{answers: []Next{Wait}}
	b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if err := w.Serve(s.fn); !errors.Is(err, os.ErrDeadlineExceeded) || len(s.got) != 1 {
		t.Fatalf("idle past the deadline: %v after %q", err, s.got)
	}
	if w.waiting {
		t.Fatal("still counted as waiting after Serve returned")
	}

	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	a.Write([]byte("y"))
	s = &serveRecorder{answers: []Next{Wait, Wait}, during: func() { a.Close() }}
	if err := w.Serve(s.fn); err != nil || len(s.got) != 2 || s.got[0] != "y" || s.got[1] != "" || s.errs[1] != nil {
		t.Fatalf("EOF: %v after %q, %v", err, s.got, s.errs)
	}

	// A FIN that came with the bytes, before the wait began, is not seen
	// until a read looks (see Serve): the deadline ends the wait.
	c, d := tcpPair(t)
	w.Init(held(t, d), new(Pool))
	c.Write([]byte("z"))
	c.Close()
	time.Sleep(20 * time.Millisecond)
	d.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	s = &serveRecorder{answers: []Next{Wait}}
	if err := w.Serve(s.fn); !errors.Is(err, os.ErrDeadlineExceeded) || len(s.got) != 1 {
		t.Fatalf("FIN behind the bytes: %v after %q", err, s.got)
	}
	d.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got, err := w.Read(); err != nil || got != nil {
		t.Fatalf("the read after it: %q, %v, want EOF", got, err)
	}

	e, f := tcpPair(t)
	w.Init(held(t, f), new(Pool))
	e.(*net.TCPConn).SetLinger(0)
	e.Close() // a reset
	time.Sleep(20 * time.Millisecond)
	s = &serveRecorder{answers: []Next{Wait}}
	if err := w.Serve(s.fn); err != nil || len(s.got) != 1 || s.got[0] != "" || s.errs[0] == nil {
		t.Fatalf("reset: %v after %q, %v", err, s.got, s.errs)
	}
}

// readerNow is a TCP connection that can be read before it waits, as
// fdpass's sockets can: ReadNow calls the raw read on its descriptor once.
type readerNow struct {
	*net.TCPConn
	calls, done int
}

func (c *readerNow) ReadNow(fn func(fd uintptr) bool) (bool, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return true, err
	}
	c.calls++
	var ok bool
	if err := raw.Control(func(fd uintptr) { ok = fn(fd) }); err != nil {
		return true, err
	}
	if ok {
		c.done++
	}
	return ok, nil
}

// Read tries a ReaderNow first: bytes already there are read by it, and a
// read that finds nothing goes on to wait in the poller.
func TestReadNowFirst(t *testing.T) {
	a, b := tcpPair(t)
	c := &readerNow{TCPConn: b.(*net.TCPConn)}
	var pool Pool
	var w Waiter
	w.Init(c, &pool)
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	a.Write([]byte("GET")) // on loopback it is in b's queue when Write returns
	if got, err := w.Read(); err != nil || string(got) != "GET" || c.done != 1 {
		t.Fatalf("bytes there: %q, %v, read by ReadNow %d times", got, err, c.done)
	}
	w.Put()
	go func() { time.Sleep(50 * time.Millisecond); a.Write([]byte("POST")) }() // ends after its write
	if got, err := w.Read(); err != nil || string(got) != "POST" || c.calls != 2 || c.done != 1 {
		t.Fatalf("bytes later: %q, %v, ReadNow called %d times, done %d", got, err, c.calls, c.done)
	}
	w.Put()
}
