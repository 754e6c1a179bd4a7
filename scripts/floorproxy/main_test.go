package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// backend is a real HTTP server that answers with its name, the path and
// size bytes of padding, and counts the connections it accepted.
type backend struct {
	*httptest.Server
	conns atomic.Int64
}

func newBackend(t *testing.T, name string, size int) *backend {
	b := &backend{}
	b.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := fmt.Sprintf("%s %s %s", name, r.URL.Path, strings.Repeat("x", size))
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		io.WriteString(w, body)
	}))
	b.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			b.conns.Add(1)
		}
	}
	b.Start()
	t.Cleanup(b.Close)
	return b
}

// loops are floorproxy's loops.
var loops = []string{"goroutine", "raw", "featured", "epoll"}

func addr(b *backend) string { return b.Listener.Addr().String() }

// start runs floorproxy's loop on a free port and returns its address;
// the loop and its connections end with the test.
func start(t *testing.T, loop string, r *router) string {
	switch loop {
	case "goroutine", "raw", "featured":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		serve := map[string]func(net.Listener, *router) error{"goroutine": serveGoroutines, "raw": serveRaw, "featured": serveFeatured}[loop]
		done := make(chan struct{})
		go func() { serve(ln, r); close(done) }()
		t.Cleanup(func() { ln.Close(); <-done })
		return ln.Addr().String()
	default:
		l, err := newLoop("127.0.0.1:0", r)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { l.run(); close(done) }()
		t.Cleanup(func() { l.stop(); <-done })
		return fmt.Sprintf("127.0.0.1:%d", l.port())
	}
}

// TestProxies: every loop relays keep-alive requests from parallel clients
// (Go's client) to the backends their paths route to, whole, over pooled
// backend connections.
func TestProxies(t *testing.T) {
	for _, loop := range loops {
		t.Run(loop, func(t *testing.T) {
			hosttest.CheckLeaks(t)
			a1, a2, big := newBackend(t, "a1", 100), newBackend(t, "a2", 100), newBackend(t, "big", 200<<10)
			r := &router{api: newPool(addr(a1) + "," + addr(a2)), big: newPool(addr(big))}
			tr := &http.Transport{MaxIdleConnsPerHost: 8}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			base := "http://" + start(t, loop, r)
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for i := range 8 {
				wg.Go(func() { errs <- fetchAll(client, base, i) })
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if n := a1.conns.Load() + a2.conns.Load() + big.conns.Load(); n > 16 {
				t.Errorf("the backends accepted %d connections for 8 clients: the pool does not reuse them", n)
			}
		})
	}
}

// fetchAll sends 40 requests, one in four to /big/, and checks each answer.
func fetchAll(client *http.Client, base string, id int) error {
	for j := range 40 {
		path, want := fmt.Sprintf("/api/%d/%d", id, j), 100
		if j%4 == 0 {
			path, want = fmt.Sprintf("/big/%d/%d", id, j), 200<<10
		}
		resp, err := client.Get(base + path)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		name, rest, _ := strings.Cut(string(body), " ")
		gotPath, pad, _ := strings.Cut(rest, " ")
		if gotPath != path || len(pad) != want || (name == "big") != (j%4 == 0) {
			return fmt.Errorf("%s: answered by %s for %s with %d bytes", path, name, gotPath, len(pad))
		}
	}
	return nil
}

// TestRefused: a request with a body, or a malformed head, closes its
// connection unanswered in every loop, and the loop serves on.
func TestRefused(t *testing.T) {
	for _, loop := range loops {
		t.Run(loop, func(t *testing.T) {
			hosttest.CheckLeaks(t)
			b := newBackend(t, "a", 10)
			a := start(t, loop, &router{api: newPool(addr(b)), big: newPool(addr(b))})
			for _, req := range []string{
				"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
				"GET /x HTTP/1.1\nHost: h\r\n\r\n",
			} {
				if got := roundTrip(t, a, req); got != "" {
					t.Errorf("%q answered %q; want the connection closed", req, got)
				}
			}
			if got := roundTrip(t, a, "GET /api/x HTTP/1.1\r\nHost: h\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 200") {
				t.Errorf("after them, a GET answered %q", got)
			}
		})
	}
}

// roundTrip sends raw on a new connection to a and returns the first line
// of the answer ("" when the connection is closed without one).
func roundTrip(t *testing.T, a, raw string) string {
	c, err := net.DialTimeout("tcp", a, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && err != io.EOF && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("%q: %v", raw, err)
	}
	return line
}

// TestBadArguments: a loop or an address floorproxy cannot serve is an
// error, not a crash; so is a port in use.
func TestBadArguments(t *testing.T) {
	r := &router{api: newPool("127.0.0.1:1"), big: newPool("127.0.0.1:1")}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, c := range []struct{ addr, loop, want string }{
		{"127.0.0.1:0", "threads", "want goroutine, raw, featured or epoll"},
		{"localhost:80", "epoll", "want an IPv4 address and port"},
		{ln.Addr().String(), "epoll", "address already in use"},
		{ln.Addr().String(), "goroutine", "address already in use"},
		{ln.Addr().String(), "raw", "address already in use"},
		{ln.Addr().String(), "featured", "address already in use"},
	} {
		if err := serve(c.addr, c.loop, r); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("serve(%q, %q) = %v; want an error with %q", c.addr, c.loop, err, c.want)
		}
	}
}

// TestFeatured: the featured loop does the proxy's per-request work it
// stands for: the request head goes out rewritten (X-Forwarded-For added,
// a field named in Connection dropped), the answer comes back with the
// proxy's Server field, and a path outside the bench's rules is refused.
func TestFeatured(t *testing.T) {
	hosttest.CheckLeaks(t)
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Forwarded-For")+"|"+r.Header.Get("X-Drop"))
	}))
	defer b.Close()
	a := start(t, "featured", &router{api: newPool(addr(&backend{Server: b})), big: newPool(addr(&backend{Server: b}))})
	c, err := net.DialTimeout("tcp", a, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /api/x HTTP/1.1\r\nHost: h\r\nConnection: X-Drop\r\nX-Drop: 1\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "127.0.0.1|" || resp.Header.Get("Server") != "capuchin" {
		t.Errorf("the backend saw %q (want X-Forwarded-For 127.0.0.1, no X-Drop); the answer's Server is %q", body, resp.Header.Get("Server"))
	}
	if got := roundTrip(t, a, "GET /x HTTP/1.1\r\nHost: h\r\n\r\n"); got != "" {
		t.Errorf("a path outside the rules answered %q; want the connection closed", got)
	}
}
