package upstream

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// A plain connection's BR reads with recv(2) (sockIO) and fails as a
// net.Conn's reads do: bytes, then a timeout at the read deadline, a
// reset, and EOF, each as net.Conn words it.
func TestSockIOReadsAndFailsAsNetConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	hosttest.Must(t, err)
	defer ln.Close()
	peers := make(chan net.Conn, 2)
	go func() { // ends after two accepts, or when ln closes
		for range 2 {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			peers <- c
		}
	}()
	c := dialTo(t, ln.Addr().String())
	if !c.sio.io.Ready() {
		t.Fatal("a plain TCP connection's BR does not read with sockIO")
	}
	p := <-peers
	defer p.Close()
	io.WriteString(p, "hello")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, 5)
	if _, err := io.ReadFull(c.BR, got); err != nil || string(got) != "hello" {
		t.Fatalf("read %q, %v", got, err)
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	var op *net.OpError
	if _, err := c.BR.ReadByte(); !errors.As(err, &op) || !op.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v (%T), want a *net.OpError timeout", err, err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	p.Close() // EOF
	if _, err := c.BR.ReadByte(); err != io.EOF {
		t.Fatalf("read after the peer closed: %v, want io.EOF", err)
	}

	c2 := dialTo(t, ln.Addr().String())
	p2 := <-peers
	p2.(*net.TCPConn).SetLinger(0)
	p2.Close() // a reset
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c2.BR.ReadByte(); !errors.As(err, &op) || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after a reset: %v (%T), want a *net.OpError of ECONNRESET", err, err)
	}
}
