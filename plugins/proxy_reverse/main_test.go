package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// These tests run plugins/proxy_reverse's main.go (the SDK wiring) end to
// end: the real host, the real plugin binary, a real backend.

var bin *hosttest.Bin

func TestMain(m *testing.M) {
	os.Exit(hosttest.Main(m.Run, &bin, "./plugins/proxy_reverse"))
}

// backend echoes method, path, X-Forwarded-For and the body.
func backend(t *testing.T) *httptest.Server {
	t.Helper()
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Backend", "yes")
		fmt.Fprintf(w, "%s %s xff=%s body=%s", r.Method, r.URL.RequestURI(), r.Header.Get("X-Forwarded-For"), body)
	}))
	t.Cleanup(b.Close)
	return b
}

func proxySite(t *testing.T, servers string) (*hosttest.Site, *hosttest.Proc) {
	t.Helper()
	s := hosttest.NewSite(t, bin)
	s.Load("proxy_reverse")
	s.WriteFile("proxy_reverse.conf", fmt.Sprintf(`[PROXY_DEFAULTS]
    StatisticsURL /proxy_stats
    ConnectTimeout 2
[PROXY_ENTRY]
    ServerList %s
    Match ^/api/
`, servers))
	return s, s.Start()
}

func TestProxyReverseForwardsAndDeclines(t *testing.T) {
	hosttest.CheckLeaks(t)
	b := backend(t)
	s, _ := proxySite(t, strings.TrimPrefix(b.URL, "http://"))

	c := hosttest.Dial(t, s.Addr())
	// A proxied request, a static one and a proxied POST, pipelined on one
	// connection: the plugin must hand the connection back exactly.
	c.Send("GET /api/one?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" +
		"GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" +
		"POST /API/two HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello" +
		"GET /missing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	for _, want := range []struct {
		status int
		body   string
	}{
		{200, "GET /api/one?x=1 xff=127.0.0.1 body="},
		{200, "<h1>index</h1>\n"},
		{200, "POST /API/two xff=127.0.0.1 body=hello"},
		{404, ""},
	} {
		r := c.MustRead("GET")
		if r.Status != want.status || want.body != "" && string(r.Body) != want.body {
			t.Fatalf("got %d %q, want %d %q", r.Status, r.Body, want.status, want.body)
		}
	}

	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(s.URL("/proxy_stats"))
	hosttest.Must(t, err)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), strings.TrimPrefix(b.URL, "http://")) {
		t.Fatalf("status page: %d %q", resp.StatusCode, page)
	}
}

func TestProxyReverseBackendDown(t *testing.T) {
	hosttest.CheckLeaks(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	hosttest.Must(t, err)
	dead := l.Addr().String()
	l.Close() // nothing listens there now
	s, _ := proxySite(t, dead)

	c := hosttest.Dial(t, s.Addr())
	c.Send("GET /api/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	r := c.MustRead("GET")
	if r.Status != 502 && r.Status != 503 {
		t.Fatalf("backend down: %d %q", r.Status, r.Body)
	}
	if !r.Close {
		c.Send("GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		if r := c.MustRead("GET"); r.Status != 200 {
			t.Fatalf("static after a failed proxy request: %d", r.Status)
		}
	}
}
