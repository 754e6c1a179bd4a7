package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// Hostile backends: answers a strict proxy must not pass on as they are.
// Each case runs through the real host and plugin, on a fresh client
// connection, on a leased one, and as a POST with a body (streamed to the
// backend while the answer is awaited). Properties:
//   - the client gets a 502 page, or (once part of the answer went out) a
//     cut answer that its reader does not take as complete and a closed
//     connection, or, for bytes past a complete answer, exactly that answer;
//   - the backend connection that misbehaved never carries another request
//     (it is not returned to the pool);
//   - the next request, on the same client connection when it stayed open,
//     gets its own correct answer;
//   - at most a few 1xx answers reach the client.

// hostileAnswer writes a bad answer on c; it reports whether the backend
// then closes the connection (otherwise it keeps reading requests on it).
type hostileAnswer func(c net.Conn) (closed bool)

func writeAnswer(s string) hostileAnswer {
	return func(c net.Conn) bool {
		io.WriteString(c, s)
		return false
	}
}

func writeAndClose(s string) hostileAnswer {
	return func(c net.Conn) bool {
		io.WriteString(c, s)
		return true
	}
}

// hostileBackend answers /api/bad/N with cases[N]'s answer and anything
// else with "good PATH". It records any request that arrives on a
// connection after a bad answer.
type hostileBackend struct {
	*raw
	answers []hostileAnswer
	mu      sync.Mutex
	reused  []string
}

func newHostileBackend(t *testing.T, answers []hostileAnswer) *hostileBackend {
	h := &hostileBackend{answers: answers}
	h.raw = newRaw(t, "", h.serve)
	return h
}

func (h *hostileBackend) serve(c net.Conn, br *bufio.Reader) {
	tainted := ""
	for {
		req, ok := readHead(br)
		if !ok {
			return
		}
		io.Copy(io.Discard, req.Body)
		if tainted != "" {
			h.mu.Lock()
			h.reused = append(h.reused, req.URL.Path+" after "+tainted)
			h.mu.Unlock()
		}
		if n, err := strconv.Atoi(strings.TrimPrefix(req.URL.Path, "/api/bad/")); err == nil {
			tainted = req.URL.Path
			if h.answers[n](c) {
				return
			}
			continue
		}
		body := "good " + req.URL.Path
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	}
}

// Outcomes a client may see.
const (
	want502 = "502" // an error page; the connection stays open
	wantCut = "cut" // a head, an incomplete body, a closed connection
	wantOK  = "ok"  // the declared answer, complete
)

type hostileCase struct {
	name   string
	answer hostileAnswer
	want   string
	body   string // for wantOK
}

func hostileCases() []hostileCase {
	ok := "HTTP/1.1 200 OK\r\n"
	return []hostileCase{
		{name: "Content-Length and Transfer-Encoding", want: want502,
			answer: writeAnswer(ok + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")},
		{name: "two Content-Lengths", want: want502, answer: writeAnswer(ok + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!")},
		{name: "Content-Length list", want: want502, answer: writeAnswer(ok + "Content-Length: 5, 6\r\n\r\nhello!")},
		{name: "signed Content-Length", want: want502, answer: writeAnswer(ok + "Content-Length: +5\r\n\r\nhello")},
		{name: "Transfer-Encoding in HTTP/1.0", want: want502,
			answer: writeAnswer("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")},
		{name: "gzip, chunked", want: want502,
			answer: writeAnswer(ok + "Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")},
		{name: "chunked twice", want: want502,
			answer: writeAnswer(ok + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")},
		{name: "bare LF line ends", want: want502, answer: writeAnswer("HTTP/1.1 200 OK\nContent-Length: 5\n\nhello")},
		{name: "bare CR in a field", want: want502, answer: writeAnswer(ok + "X: a\rb\r\nContent-Length: 5\r\n\r\nhello")},
		{name: "NUL in a field", want: want502, answer: writeAnswer(ok + "X: a\x00b\r\nContent-Length: 5\r\n\r\nhello")},
		{name: "obs-fold", want: want502, answer: writeAnswer(ok + "X: a\r\n b\r\nContent-Length: 5\r\n\r\nhello")},
		{name: "oversized head", want: want502,
			answer: writeAnswer(ok + "X-Big: " + strings.Repeat("x", 40<<10) + "\r\nContent-Length: 5\r\n\r\nhello")},
		{name: "close before any body byte", want: want502, answer: writeAndClose(ok + "Content-Length: 100\r\n\r\n")},
		{name: "short body before close", want: wantCut, answer: writeAndClose(ok + "Content-Length: 100\r\n\r\nhello")},
		{name: "short chunked body before close", want: wantCut,
			answer: writeAndClose(ok + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")},
		{name: "bad first chunk size", want: want502,
			answer: writeAnswer(ok + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")},
		{name: "bad chunk size after a chunk", want: wantCut,
			answer: writeAnswer(ok + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n-1\r\nx\r\n0\r\n\r\n")},
		{name: "chunk longer than its size", want: wantCut,
			answer: writeAnswer(ok + "Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n")},
		{name: "body longer than declared, then a second answer", want: wantOK, body: "hi",
			answer: writeAnswer(ok + "Content-Length: 2\r\n\r\nhiEXTRA" + ok + "Content-Length: 8\r\n\r\nSMUGGLED")},
		{name: "second answer after a pause", want: wantOK, body: "hi",
			answer: func(c net.Conn) bool {
				io.WriteString(c, ok+"Content-Length: 2\r\n\r\nhi")
				time.Sleep(100 * time.Millisecond)
				io.WriteString(c, ok+"Content-Length: 8\r\n\r\nSMUGGLED")
				return false
			}},
		{name: "thousands of 100 Continue", want: want502,
			answer: writeAndClose(strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 5000) + ok + "Content-Length: 2\r\n\r\nhi")},
		{name: "thousands of 103 Early Hints", want: want502,
			answer: writeAndClose(strings.Repeat("HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n", 3000) + ok + "Content-Length: 2\r\n\r\nhi")},
	}
}

// maxInterimSeen is what the test allows to reach the client (the proxy's
// cap is 8).
const maxInterimSeen = 10

func TestE2EHostileBackends(t *testing.T) {
	hosttest.CheckLeaks(t)
	cases := hostileCases()
	var answers []hostileAnswer
	for _, tc := range cases {
		answers = append(answers, tc.answer)
	}
	b := newHostileBackend(t, answers)
	s, _ := startProxy(t, entryConf("roundrobin", b.Addr(), "AttemptsCount 0", "ResponseTimeout 5"))
	for i, tc := range cases {
		for _, mode := range []string{"fresh", "leased", "post"} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				runHostileCase(t, s.Addr(), i, tc, mode)
			})
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range b.reused {
		t.Errorf("a backend connection was reused after a bad answer: %s", r)
	}
}

func runHostileCase(t *testing.T, addr string, i int, tc hostileCase, mode string) {
	c := hosttest.Dial(t, addr)
	tag := fmt.Sprintf("%d-%s", i, mode)
	if mode == "leased" {
		if r := c.Get("/api/first-" + tag); r.Status != 200 || string(r.Body) != "good /api/first-"+tag {
			t.Fatalf("first request: %d %q", r.Status, r.Body)
		}
	}
	method, body := "GET", "\r\n"
	if mode == "post" {
		method, body = "POST", "Content-Length: 5\r\n\r\nhello"
	}
	c.Send(fmt.Sprintf("%s /api/bad/%d HTTP/1.1\r\nHost: 127.0.0.1\r\n%s", method, i, body))
	interim := 0
	r, err := c.Read(method)
	for err == nil && r.Status < 200 {
		if interim++; interim > maxInterimSeen {
			t.Fatalf("more than %d 1xx answers relayed", maxInterimSeen)
		}
		r, err = c.Read(method)
	}
	switch tc.want {
	case want502:
		if err != nil || r.Status != 502 || r.Close || !strings.Contains(string(r.Body), "502") {
			t.Fatalf("want a 502 page on an open connection, got %s", answerOf(r, err))
		}
	case wantOK:
		if err != nil || r.Status != 200 || string(r.Body) != tc.body {
			t.Fatalf("want 200 %q, got %s", tc.body, answerOf(r, err))
		}
	case wantCut:
		if err == nil || r == nil || r.Status != 200 {
			t.Fatalf("want a cut answer, got %s", answerOf(r, err))
		}
		if !c.Closed(5 * time.Second) {
			t.Fatalf("client connection open after a cut answer")
		}
		c = hosttest.Dial(t, addr)
	}
	if tc.want == wantOK {
		time.Sleep(200 * time.Millisecond) // let late bytes arrive on the backend connection
	}
	next := "/api/next-" + tag
	if r := c.Get(next); r.Status != 200 || string(r.Body) != "good "+next {
		t.Fatalf("next request: %d %q", r.Status, r.Body)
	}
}

// answerOf describes what the client read.
func answerOf(r *hosttest.Response, err error) string {
	if r == nil {
		return fmt.Sprintf("no answer (%v)", err)
	}
	return fmt.Sprintf("%d close=%v body %q (%v)", r.Status, r.Close, r.Body, err)
}

// A backend that answers a broken body before it has read the request body
// (the upload still streaming): the client gets a 502 page and, as its body
// was not read to its end, a closed connection.
func TestE2EHostileEarlyAnswer(t *testing.T) {
	hosttest.CheckLeaks(t)
	for _, bad := range []string{
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
	} {
		b := newRaw(t, "", answer(bad, true))
		s, _ := startProxy(t, entryConf("roundrobin", b.Addr(), "AttemptsCount 0", "ResponseTimeout 5"))
		c := hosttest.Dial(t, s.Addr())
		c.Send("POST /api/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n0123456789")
		r, err := c.Read("POST")
		if err != nil || r.Status != 502 || !r.Close {
			t.Fatalf("%q: want a 502 page that closes, got %s", bad, answerOf(r, err))
		}
		if !c.Closed(5 * time.Second) {
			t.Fatalf("%q: connection open after a 502 with the request body unread", bad)
		}
	}
}
