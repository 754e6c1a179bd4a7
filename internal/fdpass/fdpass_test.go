package fdpass

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

func TestPassConnection(t *testing.T) {
	s, peer, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := NewReceiver(peer)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run() }()

	cl, srv := hosttest.TCPPair(t)

	// The waiter comes first; the descriptor follows.
	got := make(chan net.Conn, 1)
	go func() {
		c, err := r.Wait(42, 5*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- c
	}()
	time.Sleep(20 * time.Millisecond)
	if err := s.Send(42, srv, time.Second); err != nil {
		t.Fatal(err)
	}
	c := <-got
	if c == nil {
		t.FailNow()
	}
	if _, err := io.WriteString(c, "via copy"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	buf := make([]byte, 8)
	if _, err := io.ReadFull(cl, buf); err != nil || string(buf) != "via copy" {
		t.Fatalf("client read %q %v", buf, err)
	}

	// Unclaimed descriptors are dropped; a short wait times out.
	if err := s.Send(7, srv, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Wait(8, 10*time.Millisecond); err != ErrTimeout {
		t.Errorf("wait for an id never sent: %v", err)
	}
	r.Drop(8)
	time.Sleep(20 * time.Millisecond)
	r.Drop(7)

	r.Close()
	<-done
	if _, err := r.Wait(9, time.Second); err != ErrClosed {
		t.Errorf("wait after close: %v", err)
	}
}

// A received TCP socket reads under a read deadline (a wait that ends
// with a timeout), reports the socket's own addresses, copies a TCP
// connection's bytes with ReadFrom (splice) and half-closes.
func TestReceivedConnDeadlinesAddrsSplice(t *testing.T) {
	s, peer, err := Pair()
	hosttest.Must(t, err)
	defer s.Close()
	r, err := NewReceiver(peer)
	hosttest.Must(t, err)
	done := make(chan error, 1)
	go func() { done <- r.Run() }() // ends with r.Close below
	defer func() { r.Close(); <-done }()
	cl, srv := hosttest.TCPPair(t)
	hosttest.Must(t, s.Send(1, srv, time.Second))
	c, err := r.Wait(1, 5*time.Second)
	hosttest.Must(t, err)
	defer c.Close()
	if c.LocalAddr().String() != srv.LocalAddr().String() || c.RemoteAddr().String() != srv.RemoteAddr().String() {
		t.Fatalf("addresses %v %v, want %v %v", c.LocalAddr(), c.RemoteAddr(), srv.LocalAddr(), srv.RemoteAddr())
	}
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	var ne net.Error
	if _, err := c.Read(make([]byte, 1)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past its deadline: %v, want a timeout", err)
	}
	c.SetReadDeadline(time.Time{})
	src, feed := hosttest.TCPPair(t)
	go func() { // ends once it has written and closed
		io.WriteString(feed, strings.Repeat("x", 100<<10))
		feed.Close()
	}()
	rf, ok := c.(io.ReaderFrom)
	if !ok {
		t.Fatalf("%T has no ReadFrom", c)
	}
	n, err := rf.ReadFrom(&io.LimitedReader{R: src, N: 100 << 10})
	if err != nil || n != 100<<10 {
		t.Fatalf("ReadFrom: %d, %v", n, err)
	}
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok {
		t.Fatalf("%T has no CloseWrite", c)
	}
	hosttest.Must(t, cw.CloseWrite())
	got, err := io.ReadAll(cl) // to the EOF CloseWrite sent
	if err != nil || len(got) != 100<<10 || strings.Trim(string(got), "x") != "" {
		t.Fatalf("client read %d bytes, %v", len(got), err)
	}
}

// TestSendFullSocket: with the socket full (a plugin that stops reading),
// each Send gives up at its own wait, however many others come after it
// (each of whom waited once moved the socket's one deadline for all), and
// a Send waiting when the reader starts again goes through.
func TestSendFullSocket(t *testing.T) {
	hosttest.CheckLeaks(t)
	s, peer, err := Pair()
	hosttest.Must(t, err)
	defer s.Close()
	_, srv := hosttest.TCPPair(t)
	filled := 0
	for ; filled < 100000 && s.Send(uint64(filled), srv, time.Millisecond) == nil; filled++ {
	}
	if filled == 0 || filled == 100000 {
		t.Fatalf("%d sends before the socket was full", filled)
	}
	const wait, senders = 200 * time.Millisecond, 20
	took, errs := make([]time.Duration, senders), make([]error, senders)
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			start := time.Now()
			errs[i] = s.Send(uint64(filled+i), srv, wait)
			took[i] = time.Since(start)
		})
		time.Sleep(20 * time.Millisecond) // a new sender before each one's wait is over
	}
	wg.Wait()
	for i := range senders {
		if !errors.Is(errs[i], os.ErrDeadlineExceeded) || took[i] > wait+150*time.Millisecond {
			t.Errorf("sender %d: %v after %v, want a timeout after %v", i, errs[i], took[i].Round(time.Millisecond), wait)
		}
	}
	sent := make(chan error, 1)
	go func() { sent <- s.Send(1<<40, srv, 5*time.Second) }()
	time.Sleep(50 * time.Millisecond)
	r, err := NewReceiver(peer)
	hosttest.Must(t, err)
	done := make(chan error, 1)
	go func() { done <- r.Run() }()
	if err := <-sent; err != nil {
		t.Errorf("send once the reader runs again: %v", err)
	}
	r.Close()
	<-done
}
