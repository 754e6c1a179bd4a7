package fdpass

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
	"golang.org/x/sys/unix"
)

// listenOn opens a Listen listener on addr, closed when the test ends
// (skipped where addr's family is missing).
func listenOn(t *testing.T, addr string) net.Listener {
	t.Helper()
	nl, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	ln, err := Listen(nl.(*net.TCPListener))
	hosttest.Must(t, err)
	t.Cleanup(func() { ln.Close() })
	return ln
}

// accepted dials ln and returns the accepted socket and the client's end.
func accepted(t *testing.T, ln net.Listener) (*sockConn, net.Conn) {
	t.Helper()
	cl, err := net.Dial("tcp", ln.Addr().String())
	hosttest.Must(t, err)
	t.Cleanup(func() { cl.Close() })
	c, err := ln.Accept()
	hosttest.Must(t, err)
	t.Cleanup(func() { c.Close() })
	sc, ok := c.(*sockConn)
	if !ok {
		t.Fatalf("accepted a %T, want *sockConn", c)
	}
	return sc, cl
}

// A request that is there when it is read, answered and closed: the
// socket never joins the poller. Its addresses are the client's and the
// listener's (a wildcard listener's: the one the client reached), and
// it has TCP_NODELAY from the listening socket.
func TestListenAnsweredAtOnce(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0", "0.0.0.0:0"} {
		t.Run(addr, func(t *testing.T) {
			ln := listenOn(t, addr)
			c, cl := accepted(t, ln)
			// As net.TCPConn's: an IPv4 address in 4 bytes, not mapped to IPv6.
			remote, local := c.RemoteAddr().(*net.TCPAddr).AddrPort(), c.LocalAddr().(*net.TCPAddr).AddrPort()
			if remote != cl.LocalAddr().(*net.TCPAddr).AddrPort() || local != cl.RemoteAddr().(*net.TCPAddr).AddrPort() {
				t.Fatalf("addresses %v, %v; the client's %v, %v", remote, local, cl.LocalAddr(), cl.RemoteAddr())
			}
			if v, err := unix.GetsockoptInt(c.fd, unix.IPPROTO_TCP, unix.TCP_NODELAY); err != nil || v == 0 {
				t.Fatalf("TCP_NODELAY %d, %v", v, err)
			}
			hosttest.Must(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
			io.WriteString(cl, "GET") // on loopback it is in c's queue when Write returns
			got := make([]byte, 8)
			if n, err := c.Read(got); err != nil || string(got[:n]) != "GET" {
				t.Fatalf("read %q, %v", got[:n], err)
			}
			if _, err := io.WriteString(c, "200"); err != nil {
				t.Fatal(err)
			}
			if polled(t, c.fd) {
				t.Fatal("the socket joined the poller")
			}
			fd := c.fd
			hosttest.Must(t, c.Close())
			if all, err := io.ReadAll(cl); err != nil || string(all) != "200" {
				t.Fatalf("client read %q, %v", all, err)
			}
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); !errors.Is(err, unix.EBADF) {
				t.Fatalf("descriptor after Close: %v, want EBADF", err)
			}
		})
	}
}

// A read that finds nothing waits in the poller for the bytes; one whose
// deadline passed fails even with bytes there, as net.TCPConn's does; the
// client's close is an EOF.
func TestListenReadWaits(t *testing.T) {
	ln := listenOn(t, "127.0.0.1:0")
	c, cl := accepted(t, ln)
	go func() { time.Sleep(50 * time.Millisecond); io.WriteString(cl, "late") }() // ends after its write
	hosttest.Must(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	got := make([]byte, 8)
	if n, err := io.ReadAtLeast(c, got, 4); err != nil || string(got[:n]) != "late" {
		t.Fatalf("read %q, %v", got[:n], err)
	}
	if !polled(t, c.fd) {
		t.Fatal("a read that waited did not join the poller")
	}

	c2, cl2 := accepted(t, ln)
	io.WriteString(cl2, "x")
	hosttest.Must(t, c2.SetReadDeadline(time.Now().Add(-time.Second)))
	var ne net.Error
	if _, err := c2.Read(got); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past its deadline: %v, want a timeout", err)
	}
	hosttest.Must(t, c2.SetReadDeadline(time.Time{}))
	cl2.Close()
	if n, err := io.ReadAll(c2); err != nil || string(n) != "x" {
		t.Fatalf("read to the client's close: %q, %v", n, err)
	}
}

// Close wakes an Accept that waits, which then fails with net.ErrClosed.
func TestListenClose(t *testing.T) {
	ln := listenOn(t, "127.0.0.1:0")
	done := make(chan error, 1)
	go func() { // ends when Close wakes its Accept
		_, err := ln.Accept()
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	hosttest.Must(t, ln.Close())
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept still waits after Close")
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Fatal("the closed listener still takes connections")
	}
}
