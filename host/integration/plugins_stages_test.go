package integration

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// TestPluginStage10And20: the gate plugin closes connections from
// 127.0.0.2 at stage 10 without a byte, answers /deny itself at stage 20
// (and the connection stays usable), and closes on /gate-close.
func TestPluginStage10And20(t *testing.T) {
	pluginTest(t)
	s := newSite(t)
	s.LoadFrom(testPlugins(t), "gate")
	s.StartChecked()

	c2 := dialFrom(t, "127.0.0.2", s.Addr())
	c2.SendQuiet("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if !c2.Closed(3 * time.Second) {
		t.Error("stage 10: connection from 127.0.0.2 not closed silently")
	}

	c := dial(t, s.Addr())
	if r := c.Get("/"); r.Status != 200 || string(r.Body) != "<h1>hello</h1>\n" {
		t.Fatalf("stage 10 continue: %d %q", r.Status, r.Body)
	}
	r := c.Get("/deny")
	if r.Status != 403 || string(r.Body) != "denied" || !strings.HasPrefix(r.Header.Get("X-Gate"), "denied ") {
		t.Errorf("stage 20 respond: %d %q X-Gate=%q", r.Status, r.Body, r.Header.Get("X-Gate"))
	}
	if r.Close {
		t.Error("stage 20 respond closed the connection")
	}
	if r := c.Get("/index.html"); r.Status != 200 {
		t.Errorf("after a stage-20 reply: %d", r.Status)
	}
	c.Send("GET /gate-close HTTP/1.1\r\nHost: x\r\n\r\n")
	if !c.Closed(3 * time.Second) {
		t.Error("stage 20 close: connection not closed without a response")
	}
}

// TestPluginStage20ReplyHead: a stage-20 reply with a status the core
// never uses itself (418) gets its registered reason phrase, Date and
// Server, with and without a body of its own.
func TestPluginStage20ReplyHead(t *testing.T) {
	pluginTest(t)
	s := newSite(t)
	s.LoadFrom(testPlugins(t), "gate")
	s.StartChecked()
	c := dial(t, s.Addr())
	for _, path := range []string{"/teapot", "/teapot-body"} {
		r := c.Get(path)
		if r.Status != 418 || r.Reason != "I'm a teapot" || !strings.HasPrefix(r.Header.Get("Server"), "capuchin") ||
			r.Header.Get("Date") == "" {
			t.Errorf("%s: status line %q, Server %q, Date %q", path, strings.SplitN(r.Raw, "\r\n", 2)[0],
				r.Header.Get("Server"), r.Header.Get("Date"))
		}
		if path == "/teapot-body" && string(r.Body) != "short and stout" ||
			path == "/teapot" && !strings.Contains(string(r.Body), "<h1>418 I'm a teapot</h1>") {
			t.Errorf("%s: body %q", path, r.Body)
		}
	}
}

// TestPluginStage30Verdicts: handled, decline (falls through to the static
// file), close with the plugin's status, close without one (403), and a
// plugin's log line in the host's log under its name.
func TestPluginStage30Verdicts(t *testing.T) {
	pluginTest(t)
	s := newSite(t)
	s.WriteRoot("hello/decline", "static-decline")
	s.LoadFrom(testPlugins(t), "hello", "closer")
	p := s.StartChecked()
	pid := pluginPid(t, s, "hello", 0)

	c := dial(t, s.Addr())
	r := c.Get("/hello/x")
	if r.Status != 200 || !strings.HasPrefix(string(r.Body), `hello GET /hello/x vhost=`) ||
		r.Header.Get("X-Plugin-Pid") != strconv.Itoa(pid) {
		t.Fatalf("handled: %d %q pid %q (want %d)", r.Status, r.Body, r.Header.Get("X-Plugin-Pid"), pid)
	}
	if r := c.Get("/hello/decline"); r.Status != 200 || string(r.Body) != "static-decline" {
		t.Errorf("decline: %d %q, want the static file", r.Status, r.Body)
	}
	if r := c.Get("/hello/x?chunked"); r.Status != 200 || !strings.HasPrefix(string(r.Body), "hello GET") {
		t.Errorf("chunked response after a decline: %d %q", r.Status, r.Body)
	}
	r = c.Get("/hello/close")
	if r.Status != 418 || !strings.Contains(string(r.Body), "<h1>") || !r.Close || !c.Closed(3*time.Second) {
		t.Errorf("close with status: %d close=%v %q", r.Status, r.Close, r.Body)
	}

	for _, req := range []string{
		"GET /hello/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		"GET /hello/x HTTP/1.0\r\n\r\n",
	} {
		c = dial(t, s.Addr())
		r = c.RoundTrip(req)
		if r.Status != 200 || !r.Close || !c.Closed(3*time.Second) {
			t.Errorf("%q: %d close=%v, want 200 and the connection closed", req, r.Status, r.Close)
		}
	}

	c = dial(t, s.Addr())
	r = c.Get("/closer/log")
	if r.Status != 403 || !strings.Contains(string(r.Body), "<h1>") || !c.Closed(3*time.Second) {
		t.Errorf("close without status: %d %q, want a 403 page and a close", r.Status, r.Body)
	}
	if !p.WaitLog("closer-marker-7f3a") {
		t.Fatalf("the plugin's log line is not in the host's log:\n%s", p.Log())
	}
	for _, line := range strings.Split(p.Log(), "\n") {
		if strings.Contains(line, "closer-marker-7f3a") && !strings.Contains(line, "plugins.closer") {
			t.Errorf("plugin log line not under the plugin's name: %q", line)
		}
	}
}

// TestPluginStage40And50: the notes plugin gets a stage-40 record of every
// request on a connection (host-served, handed over and served under a
// lease) and a stage-50 notice when it closes.
func TestPluginStage40And50(t *testing.T) {
	pluginTest(t)
	s, notes := notesSite(t)
	s.StartChecked()

	c := dial(t, s.Addr())
	for _, path := range []string{"/index.html", "/hello/a", "/hello/b", "/missing"} {
		c.Get(path)
	}
	c.C.Close()

	// testplug writes "done CONNID CLIENTIP METHOD TARGET STATUS BYTES".
	want := []*regexp.Regexp{
		regexp.MustCompile(`^done (\d+) 127\.0\.0\.1 GET /index.html 200 \d+$`),
		regexp.MustCompile(`^done (\d+) 127\.0\.0\.1 GET /hello/a 200 \d+$`),
		regexp.MustCompile(`^done (\d+) 127\.0\.0\.1 GET /hello/b 200 \d+$`),
		regexp.MustCompile(`^done (\d+) 127\.0\.0\.1 GET /missing 404 \d+$`),
	}
	var lines []string
	ok := hosttest.Poll(5*time.Second, func() bool {
		b, _ := os.ReadFile(notes)
		lines = strings.Split(strings.TrimSpace(string(b)), "\n")
		id := ""
		for _, re := range want {
			m := matchAny(re, lines)
			if m == nil || (id != "" && m[1] != id) {
				return false
			}
			id = m[1]
		}
		return hasLine(lines, "closed "+id)
	})
	if !ok {
		t.Fatalf("notes file lacks the stage-40 records or the stage-50 notice:\n%s", strings.Join(lines, "\n"))
	}
}

func matchAny(re *regexp.Regexp, lines []string) []string {
	for _, l := range lines {
		if m := re.FindStringSubmatch(l); m != nil {
			return m
		}
	}
	return nil
}

func hasLine(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}

// TestPluginLoadOrder: two stage-30 plugins claim /hello; the first in
// plugins.load answers. Swapped and reloaded, the other one does, and both
// processes are kept across the reload.
func TestPluginLoadOrder(t *testing.T) {
	pluginTest(t)
	s := newSite(t)
	dir := testPlugins(t)
	s.LoadFrom(dir, "hello", "helloopen")
	p := s.StartChecked()
	first, second := pluginPid(t, s, "hello", 0), pluginPid(t, s, "helloopen", 0)

	answeredBy := func() string {
		c := dial(t, s.Addr())
		defer c.C.Close()
		r := c.Get("/hello/x")
		if r.Status != 200 {
			t.Fatalf("status %d", r.Status)
		}
		return r.Header.Get("X-Plugin-Pid")
	}
	if got := answeredBy(); got != strconv.Itoa(first) {
		t.Fatalf("answered by pid %s, want hello's %d (helloopen is %d)", got, first, second)
	}
	s.LoadFrom(dir, "helloopen", "hello")
	p.Signal(syscall.SIGHUP)
	if !p.WaitLog("configuration reloaded") {
		t.Fatalf("no reload:\n%s", p.Log())
	}
	if got := answeredBy(); got != strconv.Itoa(second) {
		t.Fatalf("after the swap answered by pid %s, want helloopen's %d", got, second)
	}
	if a, b := pluginPid(t, s, "hello", 0), pluginPid(t, s, "helloopen", 0); a != first || b != second {
		t.Errorf("unchanged plugins restarted by the reload: %d→%d, %d→%d", first, a, second, b)
	}
}

// TestPluginClaimFilter: requests the claim filter does not match (other
// paths, an unanchored look-alike, another method) cost no handler call.
// hello reports its call count in X-Plugin-Calls.
func TestPluginClaimFilter(t *testing.T) {
	pluginTest(t)
	s := newSite(t)
	s.WriteRoot("x/hello", "static")
	s.LoadFrom(testPlugins(t), "hello")
	s.StartChecked()

	calls := func(r *response) int {
		t.Helper()
		n, err := strconv.Atoi(r.Header.Get("X-Plugin-Calls"))
		if r.Status != 200 || err != nil {
			t.Fatalf("matched request: %d, X-Plugin-Calls %q", r.Status, r.Header.Get("X-Plugin-Calls"))
		}
		return n
	}
	unmatched := []string{
		"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /x/hello HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /Hello HTTP/1.1\r\nHost: x\r\n\r\n",
		"OPTIONS /hello/x HTTP/1.1\r\nHost: x\r\n\r\n",
		"DELETE /hello/x HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n",
	}
	// Same connection (the plugin may hold it under a lease between
	// matched requests) and fresh connections.
	c := dial(t, s.Addr())
	before := calls(c.Get("/hello/a"))
	for i := 0; i < 10; i++ {
		for _, req := range unmatched {
			if r := c.RoundTrip(req); r.Header.Has("X-Plugin-Calls") || r.Close {
				t.Fatalf("unmatched %q answered by the plugin or closed: %d %v", req, r.Status, r.Header)
			}
		}
	}
	for i := 0; i < 20; i++ {
		fresh := dial(t, s.Addr())
		fresh.RoundTrip(unmatched[i%len(unmatched)])
		fresh.C.Close()
	}
	mid := calls(c.Get("/hello/b"))
	after := calls(dial(t, s.Addr()).Get("/hello/c"))
	if mid != before+1 || after != before+2 {
		t.Fatalf("handler calls %d, %d, %d around 80 unmatched requests; want consecutive", before, mid, after)
	}
}

// TestPluginDeadlines: a handler slower than its deadline gets its policy:
// fail-closed answers 503, fail-open falls through to the static file; the
// same at stage 20. Stage 30 is tried with a request that closes (no lease
// offered), with a keep-alive one (a lease offered) and later in a lease.
// The cases run in parallel, each against its own host.
func TestPluginDeadlines(t *testing.T) {
	pluginTest(t)
	testPlugins(t) // build once, before the parallel cases
	cases := []struct {
		name, plugin, path string
		keepAlive          bool
		status             int
		body               string
	}{
		{"30 fail-closed", "hello", "/hello/slow", false, 503, ""},
		{"30 fail-open", "helloopen", "/hello/slow", false, 200, "static-slow"},
		{"30 fail-closed leased", "hello", "/hello/slow", true, 503, ""},
		{"30 fail-open leased", "helloopen", "/hello/slow", true, 200, "static-slow"},
		{"30 fail-closed later in a lease", "hello", "/hello/slow", true, 503, ""},
		{"30 fail-open later in a lease", "helloopen", "/hello/slow", true, 200, "static-slow"},
		{"20 fail-closed", "gate", "/gate-slow", true, 503, ""},
		{"20 fail-open", "gateopen", "/gate-slow", true, 200, "static-gate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSite(t)
			s.WriteRoot("hello/slow", "static-slow")
			s.WriteRoot("gate-slow", "static-gate")
			s.LoadFrom(testPlugins(t), tc.plugin)
			s.StartChecked()
			c := dial(t, s.Addr())
			if strings.Contains(tc.name, "later") {
				if r := c.Get("/hello/x"); r.Status != 200 {
					t.Fatalf("first request: %d", r.Status)
				}
			}
			req := "GET " + tc.path + " HTTP/1.1\r\nHost: x\r\n"
			if !tc.keepAlive {
				req += "Connection: close\r\n"
			}
			start := time.Now()
			r := c.RoundTrip(req + "\r\n")
			took := time.Since(start)
			if r.Status != tc.status || tc.body != "" && string(r.Body) != tc.body {
				t.Fatalf("%s: %d %q, want %d %q", tc.path, r.Status, r.Body, tc.status, tc.body)
			}
			// Deadlines: 1.5 s at 30, 0.4 s at 20; the plugin sleeps 3 s / 2 s.
			if took > 2500*time.Millisecond {
				t.Errorf("answered after %v: the deadline did not cut the call", took)
			}
			t.Logf("%s %s: %d after %v", tc.plugin, tc.path, r.Status, took.Round(time.Millisecond))
		})
	}
}

// fileLines reads the file's lines (for the access log).
func fileLines(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// TestRealPlugins: the shipped mandril, logger and hello together under
// the real host: mandril's stage-20 403, hello's greeting, the static
// fallback, and every request in logger's access log.
func TestRealPlugins(t *testing.T) {
	pluginTest(t)
	s := newSite(t)
	access := filepath.Join(s.Dir, "access.log")
	s.WriteFile("mandril.conf", "[MANDRIL]\n    DenyIP 203.0.113.0/24\n    DenyURL ^/private(/|$)\n")
	s.WriteFile("logger.conf", "[LOGGER]\n    AccessLog "+access+"\n    FlushInterval 50\n")
	s.WriteFile("realhello.conf", "[HELLO]\n    Message hi from e2e\n")
	s.LoadFrom(testPlugins(t), "mandril", "logger", "realhello")
	p := s.StartChecked()

	c := dial(t, s.Addr())
	if r := c.Get("/private/x"); r.Status != 403 {
		t.Errorf("mandril DenyURL: %d", r.Status)
	}
	if r := c.Get("/hello"); r.Status != 200 || string(r.Body) != "hi from e2e\n" {
		t.Errorf("hello: %d %q", r.Status, r.Body)
	}
	if r := c.Get("/index.html"); r.Status != 200 {
		t.Errorf("static: %d", r.Status)
	}
	want := []string{"GET /private/x HTTP/1.1 403 ", "GET /hello HTTP/1.1 200 ", "GET /index.html HTTP/1.1 200 "}
	var lines []string
	if !hosttest.Poll(5*time.Second, func() bool {
		lines = fileLines(access)
		return len(lines) >= len(want)
	}) {
		t.Fatalf("access log has %d lines, want %d:\n%s\nhost log:\n%s", len(lines), len(want), strings.Join(lines, "\n"), p.Log())
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], "127.0.0.1 - [") || !strings.Contains(lines[i], w) {
			t.Errorf("access log line %d: %q, want it to contain %q", i+1, lines[i], w)
		}
	}
}
