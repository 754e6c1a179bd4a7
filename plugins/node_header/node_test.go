package nodeheader

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

var bin *hosttest.Bin

// missing says why the Node.js plugin cannot run here, or "".
func missing() string {
	if _, err := exec.LookPath("node"); err != nil {
		return "node not found in PATH: install Node.js 18 or later (Debian: nodejs npm) to run the node_header tests; .ci/run does"
	}
	if _, err := os.Stat(filepath.Join("node_modules", "@grpc", "grpc-js", "package.json")); err != nil {
		return "plugins/node_header/node_modules missing: run `npm ci` in plugins/node_header (make plugins does when npm exists)"
	}
	return ""
}

func TestMain(m *testing.M) {
	if missing() != "" {
		os.Exit(m.Run()) // every test skips with the reason
	}
	os.Exit(hosttest.Main(m.Run, &bin, "./plugins/proxy_reverse"))
}

// site skips the test when Node.js is missing, else installs the plugin's
// wrapper (as make plugins does) and returns a site that loads it with conf
// as node_header.conf (none when conf is "").
func site(t *testing.T, conf string) *hosttest.Site {
	t.Helper()
	if why := missing(); why != "" {
		if os.Getenv("CI") != "" {
			t.Fatal(why + " (CI is set: .ci/run installs them, so this is a fault)")
		}
		t.Skip(why)
	}
	main, err := filepath.Abs("main.js")
	hosttest.Must(t, err)
	wrapper := fmt.Sprintf("#!/bin/sh\nexec node %q \"$@\"\n", main)
	hosttest.Must(t, os.WriteFile(filepath.Join(bin.Dir, "node_header"), []byte(wrapper), 0o755))
	s := hosttest.NewSite(t, bin)
	s.Load("node_header")
	if conf != "" {
		s.WriteFile("node_header.conf", conf)
	}
	return s
}

const keyConf = "[HEADER]\n    Name X-Api-Key\n    Value s3cret\n    Value other key\n"

// req is a GET of / with extra header lines.
func req(extra string) string {
	return "GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + "\r\n"
}

// expect reads one response and checks its status (and the index page on 200).
func expect(t *testing.T, c *hosttest.Client, what string, status int) {
	t.Helper()
	r := c.MustRead("GET")
	if r.Status != status {
		t.Fatalf("%s: status %d, want %d", what, r.Status, status)
	}
	if status == 200 && string(r.Body) != "<h1>index</h1>\n" {
		t.Fatalf("%s: body %q", what, r.Body)
	}
	if status != 200 && len(r.Body) == 0 {
		t.Fatalf("%s: %d without the site's error page", what, status)
	}
}

// TestNodeHeaderVerdicts: on one keep-alive connection, every request
// reaches the plugin and its verdict decides: no header or a wrong value
// gets 401, an accepted value the file. The connection stays usable.
func TestNodeHeaderVerdicts(t *testing.T) {
	hosttest.CheckLeaks(t)
	s := site(t, keyConf)
	p := s.StartChecked()
	// The plugin's hclog JSON lines arrive as log lines of their level,
	// with their fields (in any order).
	const configured = "[INFO]  capuchin.plugins.node_header: configured:"
	if !p.WaitLogCount(configured, 1) {
		t.Fatalf("no configured line from the plugin; log:\n%s", p.Log())
	}
	line := p.Log()[strings.Index(p.Log(), configured):]
	line = line[:strings.IndexByte(line, '\n')]
	for _, f := range []string{" header=X-Api-Key", " values=2", " status=401"} {
		if !strings.Contains(line, f) {
			t.Errorf("%q missing in %q", f, line)
		}
	}
	c := hosttest.Dial(t, s.Addr())
	cases := []struct {
		extra  string
		status int
	}{
		{"", 401},
		{"X-Api-Key: s3cret\r\n", 200},
		{"X-Api-Key: wrong\r\n", 401},
		{"x-api-key:   other key  \r\n", 200},
		{"X-Api-Key:\r\n", 401},
		{"X-Other: s3cret\r\n", 401},
		{"X-Api-Key: wrong\r\nX-Api-Key: s3cret\r\n", 200},
	}
	for i, tc := range cases {
		c.Send(req(tc.extra))
		expect(t, c, fmt.Sprintf("request %d (%q)", i, tc.extra), tc.status)
	}
	// Pipelined in one write: each request is asked about on its own.
	var all strings.Builder
	for _, tc := range cases {
		all.WriteString(req(tc.extra))
	}
	c.Send(all.String())
	for i, tc := range cases {
		expect(t, c, fmt.Sprintf("pipelined %d (%q)", i, tc.extra), tc.status)
	}
}

// TestNodeHeaderManyConnections: requests on several connections at once,
// alternating with and without the key; none without it gets through.
func TestNodeHeaderManyConnections(t *testing.T) {
	hosttest.CheckLeaks(t)
	s := site(t, keyConf)
	s.StartChecked()
	const conns, each = 8, 25
	clients := make([]*hosttest.Client, conns)
	for i := range clients {
		clients[i] = hosttest.Dial(t, s.Addr())
	}
	for n := 0; n < each; n++ {
		for i, c := range clients {
			if (n+i)%2 == 0 {
				c.Send(req("X-Api-Key: s3cret\r\n"))
			} else {
				c.Send(req(""))
			}
		}
		for i, c := range clients {
			want := 401
			if (n+i)%2 == 0 {
				want = 200
			}
			expect(t, c, fmt.Sprintf("conn %d request %d", i, n), want)
		}
	}
}

// TestNodeHeaderStatusAnyValue: without Value lines any non-empty value
// passes; Status sets the rejection's status.
func TestNodeHeaderStatusAnyValue(t *testing.T) {
	hosttest.CheckLeaks(t)
	s := site(t, "# any token\n[HEADER]\n    Name Authorization\n    Status 403\n")
	s.StartChecked()
	c := hosttest.Dial(t, s.Addr())
	c.Send(req("Authorization: Bearer x\r\n"))
	expect(t, c, "with a value", 200)
	c.Send(req(""))
	expect(t, c, "without", 403)
	c.Send(req("Authorization: \r\n"))
	expect(t, c, "empty value", 403)
}

// TestNodeHeaderConfigErrors: a bad or missing node_header.conf stops the
// host's start-up with the plugin's file:line: key: message.
func TestNodeHeaderConfigErrors(t *testing.T) {
	cases := []struct{ conf, want string }{
		{"[HEADER]\n    Name X-Api-Key\n    Status 200\n", "node_header.conf:3: Status:"},
		{"[HEADER]\n    Nme X-Api-Key\n", "node_header.conf:2: Nme: unknown key (Name, Value, Status)"},
		{"[HEADER]\n    Value x\n", "node_header.conf: Name: missing"},
		{"[AUTH]\n", "node_header.conf:1: unknown section [AUTH]"},
		{"", "node_header.conf: cannot read: ENOENT"},
	}
	for _, tc := range cases {
		s := site(t, tc.conf)
		t.Logf("config %q", tc.conf)
		s.Refused(tc.want)
	}
}

// TestNodeHeaderCrashFailsClosed: with the plugin killed, no request
// without the key gets through (fail-closed: 503 while it is down); the
// host restarts it and its verdicts hold again.
func TestNodeHeaderCrashFailsClosed(t *testing.T) {
	hosttest.CheckLeaks(t)
	s := site(t, keyConf)
	p := s.StartChecked()
	pid := onlyChild(t, p)
	hosttest.Must(t, syscall.Kill(pid, syscall.SIGKILL))
	restarted := false
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end) && !restarted; {
		c := hosttest.Dial(t, s.Addr())
		c.Send(req(""))
		if r := c.MustRead("GET"); r.Status != 401 && r.Status != 503 {
			t.Fatalf("without the key while the plugin restarts: %d", r.Status)
		}
		c.Send(req("X-Api-Key: s3cret\r\n"))
		r, err := c.Read("GET")
		restarted = err == nil && r.Status == 200
		c.C.Close()
		time.Sleep(20 * time.Millisecond)
	}
	if !restarted {
		t.Fatalf("plugin not back after a crash; log:\n%s", p.Log())
	}
	if got := onlyChild(t, p); got == pid {
		t.Fatalf("still the killed process %d", pid)
	}
	c := hosttest.Dial(t, s.Addr())
	c.Send(req(""))
	expect(t, c, "after the restart", 401)
}

// TestNodeHeaderExitsWithHost: when the host is killed outright, the
// plugin process ends too.
func TestNodeHeaderExitsWithHost(t *testing.T) {
	s := site(t, keyConf)
	p := s.Start()
	pid := onlyChild(t, p)
	p.Kill()
	p.Wait(10 * time.Second)
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			return
		}
	}
	t.Fatalf("plugin process %d outlived the host", pid)
}

// onlyChild returns the host's one plugin process: node itself (the
// wrapper execs it).
func onlyChild(t *testing.T, p *hosttest.Proc) int {
	t.Helper()
	pids, err := p.Children()
	hosttest.Must(t, err)
	if len(pids) != 1 {
		t.Fatalf("plugin processes: %v", pids)
	}
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pids[0]))
	if strings.TrimSpace(string(comm)) != "node" {
		t.Fatalf("plugin process %d is %q, want node", pids[0], comm)
	}
	return pids[0]
}

// TestNodeOperatorCalls: a plugin in another language that implements
// neither Metrics nor Reopen (grpc-js answers UNIMPLEMENTED) is left out of
// the scrape without an error, and SIGUSR1 reopens nothing without a
// failure; the scrape itself is not guarded by the stage-20 header check.
func TestNodeOperatorCalls(t *testing.T) {
	s := site(t, keyConf)
	s.Server = []string{"MetricsURL /metrics"}
	p := s.Start()
	c := hosttest.Dial(t, s.Addr())
	c.Send(req("X-Api-Key: s3cret\r\n"))
	expect(t, c, "with the key", 200)
	r := c.Get("/metrics") // without the key: the host answers before stage 20
	if r.Status != 200 || !strings.Contains(string(r.Body), `capuchin_plugin_stage_duration_seconds_count{plugin="node_header",stage="20"} 1`) {
		t.Fatalf("scrape: %d\n%s", r.Status, r.Body)
	}
	p.Signal(syscall.SIGUSR1)
	if !p.WaitLog("plugins reopened their files") {
		t.Fatalf("no reopen:\n%s", p.Log())
	}
	if log := p.Log(); strings.Contains(log, "metrics scrape incomplete") || strings.Contains(log, "reopen failed") {
		t.Errorf("the plugin's missing calls were taken for failures:\n%s", log)
	}
}

// TestNodeHeaderUnderLease: the Node.js plugin takes peer calls on the
// socket the host names (no descriptor passing), so proxy_reverse keeps
// its lease and asks it about every leased request itself (the host asks
// it only about the first request); refused requests get its status and
// never reach the backend; every request is counted.
func TestNodeHeaderUnderLease(t *testing.T) {
	var hits atomic.Int64
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, "backend")
	}))
	defer be.Close()
	s := site(t, keyConf)
	s.Load("node_header", "proxy_reverse")
	s.Server = []string{"MetricsURL /metrics"}
	s.WriteFile("proxy_reverse.conf", "[PROXY_ENTRY]\n    ServerList "+strings.TrimPrefix(be.URL, "http://")+"\n    Match ^/api/\n")
	s.Start()
	c := hosttest.Dial(t, s.Addr())
	const rounds = 10
	for i := 0; i < rounds; i++ {
		r := c.RoundTrip(fmt.Sprintf("GET /api/%d HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Api-Key: s3cret\r\n\r\n", i))
		if r.Status != 200 || string(r.Body) != "backend" {
			t.Fatalf("round %d with the key: %d %q", i, r.Status, r.Body)
		}
		if r := c.RoundTrip("GET /api/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); r.Status != 401 {
			t.Fatalf("round %d without the key: %d", i, r.Status)
		}
	}
	c.RoundTrip("GET /api/last HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
	if n := hits.Load(); n != rounds {
		t.Fatalf("backend got %d requests, want the %d with the key", n, rounds)
	}
	// One lease served every request after the first, and the 401s the
	// plugin answered under it count as stage-20 answers: the holder asked
	// it (each of its calls timed at stage 20 like the host's one).
	want := []string{
		fmt.Sprintf(`capuchin_leased_requests_total{plugin="proxy_reverse"} %d`, 2*rounds),
		`capuchin_leases_granted_total{plugin="proxy_reverse"} 1`,
		fmt.Sprintf(`capuchin_requests_total{class="4xx",handler="stage20"} %d`, rounds+1), // the last one has no key
		fmt.Sprintf(`capuchin_plugin_stage_duration_seconds_count{plugin="node_header",stage="20"} %d`, 2*rounds+1),
	}
	mc := hosttest.Dial(t, s.Addr())
	var body string
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if body = string(mc.Get("/metrics").Body); strings.Contains(body, want[0]) {
			break
		}
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("scrape lacks %s", w)
		}
	}
}
