package static

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/host/respond"
	"github.com/capuchin/capuchin/internal/hosttest"
)

// directConn is Serve's side of a real loopback connection whose peer
// discards everything it receives: it measures the handler and the writer
// alone, without a client in the same process.
type directConn struct {
	w    respond.Writer
	req  http1.Request
	done chan struct{}
	srv  net.Conn
}

// newDirectConn connects to a discarding peer and parses the request head.
func newDirectConn(t testing.TB, head string) *directConn {
	t.Helper()
	cli, srv := hosttest.TCPPair(t)
	d := &directConn{srv: srv, done: make(chan struct{})}
	go func() { // owned by d; ends when srv closes
		defer close(d.done)
		io.Copy(io.Discard, cli)
	}()
	t.Cleanup(func() { srv.Close(); <-d.done })
	d.w = respond.Writer{Conn: srv, BW: bufio.NewWriter(srv), Clock: &http1.Clock{}, Server: "capuchin"}
	if err := http1.ParseRequest(head, nil, &d.req); err != nil {
		t.Fatal(err)
	}
	return d
}

// serve answers the parsed request once and flushes.
func (d *directConn) serve(h *Handler, root string) error {
	d.w.Reset(&d.req, false, nil)
	if err := h.Serve(&d.w, &d.req, root); err != nil {
		return err
	}
	return d.w.Flush()
}

// BenchmarkServe1KiB serves a 1 KiB file over a real loopback connection:
// handler, head formatting and the write, per request. Allocations reported
// are the handler's and the writer's only.
func BenchmarkServe1KiB(b *testing.B) {
	root, _, _ := bigSite(b)
	d := newDirectConn(b, "GET /1k.html HTTP/1.1\r\nHost: bench\r\nUser-Agent: wrk\r\nAccept: */*\r\n")
	h := newHandler()
	b.ReportAllocs()
	b.SetBytes(1024)
	for b.Loop() {
		if err := d.serve(h, root); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServe1KiBRoundTrip is the same request over a keep-alive
// connection through the test server: the client writes the request and
// reads the whole response before the next, so this includes the parser,
// two loopback hops and the scheduler.
func BenchmarkServe1KiBRoundTrip(b *testing.B) {
	root, _, _ := bigSite(b)
	s := startServer(b, newHandler(), root)
	roundTrips(b, s.Addr)
}

// BenchmarkNetHTTPFileServer1KiB is the round trip above against Go's
// http.FileServer, for a ratio: divide the two ns/op.
func BenchmarkNetHTTPFileServer1KiB(b *testing.B) {
	root, _, _ := bigSite(b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(root))}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	defer func() { srv.Close(); <-done }()
	roundTrips(b, ln.Addr().String())
}

// roundTrips sends "GET /1k.html" on one keep-alive connection to addr and
// reads each response whole before sending the next request.
func roundTrips(b *testing.B, addr string) {
	r := dialRaw(b, addr)
	r.C.SetDeadline(time.Time{})
	req := []byte(requestText("GET", "/1k.html"))
	r.send(string(req))
	buf := make([]byte, responseLen(b, r.BR)) // every response has this length
	b.ReportAllocs()
	b.SetBytes(1024)
	for b.Loop() {
		if _, err := r.C.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(r.BR, buf); err != nil {
			b.Fatal(err)
		}
	}
	if !strings.HasPrefix(string(buf), "HTTP/1.1 200 OK\r\n") {
		b.Fatalf("response %q", buf)
	}
	r.C.Close()
}

// TestServeAllocs bounds the allocations per request on the main paths
// (today: the path strings converted for the open system calls).
func TestServeAllocs(t *testing.T) {
	root, _, _ := bigSite(t)
	h := newHandler()
	cases := []struct {
		name, head string
		max        float64
	}{
		{"1KiB", "GET /1k.html HTTP/1.1\r\nHost: a\r\n", 3},
		// sendfile: os.File, io.LimitedReader and net's sendfile path, not this package.
		{"big", "GET /big.bin HTTP/1.1\r\nHost: a\r\n", 16},
		{"range", "GET /abc.txt HTTP/1.1\r\nHost: a\r\nRange: bytes=1-3\r\n", 3},
		{"304", "GET /abc.txt HTTP/1.1\r\nHost: a\r\nIf-Modified-Since: Sun, 17 May 2020 10:20:30 GMT\r\n", 3},
		{"index", "GET / HTTP/1.1\r\nHost: a\r\n", 3},
		{"404", "GET /nope HTTP/1.1\r\nHost: a\r\n", 6}, // http1.ErrorPage builds the page
	}
	writeFiles(t, root, map[string]string{"index.html": "hi"})
	for _, c := range cases {
		d := newDirectConn(t, c.head)
		var err error
		allocs := testing.AllocsPerRun(50, func() {
			if e := d.serve(h, root); e != nil {
				err = e
			}
		})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		t.Logf("%s: %.1f allocations per request", c.name, allocs)
		if allocs > c.max {
			t.Errorf("%s: %.1f allocations per request, want at most %.0f", c.name, allocs, c.max)
		}
	}
}

// responseLen reads one response with a Content-Length and returns its
// length in bytes, head included.
func responseLen(t testing.TB, br *bufio.Reader) int {
	t.Helper()
	n, body := 0, -1
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		n += len(line)
		if line == "\r\n" {
			break
		}
		if name, v, ok := strings.Cut(line, ":"); ok && http1.EqualFold(name, "Content-Length") {
			body, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if body < 0 {
		t.Fatal("response without Content-Length")
	}
	if _, err := br.Discard(body); err != nil {
		t.Fatal(err)
	}
	return n + body
}
