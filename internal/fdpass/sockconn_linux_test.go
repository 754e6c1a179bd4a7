package fdpass

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// received passes one end of a TCP pair through a Sender and Receiver
// and returns the received copy (a sockConn) and the other end.
func received(t *testing.T) (c, peer net.Conn) {
	t.Helper()
	s, f, err := Pair()
	hosttest.Must(t, err)
	t.Cleanup(func() { s.Close() })
	r, err := NewReceiver(f)
	hosttest.Must(t, err)
	done := make(chan error, 1)
	go func() { done <- r.Run() }() // ends with r.Close
	t.Cleanup(func() { r.Close(); <-done })
	cl, srv := hosttest.TCPPair(t)
	hosttest.Must(t, s.Send(1, srv, time.Now().Add(time.Second)))
	c, err = r.Wait(1, 5*time.Second)
	hosttest.Must(t, err)
	t.Cleanup(func() { c.Close() })
	if _, ok := c.(*sockConn); !ok {
		t.Fatalf("received %T, want *sockConn", c)
	}
	return c, cl
}

// readTimesOut reports whether a read of c ends with a timeout (true) or
// gets the byte the peer sends after 100 ms (false), failing the test on
// anything else or after 5 s.
func readTimesOut(t *testing.T, c, peer net.Conn) bool {
	t.Helper()
	sent := make(chan struct{})
	go func() { // ends after its write
		defer close(sent)
		time.Sleep(100 * time.Millisecond)
		peer.Write([]byte("x"))
	}()
	n, err := c.Read(make([]byte, 1))
	<-sent
	var ne net.Error
	switch {
	case n == 1:
		return false
	case errors.As(err, &ne) && ne.Timeout():
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.ReadFull(c, make([]byte, 1)) // the byte the read did not wait for
		return true
	}
	t.Fatalf("read: %d, %v", n, err)
	return false
}

// The read deadline is kept coarsely: a deadline cleared stays on the
// poller until a read, which clears it; SetReadDeadlineNear keeps a
// deadline ahead of now and within slack of the one asked for, and sets
// the one asked for otherwise.
func TestSockConnCoarseReadDeadline(t *testing.T) {
	c, peer := received(t)
	sc := c.(*sockConn)
	now := time.Now()

	// Cleared after it passed: the read waits for the byte.
	hosttest.Must(t, c.SetReadDeadline(now.Add(-time.Second)))
	hosttest.Must(t, c.SetReadDeadline(time.Time{}))
	if readTimesOut(t, c, peer) {
		t.Fatal("a read after the deadline was cleared timed out")
	}

	// Near: the deadline set (10 ms ahead) is kept for one 10 s ahead with
	// 20 s of slack, even after a clear, so the read times out.
	now = time.Now()
	hosttest.Must(t, c.SetReadDeadline(now.Add(10*time.Millisecond)))
	hosttest.Must(t, c.SetReadDeadline(time.Time{}))
	hosttest.Must(t, sc.SetReadDeadlineNear(now, now.Add(10*time.Second), 20*time.Second))
	if !readTimesOut(t, c, peer) {
		t.Fatal("SetReadDeadlineNear did not keep the near deadline")
	}

	// Not near: slack too small, or the deadline set has passed; the one
	// asked for (10 s ahead) is set and the read gets the byte.
	now = time.Now()
	hosttest.Must(t, c.SetReadDeadline(now.Add(10*time.Millisecond)))
	hosttest.Must(t, sc.SetReadDeadlineNear(now, now.Add(10*time.Second), time.Second))
	if readTimesOut(t, c, peer) {
		t.Fatal("SetReadDeadlineNear kept a deadline further than slack")
	}
	hosttest.Must(t, c.SetReadDeadline(time.Now().Add(-time.Second)))
	now = time.Now()
	hosttest.Must(t, sc.SetReadDeadlineNear(now, now.Add(10*time.Second), 20*time.Second))
	if readTimesOut(t, c, peer) {
		t.Fatal("SetReadDeadlineNear kept a deadline that had passed")
	}
}

// Write sends everything (send(2) in the poller's write wait), waiting
// while the peer's window is full, and fails at the write deadline with
// the error os.File's Write gives.
func TestSockConnWrite(t *testing.T) {
	c, peer := received(t)
	big := make([]byte, 8<<20)
	got := make(chan int, 1)
	go func() { // ends at the peer's EOF (CloseWrite below) or error
		n, _ := io.Copy(io.Discard, peer)
		got <- int(n)
	}()
	n, err := c.Write(big)
	if err != nil || n != len(big) {
		t.Fatalf("wrote %d of %d: %v", n, len(big), err)
	}
	c.(*sockConn).CloseWrite() // the peer's EOF (the host's copy of the socket is open still)
	if r := <-got; r != len(big) {
		t.Fatalf("peer read %d of %d", r, len(big))
	}

	c2, _ := received(t) // its peer reads nothing
	c2.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	n, err = c2.Write(big)
	var pe *os.PathError
	if !errors.As(err, &pe) || !errors.Is(err, os.ErrDeadlineExceeded) || n >= len(big) {
		t.Fatalf("write past the deadline: %d, %v (%T), want a short write and *os.PathError of the deadline", n, err, err)
	}
	c2.Close()
	if _, err := c2.Write(big); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("write after Close: %v, want os.ErrClosed", err)
	}
}
