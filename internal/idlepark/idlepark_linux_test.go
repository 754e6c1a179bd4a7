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

// A parked socket wakes its owner once, when bytes come, not expired;
// another whose deadline passes first wakes expired; neither is parked
// after, and the one-shot set wakes nothing more.
func TestParkWakesOnBytesAndDeadline(t *testing.T) {
	defer goleak.VerifyNone(t)
	var p Set
	defer p.Stop()
	c1, _, fd1 := pair(t)
	_, _, fd2 := pair(t)
	var s1, s2 Slot
	ch1, ch2 := woken(&s1), woken(&s2)
	if !p.Park(&s1, fd1, time.Minute) || !p.Park(&s2, fd2, 50*time.Millisecond) {
		t.Fatal("Park refused")
	}
	if p.Len() != 2 || p.Socket(&s1) != fd1 || p.Socket(&s2) != fd2 {
		t.Fatalf("Len %d, sockets %d %d; want 2, %d %d", p.Len(), p.Socket(&s1), p.Socket(&s2), fd1, fd2)
	}
	if !wait(t, ch2, "deadline") {
		t.Fatal("the socket whose deadline passed woke as readable")
	}
	quiet(t, ch1, "no bytes yet")
	c1.Write([]byte("GET"))
	if wait(t, ch1, "bytes") {
		t.Fatal("the socket that got bytes woke as expired")
	}
	if p.Len() != 0 || p.Socket(&s1) != -1 || p.Socket(&s2) != -1 {
		t.Fatalf("after the wake-ups: Len %d, sockets %d %d", p.Len(), p.Socket(&s1), p.Socket(&s2))
	}
	c1.Write([]byte(" /"))
	quiet(t, ch1, "bytes after the wake-up, not parked again")
}

// A peer that closes wakes its parked socket (EOF), and one taken back
// first never wakes.
func TestParkCloseAndTake(t *testing.T) {
	defer goleak.VerifyNone(t)
	var p Set
	defer p.Stop()
	c1, _, fd1 := pair(t)
	c2, _, fd2 := pair(t)
	var s1, s2 Slot
	ch1, ch2 := woken(&s1), woken(&s2)
	p.Park(&s1, fd1, time.Minute)
	p.Park(&s2, fd2, time.Minute)
	if !p.Take(&s2) || p.Take(&s2) {
		t.Fatal("Take: want true once, then false")
	}
	c1.Close()
	if wait(t, ch1, "EOF") {
		t.Fatal("EOF woke as expired")
	}
	c2.Write([]byte("x"))
	quiet(t, ch2, "taken back")
	if p.Take(&s1) {
		t.Fatal("Take of a slot already woken")
	}
	if !p.Park(&s2, fd2, time.Minute) || wait(t, ch2, "parked again with bytes waiting") {
		t.Fatal("a socket parked with bytes waiting woke expired")
	}
}

// Stop wakes the slots still parked as expired, and parks nothing after.
func TestStopWakesParked(t *testing.T) {
	defer goleak.VerifyNone(t)
	var p Set
	_, _, fd := pair(t)
	var s Slot
	ch := woken(&s)
	if !p.Park(&s, fd, time.Hour) {
		t.Fatal("Park refused")
	}
	p.Stop()
	if !wait(t, ch, "Stop") {
		t.Fatal("Stop woke a slot as readable")
	}
	if p.Park(&s, fd, time.Hour) {
		t.Fatal("Park after Stop")
	}
	p.Stop() // twice: no effect
	var never Set
	never.Stop()
	if never.Park(&s, fd, time.Hour) {
		t.Fatal("Park on a Set stopped before it started")
	}
}
