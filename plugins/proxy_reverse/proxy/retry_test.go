package proxy

import (
	"bufio"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/capuchin/capuchin/api/http1"
)

// resetAfterHead reads one request head and resets the connection (RST,
// not FIN) without an answer byte: a backend dying as a request arrives.
func resetAfterHead(got *atomic.Int32) func(net.Conn, *bufio.Reader) {
	return func(c net.Conn, br *bufio.Reader) {
		var req http1.Request
		if http1.ReadRequest(br, nil, &req) != nil {
			return
		}
		got.Add(1)
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
}

// An idempotent request whose new backend connection is reset before any
// answer byte goes to the next server (proxy_next_upstream error) and is
// counted as a retry of the first; a POST whose body was sent is not
// retried (502); each server is tried at most once per request.
func TestRetryNextServerOnReset(t *testing.T) {
	checkLeaks(t)
	var resets atomic.Int32
	bad := newRawBackend(t, "", resetAfterHead(&resets))
	good := namedBackend(t, "B")
	p := newProxy(t, conf("[PROXY_DEFAULTS]\n AttemptsCount 100\n"+
		"[PROXY_ENTRY]\n ServerList %s %s\n LoadBalancer First-Alive\n Match ^/two\n"+
		"[PROXY_ENTRY]\n ServerList %s\n Match ^/one\n", bad.addr(), hostPort(good), bad.addr()))
	cl := dial(t, startHarness(t, p))
	for i, m := range []string{"GET", "HEAD", "DELETE", "OPTIONS"} {
		cl.send(m + " /two HTTP/1.1\r\nHost: example.com\r\n\r\n")
		r, body := cl.read(m)
		if r.Status != 200 || m == "GET" && body != "B" {
			t.Fatalf("%s after a reset: %d %q, want 200 from B", m, r.Status, body)
		}
		if n := resets.Load(); n != int32(i+1) {
			t.Fatalf("%s: the first server saw %d requests, want %d", m, n, i+1)
		}
	}
	bs := p.Snapshot().Entries[0].Servers
	if bs[0].Retries != 4 || bs[0].Failures != 4 || bs[1].Retries != 0 {
		t.Errorf("status after 4 retries: first %+v, second %+v", bs[0], bs[1])
	}

	// A POST's body went out: the backend may have acted on it.
	cl.send("POST /two HTTP/1.1\r\nHost: example.com\r\nContent-Length: 4\r\n\r\nbody")
	if r, _ := cl.read("POST"); r.Status != 502 {
		t.Errorf("POST after a reset: %d, want 502 (not retried)", r.Status)
	}
	// One server: tried once, then 502, no loop, no retry counted (the
	// counters are the address's, shared with the first entry).
	before, retriesBefore := resets.Load(), p.Snapshot().Entries[1].Servers[0].Retries
	cl2 := dial(t, startHarness(t, p))
	if st, _ := cl2.get("/one"); st != 502 {
		t.Errorf("single reset server: %d, want 502", st)
	}
	if n := resets.Load() - before; n != 1 {
		t.Errorf("single server tried %d times for one request, want 1", n)
	}
	if got := p.Snapshot().Entries[1].Servers[0]; got.Retries != retriesBefore {
		t.Errorf("a request with no next server counted as retried: %+v", got)
	}
}

// A backend that sent part of an answer head before the reset is not
// retried: the client gets 502 and the next server sees nothing.
func TestNoRetryAfterAnswerByte(t *testing.T) {
	checkLeaks(t)
	partial := newRawBackend(t, "", func(c net.Conn, br *bufio.Reader) {
		var req http1.Request
		if http1.ReadRequest(br, nil, &req) != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-")
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	})
	var hits atomic.Int32
	next := newRawBackend(t, "", func(c net.Conn, br *bufio.Reader) {
		hits.Add(1)
		rawServe("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nN")(c, br)
	})
	p := newProxy(t, conf("[PROXY_ENTRY]\n ServerList %s %s\n LoadBalancer First-Alive\n Match ^/\n",
		partial.addr(), next.addr()))
	cl := dial(t, startHarness(t, p))
	st, body := cl.get("/x")
	if st != 502 || !strings.Contains(body, "<h1>") {
		t.Errorf("reset after a partial head: %d %q, want a 502 page", st, body)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the next server was tried after an answer byte: %d connections", n)
	}
}
