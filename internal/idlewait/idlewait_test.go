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
