package static

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/host/respond"
	"github.com/capuchin/capuchin/internal/hosttest"
	"go.uber.org/goleak"
)

// TestMain fails the run when goroutines outlive the tests (not when
// fuzzing: the fuzzing engine keeps its own).
func TestMain(m *testing.M) {
	ignore := goleak.IgnoreCurrent()
	code := m.Run()
	if code == 0 && !fuzzing() {
		if err := hosttest.Leaks(ignore); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

func fuzzing() bool {
	f := flag.Lookup("test.fuzz")
	w := flag.Lookup("test.fuzzworker")
	return f != nil && f.Value.String() != "" || w != nil && w.Value.String() == "true"
}

// testServer is a minimal connection loop around a Handler on 127.0.0.1:
// it reads requests with http1.ReadRequest and answers each with Serve,
// keeping the connection open as the host does.
type testServer struct {
	Addr  string
	srv   *hosttest.Server
	h     *Handler
	root  string
	clock http1.Clock
}

func startServer(t testing.TB, h *Handler, root string) *testServer {
	t.Helper()
	hosttest.CheckLeaks(t) // its cleanup runs after the server's close
	s := &testServer{h: h, root: root}
	s.srv = hosttest.Serve(t, "", s.serveConn)
	s.Addr = s.srv.Addr()
	return s
}

func (s *testServer) serveConn(c net.Conn) {
	br := bufio.NewReader(c)
	w := respond.Writer{Conn: c, BW: bufio.NewWriter(c), Clock: &s.clock, Server: "capuchin"}
	var req http1.Request
	for {
		if err := http1.ReadRequest(br, nil, &req); err != nil {
			var perr *http1.Error
			if errors.As(err, &perr) {
				w.Reset(nil, true, nil)
				w.Error(perr.Status, "")
				w.Flush()
			}
			return
		}
		w.Reset(&req, req.Close, nil)
		err := s.h.Serve(&w, &req, s.root)
		if br.Buffered() == 0 || err != nil {
			if ferr := w.Flush(); err == nil {
				err = ferr
			}
		}
		if err != nil || req.Close {
			return
		}
	}
}

// client returns a keep-alive net/http client whose idle connections are
// closed when the test ends.
func client(t testing.TB) *http.Client {
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 1}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// get sends method url with the given header fields ("Name: value") and
// returns the response with its body read.
func get(t testing.TB, c *http.Client, method, url string, fields ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fields {
		name, value, _ := strings.Cut(f, ": ")
		req.Header.Set(name, value)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp, string(body)
}

// rawConn is the test kit's raw client (it sends bytes exactly as given);
// it reads answers with net/http's reader, a second opinion on the static
// handler's framing.
type rawConn struct {
	*hosttest.Client
	t testing.TB
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	return &rawConn{Client: hosttest.Dial(t, addr), t: t}
}

func (r *rawConn) send(s string) { r.Send(s) }

// read reads one response to a request with the given method.
func (r *rawConn) read(method string) (*http.Response, string) {
	r.t.Helper()
	resp, err := http.ReadResponse(r.BR, &http.Request{Method: method})
	if err != nil {
		r.t.Fatalf("reading response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		r.t.Fatalf("reading body: %v", err)
	}
	return resp, string(body)
}

// do sends "METHOD target HTTP/1.1" with a Host field and extra lines.
func (r *rawConn) do(method, target string, fields ...string) (*http.Response, string) {
	r.t.Helper()
	r.send(requestText(method, target, fields...))
	return r.read(method)
}

func requestText(method, target string, fields ...string) string {
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: test\r\n")
	for _, f := range fields {
		b.WriteString(f + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// writeFiles creates files below dir: name -> content. Names ending in "/"
// are directories.
func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func newHandler() *Handler {
	return &Handler{
		IndexFiles:  []string{"index.html", "index.htm"},
		DefaultMIME: "text/plain",
		MIME: map[string]string{
			"html": "text/html; charset=utf-8", "htm": "text/html; charset=utf-8",
			"css": "text/css", "png": "image/png", "txt": "text/plain; charset=utf-8",
		},
	}
}

func wantStatus(t testing.TB, resp *http.Response, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d", resp.Request.Method, resp.Request.URL, resp.StatusCode, want)
	}
}

func wantField(t testing.TB, resp *http.Response, name, want string) {
	t.Helper()
	if got := resp.Header.Get(name); got != want {
		t.Errorf("%s %s: %s = %q, want %q", resp.Request.Method, resp.Request.URL, name, got, want)
	}
}
