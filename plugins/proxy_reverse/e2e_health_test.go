package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// checked is a backend with a health endpoint: /health (and /ready) answer
// 200 "status: ok" while it is healthy and 503 "status: sick" otherwise,
// or 200 "status: degraded" when degraded; every other path answers its
// name (with status 500 when the path contains "boom"). It counts the check requests per path and the other requests.
type checked struct {
	*httptest.Server
	name     string
	sick     atomic.Bool
	degraded atomic.Bool
	mu       sync.Mutex
	checks   map[string]int
	hits     atomic.Int64
}

func newChecked(t *testing.T, name, addr string) *checked {
	t.Helper()
	b := &checked{name: name, checks: map[string]int{}}
	b.Server = httptest.NewUnstartedServer(b)
	if addr != "" {
		var l net.Listener
		// The port was just freed by the previous incarnation.
		ok := hosttest.Poll(5*time.Second, func() bool {
			var err error
			l, err = net.Listen("tcp", addr)
			return err == nil
		})
		if !ok {
			t.Fatalf("cannot listen again on %s", addr)
		}
		b.Listener.Close()
		b.Listener = l
	}
	b.Start()
	t.Cleanup(b.Close)
	return b
}

func (b *checked) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/health" || r.URL.Path == "/ready" {
		b.mu.Lock()
		b.checks[r.URL.Path]++
		b.mu.Unlock()
		switch {
		case b.sick.Load():
			w.WriteHeader(503)
			io.WriteString(w, "status: sick")
		case b.degraded.Load():
			io.WriteString(w, "status: degraded")
		default:
			io.WriteString(w, "status: ok")
		}
		return
	}
	b.hits.Add(1)
	io.Copy(io.Discard, r.Body)
	if strings.Contains(r.URL.Path, "boom") {
		w.WriteHeader(500)
	}
	io.WriteString(w, b.name)
}

func (b *checked) checkCount(path string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.checks[path]
}

func (b *checked) hostPort() string { return b.Listener.Addr().String() }

// srvStatus is a server of the status page's JSON.
type srvStatus struct {
	Addr        string  `json:"addr"`
	State       string  `json:"state"`
	Status      string  `json:"status"`
	StatusText  string  `json:"status_text"`
	Share       float64 `json:"share"`
	Requests    uint64  `json:"requests"`
	Failures    uint64  `json:"failures"`
	Consecutive int     `json:"consecutive_failures"`
	LastMinute  struct {
		Requests uint64  `json:"requests"`
		Errors   uint64  `json:"errors"`
		P50      float64 `json:"p50_ms"`
	} `json:"last_1m"`
	Check *struct {
		Down   bool   `json:"down"`
		Checks uint64 `json:"checks"`
		Failed uint64 `json:"failed"`
		LastOK bool   `json:"last_ok"`
		Reason string `json:"last_reason"`
	} `json:"check"`
}

// servers returns the status page's servers of every entry.
func servers(t *testing.T, s *hosttest.Site) [][]srvStatus {
	t.Helper()
	var page struct {
		Entries []struct {
			HealthCheck string      `json:"health_check"`
			Servers     []srvStatus `json:"servers"`
		} `json:"entries"`
	}
	if err := json.Unmarshal([]byte(statusJSON(t, s)), &page); err != nil {
		t.Fatal(err)
	}
	var out [][]srvStatus
	for _, e := range page.Entries {
		out = append(out, e.Servers)
	}
	return out
}

// waitStatus waits until the first entry's server at addr shows status.
func waitStatus(t *testing.T, s *hosttest.Site, addr, status string) srvStatus {
	t.Helper()
	var last srvStatus
	if !hosttest.Poll(10*time.Second, func() bool {
		for _, srv := range servers(t, s)[0] {
			if srv.Addr == addr {
				last = srv
			}
		}
		return last.Status == status
	}) {
		t.Fatalf("%s: status %q (%s), want %q", addr, last.Status, last.StatusText, status)
	}
	return last
}

// load sends requests to url from its own goroutine until stop is called,
// and reports the failures and the backends that answered.
type load struct {
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	sent    int
	failed  []string
	answers map[string]int
}

func startLoad(t *testing.T, url string) *load {
	l := &load{stop: make(chan struct{}), done: make(chan struct{}), answers: map[string]int{}}
	c := client(t, true, "")
	go func() {
		defer close(l.done)
		for {
			select {
			case <-l.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			resp, err := c.Get(url)
			var body []byte
			if err == nil {
				body, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			l.mu.Lock()
			l.sent++
			switch {
			case err != nil:
				l.failed = append(l.failed, err.Error())
			case resp.StatusCode != 200:
				l.failed = append(l.failed, fmt.Sprintf("%d %s", resp.StatusCode, body))
			default:
				l.answers[string(body)]++
			}
			l.mu.Unlock()
		}
	}()
	t.Cleanup(l.end)
	return l
}

// end stops the load and waits for its goroutine.
func (l *load) end() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
}

// healthConf is entryConf with a check of /health every 100ms, Round-Robin;
// extra keys override the check's rise and fall (2 and 3).
func healthConf(servers string, extra ...string) string {
	keys := []string{"HealthCheck GET /health", "HealthInterval 100ms", "HealthTimeout 1s"}
	joined := strings.Join(extra, "\n")
	if !strings.Contains(joined, "HealthFall") {
		keys = append(keys, "HealthFall 3")
	}
	if !strings.Contains(joined, "HealthRise") {
		keys = append(keys, "HealthRise 2")
	}
	return entryConf("Round-Robin", servers, append(keys, extra...)...)
}

// A backend whose health check starts failing is taken out after Fall
// failed checks, while requests go on without one failing; once it is gone
// entirely it gets no connection attempt (no passive failure is counted);
// restarted and healthy, it is back after Rise good checks without a
// request probing it, and takes traffic again.
func TestE2EHealthCheckTakesOutAndBringsBack(t *testing.T) {
	a, b := newChecked(t, "a", ""), newChecked(t, "b", "")
	s, p := startProxy(t, healthConf(a.hostPort()+" "+b.hostPort()))
	aAddr := a.hostPort()
	hosttest.Poll(5*time.Second, func() bool { return a.checkCount("/health") > 0 })
	l := startLoad(t, s.URL("/api/x"))
	hosttest.Poll(5*time.Second, func() bool { return a.hits.Load() > 3 })

	checksBefore := a.checkCount("/health")
	a.sick.Store(true)
	down := waitStatus(t, s, aAddr, "down")
	if n := a.checkCount("/health") - checksBefore; n < 3 {
		t.Fatalf("down after %d failed checks, want HealthFall 3", n)
	}
	if down.State != "offline" || !strings.Contains(down.StatusText, "down by health check: HTTP 503, want 200-399") {
		t.Fatalf("down server: %+v", down)
	}
	if !p.WaitLog("server down by health check") {
		t.Fatalf("no log of the transition:\n%s", p.Log())
	}
	hits := a.hits.Load()
	time.Sleep(300 * time.Millisecond)
	if got := a.hits.Load(); got != hits {
		t.Fatalf("a down server got %d requests", got-hits)
	}
	a.Close() // gone entirely: requests must not even try it
	time.Sleep(300 * time.Millisecond)

	a2 := newChecked(t, "a", aAddr)
	up := waitStatus(t, s, aAddr, "up")
	if up.Check.Checks < 2 || !up.Check.LastOK || a2.checkCount("/health") < 2 {
		t.Fatalf("up after %d checks: %+v", a2.checkCount("/health"), up)
	}
	hosttest.Poll(5*time.Second, func() bool { return a2.hits.Load() > 3 })
	l.end()
	if len(l.failed) > 0 || a2.hits.Load() == 0 {
		t.Fatalf("%d of %d requests failed (%v); a got %d after recovery", len(l.failed), l.sent, l.failed, a2.hits.Load())
	}
	if srv := waitStatus(t, s, aAddr, "up"); srv.Failures != 0 {
		t.Fatalf("a down server was tried: %d passive failures", srv.Failures)
	}
}

// A TCP check: a backend that stops listening is down (the reason says
// why); when every server is down the entry answers 503 at once.
func TestE2EHealthCheckTCP(t *testing.T) {
	a := newChecked(t, "a", "")
	conf := entryConf("First-Alive", a.hostPort(), "HealthCheck tcp", "HealthInterval 100ms", "HealthFall 2", "HealthRise 1")
	s, _ := startProxy(t, conf)
	up := waitStatus(t, s, a.hostPort(), "up")
	hosttest.Poll(5*time.Second, func() bool {
		up = servers(t, s)[0][0]
		return up.Check.Checks > 0
	})
	if up.Check.Reason != "connected" || a.checkCount("/health") != 0 {
		t.Fatalf("tcp check: %+v, %d HTTP checks", up.Check, a.checkCount("/health"))
	}
	a.Close()
	down := waitStatus(t, s, a.hostPort(), "down")
	if !strings.Contains(down.Check.Reason, "connection refused") {
		t.Fatalf("reason %q", down.Check.Reason)
	}
	c := client(t, false, "")
	if st, body := get(t, c, s.URL("/api/x")); st != 503 || !strings.Contains(body, "offline") {
		t.Fatalf("every server down: %d %q", st, body)
	}
	if srv := servers(t, s)[0][0]; srv.Failures != 0 {
		t.Fatalf("a down server was connected to: %d failures", srv.Failures)
	}
}

// HealthBody: a 200 answer without the expected text is a failed check.
func TestE2EHealthCheckBody(t *testing.T) {
	a, b := newChecked(t, "a", ""), newChecked(t, "b", "")
	s, _ := startProxy(t, healthConf(a.hostPort()+" "+b.hostPort(), "HealthBody status: ok"))
	waitStatus(t, s, a.hostPort(), "up")
	a.degraded.Store(true)
	down := waitStatus(t, s, a.hostPort(), "down")
	if !strings.Contains(down.Check.Reason, `HTTP 200, body lacks "status: ok"`) {
		t.Fatalf("reason %q", down.Check.Reason)
	}
	c := client(t, true, "")
	for _, got := range sequence(t, c, s.URL("/api/x"), 6) {
		if got != "b" {
			t.Fatalf("a degraded server answered: %q", got)
		}
	}
	a.degraded.Store(false)
	waitStatus(t, s, a.hostPort(), "up")
}

// A server listed in several entries with the same check is checked once:
// the backend sees as many check requests as one checker sends, and every
// entry shows the same count. An entry with another check for it runs its
// own. A reload to a configuration without checks stops them.
func TestE2EHealthCheckSharedAddress(t *testing.T) {
	a := newChecked(t, "a", "")
	conf := "[PROXY_DEFAULTS]\n    StatisticsURL /proxy_stats\n    ServerList " + a.hostPort() + "\n" +
		"    HealthCheck GET /health\n    HealthInterval 50ms\n"
	for i := 0; i < 5; i++ {
		conf += fmt.Sprintf("[PROXY_ENTRY]\n    Match ^/e%d/\n", i)
	}
	conf += "[PROXY_ENTRY]\n    Match ^/other/\n    HealthCheck GET /ready\n"
	s, p := startProxy(t, conf)
	time.Sleep(time.Second)
	all := servers(t, s)
	got := a.checkCount("/health")
	first := all[0][0].Check.Checks
	if got < 5 || int(first) > got || got > int(first)+2 {
		t.Fatalf("backend got %d checks of /health, one checker reports %d", got, first)
	}
	for i, e := range all[:5] {
		if c := e[0].Check.Checks; c+2 < first || c > first+2 {
			t.Fatalf("entry %d reports %d checks, entry 0 %d: not one shared checker", i, c, first)
		}
	}
	if ready := a.checkCount("/ready"); ready < 5 || ready > got+2 {
		t.Fatalf("the entry with its own check sent %d checks (shared: %d)", ready, got)
	}
	s.WriteFile("proxy_reverse.conf", entryConf("Round-Robin", a.hostPort()))
	p.Signal(syscall.SIGHUP)
	if !p.WaitLog("configuration reloaded") {
		t.Fatalf("no reload:\n%s", p.Log())
	}
	time.Sleep(200 * time.Millisecond) // a check under way may end
	before := a.checkCount("/health") + a.checkCount("/ready")
	time.Sleep(500 * time.Millisecond)
	if after := a.checkCount("/health") + a.checkCount("/ready"); after != before {
		t.Fatalf("%d checks after a reload that removed them: the checkers outlived their configuration", after-before)
	}
}

// SlowStart: a server back from down first takes a small part of its
// share, ramping up linearly; once the slow start is over it takes its
// full share. Requests sent during the slow start are counted per third.
func TestE2EHealthSlowStart(t *testing.T) {
	const slow = 3 * time.Second
	a, b := newChecked(t, "a", ""), newChecked(t, "b", "")
	s, _ := startProxy(t, healthConf(a.hostPort()+" "+b.hostPort(), "SlowStart 3s", "HealthRise 1", "HealthFall 1"))
	a.sick.Store(true)
	waitStatus(t, s, a.hostPort(), "down")
	a.sick.Store(false)
	early := waitStatus(t, s, a.hostPort(), "slowstart")
	start := time.Now().Add(-time.Duration(early.Share * float64(slow)))
	if early.Share >= 0.5 || !strings.Contains(early.StatusText, "slow start") {
		t.Fatalf("just recovered: %+v", early)
	}
	c := client(t, true, "")
	var toA, total [3]int
	for el := time.Since(start); el < slow; el = time.Since(start) {
		third := int(el * 3 / slow)
		for _, name := range sequence(t, c, s.URL("/api/x"), 10) {
			total[third]++
			if name == "a" {
				toA[third]++
			}
		}
	}
	waitStatus(t, s, a.hostPort(), "up")
	full := 0
	for _, name := range sequence(t, c, s.URL("/api/x"), 100) {
		if name == "a" {
			full++
		}
	}
	t.Logf("a took %v of %v requests per third of the slow start, %d of 100 after", toA, total, full)
	frac := func(i int) float64 { return float64(toA[i]) / float64(max(total[i], 1)) }
	// Round robin gives a half the requests at full share; over the thirds
	// its share averages 1/6, 1/2 and 5/6: about 8%, 25% and 42%.
	if full != 50 || frac(0) >= frac(2) || frac(0) > 0.2 || frac(2) < 0.25 || frac(2) > 0.5 {
		t.Fatalf("no linear ramp: a took %v of %v requests per third, %d of 100 after", toA, total, full)
	}
}
