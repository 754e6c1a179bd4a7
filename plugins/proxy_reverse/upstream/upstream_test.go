package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"github.com/capuchin/capuchin/internal/hosttest"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/config"
)

func entry(t testing.TB, servers ...string) *config.Entry {
	e := &config.Entry{AttemptsCount: 2, OfflineTimeout: time.Hour, ConnectTimeout: time.Second,
		ResponseTimeout: time.Second, IdleTimeout: 100 * time.Millisecond, MaxIdleConns: 2,
		ResolveInterval: time.Hour}
	for _, s := range servers {
		srv, err := config.ParseServer(s)
		if err != nil {
			t.Fatal(err)
		}
		e.Servers = append(e.Servers, srv)
	}
	return e
}

func TestPoolBoundIdleTimeoutAndClose(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	g := NewGroup(entry(t, ln.Addr().String(), ln.Addr().String()), nil, nil, hclog.NewNullLogger())
	if n := g.Slots().Len(); n != 2 || len(g.Servers()) != 1 {
		t.Fatalf("slots %d servers %d", n, len(g.Servers()))
	}
	s := g.Servers()[0]
	var conns []*Conn
	for i := 0; i < 3; i++ {
		c, err := s.Dial(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	if st := s.Stats(time.Now()); st.Active != 3 || st.Requests != 3 {
		t.Fatalf("%+v", st)
	}
	for _, c := range conns {
		s.Release(c, true, time.Now())
	}
	if st := s.Stats(time.Now()); st.Active != 0 || st.Idle != 2 {
		t.Fatalf("pool not bounded to MaxIdleConns: %+v", st)
	}
	if c := s.Get(time.Now()); c == nil || !c.Reused {
		t.Fatal("no pooled connection")
	} else {
		s.Release(c, true, time.Now())
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats(time.Now()).Idle != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := s.Stats(time.Now()); st.Idle != 0 {
		t.Fatalf("idle connections not closed after IdleTimeout: %+v", st)
	}
	g.Close()
	ln.Close()
	for c := range accepted {
		c.Close()
	}
	if err := hosttest.Leaks(ignore); err != nil {
		t.Fatalf("after Close: %v", err)
	}
}

func TestHighAvailabilityStates(t *testing.T) {
	e := entry(t, "127.0.0.1:1")
	e.OfflineTimeout = 10 * time.Second
	g := NewGroup(e, nil, nil, hclog.NewNullLogger())
	defer g.Close()
	s := g.Servers()[0]
	t0 := time.Unix(1000, 0)
	s.FailedAs(t0, FailConnect)
	if !s.Available(t0) {
		t.Fatal("offline after 1 of 2 failures")
	}
	s.FailedAs(t0.Add(time.Second), FailConnect)
	if s.Available(t0.Add(2*time.Second)) || !s.OfflineUntil(t0).Equal(t0.Add(11*time.Second)) {
		t.Fatal("online after 2 failures")
	}
	if !s.Available(t0.Add(11 * time.Second)) {
		t.Fatal("not probed after OfflineTimeOut")
	}
	s.FailedAs(t0.Add(12*time.Second), FailConnect) // failed probe: offline again, counted from it
	if s.Available(t0.Add(21*time.Second)) || !s.Available(t0.Add(22*time.Second)) {
		t.Fatal("failed probe did not restart the offline period")
	}
	s.Succeeded()
	if !s.Available(t0.Add(13*time.Second)) || s.Stats(t0).Failures != 3 {
		t.Fatal("success did not bring the server back")
	}
	e.AttemptsCount = 0 // HA off
	for i := 0; i < 5; i++ {
		s.FailedAs(t0, FailConnect)
	}
	if !s.Available(t0) {
		t.Fatal("HA off but server skipped")
	}
}

func TestResolveKeepsLastGoodAnswer(t *testing.T) {
	calls := 0
	lookup := func(ctx context.Context, host string) ([]netip.Addr, error) {
		calls++
		if calls > 1 {
			return nil, context.DeadlineExceeded
		}
		return []netip.Addr{netip.MustParseAddr("::ffff:127.0.0.3"), netip.MustParseAddr("::1")}, nil
	}
	g := NewGroup(entry(t, "svc.test:80", "127.0.0.1:81"), nil, lookup, hclog.NewNullLogger())
	defer g.Close()
	g.resolve(context.Background())
	var got []string
	for _, s := range g.Servers() {
		got = append(got, s.Addr.String())
	}
	if len(got) != 3 || got[0] != "127.0.0.3:80" || got[1] != "[::1]:80" || got[2] != "127.0.0.1:81" {
		t.Fatalf("servers %v", got)
	}
}

// A pooled connection on which bytes or EOF arrived while idle is closed by
// Get, never handed out; a quiet one is handed out even when the read
// deadline of its last answer has passed.
func TestGetClosesStrayConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	e := entry(t, ln.Addr().String())
	e.IdleTimeout, e.MaxIdleConns = time.Minute, 8
	g := NewGroup(e, nil, nil, hclog.NewNullLogger())
	defer g.Close()
	s := g.Servers()[0]
	for _, tc := range []struct {
		name  string
		peer  func(net.Conn)
		reuse bool
	}{
		{"quiet", func(net.Conn) {}, true},
		{"stray byte", func(c net.Conn) { c.Write([]byte("H")) }, false},
		{"EOF", func(c net.Conn) { c.Close() }, false},
	} {
		c, err := s.Dial(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		peer, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(-time.Second))
		s.Release(c, true, time.Now())
		tc.peer(peer)
		time.Sleep(20 * time.Millisecond)
		before := s.Stats(time.Now()).Stray
		got := s.Get(time.Now())
		if (got != nil) != tc.reuse || s.Stats(time.Now()).Stray-before != map[bool]uint64{true: 0, false: 1}[tc.reuse] {
			t.Fatalf("%s: reused %v, stray %d -> %d", tc.name, got != nil, before, s.Stats(time.Now()).Stray)
		}
		if got != nil {
			s.Release(got, false, time.Now())
		}
		peer.Close()
	}
}

// By default the pool keeps every returned connection (until IdleTimeout),
// so it fits any concurrency; MaxIdleConns 0 turns pooling off.
func TestPoolDefaultFitsConcurrency(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	for _, tc := range []struct{ max, want int }{{config.NoLimit, 100}, {0, 0}} {
		e := entry(t, ln.Addr().String())
		e.IdleTimeout, e.MaxIdleConns = time.Minute, tc.max
		g := NewGroup(e, nil, nil, hclog.NewNullLogger())
		s := g.Servers()[0]
		var conns []*Conn
		for i := 0; i < 100; i++ {
			c, err := s.Dial(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			s.Release(c, true, time.Now())
		}
		if got := s.Stats(time.Now()).Idle; got != tc.want {
			t.Errorf("MaxIdleConns %d: %d idle, want %d", tc.max, got, tc.want)
		}
		g.Close()
	}
}

// BenchmarkPoolReuse is a pooled connection handed out and returned, as
// every proxied request on a kept backend connection does; the stray check
// (one non-blocking MSG_PEEK) is its only system call.
func BenchmarkPoolReuse(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c)
		}
	}()
	e := entry(b, ln.Addr().String())
	e.IdleTimeout, e.MaxIdleConns = time.Hour, config.NoLimit
	g := NewGroup(e, nil, nil, hclog.NewNullLogger())
	defer g.Close()
	s := g.Servers()[0]
	c, err := s.Dial(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	s.Release(c, true, now)
	b.ReportAllocs()
	for b.Loop() {
		c := s.Get(now)
		if c == nil {
			b.Fatal("no pooled connection")
		}
		s.Release(c, true, now)
	}
}

// A reused https:// connection keeps its read deadline: the TLS stray check
// of Get must not leave the next answer unbounded. The backend answers the
// first request and stalls the second; ExtendRead's coarse deadline (armed
// for the first answer and still well ahead) must end the wait.
func TestReusedTLSConnKeepsReadDeadline(t *testing.T) {
	release := make(chan struct{})
	var n atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) > 1 {
			<-release
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	defer close(release)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	e := entry(t, "https://"+strings.TrimPrefix(srv.URL, "https://"))
	e.IdleTimeout, e.TLS = time.Minute, &tls.Config{RootCAs: pool, ServerName: "example.com"}
	g := NewGroup(e, nil, nil, hclog.NewNullLogger())
	defer g.Close()
	s := g.Servers()[0]
	c, err := s.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const rt = 2 * time.Second
	get := func(c *Conn) error {
		c.TakeBuffers()
		c.ExtendRead(time.Now(), rt)
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(c.BR, nil)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	if err := get(c); err != nil {
		t.Fatal(err)
	}
	s.Release(c, true, time.Now())
	if c = s.Get(time.Now()); c == nil {
		t.Fatal("connection not pooled")
	}
	guard := time.AfterFunc(10*time.Second, func() { c.Close() }) // ends a wait left unbounded
	defer guard.Stop()
	if err := get(c); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("stalled answer on a reused TLS connection: %v, want a read deadline error", err)
	}
	s.Release(c, false, time.Now())
}

// TestPooledConnHoldsNoBuffers checks that a connection gives its buffers
// back when it goes idle in the pool, that Get hands it out still without
// them, and that TakeBuffers gives it an empty pair with which it carries
// the next request.
func TestPooledConnHoldsNoBuffers(t *testing.T) {
	e := entry(t, hiServer(t))
	e.IdleTimeout = time.Minute
	g := NewGroup(e, nil, nil, hclog.NewNullLogger())
	defer g.Close()
	s := g.Servers()[0]
	c, err := s.Dial(context.Background())
	hosttest.Must(t, err)
	roundTrip(t, c)
	s.Release(c, true, time.Now())
	s.mu.Lock() // the group's own reap may run
	if c.BR != nil || c.BW != nil || c.bufs != nil {
		t.Error("a pooled connection kept its buffers")
	}
	s.mu.Unlock()
	if st := s.Stats(time.Now()); st.Idle != 1 {
		t.Fatalf("the connection left the pool: %+v", st)
	}
	for range 2 {
		got := s.Get(time.Now())
		if got != c || c.bufs != nil {
			t.Fatalf("Get: %p (pooled %p), buffers %p", got, c, c.bufs)
		}
		c.TakeBuffers()
		if c.BR == nil || c.BW == nil || c.BR.Buffered() != 0 || c.BW.Buffered() != 0 {
			t.Fatal("TakeBuffers: no empty buffers")
		}
		roundTrip(t, c)
		s.Release(c, true, time.Now())
	}
}

// roundTrip sends a GET on c and reads its answer.
func roundTrip(t *testing.T, c *Conn) {
	t.Helper()
	c.TakeBuffers()
	io.WriteString(c.BW, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	hosttest.Must(t, c.BW.Flush())
	readHi(t, c)
}

// readHi reads an answer with the body "hi" from c.
func readHi(t *testing.T, c *Conn) {
	t.Helper()
	resp, err := http.ReadResponse(c.BR, nil)
	hosttest.Must(t, err)
	body, err := io.ReadAll(resp.Body)
	hosttest.Must(t, err)
	if string(body) != "hi" {
		t.Fatalf("answer %q", body)
	}
}

// hiServer starts a backend answering "hi" and returns its host:port.
func hiServer(t *testing.T) string {
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") }))
	t.Cleanup(back.Close)
	return strings.TrimPrefix(back.URL, "http://")
}

// A recovery that lands between passiveOK's check and its offline mark
// (the mark is then set on a server already back) starts the slow start
// it would otherwise have skipped, and leaves no mark behind to start
// another at the next recovery.
func TestOfflineMarkAfterRecovery(t *testing.T) {
	e := entry(t, "127.0.0.1:1")
	e.OfflineTimeout, e.SlowStart = 10*time.Second, 10*time.Second
	g := NewGroup(e, nil, nil, hclog.NewNullLogger())
	defer g.Close()
	s := g.Servers()[0]
	t0 := time.Unix(1000, 0)
	s.FailedAs(t0, FailConnect)
	s.FailedAs(t0, FailConnect)
	s.h.revive(t0.Add(time.Second)) // not seen offline yet: no slow start
	if s.Share(t0.Add(time.Second)) != 1 {
		t.Fatal("slow start without an offline spell")
	}
	s.h.markOffline(t0.Add(time.Second), e.AttemptsCount) // the check saw the failures before the revive
	if s.h.offlineSeen.Load() {
		t.Fatal("the offline mark stayed on a server already back")
	}
	if sh := s.Share(t0.Add(6 * time.Second)); sh < 0.45 || sh > 0.55 {
		t.Fatalf("share 5 s into a 10 s slow start = %v, want 0.5", sh)
	}
}
