package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// closedPort returns a 127.0.0.1 address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// A stopped backend is failed over to; after AttemptsCount failures it is
// offline and sees no connect attempt; after OfflineTimeOut real traffic
// probes it and one success brings it back.
func TestFailoverHAAndRecovery(t *testing.T) {
	checkLeaks(t)
	a, b := namedBackend(t, "A"), namedBackend(t, "B")
	aAddr := hostPort(a)
	p := newProxy(t, conf("[PROXY_DEFAULTS]\n AttemptsCount 2\n OfflineTimeOut 1500ms\n"+
		"[PROXY_ENTRY]\n ServerList %s %s\n LoadBalancer First-Alive\n Match ^/\n", aAddr, hostPort(b)))
	cl := dial(t, startHarness(t, p))
	if _, body := cl.get("/"); body != "A" {
		t.Fatalf("got %q before the stop", body)
	}
	a.Close() // its pooled connection goes stale; then connects are refused
	for i := 0; i < 2; i++ {
		if status, body := cl.get("/"); status != 200 || body != "B" {
			t.Fatalf("failover %d: %d %q", i, status, body)
		}
	}
	srv := p.Snapshot().Entries[0].Servers[0]
	if srv.State != "offline" || srv.OfflineUntil == nil {
		t.Fatalf("A after 2 failures: %+v", srv)
	}
	// A comes back on the same port; while offline it must see no connect.
	back := newRawBackend(t, aAddr, rawServe("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nR"))
	for i := 0; i < 5; i++ {
		if _, body := cl.get("/"); body != "B" {
			t.Fatalf("offline A was used: %q", body)
		}
	}
	if n := back.Accepts(); n != 0 {
		t.Fatalf("offline server saw %d connects", n)
	}
	time.Sleep(time.Until(*srv.OfflineUntil) + 50*time.Millisecond)
	if _, body := cl.get("/"); body != "R" {
		t.Fatalf("after OfflineTimeOut the probe went to %q", body)
	}
	if got := p.Snapshot().Entries[0].Servers[0]; got.State != "online" || got.Consecutive != 0 {
		t.Fatalf("A after a good probe: %+v", got)
	}
	if _, body := cl.get("/"); body != "R" {
		t.Fatalf("recovered A not used: %q", body)
	}
}

func TestErrorStatuses(t *testing.T) {
	checkLeaks(t)
	silent := newRawBackend(t, "", func(c net.Conn, br *bufio.Reader) { io.Copy(io.Discard, br) })
	garbage := newRawBackend(t, "", rawServe("HELLO\r\n\r\n"))
	dead := closedPort(t)
	p := newProxy(t, conf("[PROXY_DEFAULTS]\n ResponseTimeout 300ms\n AttemptsCount 1\n OfflineTimeOut 60\n"+
		"[PROXY_ENTRY]\n ServerList %s\n Match ^/dead\n"+
		"[PROXY_ENTRY]\n ServerList %s\n Match ^/silent\n"+
		"[PROXY_ENTRY]\n ServerList %s\n Match ^/garbage\n", dead, silent.addr(), garbage.addr()))
	cl := dial(t, startHarness(t, p))
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/dead", 502},    // connect refused
		{"/dead", 503},    // now offline: no attempt
		{"/silent", 504},  // no answer within ResponseTimeout
		{"/garbage", 502}, // malformed answer
	} {
		status, body := cl.get(tc.path)
		if status != tc.status || !strings.Contains(body, http.StatusText(tc.status)) {
			t.Fatalf("%s: %d %q, want %d with a page", tc.path, status, body, tc.status)
		}
	}
	if st, _ := cl.get("/nomatch"); st != 404 {
		t.Fatalf("unmatched path: %d, want the host's 404 after a decline", st)
	}
}

// A backend that dies in the middle of a body: the client must not take the
// cut response as complete.
func TestTruncatedResponseClosesClient(t *testing.T) {
	checkLeaks(t)
	short := newRawBackend(t, "", func(c net.Conn, br *bufio.Reader) {
		br.ReadString('\n')
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
	})
	chunky := newRawBackend(t, "", func(c net.Conn, br *bufio.Reader) {
		br.ReadString('\n')
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
	})
	p := newProxy(t, conf("[PROXY_ENTRY]\n ServerList %s\n Match ^/short\n[PROXY_ENTRY]\n ServerList %s\n Match ^/chunky\n",
		short.addr(), chunky.addr()))
	h := startHarness(t, p)
	for _, path := range []string{"/short", "/chunky"} {
		cl := dial(t, h)
		cl.send("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
		rest, _ := io.ReadAll(cl.BR)
		if strings.HasSuffix(string(rest), "0\r\n\r\n") || strings.Count(string(rest), "0123456789") != 1 && path == "/short" {
			t.Fatalf("%s: %q", path, rest)
		}
		if path == "/chunky" && (!strings.Contains(string(rest), "hello") || strings.Contains(string(rest), "\r\n0\r\n\r\n")) {
			t.Fatalf("%s presented as complete: %q", path, rest)
		}
	}
}
