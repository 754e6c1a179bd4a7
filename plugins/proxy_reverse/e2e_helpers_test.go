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

// Helpers of the end-to-end tests (e2e_*_test.go): every test runs the real
// host binary with the real plugin binary (built once by TestMain) and real
// backends on 127.0.0.1.

// named is an HTTP backend that answers every request with its name (body
// and X-Backend) and counts the requests it got. A request whose path
// contains "hold" waits until release is closed.
type named struct {
	*httptest.Server
	name    string
	hits    atomic.Int64
	release chan struct{}
	once    sync.Once
}

// hostPort is the backend's address for a ServerList.
func (b *named) hostPort() string { return b.Listener.Addr().String() }

// Release lets held requests finish.
func (b *named) Release() { b.once.Do(func() { close(b.release) }) }

func (b *named) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.hits.Add(1)
	if strings.Contains(r.URL.Path, "hold") {
		select {
		case <-b.release:
		case <-r.Context().Done():
		}
	}
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("X-Backend", b.name)
	io.WriteString(w, b.name)
}

// newNamed starts a named backend on addr ("" for a free port).
func newNamed(t *testing.T, name, addr string) *named {
	t.Helper()
	b := &named{name: name, release: make(chan struct{})}
	b.Server = httptest.NewUnstartedServer(b)
	if addr != "" {
		l, err := net.Listen("tcp", addr)
		hosttest.Must(t, err)
		b.Listener.Close()
		b.Listener = l
	}
	b.Start()
	t.Cleanup(func() { b.Release(); b.Close() })
	return b
}

// namedBackends starts n named backends b0, b1, ...
func namedBackends(t *testing.T, n int) []*named {
	var out []*named
	for i := 0; i < n; i++ {
		out = append(out, newNamed(t, fmt.Sprintf("b%d", i), ""))
	}
	return out
}

func addrs(bs ...*named) string {
	var s []string
	for _, b := range bs {
		s = append(s, b.hostPort())
	}
	return strings.Join(s, " ")
}

// startProxy runs the host with the plugin and conf as proxy_reverse.conf.
func startProxy(t *testing.T, conf string, server ...string) (*hosttest.Site, *hosttest.Proc) {
	t.Helper()
	s := hosttest.NewSite(t, bin)
	s.Load("proxy_reverse")
	s.Server = server
	s.WriteFile("proxy_reverse.conf", conf)
	return s, s.Start()
}

// entryConf is a configuration of one entry claiming ^/api/.
func entryConf(balancer, servers string, extra ...string) string {
	c := "[PROXY_DEFAULTS]\n    StatisticsURL /proxy_stats\n    ConnectTimeout 2\n" +
		"[PROXY_ENTRY]\n    Match ^/api/\n    LoadBalancer " + balancer + "\n    ServerList " + servers + "\n"
	for _, e := range extra {
		c += "    " + e + "\n"
	}
	return c
}

// client is a Go HTTP client; keepAlive false opens a connection per
// request. local, when set, is the client's source address.
func client(t *testing.T, keepAlive bool, local string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: !keepAlive,
		MaxIdleConnsPerHost: 4, DisableCompression: true}
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return c
}

// get fetches url and returns the status and body; it fails the test on a
// transport error.
func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	hosttest.Must(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	hosttest.Must(t, err)
	return resp.StatusCode, string(b)
}

// sequence fetches url n times and returns the bodies (backend names).
func sequence(t *testing.T, c *http.Client, url string, n int) []string {
	t.Helper()
	var out []string
	for i := 0; i < n; i++ {
		st, body := get(t, c, url)
		if st != 200 {
			t.Fatalf("request %d: %d %q", i, st, body)
		}
		out = append(out, body)
	}
	return out
}

// raw is a TCP backend whose serve reads with a bufio.Reader, under a
// 30 s deadline.
type raw = hosttest.Server

func newRaw(t *testing.T, addr string, serve func(c net.Conn, br *bufio.Reader)) *raw {
	t.Helper()
	return hosttest.Serve(t, addr, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		serve(c, bufio.NewReader(c))
	})
}

// readHead reads a request head; false on EOF or error.
func readHead(br *bufio.Reader) (*http.Request, bool) {
	req, err := http.ReadRequest(br)
	return req, err == nil
}

// statusJSON fetches the status page as JSON.
func statusJSON(t *testing.T, s *hosttest.Site) string {
	t.Helper()
	_, body := get(t, client(t, false, ""), s.URL("/proxy_stats?format=json"))
	return body
}
