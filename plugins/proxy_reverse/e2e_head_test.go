package main

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// hostServer returns the Server field of the host's own answers (a static
// file), the value every response is to carry.
func hostServer(t *testing.T, s *hosttest.Site) string {
	t.Helper()
	r := hosttest.Dial(t, s.Addr()).Get("/index.html")
	v := r.Header.Get("Server")
	if r.Status != 200 || !strings.HasPrefix(v, "capuchin") {
		t.Fatalf("static answer: %d, Server %q", r.Status, v)
	}
	return v
}

// count returns how many fields of the response are named name.
func count(r *hosttest.Response, name string) int {
	n := 0
	r.Header.Values(name, func(string) { n++ })
	return n
}

// checkDate fails unless the response has exactly one Date, in IMF-fixdate
// form.
func checkDate(t *testing.T, what string, r *hosttest.Response) {
	t.Helper()
	d := r.Header.Get("Date")
	if _, err := time.Parse(http.TimeFormat, d); err != nil || count(r, "Date") != 1 {
		t.Errorf("%s: Date %q (%d fields): %v", what, d, count(r, "Date"), err)
	}
}

// A backend that sends no Date and no Server: the proxy adds both (RFC 9110
// §6.6.1: a proxy adds Date; the README: every response has Date and
// Server). A backend that sends its own keeps them, once each.
func TestE2EProxyAddsDateAndServer(t *testing.T) {
	hosttest.CheckLeaks(t)
	bare := newRaw(t, "", answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false))
	own := newRaw(t, "", answer("HTTP/1.1 200 OK\r\nDate: Tue, 01 Jan 2030 00:00:00 GMT\r\n"+
		"Server: backend/1\r\nContent-Length: 2\r\n\r\nok", false))
	conf := "[PROXY_ENTRY]\n    Match ^/bare/\n    ServerList " + bare.Addr() + "\n" +
		"[PROXY_ENTRY]\n    Match ^/own/\n    ServerList " + own.Addr() + "\n"
	s, _ := startProxy(t, conf)
	server := hostServer(t, s)

	r := hosttest.Dial(t, s.Addr()).Get("/bare/x")
	if r.Status != 200 || string(r.Body) != "ok" {
		t.Fatalf("/bare/x: %d %q", r.Status, r.Body)
	}
	checkDate(t, "backend without Date", r)
	if r.Header.Get("Server") != server || count(r, "Server") != 1 {
		t.Errorf("backend without Server: Server %q, want the host's %q", r.Header.Get("Server"), server)
	}

	r = hosttest.Dial(t, s.Addr()).Get("/own/x")
	if r.Status != 200 || r.Header.Get("Date") != "Tue, 01 Jan 2030 00:00:00 GMT" || count(r, "Date") != 1 ||
		r.Header.Get("Server") != "backend/1" || count(r, "Server") != 1 {
		t.Errorf("backend with Date and Server: %d %q", r.Status, r.Raw)
	}
}

// The proxy's own answers (error pages, the status page) carry Date and
// Server like the host's; an error page to HEAD has no body, and one to an
// HTTP/1.0 client kept alive says keep-alive, so the connection stays in
// step either way.
func TestE2EProxyOwnAnswersHead(t *testing.T) {
	hosttest.CheckLeaks(t)
	conf := "[PROXY_DEFAULTS]\n    StatisticsURL /proxy_stats\n    ConnectTimeout 1\n" +
		"[PROXY_ENTRY]\n    Match ^/refuse/\n    ServerList " + deadAddr(t) + "\n    AttemptsCount 0\n"
	s, _ := startProxy(t, conf)
	server := hostServer(t, s)

	c := hosttest.Dial(t, s.Addr())
	for _, path := range []string{"/refuse/x", "/proxy_stats"} {
		r := c.Get(path)
		checkDate(t, path, r)
		if r.Header.Get("Server") != server {
			t.Errorf("%s: %d, Server %q, want %q", path, r.Status, r.Header.Get("Server"), server)
		}
	}
	r := c.RoundTrip("HEAD /refuse/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	if r.Status != 502 || r.ContentLength <= 0 {
		t.Fatalf("HEAD error page: %d, Content-Length %d", r.Status, r.ContentLength)
	}
	if r := c.Get("/index.html"); r.Status != 200 || string(r.Body) != "<h1>index</h1>\n" {
		t.Fatalf("after a HEAD error page: %d %q (the page's body was sent after all)", r.Status, r.Body)
	}

	c0, err := net.Dial("tcp", s.Addr())
	hosttest.Must(t, err)
	defer c0.Close()
	c0.SetDeadline(time.Now().Add(20 * time.Second))
	c0.Write([]byte("GET /refuse/x HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n"))
	resp, err := http.ReadResponse(bufio.NewReader(c0), nil)
	hosttest.Must(t, err)
	resp.Body.Close()
	if resp.StatusCode != 502 || resp.Header.Get("Connection") != "keep-alive" || resp.Close {
		t.Errorf("HTTP/1.0 keep-alive error page: %d, Connection %q", resp.StatusCode, resp.Header.Get("Connection"))
	}
}

// A request with a body to the status page cannot hold its connection past
// the host's Timeout (2 s here): one waiting for 100 (Continue) gets its
// 405 at once and the connection closes (RFC 9110 §10.1.1); one whose body
// stalls gets its 405 within the Timeout, and the connection closes; one
// whose body comes whole keeps the connection for the next request.
func TestE2EStatusPageBody(t *testing.T) {
	hosttest.CheckLeaks(t)
	s, _ := startProxy(t, "[PROXY_DEFAULTS]\n    StatisticsURL /proxy_stats\n", "Timeout 2")
	const post = "POST /proxy_stats HTTP/1.1\r\nHost: x\r\n"
	for _, tc := range []struct {
		name, req string
		within    time.Duration
		closes    bool
	}{
		{"expect", post + "Expect: 100-continue\r\nContent-Length: 10\r\n\r\n", time.Second, true},
		{"stalled", post + "Content-Length: 10\r\n\r\nabc", 4 * time.Second, true},
		{"whole", post + "Content-Length: 3\r\n\r\nabc", time.Second, false},
	} {
		c := hosttest.Dial(t, s.Addr())
		start := time.Now()
		c.Send(tc.req)
		r := c.MustRead("POST")
		took := time.Since(start)
		if r.Status != 405 || took > tc.within {
			t.Errorf("%s: %d after %v, want 405 within %v", tc.name, r.Status, took.Round(time.Millisecond), tc.within)
		}
		if tc.closes {
			if !c.Closed(time.Second) {
				t.Errorf("%s: the connection stays open with the body unread", tc.name)
			}
		} else if r := c.Get("/proxy_stats"); r.Status != 200 {
			t.Errorf("%s: the next request on the connection: %d", tc.name, r.Status)
		}
	}
}
