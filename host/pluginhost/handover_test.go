package pluginhost

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/host/stage"
	"github.com/capuchin/capuchin/internal/hosttest"
)

// Hand-over tests: which requests reach a stage-30 plugin, and the bytes
// around them (pipelined and chunked requests, the SDK's framing).

func TestClaimFilterMakesNoCallForUnmatched(t *testing.T) {
	hosttest.CheckLeaks(t)
	dir := t.TempDir()
	h := startHost(t, spec(t, dir, "hello", ""))
	c := dial(t, newLoop(t, h).addr())
	for _, p := range []string{"/", "/x/hello", "/hell", "/index.html"} {
		if r := c.get(p); !strings.HasPrefix(r.body, "static GET") {
			t.Errorf("%s: %q", p, r.body)
		}
	}
	c.send("DELETE /hello/x HTTP/1.1\r\nHost: test\r\n\r\n") // method not claimed
	if r, err := c.read(); err != nil || !strings.HasPrefix(r.body, "static DELETE") {
		t.Errorf("DELETE: %v %q", err, r.body)
	}
	// The plugin counts its calls: this is its first.
	if r := c.get("/hello/count"); r.header.Get("X-Plugin-Calls") != "1" {
		t.Errorf("plugin calls = %q, want 1", r.header.Get("X-Plugin-Calls"))
	}
	if r := c.get("/hello/count"); r.header.Get("X-Plugin-Calls") != "2" {
		t.Errorf("plugin calls = %q, want 2", r.header.Get("X-Plugin-Calls"))
	}
}

func TestPipelinedAndChunkedAcrossHandover(t *testing.T) {
	hosttest.CheckLeaks(t)
	dir := t.TempDir()
	h := startHost(t, spec(t, dir, "hello", ""))
	l := newLoop(t, h)
	c := dial(t, l.addr())
	// One write: a chunked POST to the plugin, a Content-Length POST to the
	// plugin, a request for the static handler, and a last plugin request.
	c.send("POST /hello/a HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: y\r\n\r\n" +
		"POST /hello/b HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\n\r\nabc" +
		"POST /static HTTP/1.1\r\nHost: test\r\nContent-Length: 2\r\n\r\nzz" +
		"GET /hello/c HTTP/1.1\r\nHost: test\r\n\r\n")
	want := []string{`hello POST /hello/a vhost=default body="hello, world"`,
		`hello POST /hello/b vhost=default body="abc"`, `static POST /static body="zz"`,
		`hello GET /hello/c vhost=default body=""`}
	for _, w := range want {
		r, err := c.read()
		if err != nil || r.body != w {
			t.Fatalf("got %q (%v), want %q", r.body, err, w)
		}
	}
	// A body sent in pieces after the head, on the kept connection.
	c.send("POST /hello/d HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab")
	time.Sleep(50 * time.Millisecond)
	c.send("c\r\n0\r\n\r\nGET /after HTTP/1.1\r\nHost: test\r\n\r\n")
	for _, w := range []string{`hello POST /hello/d vhost=default body="abc"`, `static GET /after body=""`} {
		if r, err := c.read(); err != nil || r.body != w {
			t.Fatalf("got %q (%v), want %q", r.body, err, w)
		}
	}
}

func TestSDKFraming(t *testing.T) {
	hosttest.CheckLeaks(t)
	dir := t.TempDir()
	h := startHost(t, spec(t, dir, "hello", ""))
	c := dial(t, newLoop(t, h).addr())
	// HEAD: the head announces the length, no body follows.
	c.send("HEAD /hello/h HTTP/1.1\r\nHost: test\r\n\r\nGET /hello/g HTTP/1.1\r\nHost: test\r\n\r\n")
	line, _ := c.BR.ReadString('\n')
	for l := line; l != "\r\n"; l, _ = c.BR.ReadString('\n') {
		if strings.HasPrefix(l, "Content-Length: ") && l == "Content-Length: 0\r\n" {
			t.Error("HEAD lost its Content-Length")
		}
	}
	if r, err := c.read(); err != nil || r.body != `hello GET /hello/g vhost=default body=""` {
		t.Errorf("after HEAD: %q %v", r.body, err)
	}
	// Expect: 100-continue is answered before the body is read.
	c.send("POST /hello/e HTTP/1.1\r\nHost: test\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
	if r, err := c.read(); err != nil || r.status != 100 {
		t.Fatalf("expect: %d %v", r.status, err)
	}
	c.send("ok")
	if r, err := c.read(); err != nil || r.body != `hello POST /hello/e vhost=default body="ok"` {
		t.Errorf("after 100: %q %v", r.body, err)
	}
	// HTTP/1.0 without keep-alive: the response closes the connection.
	c.send("GET /hello/old HTTP/1.0\r\n\r\n")
	r, err := c.read()
	if err != nil || r.status != 200 || !strings.EqualFold(r.header.Get("Connection"), "close") {
		t.Errorf("HTTP/1.0: %d %v %v", r.status, r.header, err)
	}
	if !c.closed() {
		t.Error("HTTP/1.0 connection kept")
	}
}

// holdCheck is a Host that looks, when each stage-30 call returns, whether
// the plugin process pid holds a descriptor of the connection's socket.
type holdCheck struct {
	*Host
	pid  int
	mu   sync.Mutex
	held []bool // per call, in order
}

func (w *holdCheck) Handle(c *stage.Conn, req *http1.Request, ho *stage.Handoff) stage.Result {
	res := w.Host.Handle(c, req, ho)
	var sock string
	if raw, err := c.TCP.SyscallConn(); err == nil {
		raw.Control(func(fd uintptr) { sock, _ = os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd)) })
	}
	held := false
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", w.pid))
	for _, fd := range fds {
		if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", w.pid, fd.Name())); sock != "" && l == sock {
			held = true
		}
	}
	w.mu.Lock()
	w.held = append(w.held, held)
	w.mu.Unlock()
	return res
}

// A plugin that answers a request and closes the connection closes its
// copy of the socket before it replies (Reply.Released): once the host
// has the reply, the plugin holds no descriptor of it, and needs no Note
// to let it go. A connection kept open stays with the plugin until the
// host's Note.
func TestCloseReplyReleasesPluginCopy(t *testing.T) {
	hosttest.CheckLeaks(t)
	dir := t.TempDir()
	sp := spec(t, dir, "hello", "")
	w := &holdCheck{Host: startHost(t, sp), pid: pidOf(t, sp)}
	c := dial(t, newLoop(t, w).addr())
	if r := c.get("/hello/kept"); !strings.HasPrefix(r.body, "hello GET /hello/kept") {
		t.Fatalf("first request: %q", r.body)
	}
	c.send("GET /hello/last HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
	if r, err := c.read(); err != nil || !strings.HasPrefix(r.body, "hello GET /hello/last") {
		t.Fatalf("closing request: %q, %v", r.body, err)
	}
	if _, err := c.BR.ReadByte(); err != io.EOF {
		t.Fatalf("after the closing request: %v, want EOF", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.held) != 2 || !w.held[0] || w.held[1] {
		t.Fatalf("plugin holds the socket after each call: %v, want [true false]", w.held)
	}
}
