package http1

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func TestResponseHeadAppend(t *testing.T) {
	const d, s = "Mon, 30 Nov 2026 06:00:00 GMT", "capuchin"
	cases := []struct {
		name string
		h    ResponseHead
		want string
		fr   Framing
	}{
		{"length", ResponseHead{Status: 200, Date: d, Server: s, Length: 5, Minor: 1},
			"HTTP/1.1 200 OK\r\nDate: " + d + "\r\nServer: capuchin\r\nX: 1\r\nContent-Length: 5\r\n\r\n", FrameLength},
		{"chunked for 1.1", ResponseHead{Status: 200, Date: d, Length: -1, Minor: 1},
			"HTTP/1.1 200 OK\r\nDate: " + d + "\r\nX: 1\r\nTransfer-Encoding: chunked\r\n\r\n", FrameChunked},
		{"close-delimited for 1.0", ResponseHead{Status: 200, Length: -1},
			"HTTP/1.1 200 OK\r\nX: 1\r\nConnection: close\r\n\r\n", FrameClose},
		{"1.0 kept alive", ResponseHead{Status: 201, Length: 0},
			"HTTP/1.1 201 Created\r\nX: 1\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n", FrameLength},
		{"close", ResponseHead{Status: 418, Length: 0, Minor: 1, Close: true},
			"HTTP/1.1 418 I'm a teapot\r\nX: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", FrameLength},
		{"HEAD keeps the length", ResponseHead{Status: 200, Length: 9, Method: "HEAD", Minor: 1},
			"HTTP/1.1 200 OK\r\nX: 1\r\nContent-Length: 9\r\n\r\n", FrameNone},
		{"HEAD unknown length", ResponseHead{Status: 200, Length: -1, Method: "HEAD", Minor: 1},
			"HTTP/1.1 200 OK\r\nX: 1\r\n\r\n", FrameNone},
		{"204 never has a length", ResponseHead{Status: 204, Length: 0, Minor: 1},
			"HTTP/1.1 204 No Content\r\nX: 1\r\n\r\n", FrameNone},
		{"304 describes the GET", ResponseHead{Status: 304, Length: 12, Minor: 1},
			"HTTP/1.1 304 Not Modified\r\nX: 1\r\nContent-Length: 12\r\n\r\n", FrameNone},
		{"CONNECT 200", ResponseHead{Status: 200, Length: 3, Method: "CONNECT", Minor: 1},
			"HTTP/1.1 200 OK\r\nX: 1\r\n\r\n", FrameNone},
		{"interim", ResponseHead{Status: 103, Length: 4, Minor: 1, Close: true},
			"HTTP/1.1 103 Early Hints\r\nX: 1\r\n\r\n", FrameNone},
		{"upgrade", ResponseHead{Status: 101, Length: -1, Minor: 1, Upgrade: "websocket"},
			"HTTP/1.1 101 Switching Protocols\r\nX: 1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", FrameNone},
		{"own reason", ResponseHead{Status: 200, Reason: "Fine", Length: 0, Minor: 1},
			"HTTP/1.1 200 Fine\r\nX: 1\r\nContent-Length: 0\r\n\r\n", FrameLength},
		{"unregistered code", ResponseHead{Status: 299, Length: 0, Minor: 1},
			"HTTP/1.1 299 \r\nX: 1\r\nContent-Length: 0\r\n\r\n", FrameLength},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := c.h
			got, fr := h.Append(nil, AppendField(nil, "X", "1"))
			if string(got) != c.want || fr != c.fr || h.Framing() != fr {
				t.Fatalf("got %q framing %d, want %q framing %d", got, fr, c.want, c.fr)
			}
			if fr == FrameClose && !h.Close {
				t.Fatal("a close-delimited body did not set Close")
			}
			// What the writer wrote reads back as the same message.
			var resp Response
			br := bufio.NewReader(strings.NewReader(string(got)))
			if err := ReadResponse(br, nil, &resp); err != nil || resp.Status != c.h.Status {
				t.Fatalf("read back: %v, status %d", err, resp.Status)
			}
		})
	}
}

func TestAppendContinue(t *testing.T) {
	if got := string(AppendContinue(nil)); got != "HTTP/1.1 100 Continue\r\n\r\n" {
		t.Fatalf("%q", got)
	}
}

func TestAppendError(t *testing.T) {
	h := ResponseHead{Status: 502, Date: "D", Server: "S", Minor: 1, Close: true}
	got := string(h.AppendError(nil, AppendField(nil, "Retry-After", "1"), "a <b>"))
	page := string(ErrorPage(502, "a <b>"))
	want := "HTTP/1.1 502 Bad Gateway\r\nDate: D\r\nServer: S\r\nRetry-After: 1\r\nContent-Type: text/html; charset=utf-8\r\n" +
		"Content-Length: " + strconv.Itoa(len(page)) + "\r\nConnection: close\r\n\r\n" + page
	if got != want || !strings.Contains(page, "a &lt;b&gt;") {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	h = ResponseHead{Status: 404, Method: "HEAD", Minor: 1}
	if got := string(h.AppendError(nil, nil, "")); strings.Contains(got, "<html>") || !strings.Contains(got, "Content-Length: ") {
		t.Fatalf("HEAD: %q", got)
	}
}

// TestStatusTextRegistered checks that every status code net/http names
// (the IANA registry, 418 included) has a reason phrase here too.
func TestStatusTextRegistered(t *testing.T) {
	for code := 100; code < 600; code++ {
		if http.StatusText(code) != "" && StatusText(code) == "" {
			t.Errorf("%d (%s) has no reason phrase", code, http.StatusText(code))
		}
	}
	if StatusText(-1) != "" || StatusText(999) != "" || StatusText(299) != "" {
		t.Fatal("unknown codes must have no reason phrase")
	}
}

func TestResponseHeadAllocs(t *testing.T) {
	buf := make([]byte, 0, 1024)
	fields := AppendField(nil, "Content-Type", "text/plain")
	allocs := testing.AllocsPerRun(100, func() {
		h := ResponseHead{Status: 200, Date: "Mon, 30 Nov 2026 06:00:00 GMT", Server: "capuchin/1.0", Length: 1234, Minor: 1}
		buf, _ = h.Append(buf[:0], fields)
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per head", allocs)
	}
}

func BenchmarkResponseHead(b *testing.B) {
	buf := make([]byte, 0, 1024)
	var c Clock
	fields := AppendField(nil, "Content-Type", "text/plain")
	b.ReportAllocs()
	for b.Loop() {
		h := ResponseHead{Status: 200, Date: c.Date(), Server: "capuchin/1.0", Length: 1234, Minor: 1}
		buf, _ = h.Append(buf[:0], fields)
	}
}

func TestHeadEnd(t *testing.T) {
	cases := []struct {
		in         string
		start, end int
		err        error
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\nnext", 0, 27, nil},
		{"\r\n\r\nGET / HTTP/1.1\r\n\r\n", 4, 22, nil},
		{"GET / HTTP/1.1\r\nHost: a\r\n", 0, -1, nil},
		{"GET / HTTP/1.1\r\nHost", 0, -1, nil},
		{"", 0, -1, nil},
		{"\r\n", 2, -1, nil},
		{"\r\n\r\n\r\n\r\n\r\nGET", 10, -1, nil},
		{strings.Repeat("\r\n", 65) + "GET", 128, -1, errRequestLine},
		{"\nGET / HTTP/1.1\r\n\r\n", 1, 19, nil}, // RFC 9112 §2.2: a bare LF too
		{"\n\r\n\nGET / HTTP/1.1\r\n\r\n", 4, 22, nil},
		{"GET / HTTP/1.1\r\nHost: a\n\r\n", 0, 26, nil}, // the bare LF is the parser's to find
		{"GET / HTTP/1.1\r\n\n", 0, -1, errBareLF},
		{"GET / HTTP/1.1\r\nx\n", 0, -1, errBareLF},
	}
	for _, c := range cases {
		start, end, err := HeadEnd([]byte(c.in))
		if start != c.start || end != c.end || err != c.err {
			t.Errorf("%q: got %d %d %v, want %d %d %v", c.in, start, end, err, c.start, c.end, c.err)
		}
	}
}
