package pluginhost

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capuchin/capuchin/host/stage"
	"github.com/capuchin/capuchin/internal/hosttest"
)

// TestLease: with a lease, the plugin serves the requests that follow on
// the connection itself while they match its filter, gives the connection
// back at the first one that does not, reports records for what it served,
// and closes an idle leased connection after the lease's idle timeout.
func TestLease(t *testing.T) {
	l, c := leasedHello(t, stage.Lease{MaxRequests: 10, IdleTimeout: 400 * time.Millisecond})
	c.send("GET /hello/a HTTP/1.1\r\nHost: test\r\n\r\n" +
		"GET /hello/b HTTP/1.1\r\nHost: test\r\n\r\n" +
		"POST /hello/c HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n" +
		"GET /elsewhere HTTP/1.1\r\nHost: test\r\n\r\n" +
		"GET /hello/d HTTP/1.1\r\nHost: other\r\n\r\n" +
		"GET /hello/e HTTP/1.1\r\nHost: other\r\n\r\n")
	want := []string{
		`hello GET /hello/a vhost=default body=""`,
		`hello GET /hello/b vhost=default body=""`,
		`hello POST /hello/c vhost=default body="xyz"`,
		`static GET /elsewhere body=""`,
		`hello GET /hello/d vhost=default body=""`,
		`hello GET /hello/e vhost=default body=""`,
	}
	for i, w := range want {
		r, err := c.read()
		if err != nil || r.status != 200 || r.body != w {
			t.Fatalf("response %d: %d %q %v, want %q", i, r.status, r.body, err, w)
		}
	}
	start := time.Now()
	if !c.closed() {
		t.Fatal("idle leased connection not closed")
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 3*time.Second {
		t.Errorf("idle leased connection closed after %v, want about the lease's 400ms", d)
	}
	// a (then b, c leased); elsewhere (no plugin call); d, a new Host, goes
	// back through the host (then e leased).
	if got := l.handles.Load(); got != 3 {
		t.Errorf("%d stage-30 calls, want 3", got)
	}
	for end := time.Now().Add(2 * time.Second); l.leased.Load() != 3 && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
	}
	if got := l.leased.Load(); got != 3 {
		t.Errorf("%d leased records, want 3 (b, c, e)", got)
	}
}

// TestLeaseRevoke: a revoked lease gives the connection back at once, and
// the next request goes through the host again.
func TestLeaseRevoke(t *testing.T) {
	l, c := leasedHello(t, stage.Lease{MaxRequests: 10, IdleTimeout: 10 * time.Second})
	if r := c.get("/hello/a"); r.status != 200 {
		t.Fatalf("first: %d", r.status)
	}
	revoked := 0
	for end := time.Now().Add(2 * time.Second); revoked == 0 && time.Now().Before(end); {
		l.conns.Range(func(k, _ any) bool { l.p.(*Host).Revoke(k.(*stage.Conn)); revoked++; return true })
	}
	for end := time.Now().Add(3 * time.Second); l.handles.Load() != 1 || !leaseReturned(l); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("revoked lease not returned")
		}
	}
	if r := c.get("/hello/b"); r.status != 200 || !strings.Contains(r.body, "/hello/b") {
		t.Fatalf("after revoke: %d %q", r.status, r.body)
	}
	if got := l.handles.Load(); got != 2 {
		t.Errorf("%d stage-30 calls, want 2: the request after a revoke goes through the host", got)
	}
}

// TestLeaseIdleHold: a leased connection on which nothing arrives after
// its first request is given back after the SDK's hold (500 ms) when the
// lease's idle timeout is longer: the plugin holds nothing for it, the
// connection stays open, and its next request goes through the host and
// starts a new lease. A lease that served more than one request (a client
// that comes back) is held past the hold (the SDK's longHold): its next
// request after a pause is served under it.
func TestLeaseIdleHold(t *testing.T) {
	l, c := leasedHello(t, stage.Lease{MaxRequests: 10, IdleTimeout: 10 * time.Second})
	if r := c.get("/hello/a"); r.status != 200 {
		t.Fatalf("/hello/a: %d", r.status)
	}
	start := time.Now()
	for !leaseReturned(l) {
		if time.Since(start) > 5*time.Second {
			t.Fatal("an idle lease was not given back")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("lease given back after %v of idleness, want about 500ms", d)
	}
	for _, p := range []string{"/hello/b", "/hello/c"} {
		if r := c.get(p); r.status != 200 || !strings.Contains(r.body, p) {
			t.Fatalf("%s after the give-back: %d %q", p, r.status, r.body)
		}
	}
	time.Sleep(900 * time.Millisecond) // past the hold: b and c made it a client that comes back
	if leaseReturned(l) {
		t.Error("the lease of a client that came back was given back after the hold")
	}
	if r := c.get("/hello/d"); r.status != 200 || !strings.Contains(r.body, "/hello/d") {
		t.Fatalf("/hello/d after a pause: %d %q", r.status, r.body)
	}
	if got := l.handles.Load(); got != 2 {
		t.Errorf("%d stage-30 calls, want 2: a and b through the host, c and d leased", got)
	}
}

// leaseReturned reports whether no Handle call is in progress at h: the
// loop's conns are all back in ReadRequest. It checks the plugin's inflight
// counter.
func leaseReturned(l *loop) bool {
	h := l.p.(*Host)
	for _, p := range h.cur.Load().handle {
		if p.inflight.Load() != 0 {
			return false
		}
	}
	return true
}

// TestLeaseRecords: when a plugin hooks stage 40, a lease returns a record
// for every request it served, and each reaches the stage-40 plugin.
func TestLeaseRecords(t *testing.T) {
	hosttest.CheckLeaks(t)
	dir := t.TempDir()
	notesFile := filepath.Join(dir, "notes.txt")
	h := startHost(t, spec(t, dir, "hello", ""), spec(t, dir, "notes", notesFile))
	l := newLoop(t, h)
	l.lease = stage.Lease{MaxRequests: 10, IdleTimeout: 300 * time.Millisecond}
	c := dial(t, l.addr())
	c.send("GET /hello/1 HTTP/1.1\r\nHost: test\r\n\r\nGET /hello/2 HTTP/1.1\r\nHost: test\r\n\r\nGET /hello/3 HTTP/1.1\r\nHost: test\r\n\r\n")
	for i := 0; i < 3; i++ {
		if r, err := c.read(); err != nil || r.status != 200 {
			t.Fatalf("response %d: %d %v", i, r.status, err)
		}
	}
	if !c.closed() {
		t.Fatal("idle leased connection not closed")
	}
	if got, recs := l.leased.Load(), l.records.Load(); got != 2 || recs != 2 {
		t.Fatalf("leased %d, records %d; want 2 and 2", got, recs)
	}
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(notesFile)
		if strings.Contains(string(b), "GET /hello/2 200") && strings.Contains(string(b), "GET /hello/3 200") {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("stage-40 notes of leased requests missing:\n%s", b)
		}
	}
}

// TestLeaseDeadlines: under a lease the stage deadline still holds — for
// the first request (the host answers with the policy) and for a leased
// one (the SDK shuts the connection).
func TestLeaseDeadlines(t *testing.T) {
	hosttest.CheckLeaks(t)
	h := startHost(t, spec(t, t.TempDir(), "hello", ""))
	l := newLoop(t, h)
	l.lease = stage.Lease{MaxRequests: 10, IdleTimeout: 10 * time.Second}

	c := dial(t, l.addr())
	start := time.Now()
	c.send("GET /hello/slow HTTP/1.1\r\nHost: test\r\n\r\n")
	r, err := c.read()
	if err != nil || r.status != 503 {
		t.Fatalf("slow first request: %d %v, want 503", r.status, err)
	}
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Errorf("first request answered after %v; the deadline is 1.5s", d)
	}

	c = dial(t, l.addr())
	c.send("GET /hello/a HTTP/1.1\r\nHost: test\r\n\r\n")
	if r, err := c.read(); err != nil || r.status != 200 {
		t.Fatalf("first: %d %v", r.status, err)
	}
	start = time.Now()
	c.send("GET /hello/slow HTTP/1.1\r\nHost: test\r\n\r\n")
	if !c.closed() {
		t.Fatal("a leased request past its deadline left the connection open")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("leased request cut after %v; the deadline is 1.5s", d)
	}
}

// TestRevokeBeforeLease: a revoke that comes before a lease begins (the
// server revokes on reload or shutdown while the hand-over is on its way)
// means the lease is not granted.
func TestRevokeBeforeLease(t *testing.T) {
	l, c := leasedHello(t, stage.Lease{MaxRequests: 10, IdleTimeout: 10 * time.Second})
	revoked := false
	for end := time.Now().Add(2 * time.Second); !revoked && time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		l.conns.Range(func(k, _ any) bool { l.p.(*Host).Revoke(k.(*stage.Conn)); revoked = true; return true })
	}
	if !revoked {
		t.Fatal("the loop never registered the connection")
	}
	c.send("GET /hello/a HTTP/1.1\r\nHost: test\r\n\r\nGET /hello/b HTTP/1.1\r\nHost: test\r\n\r\n")
	for i := 0; i < 2; i++ {
		if r, err := c.read(); err != nil || r.status != 200 {
			t.Fatalf("response %d: %d %v", i, r.status, err)
		}
	}
	if got := l.handles.Load(); got != 2 {
		t.Errorf("%d stage-30 calls, want 2: a revoked connection gets no lease", got)
	}
}

// TestLeaseHandlerReadsInsideTheWait: the SDK serves a leased request
// without a body inside its socket's read wait; a handler that reads the
// client socket anyway gets what a read would (here its deadline's
// timeout) instead of waiting for the held wait forever, and the
// connection goes on.
func TestLeaseHandlerReadsInsideTheWait(t *testing.T) {
	l, c := leasedHello(t, stage.Lease{MaxRequests: 10, IdleTimeout: 10 * time.Second})
	if r := c.get("/hello/a"); r.status != 200 {
		t.Fatalf("/hello/a: %d", r.status)
	}
	if r := c.get("/hello/readidle"); r.status != 200 || !strings.Contains(r.body, "timeout") {
		t.Fatalf("/hello/readidle: %d %q, want the read's timeout", r.status, r.body)
	}
	if r := c.get("/hello/b"); r.status != 200 || !strings.Contains(r.body, "/hello/b") {
		t.Fatalf("/hello/b after it: %d %q", r.status, r.body)
	}
	if got := l.handles.Load(); got != 1 {
		t.Errorf("%d stage-30 calls, want 1: a through the host, the rest leased", got)
	}
}

// TestLeaseHalfCloseAfterARequest: a client that half-closes right after
// a leased request gets its answer, and the connection is closed within
// the lease's hold (the SDK's wait sees the FIN at its next read at the
// latest, see idlewait.Waiter.Serve).
func TestLeaseHalfCloseAfterARequest(t *testing.T) {
	_, c := leasedHello(t, stage.Lease{MaxRequests: 10, IdleTimeout: 10 * time.Second})
	if r := c.get("/hello/a"); r.status != 200 {
		t.Fatalf("/hello/a: %d", r.status)
	}
	c.send("GET /hello/b HTTP/1.1\r\nHost: test\r\n\r\n")
	c.C.(*net.TCPConn).CloseWrite()
	if r, err := c.read(); err != nil || r.status != 200 || !strings.Contains(r.body, "/hello/b") {
		t.Fatalf("/hello/b: %d %q %v", r.status, r.body, err)
	}
	start := time.Now()
	if !c.closed() {
		t.Fatal("connection not closed after the client's FIN")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("closed %v after the answer, want within the 500ms hold", d)
	}
}

// leasedHello starts the hello plugin behind a test loop that grants
// lease, and dials the loop.
func leasedHello(t *testing.T, lease stage.Lease) (*loop, *client) {
	t.Helper()
	hosttest.CheckLeaks(t)
	h := startHost(t, spec(t, t.TempDir(), "hello", ""))
	l := newLoop(t, h)
	l.lease = lease
	return l, dial(t, l.addr())
}
