package pluginhost

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/host/config"
	"github.com/capuchin/capuchin/host/stage"
	"github.com/capuchin/capuchin/internal/contract"
	"github.com/capuchin/capuchin/internal/hosttest"
)

// binDir holds the test binaries, built once by TestMain.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pluginhost-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := build(dir)
	if code == 0 {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func build(dir string) int {
	cmd := exec.Command("go", "build", "-o", dir+"/", "./testdata/testplug", "./testdata/badhandshake",
		"./testdata/wrongversion", "./testdata/tinyhost")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build test binaries:", err)
		return 1
	}
	src, err := os.ReadFile(filepath.Join(dir, "testplug"))
	if err != nil {
		return 1
	}
	for _, mode := range []string{"hello", "helloopen", "gate", "gateopen", "notes", "gatef",
		"hellogrpc", "helloopengrpc", "gategrpc", "gateopengrpc", "notesgrpc",
		"helloinline", "helloopeninline", "gateinline", "gateopeninline", "notesinline"} {
		if err := os.WriteFile(filepath.Join(dir, mode), src, 0o755); err != nil {
			return 1
		}
	}
	return 0
}

// spec returns a PluginSpec for binary name with a config file in dir
// holding conf.
func spec(t testing.TB, dir, name, conf string) config.PluginSpec {
	t.Helper()
	cfg := filepath.Join(dir, name+".conf")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return config.PluginSpec{Name: name, Path: filepath.Join(binDir, name), Config: cfg,
		Where: "plugins.load:" + name}
}

// pidOf reads the pid a test plugin wrote at Configure.
func pidOf(t *testing.T, s config.PluginSpec) int {
	t.Helper()
	b, err := os.ReadFile(s.Config + ".pid")
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(string(b))
	return pid
}

// startHost starts specs and registers Shutdown.
func startHost(t testing.TB, specs ...config.PluginSpec) *Host {
	t.Helper()
	log := hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Info, Output: testWriter{t}})
	h, err := Start(specs, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return h
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// loop plays the host's connection loop over a Pipeline on 127.0.0.1.
type loop struct {
	p     stage.Pipeline
	lease stage.Lease // offered with every hand-over (zero: none)

	handles atomic.Int64 // stage-30 calls made
	leased  atomic.Int64 // requests served under leases
	records atomic.Int64 // stage-40 records of them returned
	conns   sync.Map     // *stage.Conn -> struct{}: open connections
	srv     *hosttest.Server
	ids     atomic.Uint64
	mu      sync.Mutex
	errs    []error
	clock   http1.Clock
}

func newLoop(t *testing.T, p stage.Pipeline) *loop {
	t.Helper()
	l := &loop{p: p}
	l.srv = hosttest.Serve(t, "", func(c net.Conn) { l.serve(c.(*net.TCPConn)) })
	return l
}

func (l *loop) addr() string { return l.srv.Addr() }

func (l *loop) results() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}

func (l *loop) serve(tc *net.TCPConn) {
	c := &stage.Conn{TCP: tc, Conn: contract.Conn{ID: l.ids.Add(1),
		Remote: tc.RemoteAddr().(*net.TCPAddr).AddrPort(), Local: tc.LocalAddr().(*net.TCPAddr).AddrPort()}}
	l.conns.Store(c, struct{}{})
	defer func() { l.conns.Delete(c); l.p.Closed(c); tc.Close() }()
	if l.p.Connect(c) == stage.Close {
		return
	}
	tc.SetDeadline(time.Now().Add(20 * time.Second))
	src := &http1.PrefixReader{R: tc}
	br := bufio.NewReader(src)
	var req http1.Request
	for {
		if err := http1.ReadRequest(br, nil, &req); err != nil {
			return
		}
		tc.SetReadDeadline(time.Now().Add(20 * time.Second)) // an idle wait's deadline (see one) ends with it
		start := time.Now()
		status, n, keep := l.one(c, tc, src, br, &req)
		l.p.Done(&stage.Record{ConnID: c.ID, Remote: c.Remote, VHost: "default", Method: req.Method,
			Target: req.Target, Proto: req.Proto(), Status: status, Bytes: n, Start: start, Duration: time.Since(start)})
		if !keep || req.Close {
			return
		}
	}
}

// one serves one request; it returns status, bytes and whether to go on.
func (l *loop) one(c *stage.Conn, tc *net.TCPConn, src *http1.PrefixReader, br *bufio.Reader, req *http1.Request) (int, int64, bool) {
	v, rep := l.p.Request(c, req, "default")
	switch v {
	case stage.Close:
		return 0, 0, false
	case stage.Respond:
		h := http1.ResponseHead{Status: rep.Status, Length: int64(len(rep.Body)), Minor: 1}
		b := h.AppendStart(nil)
		for _, f := range rep.Header {
			b = http1.AppendField(b, f.Name, f.Value)
		}
		b, _ = h.AppendEnd(b)
		b = append(b, rep.Body...)
		tc.Write(b)
		return rep.Status, int64(len(b)), true
	}
	buffered, _ := br.Peek(br.Buffered())
	buffered = append([]byte(nil), buffered...)
	l.handles.Add(1)
	res := l.p.Handle(c, req, &stage.Handoff{VHost: "default", Buffered: buffered, KeepAlive: true, Lease: l.lease})
	l.leased.Add(int64(res.Leased))
	l.records.Add(int64(res.Records.Len()))
	recs, err := res.Records.Decode()
	if err != nil {
		l.mu.Lock()
		l.errs = append(l.errs, err)
		l.mu.Unlock()
	}
	for i := range recs {
		l.p.Done(&recs[i])
	}
	if res.Err != nil {
		l.mu.Lock()
		l.errs = append(l.errs, res.Err)
		l.mu.Unlock()
		if res.BytesOut == 0 {
			h := http1.ResponseHead{Status: 502, Date: l.clock.Date(), Minor: 1, Close: true}
			tc.Write(h.AppendError(nil, nil, ""))
		}
		return 502, 0, false
	}
	switch res.Verdict {
	case stage.Handled:
		src.Pre = res.Leftover
		br.Reset(src)
		if res.Idle > 0 && l.lease.IdleTimeout > 0 { // given back idle: the rest of the idle timeout, as the host waits
			tc.SetReadDeadline(time.Now().Add(max(l.lease.IdleTimeout-res.Idle, time.Millisecond)))
		}
		return res.Status, res.BytesOut, !res.Close
	case stage.Close:
		st := res.Status
		if st == 0 {
			st = 403
		}
		h := http1.ResponseHead{Status: st, Date: l.clock.Date(), Minor: 1, Close: true}
		tc.Write(h.AppendError(nil, nil, ""))
		return st, 0, false
	}
	return l.static(tc, br, req, res.Close)
}

// static is the stand-in for the static-file handler.
func (l *loop) static(tc *net.TCPConn, br *bufio.Reader, req *http1.Request, closing bool) (int, int64, bool) {
	var body http1.Body
	if err := body.ResetRequest(br, req, 0); err != nil {
		return 0, 0, false
	}
	in, err := io.ReadAll(&body)
	if err != nil {
		return 0, 0, false
	}
	page := fmt.Sprintf("static %s %s body=%q", req.Method, req.Path, in)
	h := http1.ResponseHead{Status: 200, Length: int64(len(page)), Minor: 1, Close: closing}
	b, _ := h.Append(nil, nil)
	b = append(b, page...)
	tc.Write(b)
	return 200, int64(len(b)), !closing
}

// client is the test kit's raw client on one connection.
type client struct {
	*hosttest.Client
	t *testing.T
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c := &client{Client: hosttest.Dial(t, addr), t: t}
	c.C.SetDeadline(time.Now().Add(15 * time.Second))
	return c
}

func (c *client) send(raw string) { c.Send(raw) }

type reply struct {
	status int
	header http1.Header
	body   string
}

// read reads one response; err is non-nil if the connection ended first.
func (c *client) read() (reply, error) {
	r, err := c.Read("GET")
	if r == nil {
		return reply{}, err
	}
	return reply{status: r.Status, header: append(http1.Header(nil), r.Header...), body: string(r.Body)}, err
}

func (c *client) get(path string) reply {
	c.t.Helper()
	c.send("GET " + path + " HTTP/1.1\r\nHost: test\r\n\r\n")
	r, err := c.read()
	if err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
	return r
}

// closed reports whether the server closed the connection (EOF or reset).
func (c *client) closed() bool {
	c.C.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, c.BR)
	if err == nil {
		return true // EOF
	}
	ne, ok := err.(net.Error)
	return !(ok && ne.Timeout())
}

func addrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
