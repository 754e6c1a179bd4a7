package server

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/host/config"
	"github.com/capuchin/capuchin/host/stage"
	"github.com/capuchin/capuchin/internal/hosttest"
)

// testServer starts a server on 127.0.0.1 with a temporary document root.
func testServer(t testing.TB, p stage.Pipeline) (*Server, string) {
	t.Helper()
	return testServerConf(t, p, "    KeepAliveTimeout 2\n")
}

// testServerConf is testServer with more [SERVER] lines.
func testServerConf(t testing.TB, p stage.Pipeline, server string) (*Server, string) {
	t.Helper()
	dir := t.TempDir()
	conf := "[SERVER]\n    Listen 127.0.0.1:0\n    MaxKeepAliveRequest 1000000000\n" + server
	must(t, os.WriteFile(filepath.Join(dir, "capuchin.conf"), []byte(conf), 0o644))
	must(t, os.MkdirAll(filepath.Join(dir, "sites"), 0o755))
	must(t, os.MkdirAll(filepath.Join(dir, "www"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "sites", "default"), []byte("[HOST]\n    DocumentRoot www\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "www", "1k.txt"), []byte(strings.Repeat("x", 1024)), 0o644))
	cfg, err := config.Load(dir)
	must(t, err)
	s := New(cfg, p, hclog.NewNullLogger())
	must(t, s.Start())
	return s, s.Addrs()[0].String()
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestShutdownLeavesNoGoroutine serves keep-alive and idle connections,
// shuts down, and checks every goroutine of the server ended.
func TestShutdownLeavesNoGoroutine(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	s, addr := testServer(t, nil)
	var conns []net.Conn
	for i := 0; i < 5; i++ {
		c, err := net.Dial("tcp", addr)
		must(t, err)
		conns = append(conns, c)
		io.WriteString(c, "GET /1k.txt HTTP/1.1\r\nHost: x\r\n\r\n")
		var resp http1.Response
		br := bufio.NewReader(c)
		must(t, http1.ReadResponse(br, nil, &resp))
		if resp.Status != 200 {
			t.Fatalf("status %d", resp.Status)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	must(t, s.Shutdown(ctx))
	for _, c := range conns {
		c.Close()
	}
	if err := hosttest.Leaks(ignore); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkKeepAlive1KiB measures one static request on a kept-alive
// connection through the whole loop, with allocations.
func BenchmarkKeepAlive1KiB(b *testing.B) {
	s, addr := testServer(b, nil)
	defer s.Shutdown(context.Background())
	c, err := net.Dial("tcp", addr)
	must(b, err)
	defer c.Close()
	br := bufio.NewReader(c)
	req := []byte("GET /1k.txt HTTP/1.1\r\nHost: x\r\n\r\n")
	var resp http1.Response
	var body http1.Body
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Write(req)
		if err := http1.ReadResponse(br, nil, &resp); err != nil {
			b.Fatal(err)
		}
		body.ResetResponse(br, &resp, "GET")
		io.Copy(io.Discard, &body)
	}
}

// TestNoTCPKeepAliveProbes: an idle client connection has no TCP
// keep-alive timer armed on the server's side (the kernel's own view, see
// hosttest.KeepAliveProbes), as nginx's and HAProxy's defaults have none.
func TestNoTCPKeepAliveProbes(t *testing.T) {
	_, addr := testServer(t, nil)
	c, err := net.Dial("tcp", addr)
	must(t, err)
	defer c.Close()
	io.WriteString(c, "GET /1k.txt HTTP/1.1\r\nHost: x\r\n\r\n")
	var resp http1.Response
	must(t, http1.ReadResponse(bufio.NewReader(c), nil, &resp))
	if hosttest.KeepAliveProbes(t, c) {
		t.Fatal("the server's socket has a keep-alive timer")
	}
}

// stuckPipeline's stage-30 call does not return until release is closed,
// whatever happens to the connection: a plugin that never replies.
type stuckPipeline struct {
	stage.Nop
	called, release chan struct{}
}

func (p *stuckPipeline) Handle(*stage.Conn, *http1.Request, *stage.Handoff) stage.Result {
	close(p.called)
	<-p.release
	return stage.Result{Verdict: stage.Decline}
}

// TestShutdownBoundedByStuckPlugin: a connection whose stage-30 call a
// plugin never answers keeps Shutdown at most the grace period and
// shutWait (it ends when the plugins stop, which the caller does next);
// before, Shutdown waited for it for ever, and the host never stopped.
func TestShutdownBoundedByStuckPlugin(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	p := &stuckPipeline{called: make(chan struct{}), release: make(chan struct{})}
	s, addr := testServer(t, p)
	c, err := net.Dial("tcp", addr)
	must(t, err)
	defer c.Close()
	io.WriteString(c, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
	<-p.called
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- s.Shutdown(ctx) }()
	select {
	case err := <-errc:
		if err == nil {
			t.Error("Shutdown reported no connection left busy")
		}
		close(p.release) // the plugins stop: the call returns
	case <-time.After(shutWait + 3*time.Second):
		t.Error("Shutdown still waiting for a connection the plugin never answers")
		close(p.release)
		<-errc
	}
	if err := hosttest.Leaks(ignore); err != nil {
		t.Fatal(err)
	}
}
