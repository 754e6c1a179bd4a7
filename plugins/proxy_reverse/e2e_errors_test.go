package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// deadAddr returns an address of 127.0.0.1 where nothing listens.
func deadAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	hosttest.Must(t, err)
	defer l.Close()
	return l.Addr().String()
}

// answer returns a raw backend handler that reads one request head and
// writes out, then waits for the peer (or stall) before closing.
func answer(out string, hold bool) func(net.Conn, *bufio.Reader) {
	return func(c net.Conn, br *bufio.Reader) {
		if _, ok := readHead(br); !ok {
			return
		}
		io.WriteString(c, out)
		if hold {
			io.Copy(io.Discard, br) // until the proxy gives up and closes
		}
	}
}

// errorsConf has one entry per failure mode.
func errorsConf(t *testing.T) string {
	garbage := newRaw(t, "", answer("garbage\r\n\r\n", false))
	silent := newRaw(t, "", answer("", true))
	cut := newRaw(t, "", answer("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"+strings.Repeat("x", 100), false))
	cutChunked := newRaw(t, "", answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", false))
	stall := newRaw(t, "", answer("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"+strings.Repeat("x", 100), true))
	entry := func(match, servers string, extra string) string {
		if extra == "" {
			extra = "    AttemptsCount 0\n"
		}
		return fmt.Sprintf("[PROXY_ENTRY]\n    Match %s\n    ServerList %s\n    ResponseTimeout 500ms\n%s",
			match, servers, extra)
	}
	return "[PROXY_DEFAULTS]\n    ConnectTimeout 1\n" +
		entry("^/refuse/", deadAddr(t)+" "+deadAddr(t), "") +
		entry("^/offline/", deadAddr(t), "    AttemptsCount 1\n    OfflineTimeOut 60\n") +
		entry("^/garbage/", garbage.Addr(), "") +
		entry("^/silent/", silent.Addr(), "") +
		entry("^/cut/", cut.Addr(), "") +
		entry("^/cutchunked/", cutChunked.Addr(), "") +
		entry("^/stall/", stall.Addr(), "")
}

// Every error of the proxy as a client sees it: a status with a short HTML
// page and a connection that stays usable, or (once part of the answer was
// sent) a closed connection with an incomplete body.
func TestE2EErrorStatuses(t *testing.T) {
	hosttest.CheckLeaks(t)
	s, _ := startProxy(t, errorsConf(t))
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/refuse/x", 502}, {"/offline/x", 502}, {"/offline/x", 503},
		{"/garbage/x", 502}, {"/silent/x", 504}, {"/refuse/y", 502},
	} {
		c := hosttest.Dial(t, s.Addr())
		start := time.Now()
		c.Send("GET " + tc.path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		r := c.MustRead("GET")
		page := string(r.Body)
		if r.Status != tc.status || !strings.Contains(page, "<html>") || !strings.Contains(page, fmt.Sprint(tc.status)) ||
			!strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("%s: %d %q, want %d with an HTML page", tc.path, r.Status, page, tc.status)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("%s took %v", tc.path, d)
		}
		if r.Close {
			t.Fatalf("%s: connection closed after an error page with nothing pending", tc.path)
		}
		c.Send("GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		if r := c.MustRead("GET"); r.Status != 200 {
			t.Fatalf("%s: static request after the error: %d", tc.path, r.Status)
		}
	}
	for _, path := range []string{"/cut/x", "/cutchunked/x", "/stall/x"} {
		c := hosttest.Dial(t, s.Addr())
		c.Send("GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		r, err := c.Read("GET")
		if err == nil {
			t.Fatalf("%s: a cut answer was presented as complete: %d, %d body bytes", path, r.Status, len(r.Body))
		}
		if r == nil || r.Status != 200 {
			t.Fatalf("%s: want the head relayed, then a cut body: %v %v", path, r, err)
		}
		if !c.Closed(5 * time.Second) {
			t.Fatalf("%s: client connection not closed after a cut answer", path)
		}
	}
	resp, err := client(t, true, "").Get(s.URL("/cut/y"))
	hosttest.Must(t, err)
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatalf("Go client: cut body of %d bytes read without an error", n)
	}
}

// A stalled upload is the client's fault whatever the backend's
// ResponseTimeout, which counts from the request's last byte (as nginx's
// proxy_read_timeout): with ResponseTimeout 1 and ClientBodyTimeout 2 a
// client that stalls gets 408 when its own timeout passes, not a 504 at
// 1 s; and one that got the backend's 100 (Continue) and sends nothing
// gets 408 within ClientBodyTimeout, not a 504 at ResponseTimeout (30 s).
func TestE2EStalledUploadBlamesClient(t *testing.T) {
	hosttest.CheckLeaks(t)
	addr := echoBackend(t).Listener.Addr().String()
	const post = "POST /api/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n"
	for _, tc := range []struct {
		name, req string
		entry     []string
	}{
		{"stalled", post + "\r\n0123456789", []string{"ResponseTimeout 1", "ClientBodyTimeout 2", "ClientBodyMinRate 0"}},
		{"continued", post + "Expect: 100-continue\r\n\r\n", []string{"ResponseTimeout 30", "ClientBodyTimeout 1"}},
	} {
		s, _ := startProxy(t, entryConf("First-Alive", addr, tc.entry...))
		c := hosttest.Dial(t, s.Addr())
		start := time.Now()
		c.Send(tc.req)
		r := c.MustRead("POST")
		for r.Status < 200 {
			r = c.MustRead("POST")
		}
		if d := time.Since(start); r.Status != 408 || d > 6*time.Second {
			t.Errorf("%s: %d after %v %q, want 408", tc.name, r.Status, d.Round(time.Millisecond), r.Body)
		}
		if !c.Closed(5 * time.Second) {
			t.Errorf("%s: the connection stays open with the body unread", tc.name)
		}
	}
}

// A client that stalls in the middle of its request body gets 408 (the
// host's Timeout semantics for a client mid-request), not a 504 blaming the
// backend, and the connection closes.
func TestE2EStalledUpload408(t *testing.T) {
	hosttest.CheckLeaks(t)
	b := echoBackend(t)
	s, _ := startProxy(t, entryConf("First-Alive", b.Listener.Addr().String(), "ResponseTimeout 30", "ClientBodyTimeout 1",
		"ClientBodyMinRate 0"))
	// A slow but steady client is not cut: the timeout is per wait (the
	// minimum rate, tested in e2e_slow_test.go, is off here).
	c := hosttest.Dial(t, s.Addr())
	c.Send("POST /api/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 8\r\n\r\n")
	for _, part := range []string{"ab", "cd", "ef", "gh"} {
		time.Sleep(400 * time.Millisecond)
		c.Send(part)
	}
	if r := c.MustRead("POST"); r.Status != 200 || string(r.Body) != "POST te=[] len=8 err=<nil> body=abcdefgh" {
		t.Fatalf("slow upload: %d %q", r.Status, r.Body)
	}
	for _, lead := range []string{"", "GET /api/first HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"} {
		c := hosttest.Dial(t, s.Addr())
		if lead != "" { // the stalled request is then served under the lease
			c.Send(lead)
			c.MustRead("GET")
		}
		start := time.Now()
		c.Send("POST /api/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n0123456789")
		r := c.MustRead("POST")
		if r.Status != 408 || !r.Close || !c.Closed(5*time.Second) {
			t.Fatalf("stalled upload (lead %q): %d close=%v %q", lead, r.Status, r.Close, r.Body)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("408 after %v", d)
		}
	}
}
