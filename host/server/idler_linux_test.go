package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/capuchin/capuchin/api/http1"
)

// get sends a GET of /1k.txt on c and reads the answer, which must be 200.
func get(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	_, err := io.WriteString(c, "GET /1k.txt HTTP/1.1\r\nHost: x\r\n\r\n")
	must(t, err)
	var resp http1.Response
	must(t, http1.ReadResponse(br, nil, &resp))
	var body http1.Body
	body.ResetResponse(br, &resp, "GET")
	_, err = io.Copy(io.Discard, &body)
	must(t, err)
	if resp.Status != 200 {
		t.Fatalf("status %d", resp.Status)
	}
}

// parkedConns reports how many of the server's connections are parked
// idle, and fails the test if one of them holds more than its bare socket:
// no net.Conn, buffer or exchange.
func parkedConns(t *testing.T, s *Server) int {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		c.mu.Lock()
		if fd := s.idler.Socket(&c.slot); fd >= 0 {
			n++
			if c.nc != nil || c.info.TCP != nil || c.br != nil || c.exchange != nil || int(c.parked) != fd {
				t.Errorf("parked connection %d holds nc %v, buffer %v, exchange %v (socket %d, parked %d)",
					c.info.ID, c.nc != nil, c.br != nil, c.exchange != nil, c.parked, fd)
			}
		}
		c.mu.Unlock()
	}
	return n
}

// TestParkedConnectionHoldsOnlyItsSocket: a keep-alive connection idle
// for longer than idleHold is parked with nothing but a bare duplicate of
// its socket, and serves its next requests when they come.
func TestParkedConnectionHoldsOnlyItsSocket(t *testing.T) {
	s, addr := testServerConf(t, nil, "    KeepAliveTimeout 30\n")
	defer s.Shutdown(context.Background())
	const n = 20
	conns := make([]net.Conn, n)
	brs := make([]*bufio.Reader, n)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		must(t, err)
		defer c.Close()
		conns[i], brs[i] = c, bufio.NewReader(c)
		get(t, c, brs[i])
	}
	for end := time.Now().Add(5 * time.Second); parkedConns(t, s) < n; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%d of %d idle connections parked after 5 s", parkedConns(t, s), n)
		}
	}
	for i, c := range conns {
		get(t, c, brs[i]) // woken by the request
		get(t, c, brs[i]) // and kept alive
	}
}

// TestIdlerNearerDeadlineFirst: a connection parked with a nearer idle
// deadline than those already parked still closes at its own deadline.
func TestIdlerNearerDeadlineFirst(t *testing.T) {
	s, addr := testServerConf(t, nil, "    Timeout 3\n    KeepAliveTimeout 9\n")
	defer s.Shutdown(context.Background())
	a, err := net.Dial("tcp", addr)
	must(t, err)
	defer a.Close()
	get(t, a, bufio.NewReader(a)) // parked after idleHold until 9 s after this
	for end := time.Now().Add(5 * time.Second); parkedConns(t, s) < 1; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the idle connection is not parked after 5 s")
		}
	}
	b, err := net.Dial("tcp", addr) // sends nothing: closed at Timeout
	must(t, err)
	defer b.Close()
	start := time.Now()
	must(t, b.SetReadDeadline(start.Add(6*time.Second)))
	if _, err := b.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the silent connection: %v after %v, want EOF at Timeout (3 s)", err, time.Since(start).Round(time.Millisecond))
	}
	if d := time.Since(start); d < 2500*time.Millisecond {
		t.Errorf("the silent connection closed after %v, want Timeout (3 s)", d.Round(time.Millisecond))
	}
	must(t, a.SetReadDeadline(time.Now().Add(100*time.Millisecond)))
	if _, err := a.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the connection parked first, before its KeepAliveTimeout: %v, want it still open", err)
	}
}
