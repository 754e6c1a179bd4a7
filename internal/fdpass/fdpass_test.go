package fdpass

import (
	"io"
	"net"
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
	if err := s.Send(42, srv, time.Now().Add(time.Second)); err != nil {
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
	if err := s.Send(7, srv, time.Time{}); err != nil {
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
