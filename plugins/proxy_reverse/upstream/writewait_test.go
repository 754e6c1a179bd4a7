package upstream

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// dialTo opens a pooled-style connection to the server at addr.
func dialTo(t *testing.T, addr string) *Conn {
	t.Helper()
	e := entry(t, addr)
	e.ResponseTimeout = 5 * time.Second
	g := NewGroup(e, nil, nil, hclog.NewNullLogger())
	t.Cleanup(g.Close)
	c, err := g.Servers()[0].Dial(context.Background())
	hosttest.Must(t, err)
	t.Cleanup(func() { c.Close() })
	c.TakeBuffers()
	return c
}

// TestWriteWaitSendsAndWaitsForTheAnswer: the whole request is written
// and the answer read after the wait, on each of several requests.
func TestWriteWaitSendsAndWaitsForTheAnswer(t *testing.T) {
	c := dialTo(t, hiServer(t))
	for i := range 3 {
		req := "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
		c.ExtendRead(time.Now(), 5*time.Second)
		n, err := c.WriteWait([]byte(req))
		if err != nil || n != len(req) {
			t.Fatalf("request %d: wrote %d of %d, %v", i, n, len(req), err)
		}
		if c.BR.Buffered() != 0 {
			t.Fatal("WriteWait read into BR")
		}
		readHi(t, c)
	}
}

// TestWriteWaitShortWrite: a backend that reads nothing fills the socket;
// WriteWait returns what it wrote, without waiting and without an error.
func TestWriteWaitShortWrite(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	hosttest.Must(t, err)
	defer ln.Close()
	held := make(chan net.Conn, 1)
	go func() { // ends with the accept
		c, _ := ln.Accept()
		held <- c
	}()
	c := dialTo(t, ln.Addr().String())
	defer func() {
		if hc := <-held; hc != nil {
			hc.Close()
		}
	}()
	big := make([]byte, 64<<20)
	c.ExtendRead(time.Now(), 5*time.Second)
	n, err := c.WriteWait(big)
	if err != nil || n <= 0 || n >= len(big) {
		t.Fatalf("wrote %d of %d, %v: want a short write and no error", n, len(big), err)
	}
}

// TestWriteWaitReset: a write on a connection the backend reset fails
// with the error a net.Conn's Write gives, which the forwarder may retry.
func TestWriteWaitReset(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	hosttest.Must(t, err)
	defer ln.Close()
	dialed, done := make(chan struct{}), make(chan struct{})
	go func() { // ends with the accept
		defer close(done)
		bc, err := ln.Accept()
		if err == nil {
			<-dialed // an RST before connect returns would fail the dial
			bc.(*net.TCPConn).SetLinger(0)
			bc.Close() // an RST
		}
	}()
	c := dialTo(t, ln.Addr().String())
	close(dialed)
	<-done
	time.Sleep(50 * time.Millisecond) // the RST arrives
	var werr error
	for range 3 { // the first write after an RST may still be taken
		if _, werr = c.WriteWait([]byte("GET / HTTP/1.1\r\n\r\n")); werr != nil {
			break
		}
	}
	var op *net.OpError
	if !errors.As(werr, &op) || !(errors.Is(werr, syscall.ECONNRESET) || errors.Is(werr, syscall.EPIPE)) {
		t.Fatalf("error %v (%T), want a *net.OpError of ECONNRESET or EPIPE", werr, werr)
	}
}
