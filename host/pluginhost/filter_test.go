package pluginhost

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/host/stage"
	"github.com/capuchin/capuchin/internal/contract"
	"github.com/capuchin/capuchin/internal/hosttest"
	"github.com/capuchin/capuchin/internal/transport"
)

// TestStage20FilterKeepsLease: a stage-20 plugin with a filter is called
// only for the requests it matches, and a connection leased to a stage-30
// plugin comes back to the host exactly for those, so the stage-20 hook
// still sees every request it asked for.
func TestStage20FilterKeepsLease(t *testing.T) {
	l := leasedHost(t, "gatef", 300*time.Millisecond)
	c := dial(t, l.addr())
	get := func(p string) string { return "GET " + p + " HTTP/1.1\r\nHost: test\r\n\r\n" }
	c.send(get("/hello/a") + get("/hello/b") + get("/deny") + get("/hello/c") + get("/gate-count") +
		get("/hello/d") + get("/hello/e"))
	want := []struct {
		status int
		body   string
	}{
		{200, `hello GET /hello/a vhost=default body=""`},
		{200, `hello GET /hello/b vhost=default body=""`},
		{403, "denied"},
		{200, `hello GET /hello/c vhost=default body=""`},
		{200, "connect=0 request=2"}, // 127.0.0.1 is outside its stage-10 filter
		{200, `hello GET /hello/d vhost=default body=""`},
		{200, `hello GET /hello/e vhost=default body=""`},
	}
	for i, w := range want {
		r, err := c.read()
		if err != nil || r.status != w.status || r.body != w.body {
			t.Fatalf("response %d: %d %q %v, want %d %q", i, r.status, r.body, err, w.status, w.body)
		}
	}
	if !c.closed() {
		t.Fatal("idle leased connection not closed")
	}
	// a, c, d go through the host; b and e are served under leases.
	if got, leased := l.handles.Load(), l.leased.Load(); got != 3 || leased != 2 {
		t.Errorf("%d stage-30 calls and %d leased requests, want 3 and 2", got, leased)
	}
}

// TestUnfilteredStage20PreventsLease: a stage-20 plugin without a filter
// that does not take peer calls (it speaks the gRPC Calls stream) sees
// every request through the host, so no connection is leased.
func TestUnfilteredStage20PreventsLease(t *testing.T) {
	hosttest.CheckLeaks(t)
	dir := t.TempDir()
	h := startHost(t, spec(t, dir, "gategrpc", ""), spec(t, dir, "hello", ""))
	l := newLoop(t, h)
	l.lease = stage.Lease{MaxRequests: 100, IdleTimeout: 300 * time.Millisecond}
	c := dial(t, l.addr())
	for _, p := range []string{"/hello/a", "/hello/b", "/elsewhere"} {
		if r := c.get(p); r.status != 200 {
			t.Fatalf("%s: %d", p, r.status)
		}
	}
	if r := c.get("/gate-count"); r.body != "connect=1 request=4" {
		t.Errorf("gate saw %q, want connect=1 request=4", r.body)
	}
	if got := l.leased.Load(); got != 0 {
		t.Errorf("%d leased requests with an unfiltered stage-20 plugin", got)
	}
}

// TestStage10Filter: a stage-10 plugin is called only for clients in its
// networks.
func TestStage10Filter(t *testing.T) {
	hosttest.CheckLeaks(t)
	h := startHost(t, spec(t, t.TempDir(), "gatef", ""))
	l := newLoop(t, h)
	c := dialFrom(t, "127.0.0.2", l.addr())
	if !c.closed() {
		t.Fatal("a client in the filter's network was not closed")
	}
	for range 3 {
		dial(t, l.addr()).get("/hello")
	}
	if r := dial(t, l.addr()).get("/gate-count"); r.body != "connect=1 request=1" {
		t.Errorf("gate saw %q, want connect=1 request=1", r.body)
	}
}

func dialFrom(t *testing.T, ip, addr string) *client {
	t.Helper()
	return &client{Client: hosttest.DialFrom(t, ip, addr), t: t}
}

// TestLeaseGiveBackRecords: with a filtered stage-20 plugin and a stage-40
// plugin, the records of every request arrive: those served under the
// lease, the one given back to stage 20 and the rest.
func TestLeaseGiveBackRecords(t *testing.T) {
	hosttest.CheckLeaks(t)
	dir := t.TempDir()
	notesFile := filepath.Join(dir, "notes.txt")
	h := startHost(t, spec(t, dir, "gatef", ""), spec(t, dir, "hello", ""), spec(t, dir, "notes", notesFile))
	l := newLoop(t, h)
	l.lease = stage.Lease{MaxRequests: 10, IdleTimeout: 300 * time.Millisecond}
	c := dial(t, l.addr())
	paths := []string{"/hello/1", "/hello/2", "/deny", "/hello/3", "/hello/4"}
	for _, p := range paths {
		c.send("GET " + p + " HTTP/1.1\r\nHost: test\r\n\r\n")
	}
	for i := range paths {
		if _, err := c.read(); err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
	}
	if !c.closed() {
		t.Fatal("idle leased connection not closed")
	}
	if l.leased.Load() != 2 {
		t.Errorf("%d leased requests, want 2", l.leased.Load())
	}
	hosttest.WaitFor(t, "every record", func() bool {
		b, _ := os.ReadFile(notesFile)
		for _, w := range []string{"GET /hello/1 200", "GET /hello/2 200", "GET /deny 403", "GET /hello/3 200", "GET /hello/4 200"} {
			if !strings.Contains(string(b), w) {
				return false
			}
		}
		return true
	})
}

// TestCallPaths: a plugin built with the SDK takes the framed socket; one
// that ignores it gets the gRPC Calls stream.
func TestCallPaths(t *testing.T) {
	hosttest.CheckLeaks(t)
	dir := t.TempDir()
	h := startHost(t, spec(t, dir, "gate", ""), spec(t, dir, "gategrpc", ""))
	for _, p := range h.cur.Load().all {
		_, framed := p.inst.Load().calls.(*transport.HostFrames)
		if want := p.spec.Name == "gate"; framed != want {
			t.Errorf("%s: framed calls %v, want %v", p.spec.Name, framed, want)
		}
	}
}

// TestKilledMidBatch: a plugin killed while it holds a batch of calls
// fails those calls (with its policy) and no others: a second plugin's
// calls in flight at the same moment all complete.
func TestKilledMidBatch(t *testing.T) {
	hosttest.CheckLeaks(t)
	dir := t.TempDir()
	victim, other := spec(t, dir, "gate", ""), spec(t, mkdir(t, dir, "b"), "gate", "")
	hv, ho := startHost(t, victim), startHost(t, other)
	var req http1.Request
	if err := http1.ParseRequest("GET /gate-wait HTTP/1.1\r\nHost: t\r\n", nil, &req); err != nil {
		t.Fatal(err)
	}
	const n = 24
	var wg sync.WaitGroup
	verdicts := make([]stage.Verdict, 2*n)
	statuses := make([]int, 2*n)
	for i := range 2 * n {
		h := hv
		if i >= n {
			h = ho
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &stage.Conn{Conn: contract.Conn{ID: uint64(i + 1), Remote: addrPort("127.0.0.1:1"), Local: addrPort("127.0.0.1:2")}}
			v, rep := h.Request(c, &req, "default")
			verdicts[i] = v
			if rep != nil {
				statuses[i] = rep.Status
			}
		}()
	}
	time.Sleep(60 * time.Millisecond) // the calls are in the plugins (each sleeps 150 ms)
	syscall.Kill(pidOf(t, victim), syscall.SIGKILL)
	wg.Wait()
	for i := range 2 * n {
		switch {
		case i < n && (verdicts[i] != stage.Respond || statuses[i] != 503):
			t.Errorf("call %d to the killed plugin: %v %d, want its fail-closed 503", i, verdicts[i], statuses[i])
		case i >= n && verdicts[i] != stage.Continue:
			t.Errorf("call %d to the other plugin: %v %d, want continue", i, verdicts[i], statuses[i])
		}
	}
}

func mkdir(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFilterTakingEverythingIsNone: a declared stage-20 filter with no
// list takes every request, so it counts as no filter (no lease); a bad
// one refuses the plugin.
func TestFilterTakingEverythingIsNone(t *testing.T) {
	for _, c := range []*contract.Claims{nil, {}} {
		hf, err := compileHookFilters(transport.Manifest{RequestFilter: c})
		if err != nil || hf.req != nil || hf.reqSpec != nil {
			t.Errorf("%+v: filter %+v, %v; want none", c, hf, err)
		}
	}
	hf, err := compileHookFilters(transport.Manifest{RequestFilter: &contract.Claims{Methods: []string{"POST"}}})
	if err != nil || hf.reqSpec == nil || !hf.req.Match(&http1.Request{Method: "POST"}) || hf.req.Match(&http1.Request{Method: "GET"}) {
		t.Errorf("a methods-only filter: %+v, %v", hf, err)
	}
	if _, err := compileHookFilters(transport.Manifest{RequestFilter: &contract.Claims{Paths: []string{"("}}}); err == nil {
		t.Error("a bad stage-20 filter was accepted")
	}
}
