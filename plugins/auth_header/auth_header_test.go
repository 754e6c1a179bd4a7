package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/claim"
	"github.com/capuchin/capuchin/internal/hosttest"
)

var bin *hosttest.Bin

func TestMain(m *testing.M) {
	os.Exit(hosttest.Main(m.Run, &bin, "./plugins/auth_header", "./plugins/proxy_reverse"))
}

// get sends one GET of target with the extra head lines on c.
func get(c *hosttest.Client, target string, lines ...string) *hosttest.Response {
	head := "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	for _, l := range lines {
		head += l + "\r\n"
	}
	return c.RoundTrip(head + "\r\n")
}

// want401 checks a 401 answer: challenge, page.
func want401(t *testing.T, what string, r *hosttest.Response, challenge string) {
	t.Helper()
	if r.Status != 401 {
		t.Fatalf("%s: status %d, want 401", what, r.Status)
	}
	if got := r.Header.Get("WWW-Authenticate"); got != challenge {
		t.Fatalf("%s: WWW-Authenticate %q, want %q", what, got, challenge)
	}
	if !strings.Contains(string(r.Body), "401 Unauthorized") || strings.Contains(string(r.Body), "index") {
		t.Fatalf("%s: body %q", what, r.Body)
	}
}

// TestEveryPathNeedsAToken: without Match every request is checked; the
// connection stays usable after a 401, also one with a body.
func TestEveryPathNeedsAToken(t *testing.T) {
	hosttest.CheckLeaks(t)
	s := hosttest.NewSite(t, bin)
	s.Load("auth_header")
	s.WriteFile("auth_header.conf", "[AUTH_HEADER]\n    Token Bearer first-token\n    Token Bearer second token\n")
	s.Start()
	c := hosttest.Dial(t, s.Addr())
	const ch = `Bearer realm="capuchin"`

	want401(t, "no field", get(c, "/index.html"), ch)
	want401(t, "wrong token", get(c, "/index.html", "Authorization: Bearer first-tokenX"), ch)
	want401(t, "prefix of a token", get(c, "/index.html", "Authorization: Bearer first"), ch)
	want401(t, "two fields", get(c, "/index.html", "Authorization: Bearer first-token", "Authorization: Bearer first-token"), ch)
	want401(t, "missing path", get(c, "/nothing"), ch)
	c.Send("POST /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello")
	want401(t, "POST", c.MustRead("POST"), ch)

	for _, h := range []string{"Authorization: Bearer first-token", "authorization:   Bearer second token  ", "AUTHORIZATION: Bearer second token"} {
		if r := get(c, "/index.html", h); r.Status != 200 || string(r.Body) != "<h1>index</h1>\n" {
			t.Fatalf("%q: %d %q", h, r.Status, r.Body)
		}
	}
	if r := get(c, "/nothing", "Authorization: Bearer first-token"); r.Status != 404 {
		t.Fatalf("missing file with a token: %d, want 404", r.Status)
	}
}

// TestMatchHeaderChallenge guards only the matching paths, with another
// field and challenge; spelling a path differently does not get past it.
func TestMatchHeaderChallenge(t *testing.T) {
	hosttest.CheckLeaks(t)
	s := hosttest.NewSite(t, bin)
	s.Load("auth_header")
	s.WriteFile("auth_header.conf", `# API keys
[AUTH_HEADER]
    Header X-Api-Key
    Token k-123
    Match ^/private(/|$)
    Challenge ApiKey realm="test"
`)
	s.WriteRoot("private/data.txt", "secret\n")
	s.Start()
	c := hosttest.Dial(t, s.Addr())

	if r := get(c, "/index.html"); r.Status != 200 {
		t.Fatalf("unguarded path: %d", r.Status)
	}
	for _, p := range []string{"/private", "/private/data.txt", "/PRIVATE/data.txt", "/%70rivate/data.txt", "//private/data.txt", "/x/../private/data.txt"} {
		want401(t, p, get(c, p), `ApiKey realm="test"`)
		want401(t, p+" with Authorization", get(c, p, "Authorization: k-123"), `ApiKey realm="test"`)
	}
	if r := get(c, "/private/data.txt", "X-Api-Key: k-123"); r.Status != 200 || string(r.Body) != "secret\n" {
		t.Fatalf("with the key: %d %q", r.Status, r.Body)
	}
}

// TestGuardsTheProxy: a stage-20 check runs before proxy_reverse; a
// refused request never reaches the backend, an accepted one reaches it
// with its field.
func TestGuardsTheProxy(t *testing.T) {
	hosttest.CheckLeaks(t)
	s, _, hits := guarded(t, "[AUTH_HEADER]\n    Token Bearer t0k3n\n    Match ^/api/\n")
	c := hosttest.Dial(t, s.Addr())

	for i := 0; i < 3; i++ {
		want401(t, "proxied without a token", get(c, "/api/x"), `Bearer realm="capuchin"`)
		r := get(c, "/api/x", "Authorization: Bearer t0k3n")
		if r.Status != 200 || string(r.Body) != "backend saw Bearer t0k3n" {
			t.Fatalf("proxied with the token: %d %q", r.Status, r.Body)
		}
	}
	if n := hits.Load(); n != 3 {
		t.Fatalf("backend got %d requests, want the 3 with a token", n)
	}
	if r := get(c, "/index.html"); r.Status != 200 {
		t.Fatalf("static, unguarded: %d", r.Status)
	}
}

// TestEveryRequestUnderLease: without Match the hook sees every request,
// and proxy_reverse keeps its lease all the same: it asks auth_header
// about each leased request itself (peer calls). Refused requests, one
// with a body among them, get the plugin's 401 and the connection stays
// leased; accepted ones reach the backend; the host asked the plugin only
// about the first request, and every request has its stage-40 count.
func TestEveryRequestUnderLease(t *testing.T) {
	hosttest.CheckLeaks(t)
	s, _, hits := guarded(t, "[AUTH_HEADER]\n    Token Bearer t0k3n\n", "MetricsURL /metrics")
	c := hosttest.Dial(t, s.Addr())

	const rounds = 10
	for i := 0; i < rounds; i++ {
		r := get(c, fmt.Sprintf("/api/%d", i), "Authorization: Bearer t0k3n")
		if r.Status != 200 || string(r.Body) != "backend saw Bearer t0k3n" {
			t.Fatalf("round %d, with the token: %d %q", i, r.Status, r.Body)
		}
		want401(t, "without a token", get(c, "/api/x"), `Bearer realm="capuchin"`)
		c.Send("POST /api/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello")
		want401(t, "POST without a token", c.MustRead("POST"), `Bearer realm="capuchin"`)
	}
	// Past the SDK's hold the lease reports what it served so far, peer
	// calls' times included (Lease.ReportCounts), and goes on; the
	// hand-over's own request counted when the plugin said it answered it.
	mc := hosttest.Dial(t, s.Addr())
	wantScrape(t, mc, []string{
		fmt.Sprintf(`capuchin_leased_requests_total{plugin="proxy_reverse"} %d`, 3*rounds-1),
		fmt.Sprintf(`capuchin_plugin_stage_duration_seconds_count{plugin="auth_header",stage="20"} %d`, 3*rounds),
		fmt.Sprintf(`capuchin_requests_total{class="2xx",handler="proxy_reverse"} %d`, rounds),
		fmt.Sprintf(`capuchin_requests_total{class="4xx",handler="stage20"} %d`, 2*rounds),
	})
	if r := c.RoundTrip("GET /api/last HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"); r.Status != 401 {
		t.Fatalf("last request: %d", r.Status)
	}
	if n := hits.Load(); n != rounds {
		t.Fatalf("backend got %d requests, want the %d with a token", n, rounds)
	}
	// Counted as the host counts requests it runs stage 20 for itself: the
	// first request's call by the host and every leased request's peer call
	// timed at stage 20, and the 401s the peer answered under the lease
	// counted as stage-20 answers, not the lease holder's.
	wantScrape(t, mc, []string{ // the rest come when c closes
		fmt.Sprintf(`capuchin_leased_requests_total{plugin="proxy_reverse"} %d`, 3*rounds),
		fmt.Sprintf(`capuchin_plugin_stage_duration_seconds_count{plugin="auth_header",stage="20"} %d`, 3*rounds+1),
		fmt.Sprintf(`capuchin_requests_total{class="2xx",handler="proxy_reverse"} %d`, rounds),
		fmt.Sprintf(`capuchin_requests_total{class="4xx",handler="proxy_reverse"} %d`, 0),
		fmt.Sprintf(`capuchin_requests_total{class="4xx",handler="stage20"} %d`, 2*rounds+1),
	})
}

// wantScrape scrapes MetricsURL on c until it holds want[0] (5 s at
// most), then wants every line of want in it.
func wantScrape(t *testing.T, c *hosttest.Client, want []string) {
	t.Helper()
	var body string
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		body = string(c.Get("/metrics").Body)
		if strings.Contains(body, want[0]) {
			break
		}
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("scrape lacks %s:\n%s", w, body)
		}
	}
}

// guarded starts auth_header (with authConf) before proxy_reverse, which
// sends ^/api/ to a backend answering "backend saw " and the request's
// Authorization; hits counts the requests it got.
func guarded(t *testing.T, authConf string, server ...string) (s *hosttest.Site, p *hosttest.Proc, hits *atomic.Int64) {
	t.Helper()
	hits = new(atomic.Int64)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprintf(w, "backend saw %s", r.Header.Get("Authorization"))
	}))
	t.Cleanup(be.Close)
	s = hosttest.NewSite(t, bin)
	s.Load("auth_header", "proxy_reverse")
	s.Server = server
	s.WriteFile("auth_header.conf", authConf)
	s.WriteFile("proxy_reverse.conf", "[PROXY_ENTRY]\n    ServerList "+strings.TrimPrefix(be.URL, "http://")+"\n    Match ^/api/\n")
	return s, s.Start(), hits
}

// TestBadConfigStopsStartup: a missing file, no Token, an unknown key and
// a bad pattern each stop the host's start-up with the file (and line).
func TestBadConfigStopsStartup(t *testing.T) {
	for _, tc := range []struct{ conf, want string }{
		{"", "auth_header.conf"},
		{"[AUTH_HEADER]\n    Match ^/api/\n", "no Token"},
		{"[AUTH_HEADER]\n    Token x\n    Secret y\n", "auth_header.conf:3"},
		{"[AUTH_HEADER]\n    Token x\n    Match ^/(api\n", "auth_header.conf:3"},
	} {
		s := hosttest.NewSite(t, bin)
		s.Load("auth_header")
		if tc.conf != "" {
			s.WriteFile("auth_header.conf", tc.conf)
		}
		t.Logf("config %q", tc.conf)
		s.Refused(tc.want)
	}
}

func TestLoadRules(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.conf")
	if _, err := loadRules(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("missing file: %v", err)
	}
	cases := []struct{ text, err string }{
		{"[AUTH_HEADER]\n    Token a\n", ""},
		{"[auth_header]\n    token a\n    HEADER X-Key\n    match ^/a\n    Match ^/b\n    challenge Basic realm=\"x\"\n", ""},
		{"[AUTH_HEADER]\n    Token\n", "a.conf:2"},
		{"[AUTH_HEADER]\n    Token a\n    Header Bad Name\n", "a.conf:3"},
		{"[AUTH_HEADER]\n    Token a\n    Challenge\n", "a.conf:3"},
		{"[OTHER]\n    Token a\n", "a.conf:1"},
		{"[AUTH_HEADER]\n", "no Token"},
	}
	for _, c := range cases {
		hosttest.Must(t, os.WriteFile(p, []byte(c.text), 0o644))
		_, err := loadRules(p)
		if c.err == "" && err != nil {
			t.Errorf("%q: %v", c.text, err)
		}
		if c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%q: got error %v; want one with %s", c.text, err, c.err)
		}
	}
	hosttest.Must(t, os.WriteFile(p, []byte(cases[1].text), 0o644))
	r, err := loadRules(p)
	hosttest.Must(t, err)
	if r.header != "X-Key" || r.challenge != `Basic realm="x"` || r.guarded("/c") || !r.guarded("/A/x") || !r.guarded("//b") {
		t.Fatalf("rules %+v", r)
	}
}

// TestFilterCoversGuarded: the stage-20 filter declared with Match takes
// every path guarded takes (a miss would let a request through unchecked),
// over many spellings; without Match it declares no narrowing at all.
func TestFilterCoversGuarded(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a.conf")
	hosttest.Must(t, os.WriteFile(p, []byte("[AUTH_HEADER]\n    Token a\n    Match ^/api(/|$)\n    Match \\.json$\n"), 0o644))
	r, err := loadRules(p)
	hosttest.Must(t, err)
	a := &authHeader{rules: r}
	c := a.RequestFilter()
	f, err := claim.Compile(c.Paths, c.Hosts, c.Methods)
	hosttest.Must(t, err)
	segs := []string{"", ".", "..", "api", "API", "x", "y.json", "y.JSON", "apis"}
	rng := rand.New(rand.NewPCG(3, 4))
	guarded := 0
	for range 50000 {
		parts := make([]string, 1+rng.IntN(6))
		for i := range parts {
			parts[i] = segs[rng.IntN(len(segs))]
		}
		for _, path := range []string{"/" + strings.Join(parts, "/"), strings.Join(parts, "/")} {
			if !r.guarded(path) {
				continue
			}
			guarded++
			if !f.Match(&http1.Request{Method: "GET", Path: path}) {
				t.Fatalf("%q is guarded but the stage-20 filter misses it", path)
			}
		}
	}
	if guarded < 100 || f.Match(&http1.Request{Method: "GET", Path: "/public/x"}) {
		t.Fatalf("%d guarded paths tried; /public/x matched: %v", guarded, f.Match(&http1.Request{Path: "/public/x"}))
	}
	hosttest.Must(t, os.WriteFile(p, []byte("[AUTH_HEADER]\n    Token a\n"), 0o644))
	if a.rules, err = loadRules(p); err != nil || len(a.RequestFilter().Paths) != 0 {
		t.Fatalf("without Match the filter must take every request: %+v %v", a.RequestFilter(), err)
	}
}

// TestKilledUnderLeasedLoad: auth_header killed under a keep-alive load
// that proxy_reverse serves under leases, asking auth_header itself: the
// calls in flight and the requests until it is back get the policy's 503
// (fail-closed), none hangs or loses its connection, none reaches the
// backend unchecked, and once restarted it checks again.
func TestKilledUnderLeasedLoad(t *testing.T) {
	hosttest.CheckLeaks(t)
	s, p, hits := guarded(t, "[AUTH_HEADER]\n    Token Bearer t0k3n\n")
	pid := p.PluginPid(t, "auth_header", 0)

	var done atomic.Int64
	killed := make(chan struct{})
	ls := hosttest.Load{Addr: s.Addr(), Workers: 8, PerWorker: 250, Pace: time.Millisecond,
		Next: func(w, i int) ([]byte, string) {
			return []byte("GET /api/x HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer t0k3n\r\n\r\n"), "GET"
		},
		Progress: func() {
			if done.Add(1) == 400 {
				hosttest.Must(t, syscall.Kill(pid, syscall.SIGKILL))
				close(killed)
			}
		}}.Run()
	t.Logf("%s", ls)
	select {
	case <-killed:
	default:
		t.Fatal("the load ended before the kill")
	}
	if len(ls.Failures) > 0 || ls.Closed > 0 {
		t.Errorf("requests that hung, broke or lost their connection: %s", ls)
	}
	for st := range ls.Status {
		if st != 200 && st != 503 {
			t.Errorf("status %d: %s", st, ls)
		}
	}
	if ls.Status[503] == 0 {
		t.Errorf("no 503 while auth_header was down: %s", ls)
	}
	if n := hits.Load(); n != int64(ls.Status[200]) {
		t.Errorf("the backend got %d requests, the clients %d answers of 200: a request passed unchecked", n, ls.Status[200])
	}
	if !p.WaitLog("plugin restarted") {
		t.Fatalf("no restart:\n%s", p.Log())
	}
	c := hosttest.Dial(t, s.Addr())
	for end := time.Now().Add(5 * time.Second); get(c, "/api/x", "Authorization: Bearer t0k3n").Status != 200; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("requests never passed after the restart")
		}
	}
	want401(t, "after the restart, without a token", get(c, "/api/x"), `Bearer realm="capuchin"`)
}
