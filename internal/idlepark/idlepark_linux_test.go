package idlepark

import (
	"net"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// pair returns a connected TCP pair on 127.0.0.1 and the descriptor of
// its accepted end.
func pair(t *testing.T) (client net.Conn, server net.Conn, fd int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if client, err = net.Dial("tcp", ln.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if server, err = ln.Accept(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	rc, err := server.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(f uintptr) { fd = int(f) })
	return client, server, fd
}

// waker is an Owner that reports its wake-ups (Wake must not block: the
// channel has room).
type waker chan bool

func (w waker) Wake(expired bool) { w <- expired }

// woken makes s report its wake-ups.
func woken(s *Slot) chan bool {
	ch := make(waker, 4)
	s.Owner = ch
	return ch
}

func wait(t *testing.T, ch chan bool, what string) bool {
	t.Helper()
	select {
	case expired := <-ch:
		return expired
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no wake-up within 5 s", what)
		return false
	}
}

func quiet(t *testing.T, ch chan bool, what string) {
	t.Helper()
	select {
	case expired := <-ch:
		t.Fatalf("%s: woken (expired %v)", what, expired)
	case <-time.After(100 * time.Millisecond):
	}
}

// sock is a socket to park: the client's end, the descriptor of the
// server's end, its slot and the slot's wake-ups.
type sock struct {
	c  net.Conn
	fd int
	s  Slot
	ch chan bool
}

func newSock(t *testing.T) *sock {
	c, _, fd := pair(t)
	k := &sock{c: c, fd: fd}
	k.ch = woken(&k.s)
	return k
}

// A parked socket wakes its owner once, when bytes come, not expired;
// another whose deadline passes first wakes expired; neither is parked
// after, and the one-shot set wakes nothing more.
func TestParkWakesOnBytesAndDeadline(t *testing.T) {
	defer goleak.VerifyNone(t)
	var p Set
	defer p.Stop()
	a, b := newSock(t), newSock(t)
	if !p.Park(&a.s, a.fd, time.Minute) || !p.Park(&b.s, b.fd, 50*time.Millisecond) {
		t.Fatal("Park refused")
	}
	if p.Len() != 2 || p.Socket(&a.s) != a.fd || p.Socket(&b.s) != b.fd {
		t.Fatalf("Len %d, sockets %d %d; want 2, %d %d", p.Len(), p.Socket(&a.s), p.Socket(&b.s), a.fd, b.fd)
	}
	if !wait(t, b.ch, "deadline") {
		t.Fatal("the socket whose deadline passed woke as readable")
	}
	quiet(t, a.ch, "no bytes yet")
	a.c.Write([]byte("GET"))
	if wait(t, a.ch, "bytes") {
		t.Fatal("the socket that got bytes woke as expired")
	}
	if p.Len() != 0 || p.Socket(&a.s) != -1 || p.Socket(&b.s) != -1 {
		t.Fatalf("after the wake-ups: Len %d, sockets %d %d", p.Len(), p.Socket(&a.s), p.Socket(&b.s))
	}
	a.c.Write([]byte(" /"))
	quiet(t, a.ch, "bytes after the wake-up, not parked again")
}

// A peer that closes wakes its parked socket (EOF), and one taken back
// first never wakes.
func TestParkCloseAndTake(t *testing.T) {
	defer goleak.VerifyNone(t)
	var p Set
	defer p.Stop()
	a, b := newSock(t), newSock(t)
	p.Park(&a.s, a.fd, time.Minute)
	p.Park(&b.s, b.fd, time.Minute)
	if !p.Take(&b.s) || p.Take(&b.s) {
		t.Fatal("Take: want true once, then false")
	}
	a.c.Close()
	if wait(t, a.ch, "EOF") {
		t.Fatal("EOF woke as expired")
	}
	b.c.Write([]byte("x"))
	quiet(t, b.ch, "taken back")
	if p.Take(&a.s) {
		t.Fatal("Take of a slot already woken")
	}
	if !p.Park(&b.s, b.fd, time.Minute) || wait(t, b.ch, "parked again with bytes waiting") {
		t.Fatal("a socket parked with bytes waiting woke expired")
	}
}

// Stop wakes the slots still parked as expired, and parks nothing after.
func TestStopWakesParked(t *testing.T) {
	defer goleak.VerifyNone(t)
	var p Set
	k := newSock(t)
	if !p.Park(&k.s, k.fd, time.Hour) {
		t.Fatal("Park refused")
	}
	p.Stop()
	if !wait(t, k.ch, "Stop") {
		t.Fatal("Stop woke a slot as readable")
	}
	if p.Park(&k.s, k.fd, time.Hour) {
		t.Fatal("Park after Stop")
	}
	p.Stop() // twice: no effect
	var never Set
	never.Stop()
	if never.Park(&k.s, k.fd, time.Hour) {
		t.Fatal("Park on a Set stopped before it started")
	}
}
