package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/hosttest"
)

// Bad days under a bounded load (hosttest.Load: keep-alive clients on
// 127.0.0.1, every request with a deadline): the proxy plugin killed with
// SIGKILL, a backend killed mid-response, a backend black-holed, the host
// stopped with SIGTERM. Each test states what the clients may see and
// fails on anything else: a hang, a malformed or cut answer presented as
// complete, a status outside the stated set, or failures beyond the bound.

// checkOnly fails the test for a status outside allowed and for any
// failure (hang, malformed answer, failed check).
func checkOnly(t *testing.T, ls *hosttest.LoadStats, allowed ...int) {
	t.Helper()
	if len(ls.Failures) > 0 {
		t.Errorf("requests that hung or broke: %s", ls)
	}
	for st := range ls.Status {
		if !containsInt(allowed, st) {
			t.Errorf("status %d outside %v: %s", st, allowed, ls)
		}
	}
}

func containsInt(list []int, n int) bool {
	for _, v := range list {
		if v == n {
			return true
		}
	}
	return false
}

// namedBody checks that an answer carries its backend's whole name.
func namedBody(_ []byte, r *http1.Response, body []byte) error {
	if name := r.Header.Get("X-Backend"); name == "" || string(body) != name {
		return fmt.Errorf("status %d from %q with body %q", r.Status, name, body)
	}
	return nil
}

// TestBadDayPluginKilled: SIGKILL of the proxy plugin while 16 keep-alive
// clients send GETs. The host survives and restarts the plugin; every
// request gets 200, 502 or 503 or a closed connection (the leased ones),
// none hangs; every failure falls between the kill and the restart (plus
// the requests already in flight), and afterwards every request is
// proxied again.
func TestBadDayPluginKilled(t *testing.T) {
	hosttest.CheckLeaks(t)
	bs := namedBackends(t, 2)
	s, p := startProxy(t, entryConf("Round-Robin", addrs(bs...)))
	pid := p.PluginPid(t, "", 0)

	var n atomic.Int64
	var killAt atomic.Pointer[time.Time]
	progress := func() {
		if n.Add(1) == 600 {
			now := time.Now()
			killAt.Store(&now)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	ls := hosttest.Load{Addr: s.Addr(), Path: "/api/x", Workers: 16, PerWorker: 150, Pace: 2 * time.Millisecond,
		Check: namedBody, Tally: "X-Backend", Progress: progress}.Run()
	t.Logf("%s", ls)
	kill := killAt.Load()
	if kill == nil {
		t.Fatal("the load ended before the kill")
	}
	checkOnly(t, ls, 200, 502, 503)
	npid := p.PluginPid(t, "", pid)
	if !p.WaitLog("plugin restarted") {
		t.Fatalf("no restart in the log:\n%s", p.Log())
	}
	restarted := time.Now()
	for _, o := range ls.Bad {
		if o.At.Before(*kill) {
			t.Errorf("a failure %v before the kill", kill.Sub(o.At))
		}
	}
	if len(ls.Bad) > 0 {
		last := ls.Bad[len(ls.Bad)-1].At
		t.Logf("%d failures over %v after the kill (restart seen %v after it)", len(ls.Bad),
			last.Sub(*kill).Round(time.Millisecond), restarted.Sub(*kill).Round(time.Millisecond))
		if last.Sub(*kill) > 5*time.Second {
			t.Errorf("failures went on for %v after the kill, want the restart's time (under 5 s)", last.Sub(*kill))
		}
	}
	if ls.Status[200] < 600 {
		t.Errorf("only %d answers of 200", ls.Status[200])
	}
	c := hosttest.Dial(t, s.Addr())
	for range 10 {
		if r := c.Get("/api/y"); r.Status != 200 {
			t.Fatalf("after the restart (pid %d): %d %q", npid, r.Status, r.Body)
		}
	}
	if r := c.Get("/index.html"); r.Status != 200 {
		t.Errorf("static after the restart: %d", r.Status)
	}
	if _, ok := p.Wait(100 * time.Millisecond); ok {
		t.Fatal("the host died with its plugin")
	}
}

// dying is a backend that answers each GET after 2 ms with a 4000-byte
// body in two writes 2 ms apart (so that a kill often lands before an
// answer or mid-body) and can be killed: its listener and every connection
// closed with a reset, as the kernel does for a killed process with unread
// input.
type dying struct {
	*raw
}

const dyingBody = 4000

func newDying(t *testing.T) *dying {
	half := strings.Repeat("d", dyingBody/2)
	head := fmt.Sprintf("HTTP/1.1 200 OK\r\nX-Backend: %s\r\nContent-Length: %d\r\n\r\n", half[:4], dyingBody)
	return &dying{newRaw(t, "", func(c net.Conn, br *bufio.Reader) {
		for {
			req, ok := readHead(br)
			if !ok {
				return
			}
			req.Body.Close()
			time.Sleep(2 * time.Millisecond)
			if _, err := c.Write([]byte(head + half)); err != nil {
				return
			}
			time.Sleep(2 * time.Millisecond)
			if _, err := c.Write([]byte(half)); err != nil {
				return
			}
		}
	})}
}

// TestBadDayBackendKilled: one of two backends is killed while 8 clients
// send GETs, over pooled backend connections and over a new connection
// per request (MaxIdleConns 0). No request gets an error status: one whose
// backend connection is reset before any answer byte is retried (on the
// next server; a pooled one first on a new connection); one whose answer
// had started ends with a closed connection (at most one per client),
// never with a cut body presented as complete. The dead server goes
// offline.
func TestBadDayBackendKilled(t *testing.T) {
	for _, tc := range []struct{ name, pool string }{{"pooled", "MaxIdleConns 64"}, {"fresh", "MaxIdleConns 0"}} {
		t.Run(tc.name, func(t *testing.T) {
			hosttest.CheckLeaks(t)
			d := newDying(t)
			good := newNamed(t, "good", "")
			s, _ := startProxy(t, entryConf("Round-Robin", d.Addr()+" "+good.hostPort(), "AttemptsCount 2",
				"OfflineTimeOut 60", tc.pool))
			var n atomic.Int64
			var once sync.Once
			progress := func() {
				if n.Add(1) >= 300 {
					once.Do(d.Kill)
				}
			}
			check := func(_ []byte, r *http1.Response, body []byte) error {
				if name := r.Header.Get("X-Backend"); name == "dddd" && len(body) == dyingBody {
					return nil
				}
				return namedBody(nil, r, body)
			}
			ls := hosttest.Load{Addr: s.Addr(), Path: "/api/x", Workers: 8, PerWorker: 100, Pace: time.Millisecond,
				Check: check, Tally: "X-Backend", Progress: progress}.Run()
			st := statusJSON(t, s)
			t.Logf("%s; by backend %v", ls, ls.Tally)
			checkOnly(t, ls, 200)
			if ls.Closed > 8 {
				t.Errorf("%d requests cut, want at most one per client (in flight at the kill)", ls.Closed)
			}
			if ls.Tally["dddd"] == 0 || ls.Tally["good"] < 400 {
				t.Errorf("answers by backend %v: want both before the kill, then the good one", ls.Tally)
			}
			if !strings.Contains(st, `"state": "offline"`) {
				t.Errorf("the killed backend is not offline:\n%s", st)
			}
		})
	}
}

// blackHoleBacklog listens with a backlog of 1 and never accepts: the
// first connections complete in the kernel and their requests are never
// read, the next ones never complete.
func blackHoleBacklog(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	hosttest.Must(t, err)
	t.Cleanup(func() { syscall.Close(fd) })
	hosttest.Must(t, syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	hosttest.Must(t, syscall.Listen(fd, 1))
	sa, err := syscall.Getsockname(fd)
	hosttest.Must(t, err)
	return fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}

// TestBadDayBackendBlackHole: one of two backends black-holed, either
// accepting and never answering or never accepting with a full backlog,
// while 8 clients send GETs. A request waiting on it gets 504 within
// ResponseTimeout (a connect that never completes fails over after
// ConnectTimeout), at most one per client before the server is marked
// offline (requests already waiting on it, one per client, and
// AttemptsCount more at most); then everything goes to the other server.
func TestBadDayBackendBlackHole(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr func(t *testing.T) string
	}{
		{"accepts-never-answers", func(t *testing.T) string {
			return newRaw(t, "", func(c net.Conn, br *bufio.Reader) { br.WriteTo(discard{}) }).Addr()
		}},
		{"full-backlog", blackHoleBacklog},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hosttest.CheckLeaks(t)
			hole := tc.addr(t)
			good := newNamed(t, "good", "")
			const rt = 1500 * time.Millisecond
			s, _ := startProxy(t, entryConf("Round-Robin", hole+" "+good.hostPort(), "ResponseTimeout 1500ms",
				"ConnectTimeout 1", "AttemptsCount 2", "OfflineTimeOut 60"))
			ls := hosttest.Load{Addr: s.Addr(), Path: "/api/x", Workers: 8, PerWorker: 30, Pace: 5 * time.Millisecond,
				Check: namedBody, Tally: "X-Backend"}.Run()
			t.Logf("%s", ls)
			checkOnly(t, ls, 200, 504)
			// Before the server is offline: the requests already waiting on
			// it (one per client) and AttemptsCount more at most.
			if ls.Status[504] == 0 || ls.Status[504] > 8+2 {
				t.Errorf("%d answers of 504, want 1 to 10", ls.Status[504])
			}
			for _, o := range ls.Bad {
				if o.Status == 504 && (o.Took < rt-100*time.Millisecond || o.Took > rt+time.Second) {
					t.Errorf("a 504 after %v, want about ResponseTimeout (%v)", o.Took, rt)
				}
			}
			if ls.Slowest > rt+2*time.Second {
				t.Errorf("slowest request %v, want ResponseTimeout or ConnectTimeout plus little", ls.Slowest)
			}
			if st := statusJSON(t, s); !strings.Contains(st, `"state": "offline"`) {
				t.Errorf("the black hole is not offline:\n%s", st)
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// slowCounting is a backend that answers each request after 150 ms with
// its name, counting requests received and answers written in full.
type slowCounting struct {
	*httptest.Server
	received, answered atomic.Int64
}

func newSlowCounting(t *testing.T) *slowCounting {
	b := &slowCounting{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.received.Add(1)
		time.Sleep(150 * time.Millisecond)
		w.Header().Set("X-Backend", "slow")
		if _, err := w.Write([]byte("slow")); err == nil {
			b.answered.Add(1)
		}
	}))
	t.Cleanup(b.Close)
	return b
}

// TestBadDayHostSIGTERM: SIGTERM to the host while 12 keep-alive clients
// (their connections leased to the plugin) wait on a slow backend. Every
// request the backend received is answered to its client in full, the
// host stops accepting and exits 0 as soon as they are done (well within
// ShutdownTimeout), and no request hangs.
func TestBadDayHostSIGTERM(t *testing.T) {
	hosttest.CheckLeaks(t)
	b := newSlowCounting(t)
	s, p := startProxy(t, entryConf("Round-Robin", strings.TrimPrefix(b.URL, "http://")), "ShutdownTimeout 10")
	stop := make(chan struct{})
	var n atomic.Int64
	var once sync.Once
	var termAt time.Time
	var inFlight int64
	progress := func() {
		if n.Add(1) == 48 {
			once.Do(func() {
				time.Sleep(50 * time.Millisecond) // every client waits on the backend again
				termAt, inFlight = time.Now(), b.received.Load()-b.answered.Load()
				p.Signal(syscall.SIGTERM)
				go func() { p.Wait(15 * time.Second); close(stop) }()
			})
		}
	}
	ls := hosttest.Load{Addr: s.Addr(), Path: "/api/x", Workers: 12, PerWorker: 1000, Stop: stop,
		Duration: 20 * time.Second, Check: namedBody, Progress: progress}.Run()
	t.Logf("%s; backend received %d, answered %d; %d in flight at SIGTERM", ls, b.received.Load(),
		b.answered.Load(), inFlight)
	err, ok := p.Wait(5 * time.Second)
	took := time.Since(termAt)
	if !ok || err != nil {
		t.Fatalf("host after SIGTERM: exited %v, err %v\n%s", ok, err, p.Log())
	}
	checkOnly(t, ls, 200)
	// A leased connection's answer in flight at SIGTERM does not say
	// Connection: close (the plugin learns of the shutdown at the next
	// request boundary), so a client may send one more request that the
	// closing connection drops unread: at most one per client, after the
	// SIGTERM, and never one the backend saw (counted below).
	if ls.Closed > 12 {
		t.Errorf("%d requests closed, want at most one per client", ls.Closed)
	}
	for _, o := range ls.Bad {
		if o.At.Before(termAt) {
			t.Errorf("a request closed %v before the SIGTERM", termAt.Sub(o.At))
		}
	}
	if inFlight < 6 {
		t.Errorf("only %d requests in flight at SIGTERM: the test did not test", inFlight)
	}
	if got, rec := int64(ls.Status[200]), b.received.Load(); got != rec || b.answered.Load() != rec {
		t.Errorf("backend received %d, answered %d, clients got %d answers: requests in flight were lost",
			rec, b.answered.Load(), got)
	}
	if _, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		t.Error("the listener still accepts after the host exited")
	}
	if strings.Contains(p.Log(), "still busy after the grace period") {
		t.Errorf("connections cut at the end of ShutdownTimeout:\n%s", p.Log())
	}
	if took > 5*time.Second {
		t.Errorf("exit took %v after SIGTERM, want the time of the requests in flight", took)
	}
}
