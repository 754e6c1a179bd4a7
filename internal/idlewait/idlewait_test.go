package idlewait

import (
	"errors"
	"net"
	"os"
	"sync"
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
	var pool sync.Pool
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
	w.Init(b, new(sync.Pool))
	if got, err := w.Read(); got != nil || err != nil {
		t.Fatalf("%q, %v", got, err)
	}
}
