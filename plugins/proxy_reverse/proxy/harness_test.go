package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/hosttest"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/config"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/forward"
)

// checkLeaks fails the test if goroutines started during it outlive it.
// Register it first so that its cleanup runs last.
func checkLeaks(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			t.Errorf("goroutine leak: %d before, %d after\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
	})
}

// harness is a minimal host: it accepts client connections on 127.0.0.1,
// reads request heads with http1.ReadRequest and calls Proxy.Serve in a
// loop. A declined request gets 404. The header X-Test-Client overrides the
// client address (for source hashing).
type harness struct {
	t       *testing.T
	p       *Proxy
	srv     *hosttest.Server
	results chan Result
	closed  atomic.Int32 // connections closed because Result.Close was set
}

func newProxy(t *testing.T, text string, opts ...Option) *Proxy {
	t.Helper()
	cfg, err := config.Parse("test.conf", strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(cfg, hclog.NewNullLogger(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func startHarness(t *testing.T, p *Proxy) *harness {
	t.Helper()
	h := &harness{t: t, p: p, results: make(chan Result, 1024)}
	h.srv = hosttest.Serve(t, "", h.serve)
	return h
}

func (h *harness) addr() string { return h.srv.Addr() }

func (h *harness) serve(c net.Conn) {
	br := bufio.NewReaderSize(c, 16<<10)
	client := netip.MustParseAddrPort(c.RemoteAddr().String())
	var req http1.Request
	for {
		c.SetReadDeadline(time.Time{})
		if err := http1.ReadRequest(br, nil, &req); err != nil {
			return
		}
		from := client
		if v := req.Header.Get("X-Test-Client"); v != "" {
			from = netip.AddrPortFrom(netip.MustParseAddr(v), 1234)
		}
		res := h.p.Serve(context.Background(), &forward.Request{Conn: c, BR: br, Req: &req, Client: from, KeepAlive: true})
		select {
		case h.results <- res:
		default:
		}
		if res.Declined {
			io.WriteString(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 8\r\n\r\ndeclined")
			continue
		}
		if res.Close {
			h.closed.Add(1)
			return
		}
	}
}

// client is the test kit's raw keep-alive connection to the harness.
type client struct {
	*hosttest.Client
	t    *testing.T
	resp http1.Response
}

func dial(t *testing.T, h *harness) *client {
	t.Helper()
	c := &client{Client: hosttest.Dial(t, h.addr()), t: t}
	c.C.SetDeadline(time.Now().Add(60 * time.Second))
	return c
}

func (c *client) send(raw string) { c.Send(raw) }

// read reads one response and its whole body.
func (c *client) read(method string) (*http1.Response, string) {
	c.t.Helper()
	r := c.MustRead(method)
	c.resp = r.Response
	return &c.resp, string(r.Body)
}

// get sends a GET for path and returns status and body.
func (c *client) get(path string, extra ...string) (int, string) {
	c.t.Helper()
	c.send("GET " + path + " HTTP/1.1\r\nHost: example.com\r\n" + strings.Join(extra, "") + "\r\n")
	r, body := c.read("GET")
	return r.Status, body
}

// expectClosed checks that the proxy closed the connection.
func (c *client) expectClosed() {
	c.t.Helper()
	c.C.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.BR.ReadByte(); err == nil {
		c.t.Fatalf("connection still open (read %q)", n)
	}
}

// namedBackend answers every request with its name as the body.
func namedBackend(t *testing.T, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, name)
	}))
	t.Cleanup(s.Close)
	return s
}

func hostPort(s *httptest.Server) string { return s.Listener.Addr().String() }

// rawBackend is a TCP backend whose fn reads with a bufio.Reader.
type rawBackend struct{ *hosttest.Server }

func newRawBackend(t *testing.T, addr string, fn func(c net.Conn, br *bufio.Reader)) rawBackend {
	t.Helper()
	return rawBackend{hosttest.Serve(t, addr, func(c net.Conn) { fn(c, bufio.NewReader(c)) })}
}

func (b rawBackend) addr() string { return b.Addr() }

// rawServe reads request heads (and bodies) and answers each with answer.
func rawServe(answer string) func(net.Conn, *bufio.Reader) {
	return func(c net.Conn, br *bufio.Reader) {
		var req http1.Request
		for {
			if err := http1.ReadRequest(br, nil, &req); err != nil {
				return
			}
			var b http1.Body
			b.ResetRequest(br, &req, 0)
			io.Copy(io.Discard, &b)
			if _, err := io.WriteString(c, answer); err != nil {
				return
			}
		}
	}
}

func conf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

func (c *client) readHead() (*http1.Response, error) {
	err := http1.ReadResponse(c.BR, nil, &c.resp)
	return &c.resp, err
}

type bodyReader struct{ http1.Body }

func (b *bodyReader) reset(c *client, r *http1.Response) { b.ResetResponse(c.BR, r, "GET") }
