package pluginhost

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/capuchin/capuchin/host/config"
)

func TestClaimFilterMakesNoCallForUnmatched(t *testing.T) {
	checkGoroutines(t)
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
	checkGoroutines(t)
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

func TestLoadOrder(t *testing.T) {
	checkGoroutines(t)
	for _, order := range [][]string{{"hello", "helloopen"}, {"helloopen", "hello"}} {
		dir := t.TempDir()
		a, b := spec(t, dir, order[0], ""), spec(t, dir, order[1], "")
		h := startHost(t, a, b)
		c := dial(t, newLoop(t, h).addr())
		r := c.get("/hello/who")
		if got := r.header.Get("X-Plugin-Pid"); got != strconv.Itoa(pidOf(t, a)) {
			t.Errorf("order %v: answered by pid %s, want the first plugin %d", order, got, pidOf(t, a))
		}
		// Declined by the first, declined by the second: static.
		if r := c.get("/hello/decline"); !strings.HasPrefix(r.body, "static") {
			t.Errorf("double decline: %q", r.body)
		}
	}
}

// TestDeadlineFailurePolicy: a missed deadline gets the plugin's policy,
// on both call paths.
func TestDeadlineFailurePolicy(t *testing.T) {
	for _, cp := range callPaths {
		t.Run(cp.name, func(t *testing.T) { testDeadlineFailurePolicy(t, cp.suffix) })
	}
}

func testDeadlineFailurePolicy(t *testing.T, suffix string) {
	checkGoroutines(t)
	dir := t.TempDir()
	closed := startHost(t, spec(t, dir, "gate"+suffix, ""), spec(t, dir, "hello"+suffix, ""))
	c := dial(t, newLoop(t, closed).addr())
	if r := c.get("/gate-slow"); r.status != 503 {
		t.Errorf("stage 20 fail-closed: %d %q", r.status, r.body)
	}
	if r := c.get("/hello/slow"); r.status != 503 {
		t.Errorf("stage 30 fail-closed: %d %q", r.status, r.body)
	}
	open := startHost(t, spec(t, dir, "gateopen"+suffix, ""), spec(t, dir, "helloopen"+suffix, ""))
	c = dial(t, newLoop(t, open).addr())
	if r := c.get("/gate-slow"); r.status != 200 || !strings.HasPrefix(r.body, "static") {
		t.Errorf("stage 20 fail-open: %d %q", r.status, r.body)
	}
	if r := c.get("/hello/slow"); r.status != 200 || !strings.HasPrefix(r.body, "static") {
		t.Errorf("stage 30 fail-open: %d %q", r.status, r.body)
	}
}

func TestStartErrors(t *testing.T) {
	checkGoroutines(t)
	dir := t.TempDir()
	cases := []struct {
		spec config.PluginSpec
		want string
	}{
		{config.PluginSpec{Name: "nope", Path: filepath.Join(dir, "nope"), Where: "plugins.load:7"}, "no such file"},
		{spec(t, dir, "badhandshake", ""), "Unrecognized remote plugin message"},
		{spec(t, dir, "wrongversion", ""), "incompatible API version"},
		{spec(t, dir, "gate", "bad"), "gate.conf:1: bad is not a setting"},
	}
	for _, tc := range cases {
		good := spec(t, dir, "hello", "")
		h, err := Start([]config.PluginSpec{good, tc.spec}, nil)
		if err == nil {
			h.Shutdown(context.Background())
			t.Errorf("%s: started", tc.spec.Name)
			continue
		}
		msg := err.Error()
		var ce *ConfigError
		if errors.As(err, &ce) {
			// A configuration error is the plugin's one line, naming its
			// file once, not the Load line.
			if !strings.HasSuffix(msg, tc.want) || strings.Count(msg, ".conf") != 1 {
				t.Errorf("%s: configuration error %q, want one line ending %q", tc.spec.Name, msg, tc.want)
			}
		} else if !strings.Contains(msg, tc.spec.Where) || !strings.Contains(msg, "plugin "+tc.spec.Name) ||
			!strings.Contains(msg, tc.want) {
			t.Errorf("%s: error %q lacks %q, the plugin or its Load line", tc.spec.Name, msg, tc.want)
		}
		waitFor(t, "first plugin stopped", func() bool { return gone(pidOf(t, good)) })
	}
}

// gone reports whether pid no longer runs (a zombie counts as gone).
func gone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] == "Z"
}

func TestCrashRestart(t *testing.T) {
	checkGoroutines(t)
	dir := t.TempDir()
	s := spec(t, dir, "hello", "")
	h := startHost(t, s)
	l := newLoop(t, h)
	pid := pidOf(t, s)

	// In flight with the response started: the connection just closes.
	c := dial(t, l.addr())
	c.send("GET /hello/hang HTTP/1.1\r\nHost: test\r\n\r\n")
	var resp strings.Builder
	br := c.br
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("hang head: %q %v", line, err)
	}
	resp.WriteString(line)
	syscall.Kill(pid, syscall.SIGKILL)
	if !c.closed() {
		t.Error("connection open after the plugin crashed mid-response")
	}

	// In flight before any byte: 502.
	waitFor(t, "restart", func() bool { p := readPid(s); return p != 0 && p != pid })
	pid = readPid(s)
	// The pid file is written at Configure; the host takes the plugin back
	// a moment later.
	waitFor(t, "served after the restart", func() bool { return dial(t, l.addr()).get("/hello/up").status == 200 })
	c = dial(t, l.addr())
	c.send("GET /hello/slow HTTP/1.1\r\nHost: test\r\n\r\n")
	time.Sleep(300 * time.Millisecond)
	syscall.Kill(pid, syscall.SIGKILL)
	if r, err := c.read(); err != nil || r.status != 502 {
		t.Errorf("crash before any byte: %d %v", r.status, err)
	}
	if len(l.results()) != 2 {
		t.Errorf("Err results = %v, want 2", l.results())
	}

	// Served again after the restart.
	waitFor(t, "second restart", func() bool { p := readPid(s); return p != 0 && p != pid })
	waitFor(t, "served again", func() bool {
		c := dial(t, l.addr())
		return c.get("/hello/again").status == 200
	})
}

func readPid(s config.PluginSpec) int {
	b, _ := os.ReadFile(s.Config + ".pid")
	n, _ := strconv.Atoi(string(b))
	return n
}

func TestHostSIGKILLLeavesNoPlugin(t *testing.T) {
	dir := t.TempDir()
	s := spec(t, dir, "hello", "")
	cmd := exec.Command(filepath.Join(binDir, "tinyhost"), s.Path, s.Config)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("tinyhost: %q %v", line, err)
	}
	pid := pidOf(t, s)
	if gone(pid) {
		t.Fatal("plugin not running")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	waitFor(t, "plugin to die with its host", func() bool { return gone(pid) })
}

func TestReload(t *testing.T) {
	checkGoroutines(t)
	dir := t.TempDir()
	hello, gate := spec(t, dir, "hello", ""), spec(t, dir, "gate", "")
	h := startHost(t, hello)
	l := newLoop(t, h)
	helloPid := pidOf(t, hello)

	// Load runs during every reload: no request may fail.
	var stop atomic.Bool
	var failures, done atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 2000 && !stop.Load(); n++ {
				c := dial(t, l.addr())
				c.send("GET /static HTTP/1.1\r\nHost: test\r\n\r\n")
				if r, err := c.read(); err != nil || r.status != 200 {
					failures.Add(1)
				}
				c.c.Close()
				done.Add(1)
			}
		}()
	}

	if err := h.Reload([]config.PluginSpec{hello, gate}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, l.addr())
	if r := c.get("/deny"); r.status != 403 {
		t.Errorf("added gate: %d", r.status)
	}
	if pidOf(t, hello) != helloPid {
		t.Error("unchanged plugin was restarted")
	}
	missing := config.PluginSpec{Name: "missing", Path: filepath.Join(dir, "missing"), Where: "plugins.load:3"}
	if err := h.Reload([]config.PluginSpec{missing}); err == nil || !strings.Contains(err.Error(), "plugins.load:3") {
		t.Errorf("reload with a missing plugin: %v", err)
	}
	if r := c.get("/deny"); r.status != 403 {
		t.Errorf("old set not kept after a failed reload: %d", r.status)
	}
	if err := h.Reload([]config.PluginSpec{gate}); err != nil {
		t.Fatal(err)
	}
	if r := c.get("/hello/x"); !strings.HasPrefix(r.body, "static") {
		t.Errorf("removed plugin still answers: %q", r.body)
	}
	waitFor(t, "removed plugin to exit", func() bool { return gone(helloPid) })
	stop.Store(true)
	wg.Wait()
	if failures.Load() > 0 || done.Load() == 0 {
		t.Errorf("%d of %d requests failed during reloads", failures.Load(), done.Load())
	}
	if errs := l.results(); len(errs) > 0 {
		t.Error(errors.Join(errs...))
	}
}

func TestSDKFraming(t *testing.T) {
	checkGoroutines(t)
	dir := t.TempDir()
	h := startHost(t, spec(t, dir, "hello", ""))
	c := dial(t, newLoop(t, h).addr())
	// HEAD: the head announces the length, no body follows.
	c.send("HEAD /hello/h HTTP/1.1\r\nHost: test\r\n\r\nGET /hello/g HTTP/1.1\r\nHost: test\r\n\r\n")
	line, _ := c.br.ReadString('\n')
	for l := line; l != "\r\n"; l, _ = c.br.ReadString('\n') {
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
