package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// TestPluginLeaseTerms checks the terms a lease must keep, seen from a
// client: MaxKeepAliveRequest still counts the requests a plugin serves,
// a request over MaxRequestSize goes back to the host (413), HEAD has no
// body, Expect: 100-continue is answered, and KeepAliveTimeout closes an
// idle leased connection (with its stage-50 notice).
func TestPluginLeaseTerms(t *testing.T) {
	pluginTest(t)
	s, notes := notesSite(t)
	s.Server = []string{"MaxKeepAliveRequest 4", "KeepAliveTimeout 1", "MaxRequestSize 1", "MaxHeaderSize 1", "Timeout 1"}
	s.StartChecked()

	t.Run("MaxKeepAliveRequest", func(t *testing.T) {
		c := dial(t, s.Addr())
		c.Send(strings.Repeat("GET /hello/x HTTP/1.1\r\nHost: x\r\n\r\n", 5))
		for i := 1; i <= 4; i++ {
			r := c.MustRead("GET")
			if r.Status != 200 || r.Close != (i == 4) {
				t.Fatalf("response %d: %d close=%v, want 200 and close only on the 4th", i, r.Status, r.Close)
			}
		}
		if !c.Closed(2 * time.Second) {
			t.Error("a fifth response on a connection limited to 4 requests")
		}
	})
	t.Run("MaxRequestSize", func(t *testing.T) {
		c := dial(t, s.Addr())
		c.Send("GET /hello/a HTTP/1.1\r\nHost: x\r\n\r\nPOST /hello/b HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
		if r := c.MustRead("GET"); r.Status != 200 {
			t.Fatalf("first: %d", r.Status)
		}
		if r := c.MustRead("POST"); r.Status != 413 {
			t.Fatalf("body over MaxRequestSize in a lease: %d, want 413", r.Status)
		}
	})
	t.Run("chunked over MaxRequestSize", func(t *testing.T) {
		c := dial(t, s.Addr())
		chunk := strings.Repeat("z", 800)
		c.Send("GET /hello/a HTTP/1.1\r\nHost: x\r\n\r\nPOST /hello/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"320\r\n" + chunk + "\r\n320\r\n" + chunk + "\r\n0\r\n\r\n")
		c.MustRead("GET")
		if r := c.MustRead("POST"); r.Status != 413 {
			t.Fatalf("chunked body over MaxRequestSize in a lease: %d, want 413", r.Status)
		}
	})
	t.Run("stalled body", func(t *testing.T) {
		c := dial(t, s.Addr())
		c.Send("GET /hello/a HTTP/1.1\r\nHost: x\r\n\r\nPOST /hello/b HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
		c.MustRead("GET")
		start := time.Now()
		if r := c.MustRead("POST"); r.Status != 408 || time.Since(start) > 8*time.Second {
			t.Fatalf("stalled body in a lease: %d after %v, want 408 after the server's Timeout of 1 s", r.Status, time.Since(start))
		}
	})
	t.Run("MaxHeaderSize", func(t *testing.T) {
		c := dial(t, s.Addr())
		c.Send("GET /hello/a HTTP/1.1\r\nHost: x\r\n\r\nGET /hello/b HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 2000) + "\r\n\r\n")
		c.MustRead("GET")
		if r := c.MustRead("GET"); r.Status != 431 {
			t.Fatalf("head over MaxHeaderSize in a lease: %d, want 431", r.Status)
		}
	})
	t.Run("HEAD", func(t *testing.T) {
		c := dial(t, s.Addr())
		c.Send("GET /hello/a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /hello/b HTTP/1.1\r\nHost: x\r\n\r\nGET /hello/c HTTP/1.1\r\nHost: x\r\n\r\n")
		c.MustRead("GET")
		if r := c.MustRead("HEAD"); r.Status != 200 || len(r.Body) != 0 || r.ContentLength <= 0 {
			t.Fatalf("HEAD: %d, length %d, body %q", r.Status, r.ContentLength, r.Body)
		}
		if r := c.MustRead("GET"); r.Status != 200 || !strings.HasPrefix(string(r.Body), "hello GET /hello/c") {
			t.Fatalf("after HEAD: %d %q", r.Status, r.Body)
		}
	})
	t.Run("Expect 100-continue", func(t *testing.T) {
		c := dial(t, s.Addr())
		for _, path := range []string{"/hello/first", "/hello/leased"} {
			c.Send("POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
			c.C.SetReadDeadline(time.Now().Add(3 * time.Second))
			line, err := c.BR.ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
				t.Fatalf("%s: no 100 Continue: %q %v", path, line, err)
			}
			if blank, _ := c.BR.ReadString('\n'); blank != "\r\n" {
				t.Fatalf("%s: 100 Continue not followed by an empty line: %q", path, blank)
			}
			c.C.SetReadDeadline(time.Now().Add(10 * time.Second))
			c.Send("body")
			if r := c.MustRead("POST"); r.Status != 200 || !strings.HasSuffix(string(r.Body), `body="body"`) {
				t.Fatalf("%s: %d %q", path, r.Status, r.Body)
			}
		}
	})
	t.Run("KeepAliveTimeout", func(t *testing.T) {
		c := dial(t, s.Addr())
		c.Get("/hello/a")
		c.Get("/hello/b") // served under the lease
		start := time.Now()
		if !c.Closed(4 * time.Second) {
			t.Fatal("idle leased connection not closed after KeepAliveTimeout 1")
		}
		t.Logf("closed %v after the last response", time.Since(start).Round(time.Millisecond))
		var lines []string
		ok := hosttest.Poll(5*time.Second, func() bool {
			b, _ := os.ReadFile(notes)
			lines = strings.Split(strings.TrimSpace(string(b)), "\n")
			id := ""
			for _, l := range lines {
				if f := strings.Fields(l); len(f) > 4 && f[0] == "done" && f[4] == "/hello/b" {
					id = f[1]
				}
			}
			return id != "" && hasLine(lines, "closed "+id)
		})
		if !ok {
			t.Errorf("no stage-40 record of the leased request and stage-50 notice:\n%s", strings.Join(lines, "\n"))
		}
	})
}

// TestPluginLeaseBoundaries: requests a lease must give back to the host —
// another virtual host, a static path whose head arrives in pieces — are
// answered correctly, and heads split across packets inside a lease work.
func TestPluginLeaseBoundaries(t *testing.T) {
	pluginTest(t)
	s := newSite(t)
	must(t, os.MkdirAll(filepath.Join(s.Dir, "www2"), 0o755))
	s.WriteFile("www2/index.html", "other site")
	s.WriteFile("sites/other", "[HOST]\n    ServerName other.test\n    DocumentRoot www2\n")
	s.LoadFrom(testPlugins(t), "hello")
	s.StartChecked()

	c := dial(t, s.Addr())
	first := c.Get("/hello/a")
	_, v, _ := strings.Cut(string(first.Body), "vhost=")
	vhost, _, _ := strings.Cut(v, " ")
	r := c.RoundTrip("GET /hello/b HTTP/1.1\r\nHost: other.test\r\n\r\n")
	_, v, _ = strings.Cut(string(r.Body), "vhost=")
	other, _, _ := strings.Cut(v, " ")
	if r.Status != 200 || other == vhost || other == "" {
		t.Errorf("request for another virtual host in a lease: %d %q (first was vhost %q)", r.Status, r.Body, vhost)
	}
	if r := c.RoundTrip("GET /index.html HTTP/1.1\r\nHost: other.test\r\n\r\n"); string(r.Body) != "other site" {
		t.Errorf("static of the other site: %d %q", r.Status, r.Body)
	}

	c = dial(t, s.Addr())
	c.Get("/hello/a")
	for _, parts := range [][]string{
		{"GET /hello/b HTTP/1.1\r\nHo", "st: x\r\n", "\r\n"},
		{"GET /index.h", "tml HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"GET /hello/c HTTP/1.1\r\nHost: x\r\n\r", "\n"},
	} {
		for _, p := range parts {
			c.Send(p)
			time.Sleep(30 * time.Millisecond)
		}
		path := strings.Fields(strings.Join(parts, ""))[1]
		r := c.MustRead("GET")
		if r.Status != 200 || !strings.Contains(string(r.Body), path) && !strings.Contains(string(r.Body), "<h1>hello") {
			t.Fatalf("%s sent in pieces: %d %q", path, r.Status, r.Body)
		}
	}
}

// TestPluginStuckNotifications: a plugin whose stage-40/50 hooks never
// return must not slow or stop requests — notifications are one-way and
// dropped when its queue is full — and the host still stops it on SIGTERM.
func TestPluginStuckNotifications(t *testing.T) {
	pluginTest(t)
	dir := ownPluginDir(t, "stuck", "hello")
	s := newSite(t)
	s.LoadFrom(dir, "stuck", "hello")
	p := s.StartChecked()
	// More requests than the plugin's notification queue holds (4096).
	ls := loadRun(hosttest.Load{Addr: s.Addr(), Path: "/index.html", Workers: 4, PerWorker: 1100})
	ls2 := loadRun(hosttest.Load{Addr: s.Addr(), Path: "/hello/x", Workers: 4, PerWorker: 100})
	if ls.Status[200] != 4400 || ls2.Status[200] != 400 {
		t.Fatalf("with a stuck stage-40 plugin: static %s; plugin %s", ls, ls2)
	}
	start := time.Now()
	if err := p.Stop(10 * time.Second); err != nil {
		t.Errorf("exit: %v", err)
	}
	t.Logf("stopped %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	if !hosttest.Poll(5*time.Second, func() bool { return len(pidsRunning(dir)) == 0 }) {
		t.Errorf("plugins left running: %v", pidsRunning(dir))
	}
}

// TestLeaseErrorPages: the error pages a lease holder sends in the host's
// place are the site's own, as the host's are: for a stage-20 peer's reply
// without a body and for a stage-30 Close, on a leased connection.
func TestLeaseErrorPages(t *testing.T) {
	pluginTest(t)
	s := newSite(t)
	s.WriteFile("sites/default", "[HOST]\n    DocumentRoot www\n[ERROR_PAGES]\n    418 teapot.html\n")
	const page = "<p>custom teapot</p>\n"
	s.WriteRoot("teapot.html", page)
	s.LoadFrom(testPlugins(t), "gate", "hello")
	s.StartChecked()

	c := dial(t, s.Addr())
	for _, p := range []string{"/teapot", "/hello/a", "/hello/teapot", "/hello/close"} {
		r := c.Get(p)
		switch {
		case p == "/hello/a":
			if r.Status != 200 {
				t.Fatalf("%s: %d", p, r.Status)
			}
		case r.Status != 418 || string(r.Body) != page || r.Header.Get("Content-Type") != "text/html; charset=utf-8":
			t.Errorf("%s: %d %q (%s), want 418 with the site's page", p, r.Status, r.Body, r.Header.Get("Content-Type"))
		}
	}
	if !c.Closed(3 * time.Second) {
		t.Error("the connection stayed open after the handler's Close")
	}
}

// TestLeaseIdleHoldKeepsTimeout: a lease the plugin gives back after
// holding the connection idle for a while (500 ms, after a single request)
// leaves the host only the rest of KeepAliveTimeout: the idle connection
// closes after KeepAliveTimeout in all, as a connection the host held
// would. The lease of a client that comes back, which the plugin holds
// past its hold (longHold), keeps the timeout too: a request sent before
// it is served, and the connection closes KeepAliveTimeout after it.
func TestLeaseIdleHoldKeepsTimeout(t *testing.T) {
	pluginTest(t)
	s := newSite(t)
	s.Server = []string{"KeepAliveTimeout 3"}
	s.LoadFrom(testPlugins(t), "hello")
	s.StartChecked()

	once, back := dial(t, s.Addr()), dial(t, s.Addr())
	once.Get("/hello/a") // given back after the hold
	closesAfter(t, once, "given back after one request")

	back.Get("/hello/a")
	back.Get("/hello/b")        // under the lease: a client that comes back
	time.Sleep(2 * time.Second) // past the hold: the plugin holds it on
	if r := back.Get("/hello/c"); r.Status != 200 {
		t.Fatalf("after 2 s idle: %d", r.Status)
	}
	closesAfter(t, back, "held by the plugin")
}

// closesAfter checks that c, answered just now, closes after
// KeepAliveTimeout (3 s).
func closesAfter(t *testing.T, c *client, what string) {
	t.Helper()
	start := time.Now()
	if !c.Closed(6 * time.Second) {
		t.Fatalf("%s: idle connection not closed", what)
	}
	if d := time.Since(start); d < 2500*time.Millisecond || d > 3700*time.Millisecond {
		t.Errorf("%s: idle connection closed after %v, want KeepAliveTimeout (3 s)", what, d.Round(time.Millisecond))
	}
}

// TestLeaseEndsWithConnection: a leased connection that ends — the client
// closes it, or a request asks for the close, also after the plugin gave it
// back idle and the host parked it — gets the stage-40 record of each
// request and its stage-50 notice, the client sees the close, and the host
// keeps no descriptor of it afterwards (the socket it parked during the
// lease is closed with the connection).
func TestLeaseEndsWithConnection(t *testing.T) {
	pluginTest(t)
	s, notes := notesSite(t)
	p := s.StartChecked()
	// Warm up: the plugins' sockets, and the host's idler (its epoll and
	// wake-up descriptors), which the first connection given back starts.
	warm := dial(t, s.Addr())
	warm.Get("/hello/warm")
	time.Sleep(900 * time.Millisecond)
	warm.C.Close()
	time.Sleep(300 * time.Millisecond)
	base := openFDs(t, p.Pid())
	for _, tc := range []struct {
		name, last string
		pause      time.Duration // after the second request: past the SDK's 500 ms hold, the lease is given back
	}{
		{"client closes", "GET /hello/c3 HTTP/1.1\r\nHost: x\r\n\r\n", 0},
		{"Connection: close", "GET /hello/c3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 0},
		{"given back, then client closes", "GET /hello/c3 HTTP/1.1\r\nHost: x\r\n\r\n", 900 * time.Millisecond},
		{"given back, then Connection: close", "GET /hello/c3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 900 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, s.Addr())
			c.Get("/hello/c1")
			c.Get("/hello/c2") // served under the lease
			time.Sleep(tc.pause)
			c.Send(tc.last)
			if r := c.MustRead("GET"); r.Status != 200 {
				t.Fatalf("third request: %d", r.Status)
			}
			if strings.Contains(tc.last, "close") && !c.Closed(2*time.Second) {
				t.Fatal("connection open after an answer to Connection: close")
			}
			c.C.Close()
			var lines []string
			ok := hosttest.Poll(5*time.Second, func() bool {
				b, _ := os.ReadFile(notes)
				lines = strings.Split(strings.TrimSpace(string(b)), "\n")
				ids := map[string]int{}
				for _, l := range lines {
					if f := strings.Fields(l); len(f) > 4 && f[0] == "done" && strings.HasPrefix(f[4], "/hello/c") {
						ids[f[1]]++
					}
				}
				for id, n := range ids {
					if n == 3 && hasLine(lines, "closed "+id) {
						return true
					}
				}
				return false
			})
			if !ok {
				t.Fatalf("no stage-40 records of the three requests with a stage-50 notice:\n%s", strings.Join(lines, "\n"))
			}
			os.WriteFile(notes, nil, 0o644)
			if !hosttest.Poll(5*time.Second, func() bool { return openFDs(t, p.Pid()) <= base }) {
				t.Errorf("the host holds %d descriptors after the connection ended, %d before it", openFDs(t, p.Pid()), base)
			}
		})
	}
}

// openFDs counts the descriptors process pid has open.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Skipf("descriptors of the host not readable: %v", err)
	}
	return len(es)
}
