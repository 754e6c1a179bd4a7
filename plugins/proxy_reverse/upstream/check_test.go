package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"github.com/capuchin/capuchin/internal/hosttest"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/config"
)

// healthBackend answers /health with code (and body), counting the checks.
type healthBackend struct {
	*httptest.Server
	code  atomic.Int32
	body  atomic.Pointer[string]
	hits  atomic.Int64
	hosts chan string
}

func newHealthBackend(t *testing.T) *healthBackend {
	b := &healthBackend{hosts: make(chan string, 100)}
	b.code.Store(200)
	ok := "all ok"
	b.body.Store(&ok)
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			w.WriteHeader(404)
			return
		}
		b.hits.Add(1)
		select {
		case b.hosts <- r.Host + " " + r.Method:
		default:
		}
		w.WriteHeader(int(b.code.Load()))
		w.Write([]byte(*b.body.Load()))
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *healthBackend) addr() string { return strings.TrimPrefix(b.URL, "http://") }

func checkEntry(t *testing.T, hc *config.HealthCheck, servers ...string) *config.Entry {
	e := entry(t, servers...)
	e.Health = hc
	return e
}

func httpCheck() *config.HealthCheck {
	return &config.HealthCheck{Method: "GET", Path: "/health", Status: config.DefaultHealthStatus,
		Interval: 20 * time.Millisecond, Timeout: time.Second, Rise: 2, Fall: 3}
}

func waitState(t *testing.T, s *Server, down bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.Available(time.Now()) == down {
		if time.Now().After(deadline) {
			t.Fatalf("server still down=%v: %+v", !down, s.Stats(time.Now()).Check)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Fall bad checks take the server down, Rise good ones bring it back; the
// status, the body and the Host are those configured.
func TestCheckRiseFall(t *testing.T) {
	b := newHealthBackend(t)
	ignore := goleak.IgnoreCurrent()
	hc := httpCheck()
	hc.Host, hc.Body = "health.test", "ok"
	g := NewGroup(checkEntry(t, hc, b.addr()), nil, nil, hclog.NewNullLogger())
	s := g.Servers()[0]
	if got := <-b.hosts; got != "health.test GET" {
		t.Fatalf("check request %q", got)
	}
	b.code.Store(503)
	waitState(t, s, true)
	st := s.Stats(time.Now())
	if st.State() != StateDown || st.Check.Run > -3 || st.Check.Last.OK ||
		st.Check.Last.Reason != "HTTP 503, want 200-399" {
		t.Fatalf("down: %+v %+v", st.Check, st.Check.Last)
	}
	b.code.Store(200)
	bad := "degraded"
	b.body.Store(&bad)
	time.Sleep(100 * time.Millisecond)
	if st := s.Stats(time.Now()); st.State() != StateDown || !strings.Contains(st.Check.Last.Reason, `body lacks "ok"`) {
		t.Fatalf("a body without the substring must keep it down: %+v", st.Check.Last)
	}
	good := "ok"
	b.body.Store(&good)
	waitState(t, s, false)
	if st := s.Stats(time.Now()); st.State() != StateUp || st.Check.Run < 2 || st.Check.Last.Reason != "HTTP 200" {
		t.Fatalf("up: %+v", st.Check)
	}
	g.Close()
	if err := hosttest.Leaks(ignore); err != nil {
		t.Fatalf("after Close: %v", err)
	}
}

// Groups sharing a registry and a check run one checker per address; a
// different check gets its own; the last release stops it.
func TestCheckSharedByAddress(t *testing.T) {
	b := newHealthBackend(t)
	reg := NewRegistry()
	g1 := NewGroup(checkEntry(t, httpCheck(), b.addr()), reg, nil, hclog.NewNullLogger())
	g2 := NewGroup(checkEntry(t, httpCheck(), b.addr(), b.addr()), reg, nil, hclog.NewNullLogger())
	other := httpCheck()
	other.Fall = 1
	g3 := NewGroup(checkEntry(t, other, b.addr()), reg, nil, hclog.NewNullLogger())
	if n := reg.Checks(); n != 2 {
		t.Fatalf("%d checkers, want 2 (one per address and check)", n)
	}
	if g1.Servers()[0].chk != g2.Servers()[0].chk || g1.Servers()[0].chk == g3.Servers()[0].chk {
		t.Fatal("checkers not shared by address and check")
	}
	g1.Close()
	if n := reg.Checks(); n != 2 {
		t.Fatalf("%d checkers after one of two users closed", n)
	}
	g2.Close()
	g3.Close()
	if n := reg.Checks(); n != 0 {
		t.Fatalf("%d checkers after every group closed", n)
	}
}

// A TCP check finds a closed port down, naming the refusal.
func TestCheckTCP(t *testing.T) {
	b := newHealthBackend(t)
	addr := b.addr()
	hc := &config.HealthCheck{TCP: true, Interval: 20 * time.Millisecond, Timeout: time.Second, Rise: 1, Fall: 1}
	g := NewGroup(checkEntry(t, hc, addr), nil, nil, hclog.NewNullLogger())
	defer g.Close()
	s := g.Servers()[0]
	hosttest.WaitFor(t, "a first check", func() bool { return s.Stats(time.Now()).Check.Checks > 0 })
	if st := s.Stats(time.Now()); st.State() != StateUp || st.Check.Last.Reason != "connected" {
		t.Fatalf("up: %+v", st.Check.Last)
	}
	b.Close()
	waitState(t, s, true)
	if r := s.Stats(time.Now()).Check.Last.Reason; !strings.Contains(r, "connect: connection refused") {
		t.Fatalf("reason %q", r)
	}
}

// Good checks end a passive offline spell without real traffic, and the
// recovery starts the slow start.
func TestCheckRevivesPassiveOffline(t *testing.T) {
	b := newHealthBackend(t)
	e := checkEntry(t, httpCheck(), b.addr())
	e.SlowStart = time.Hour
	g := NewGroup(e, nil, nil, hclog.NewNullLogger())
	defer g.Close()
	s := g.Servers()[0]
	if s.Share(time.Now()) != 1 {
		t.Fatal("slow start before any recovery")
	}
	s.FailedAs(time.Now(), FailConnect)
	s.FailedAs(time.Now(), FailConnect)
	if s.Available(time.Now()) {
		t.Fatal("two failures with AttemptsCount 2 must take it offline")
	}
	waitState(t, s, false)
	if st := s.Stats(time.Now()); st.State() != StateSlowStart || st.Share >= 0.01 || st.Consecutive != 0 {
		t.Fatalf("after revival: %s share %v consecutive %d", st.State(), st.Share, st.Consecutive)
	}
}

func TestWindowCountsAndPercentiles(t *testing.T) {
	var w window
	now := time.Unix(1_000_000, 0)
	for i := 1; i <= 100; i++ {
		w.answer(now, time.Duration(i)*time.Millisecond/10, i > 95) // 0.1..10 ms, 5 of them 5xx
	}
	w.failure(now)
	got := w.sum(now.Add(time.Second), 6)
	if got.Requests != 101 || got.Errors != 6 {
		t.Fatalf("requests %d errors %d", got.Requests, got.Errors)
	}
	if p := got.Percentile(0.5); p < 4*time.Millisecond || p > 6*time.Millisecond {
		t.Errorf("p50 %v, want about 5ms", p)
	}
	if p := got.Percentile(0.99); p < 9*time.Millisecond || p > 10*time.Millisecond {
		t.Errorf("p99 %v, want about 10ms", p)
	}
	if r := got.Rate(); r < 1.97 || r > 1.99 { // 101 requests over 51 s: five earlier buckets and 1 s of this one
		t.Errorf("rate %v", r)
	}
	later := now.Add(Buckets * BucketWidth)
	w.answer(later, time.Millisecond, false)
	if got := w.sum(later, Buckets); got.Requests != 1 {
		t.Fatalf("a bucket reused after the ring turned must be zeroed: %d requests", got.Requests)
	}
	if got := w.sum(now.Add(2*time.Minute), 6); got.Requests != 0 {
		t.Fatalf("the last minute two minutes later: %d requests", got.Requests)
	}
	if n := testing.AllocsPerRun(100, func() { w.answer(later, time.Millisecond, false) }); n != 0 {
		t.Fatalf("recording allocates %v times", n)
	}
}

// An HTTP check of an https:// server speaks TLS, verifying the server's
// certificate; an unverifiable one fails the check with the reason.
func TestCheckTLS(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" && r.TLS != nil {
			hits.Add(1)
		}
	}))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	for _, tc := range []struct {
		name string
		tls  *tls.Config
		down bool
	}{{"trusted", &tls.Config{RootCAs: pool, ServerName: "example.com"}, false},
		{"untrusted", &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "example.com"}, true}} {
		e := checkEntry(t, httpCheck(), "https://"+strings.TrimPrefix(srv.URL, "https://"))
		e.TLS = tc.tls
		g := NewGroup(e, nil, nil, hclog.NewNullLogger())
		s := g.Servers()[0]
		if tc.down {
			waitState(t, s, true)
			if r := s.Stats(time.Now()).Check.Last.Reason; !strings.Contains(r, "tls handshake") {
				t.Errorf("%s: reason %q", tc.name, r)
			}
		} else {
			hosttest.WaitFor(t, "two checks", func() bool { return hits.Load() >= 2 })
			if st := s.Stats(time.Now()); st.State() != StateUp || st.Check.Last.Reason != "HTTP 200" {
				t.Errorf("%s: %+v", tc.name, st.Check.Last)
			}
		}
		g.Close()
	}
}

// The first check comes within the first interval, and the next ones
// within ±JitterPercent of the interval after the previous one; a check
// that overran its interval is followed at once.
func TestCheckSpreadAndJitter(t *testing.T) {
	const iv = time.Second
	span := iv * JitterPercent / 100
	var firsts, gaps []time.Duration
	for i := 0; i < 1000; i++ {
		f := firstCheckDelay(iv)
		g := jittered(iv)
		if f < 0 || f >= iv || g < iv-span || g > iv+span {
			t.Fatalf("first check after %v, next after %v: want [0, %v) and %v±%v", f, g, iv, iv, span)
		}
		firsts, gaps = append(firsts, f), append(gaps, g)
	}
	if slices.Min(firsts) > iv/10 || slices.Max(firsts) < iv*9/10 || slices.Min(gaps) > iv-span/2 || slices.Max(gaps) < iv+span/2 {
		t.Fatalf("offsets %v to %v, gaps %v to %v: not spread", slices.Min(firsts), slices.Max(firsts), slices.Min(gaps), slices.Max(gaps))
	}
	now := time.Now()
	if got := nextCheck(now.Add(-2*iv), iv, now); !got.Equal(now) {
		t.Fatalf("after an overrun the next check is at %v, want now", got.Sub(now))
	}
	if firstCheckDelay(0) != 0 || jittered(5) != 5 {
		t.Fatal("tiny intervals")
	}
}
