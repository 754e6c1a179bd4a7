package fdpass

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
	"github.com/capuchin/capuchin/internal/rawsock"
	"golang.org/x/sys/unix"
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
	hosttest.Must(t, s.Send(1, srv, time.Second))
	c, err = r.Wait(1, 5*time.Second)
	hosttest.Must(t, err)
	t.Cleanup(func() { c.Close() })
	if _, ok := c.(*sockConn); !ok {
		t.Fatalf("received %T, want *sockConn", c)
	}
	return c, cl
}

// readTimesOut reports whether a read of c ends with a timeout (true) or
// gets the byte the peer sends after the delay (false), failing the test
// on anything else.
func readTimesOut(t *testing.T, c, peer net.Conn, delay time.Duration) bool {
	t.Helper()
	sent := make(chan struct{})
	go func() { // ends after its write
		defer close(sent)
		time.Sleep(delay)
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
// deadline at most slack after the one asked for (even a cleared one),
// and sets the one asked for plus slack otherwise.
func TestSockConnCoarseReadDeadline(t *testing.T) {
	c, peer := received(t)
	sc := c.(*sockConn)
	const ms = time.Millisecond

	// Cleared after it passed: the read waits for the byte.
	hosttest.Must(t, c.SetReadDeadline(time.Now().Add(-time.Second)))
	hosttest.Must(t, c.SetReadDeadline(time.Time{}))
	if readTimesOut(t, c, peer, 100*ms) {
		t.Fatal("a read after the deadline was cleared timed out")
	}

	// Cleared while a Read waits under it: the Read waits for the byte.
	hosttest.Must(t, c.SetReadDeadline(time.Now().Add(150*ms)))
	cleared := make(chan struct{})
	go func() { // ends after its clear
		defer close(cleared)
		time.Sleep(20 * ms)
		c.SetReadDeadline(time.Time{})
	}()
	if readTimesOut(t, c, peer, 400*ms) {
		t.Fatal("a Read in progress kept a deadline cleared meanwhile")
	}
	<-cleared

	// Kept: 50 ms ahead is within 10 s after 20 ms ahead, cleared or not.
	now := time.Now()
	hosttest.Must(t, c.SetReadDeadline(now.Add(50*ms)))
	hosttest.Must(t, c.SetReadDeadline(time.Time{}))
	hosttest.Must(t, sc.SetReadDeadlineNear(now.Add(20*ms), 10*time.Second))
	if !readTimesOut(t, c, peer, 500*ms) {
		t.Fatal("SetReadDeadlineNear did not keep the deadline set")
	}

	// Not kept: the one set is before the one asked for (10 s ahead), so
	// 11 s ahead is set and the read gets the byte.
	now = time.Now()
	hosttest.Must(t, c.SetReadDeadline(now.Add(50*ms)))
	hosttest.Must(t, sc.SetReadDeadlineNear(now.Add(10*time.Second), time.Second))
	if readTimesOut(t, c, peer, 100*ms) {
		t.Fatal("SetReadDeadlineNear kept a deadline earlier than asked")
	}
	// Not kept: the one set (10 s ahead) is more than slack after the one
	// asked for (50 ms ahead, 10 ms slack).
	now = time.Now()
	hosttest.Must(t, c.SetReadDeadline(now.Add(10*time.Second)))
	hosttest.Must(t, sc.SetReadDeadlineNear(now.Add(50*ms), 10*ms))
	if !readTimesOut(t, c, peer, 500*ms) {
		t.Fatal("SetReadDeadlineNear kept a deadline further than slack")
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

// While a raw read holds the socket's read wait (SetHeld), a Read on the
// same goroutine, inside that raw read's callback, gets the bytes that
// come later, EOF, and the read deadline's timeout, where the runtime's
// read would wait for the held one forever.
func TestSockConnReadWhileHeld(t *testing.T) {
	c, peer := received(t)
	sc := c.(*sockConn)
	raw, err := sc.SyscallConn()
	hosttest.Must(t, err)
	heldRead := func(deadline time.Duration) (string, error) {
		sc.SetReadDeadline(time.Now().Add(deadline))
		sc.SetHeld(true)
		defer sc.SetHeld(false)
		type result struct {
			s   string
			err error
		}
		done := make(chan result, 1)
		go func() { // ends with the raw read (the test fails if it does not)
			var r result
			raw.Read(func(uintptr) bool {
				b := make([]byte, 8)
				n, err := c.Read(b)
				r = result{string(b[:n]), err}
				return true
			})
			done <- r
		}()
		select {
		case r := <-done:
			return r.s, r.err
		case <-time.After(5 * time.Second):
			t.Fatal("a Read inside the held wait did not return")
			return "", nil
		}
	}
	go func() { time.Sleep(50 * time.Millisecond); peer.Write([]byte("later")) }()
	if got, err := heldRead(5 * time.Second); got != "later" || err != nil {
		t.Fatalf("bytes sent later: %q, %v", got, err)
	}
	var ne net.Error
	if got, err := heldRead(50 * time.Millisecond); !errors.As(err, &ne) || !ne.Timeout() || got != "" {
		t.Fatalf("nothing sent: %q, %v, want the deadline's timeout", got, err)
	}
	peer.(*net.TCPConn).CloseWrite()
	if got, err := heldRead(5 * time.Second); err != io.EOF || got != "" {
		t.Fatalf("peer's FIN: %q, %v, want EOF", got, err)
	}
	if got, err := c.Read(make([]byte, 8)); err != io.EOF || got != 0 {
		t.Fatalf("Read after the hold: %d, %v, want EOF", got, err)
	}
}

// polled reports whether descriptor fd is in one of this process's epoll
// sets (the runtime's poller), from /proc/self/fdinfo.
func polled(t *testing.T, fd int) bool {
	t.Helper()
	links, err := os.ReadDir("/proc/self/fd")
	hosttest.Must(t, err)
	want := fmt.Sprintf("tfd: %8d ", fd)
	for _, l := range links {
		if dst, _ := os.Readlink("/proc/self/fd/" + l.Name()); dst != "anon_inode:[eventpoll]" {
			continue
		}
		info, err := os.ReadFile("/proc/self/fdinfo/" + l.Name())
		if err == nil && strings.Contains(string(info), want) {
			return true
		}
	}
	return false
}

// A received socket joins the runtime's poller only when a call may wait:
// a write the socket takes at once, its addresses, a write deadline in the
// future and a control do not make it join; a read does, with the read
// deadline set before it (not one cleared since); Close takes it out
// again. One never polled is closed by Close, and a write deadline already
// passed fails its writes at once.
func TestSockConnJoinsPollerWhenItMayWait(t *testing.T) {
	c, peer := received(t)
	sc := c.(*sockConn)
	fd := sc.fd
	hosttest.Must(t, c.SetWriteDeadline(time.Now().Add(time.Minute)))
	if _, err := io.WriteString(c, "answer"); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 6)
	if _, err := io.ReadFull(peer, got); err != nil || string(got) != "answer" {
		t.Fatalf("peer read %q, %v", got, err)
	}
	if c.RemoteAddr() == nil || c.LocalAddr() == nil {
		t.Fatal("no addresses")
	}
	hosttest.Must(t, sc.CloseWrite())
	if polled(t, fd) {
		t.Fatal("the socket joined the poller before any call that may wait")
	}
	if _, err := io.ReadAll(peer); err != nil { // to the EOF of the shutdown
		t.Fatal(err)
	}

	hosttest.Must(t, c.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	var ne net.Error
	if _, err := c.Read(make([]byte, 1)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read under the deadline set before the socket joined: %v, want a timeout", err)
	}
	if !polled(t, fd) {
		t.Fatal("a read did not make the socket join the poller")
	}
	hosttest.Must(t, c.Close())
	if polled(t, fd) {
		t.Fatal("the socket is still in the poller after Close")
	}

	// A read deadline cleared before the socket joined: a raw read, which
	// does not clear a stale deadline itself, waits for the byte.
	c4, peer4 := received(t)
	hosttest.Must(t, c4.SetReadDeadline(time.Now().Add(10*time.Millisecond)))
	hosttest.Must(t, c4.SetReadDeadline(time.Time{}))
	go func() { time.Sleep(100 * time.Millisecond); peer4.Write([]byte("y")) }() // ends after its write
	raw, err := c4.(*sockConn).SyscallConn()
	hosttest.Must(t, err)
	var n int
	err = raw.Read(func(fd uintptr) bool {
		var errno syscall.Errno
		n, errno = rawsock.Recv(fd, make([]byte, 1), 0)
		return errno != syscall.EAGAIN
	})
	if err != nil || n != 1 {
		t.Fatalf("raw read after a deadline cleared before the socket joined: %d, %v", n, err)
	}

	c2, _ := received(t)
	hosttest.Must(t, c2.SetDeadline(time.Unix(1, 0)))
	if _, err := c2.Write([]byte("late")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write after a deadline set in the past: %v, want os.ErrDeadlineExceeded", err)
	}

	c3, _ := received(t)
	fd3 := c3.(*sockConn).fd
	hosttest.Must(t, c3.Close())
	if _, err := unix.FcntlInt(uintptr(fd3), unix.F_GETFD, 0); !errors.Is(err, unix.EBADF) {
		t.Fatalf("descriptor of a socket closed before it joined the poller: %v, want EBADF", err)
	}
	if err := c3.Close(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("second Close: %v, want os.ErrClosed", err)
	}
}

// TestSockConnSendFile: a file copied to a received socket (io.Copy, as
// the host's static files are, through an io.LimitedReader or not) arrives
// whole from its offset, larger than the socket's buffers, and the reader
// and file are left where a copy leaves them.
func TestSockConnSendFile(t *testing.T) {
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	path := t.TempDir() + "/f"
	hosttest.Must(t, os.WriteFile(path, data, 0o644))
	for _, tc := range []struct {
		name    string
		limit   int64 // 0: no io.LimitedReader
		off     int64
		want    int64
		lrAfter int64
	}{
		{"limited", 2 << 20, 100, 2 << 20, 0},
		{"limited past the end", 4 << 20, 100, 3<<20 - 100, 4<<20 - (3<<20 - 100)},
		{"whole file", 0, 0, 3 << 20, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, peer := received(t)
			f, err := os.Open(path)
			hosttest.Must(t, err)
			defer f.Close()
			_, err = f.Seek(tc.off, io.SeekStart)
			hosttest.Must(t, err)
			var r io.Reader = f
			lr := &io.LimitedReader{R: f, N: tc.limit}
			if tc.limit > 0 {
				r = lr
			}
			got := make(chan []byte, 1)
			go func() { // ends when it has read want bytes, or at a read error
				b := make([]byte, tc.want)
				peer.SetReadDeadline(time.Now().Add(10 * time.Second))
				n, _ := io.ReadFull(peer, b)
				got <- b[:n]
			}()
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			n, err := io.Copy(c, r)
			if err != nil || n != tc.want {
				t.Fatalf("copied %d bytes, %v; want %d", n, err, tc.want)
			}
			if b := <-got; string(b) != string(data[tc.off:tc.off+tc.want]) {
				t.Fatalf("the peer read %d bytes, not the file's %d from offset %d", len(b), tc.want, tc.off)
			}
			if tc.limit > 0 && lr.N != tc.lrAfter {
				t.Errorf("LimitedReader left at %d, want %d", lr.N, tc.lrAfter)
			}
			if pos, _ := f.Seek(0, io.SeekCurrent); pos != tc.off+tc.want {
				t.Errorf("file offset %d after the copy, want %d", pos, tc.off+tc.want)
			}
		})
	}
}

// TestSockConnReadFromPipe: a file that sendfile(2) cannot send from (a
// pipe) is copied the usual way.
func TestSockConnReadFromPipe(t *testing.T) {
	c, peer := received(t)
	pr, pw, err := os.Pipe()
	hosttest.Must(t, err)
	defer pr.Close()
	go func() { pw.Write([]byte("through a pipe")); pw.Close() }() // ends after its write
	n, err := io.Copy(c, pr)
	if err != nil || n != 14 {
		t.Fatalf("copied %d bytes, %v", n, err)
	}
	b := make([]byte, 14)
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(peer, b); err != nil || string(b) != "through a pipe" {
		t.Fatalf("the peer read %q, %v", b, err)
	}
}
