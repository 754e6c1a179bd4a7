package integration

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// TestPluginReloadUnderLoad: SIGHUP adds and removes a stage-30 plugin
// four times while 4 keep-alive clients keep asking for /hello/x; the
// first time its binary is dropped into the plugin directory. Every
// request gets 200, from the static file or from the plugin; no request
// fails and no connection is dropped under a request.
func TestPluginReloadUnderLoad(t *testing.T) {
	pluginTest(t)
	s := newSite(t)
	s.WriteRoot("hello/x", "static-x")
	dir := ownPluginDir(t)
	s.LoadFrom(dir)
	p := s.StartChecked()

	var n atomic.Int64
	stop := make(chan struct{})
	res := make(chan *hosttest.LoadStats, 1)
	go func() {
		res <- loadRun(hosttest.Load{Addr: s.Addr(), Path: "/hello/x", Workers: 4, PerWorker: 5000, Pace: 2 * time.Millisecond,
			Stop: stop, Progress: func() { n.Add(1) }})
	}()
	waitProgress := func(k int64) {
		target := n.Load() + k
		if !hosttest.Poll(5*time.Second, func() bool { return n.Load() >= target }) {
			t.Errorf("load stalled at %d requests", n.Load())
		}
	}
	for i := 1; i <= 4; i++ {
		waitProgress(100)
		if i == 1 {
			must(t, copyExec(filepath.Join(testPlugins(t), "hello"), filepath.Join(dir, "hello")))
		}
		if i%2 == 1 {
			s.LoadFrom(dir, "hello")
		} else {
			s.LoadFrom(dir)
		}
		p.Signal(syscall.SIGHUP)
		if !p.WaitLogCount("configuration reloaded", i) {
			t.Errorf("reload %d not done:\n%s", i, p.Log())
		}
	}
	waitProgress(100)
	close(stop)
	ls := <-res
	t.Logf("%d requests: %s, bodies %v", n.Load(), ls, ls.Bodies)
	if ls.Closed > 0 || ls.Refused > 0 || len(ls.Failures) > 0 || len(ls.Status) != 1 || ls.Status[200] == 0 {
		t.Errorf("failed requests across the reloads: %s (closed: %v)\n%s", ls, ls.Bad, p.Log())
	}
	if ls.Bodies["static-x"] == 0 || ls.Bodies["hello GET /hello"] == 0 {
		t.Errorf("want answers from both the static file and the plugin, got %v", ls.Bodies)
	}
}

// pipelined is one write of eight requests: chunked and sized bodies to the
// plugin, static requests between, a decline, a chunked response.
const pipelined = "POST /hello/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\n\r\n" +
	"GET /hello/b HTTP/1.1\r\nHost: x\r\n\r\n" +
	"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n" +
	"POST /hello/c HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
	"GET /hello/decline HTTP/1.1\r\nHost: x\r\n\r\n" +
	"GET /hello/d?chunked HTTP/1.1\r\nHost: x\r\n\r\n" +
	"POST /hello/e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\nX-Trailer: t\r\n\r\n" +
	"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"

var pipelinedWant = []struct{ method, body string }{
	{"POST", `hello POST /hello/a vhost=%s body="abcdefg"`},
	{"GET", `hello GET /hello/b vhost=%s body=""`},
	{"GET", "<h1>hello</h1>\n"},
	{"POST", `hello POST /hello/c vhost=%s body="hello"`},
	{"GET", "static-decline"},
	{"GET", `hello GET /hello/d vhost=%s body=""`},
	{"POST", `hello POST /hello/e vhost=%s body="z"`},
	{"GET", "<h1>hello</h1>\n"},
}

// TestPluginPipelining: pipelined requests with chunked and sized bodies,
// plugin-claimed and static ones interleaved, all in one write, are
// answered in order — under a lease (only hello loaded) and with a plain
// hand-over per request (gate hooks stage 20, so no lease is offered).
// Then bodies that arrive in pieces after the hand-over, one of 64 KiB.
func TestPluginPipelining(t *testing.T) {
	pluginTest(t)
	for _, set := range [][]string{{"hello"}, {"gate", "hello"}} {
		t.Run(strings.Join(set, "+"), func(t *testing.T) {
			s := newSite(t)
			s.WriteRoot("hello/decline", "static-decline")
			s.LoadFrom(testPlugins(t), set...)
			s.StartChecked()
			c := dial(t, s.Addr())
			c.Send(pipelined)
			vhost := ""
			for i, w := range pipelinedWant {
				r := c.MustRead(w.method)
				if vhost == "" && strings.HasPrefix(string(r.Body), "hello ") {
					_, v, _ := strings.Cut(string(r.Body), "vhost=")
					vhost, _, _ = strings.Cut(v, " ")
				}
				want := w.body
				if strings.Contains(want, "%s") {
					want = fmt.Sprintf(want, vhost)
				}
				if r.Status != 200 || string(r.Body) != want || r.Close {
					t.Fatalf("response %d: %d close=%v %q, want 200 %q", i+1, r.Status, r.Close, r.Body, want)
				}
			}
			sendInPieces(t, c)
		})
	}
}

// sendInPieces sends bodies whose bytes arrive after the hand-over: the
// plugin reads them from the socket itself.
func sendInPieces(t *testing.T, c *client) {
	t.Helper()
	c.Send("POST /hello/f HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab")
	time.Sleep(50 * time.Millisecond)
	c.Send("\r\n3\r\ncde\r\n")
	time.Sleep(50 * time.Millisecond)
	c.Send("0\r\n\r\nGET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.MustRead("POST"); r.Status != 200 || !strings.HasSuffix(string(r.Body), `body="abcde"`) {
		t.Fatalf("chunked body in pieces: %d %q", r.Status, r.Body)
	}
	if r := c.MustRead("GET"); r.Status != 200 || string(r.Body) != "<h1>hello</h1>\n" {
		t.Fatalf("static after it: %d %q", r.Status, r.Body)
	}
	big := strings.Repeat("0123456789abcdef", 4096) // 64 KiB
	c.Send(fmt.Sprintf("POST /hello/g HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(big)))
	for off := 0; off < len(big); off += 16384 {
		c.Send(big[off : off+16384])
		time.Sleep(10 * time.Millisecond)
	}
	c.Send("GET /hello/h HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.MustRead("POST"); r.Status != 200 || !strings.HasSuffix(string(r.Body), fmt.Sprintf("body=%q", big)) {
		t.Fatalf("64 KiB body: %d, %d bytes", r.Status, len(r.Body))
	}
	if r := c.MustRead("GET"); r.Status != 200 || !strings.HasPrefix(string(r.Body), "hello GET /hello/h ") {
		t.Fatalf("request after the 64 KiB body: %d %q", r.Status, r.Body)
	}
}

// TestPluginShutdownWithLease: SIGTERM while the plugin holds an idle
// keep-alive connection under a lease: the lease is revoked and the host
// exits at once, not after KeepAliveTimeout (30 s here).
func TestPluginShutdownWithLease(t *testing.T) {
	pluginTest(t)
	s := newSite(t)
	s.Server = []string{"KeepAliveTimeout 30", "ShutdownTimeout 20"}
	dir := ownPluginDir(t, "hello")
	s.LoadFrom(dir, "hello")
	p := s.StartChecked()
	leased := dial(t, s.Addr())
	for _, path := range []string{"/hello/a", "/hello/b"} {
		if r := leased.Get(path); r.Status != 200 {
			t.Fatalf("%s: %d", path, r.Status)
		}
	}
	idle := dial(t, s.Addr())
	if r := idle.Get("/index.html"); r.Status != 200 {
		t.Fatalf("static: %d", r.Status)
	}
	time.Sleep(100 * time.Millisecond) // both connections are idle now
	start := time.Now()
	p.Signal(syscall.SIGTERM)
	err, ok := p.Wait(5 * time.Second)
	took := time.Since(start)
	if !ok || err != nil {
		t.Fatalf("exit after SIGTERM: %v (exited: %v)\n%s", err, ok, p.Log())
	}
	t.Logf("exited %v after SIGTERM", took.Round(time.Millisecond))
	if took > 1500*time.Millisecond {
		t.Errorf("exit took %v with a leased idle connection, want about a second at most\n%s", took, p.Log())
	}
	if !leased.Closed(time.Second) || !idle.Closed(time.Second) {
		t.Error("a client connection is still open after the host exited")
	}
	if !hosttest.Poll(5*time.Second, func() bool { return len(pidsRunning(dir)) == 0 }) {
		t.Errorf("plugin still running after the host exited: %v", pidsRunning(dir))
	}
}

// TestPluginRemovedWhileLeased: a reload that removes the plugin holding an
// idle keep-alive connection under a lease gets the connection back first:
// the next request on it is served (by the static file) and the reload
// does not wait for the lease.
func TestPluginRemovedWhileLeased(t *testing.T) {
	pluginTest(t)
	s := newSite(t)
	s.WriteRoot("hello/x", "static-x")
	s.Server = []string{"KeepAliveTimeout 30"}
	dir := testPlugins(t)
	s.LoadFrom(dir, "hello")
	p := s.StartChecked()
	c := dial(t, s.Addr())
	for range 2 {
		if r := c.Get("/hello/x"); r.Status != 200 || !strings.HasPrefix(string(r.Body), "hello GET") {
			t.Fatalf("before: %d %q", r.Status, r.Body)
		}
	}
	s.LoadFrom(dir)
	start := time.Now()
	p.Signal(syscall.SIGHUP)
	if !p.WaitLog("configuration reloaded") {
		t.Fatalf("no reload:\n%s", p.Log())
	}
	t.Logf("reload took %v", time.Since(start).Round(time.Millisecond))
	c.Send("GET /hello/x HTTP/1.1\r\nHost: x\r\n\r\n")
	r, err := c.Read("GET")
	if err != nil || r.Status != 200 || string(r.Body) != "static-x" {
		t.Fatalf("leased connection after the plugin's removal: %v %v", err, r)
	}
}
