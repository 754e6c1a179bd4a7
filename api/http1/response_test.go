package http1

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

const nextResp = "HTTP/1.1 299 Next\r\nContent-Length: 0\r\n\r\n"

type respCase struct {
	name   string
	in     string
	method string
	status int    // 0: accepted; 502; -1 for other errors
	want   string // "code|reason|body|close"
	errIs  error
	next   bool // a further response follows the body and must parse
}

func responseCases() []respCase {
	return []respCase{
		{name: "content-length", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello" + nextResp, want: "200|OK|hello|false", next: true},
		{name: "content-length zero", in: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" + nextResp, want: "200|OK||false", next: true},
		{name: "chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nbo\r\n2;x=y\r\ndy\r\n0\r\nX: 1\r\n\r\n" + nextResp, want: "200|OK|body|false", next: true},
		{name: "CL and TE", in: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", status: 502},
		{name: "TE in HTTP/1.0", in: "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", status: 502},
		{name: "close-delimited", in: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello world", want: "200|OK|hello world|true"},
		{name: "TE chunked, gzip", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n2\r\nok", status: 502},
		{name: "TE gzip, chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", status: 502},
		{name: "TE chunked twice", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", status: 502},
		{name: "TE empty", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\n\r\nok", status: 502},
		{name: "chunked not last over two fields", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\nWorld", status: 502},
		{name: "HEAD with length", method: "HEAD", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n" + nextResp, want: "200|OK||false", next: true},
		{name: "HEAD without length keeps alive", method: "HEAD", in: "HTTP/1.1 200 OK\r\n\r\n" + nextResp, want: "200|OK||false", next: true},
		{name: "HEAD with chunked", method: "HEAD", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + nextResp, want: "200|OK||false", next: true},
		{name: "100 continue", in: "HTTP/1.1 100 Continue\r\n\r\n" + nextResp, want: "100|Continue||false", next: true},
		{name: "103 with fields", in: "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n" + nextResp, want: "103|Early Hints||false", next: true},
		{name: "101 switching", in: "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: h2c\r\nContent-Length: 4\r\n\r\nbody", want: "101|Switching Protocols||false"},
		{name: "204 without length", in: "HTTP/1.1 204 No Content\r\n\r\n" + nextResp, want: "204|No Content||false", next: true},
		{name: "204 with length", in: "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n" + nextResp, want: "204|No Content||false", next: true},
		{name: "304 with length", in: "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n" + nextResp, want: "304|Not Modified||false", next: true},
		{name: "304 with chunked", in: "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n" + nextResp, want: "304|Not Modified||false", next: true},
		{name: "CONNECT 200", method: "CONNECT", in: "HTTP/1.1 200 Connection established\r\n\r\ntunnel", want: "200|Connection established||false"},
		{name: "CONNECT 407 has a body", method: "CONNECT", in: "HTTP/1.1 407 Auth\r\nContent-Length: 2\r\n\r\nno", want: "407|Auth|no|false"},
		{name: "connection close", in: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: Close\r\n\r\nok", want: "200|OK|ok|true"},
		{name: "close in second Connection field", in: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: x\r\nConnection: close\r\n\r\nok", want: "200|OK|ok|true"},
		{name: "1.0 closes by default", in: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", want: "200|OK|ok|true"},
		{name: "1.0 keep-alive", in: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: x\r\nConnection: keep-alive\r\n\r\nok" + nextResp, want: "200|OK|ok|false", next: true},
		{name: "1.0 keep-alive without length", in: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nrest", want: "200|OK|rest|true"},
		{name: "1.0 keep-alive 204", in: "HTTP/1.0 204 No content\r\nConnection: keep-alive\r\n\r\n" + nextResp, want: "204|No content||false", next: true},
		{name: "HTTP/1.2 read as 1.1", in: "HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n", want: "200|OK||false"},
		{name: "no reason", in: "HTTP/1.1 301\r\nContent-Length: 0\r\n\r\n", want: "301|||false"},
		{name: "empty reason", in: "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", want: "200|||false"},
		{name: "reason with spaces", in: "HTTP/1.1 200  OK fine\r\nContent-Length: 0\r\n\r\n", want: "200| OK fine||false"},
		{name: "non-ASCII reason", in: "HTTP/1.1 500 Ori\xc3\xabntatie\r\nContent-Length: 0\r\n\r\n", want: "500|Oriëntatie||false"},
		{name: "leading CRLF", in: "\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", want: "200|OK||false"},
		{name: "body shorter than length", in: "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nhello", want: "200|OK|hello|false", status: -1, errIs: io.ErrUnexpectedEOF},
		// Malformed: 502.
		{name: "one-digit status", in: "HTTP/1.1 2 OK\r\n\r\n", status: 502},
		{name: "four-digit status", in: "HTTP/1.1 2000 OK\r\n\r\n", status: 502},
		{name: "status 099", in: "HTTP/1.1 099 x\r\n\r\n", status: 502},
		{name: "letters in status", in: "HTTP/1.1 2x0 OK\r\n\r\n", status: 502},
		{name: "two spaces before status", in: "HTTP/1.1  200 OK\r\n\r\n", status: 502},
		{name: "tab after version", in: "HTTP/1.1\t200 OK\r\n\r\n", status: 502},
		{name: "bad protocol", in: "HTP/1.1 200 OK\r\n\r\n", status: 502},
		{name: "HTTPER", in: "HTTPER/1.1 200 OK\r\n\r\n", status: 502},
		{name: "two-digit major", in: "HTTP/01.1 200 OK\r\n\r\n", status: 502},
		{name: "two-digit minor", in: "HTTP/1.01 200 OK\r\n\r\n", status: 502},
		{name: "HTTP/2.0", in: "HTTP/2.0 200 OK\r\n\r\n", status: 502},
		{name: "HTTP/0.9", in: "HTTP/0.9 200 OK\r\n\r\n", status: 502},
		{name: "RTSP", in: "RTSP/1.1 200 OK\r\n\r\n", status: 502},
		{name: "control byte in reason", in: "HTTP/1.1 200 O\x01K\r\n\r\n", status: 502},
		{name: "bare LF", in: "HTTP/1.1 200 OK\nContent-Length: 0\n\n", status: 502},
		{name: "bare CR", in: "HTTP/1.1 200 OK\rContent-Length: 0\r\n\r\n", status: 502},
		{name: "obs-fold", in: "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", status: 502},
		{name: "space in field name", in: "HTTP/1.1 200 OK\r\nen-US Content-Type: text/xml\r\n\r\n", status: 502},
		{name: "bad content-length", in: "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", status: 502},
		{name: "differing content-lengths", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", status: 502},
		{name: "bad chunk size", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n25  \r\nx", want: "200|OK||false", status: 400},
		// Ends of input.
		{name: "empty", in: "", status: -1, errIs: io.EOF},
		{name: "closed mid head", in: "HTTP/1.1 200 OK\r\nContent-Le", status: -1, errIs: ErrIncomplete},
	}
}

func TestReadResponse(t *testing.T) {
	for _, tc := range responseCases() {
		t.Run(tc.name, func(t *testing.T) {
			for _, size := range []int{16, 4096} {
				br := bufio.NewReaderSize(oneByteReader{strings.NewReader(tc.in)}, size)
				runRespCase(t, br, tc)
			}
		})
	}
}

func runRespCase(t *testing.T, br *bufio.Reader, tc respCase) {
	t.Helper()
	method := tc.method
	if method == "" {
		method = "GET"
	}
	var resp Response
	err := ReadResponse(br, nil, &resp)
	var body []byte
	if err == nil {
		var b Body
		b.ResetResponse(br, &resp, method)
		body, err = io.ReadAll(&b)
	}
	if s := statusOf(err); s != tc.status {
		t.Fatalf("err %v (status %d), want %d", err, s, tc.status)
	}
	if tc.errIs != nil && !errors.Is(err, tc.errIs) {
		t.Fatalf("err %v, want %v", err, tc.errIs)
	}
	if tc.want != "" {
		got := fmt.Sprintf("%d|%s|%s|%v", resp.Status, resp.Reason, body, resp.Close)
		if got != tc.want {
			t.Fatalf("got %q, want %q", got, tc.want)
		}
	}
	if tc.next {
		if err := ReadResponse(br, nil, &resp); err != nil || resp.Status != 299 {
			t.Fatalf("next response: %v %d", err, resp.Status)
		}
	}
}

func TestResponseFields(t *testing.T) {
	br := bufio.NewReader(strings.NewReader("HTTP/1.0 404 Not Found\r\nServer: x\r\nContent-Length: 3\r\n\r\n"))
	var resp Response
	if err := ReadResponse(br, nil, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Minor != 0 || resp.ContentLength != 3 || resp.Chunked || resp.Header.Get("server") != "x" ||
		resp.Raw != "HTTP/1.0 404 Not Found\r\nServer: x\r\nContent-Length: 3\r\n" {
		t.Fatalf("%+v", resp)
	}
	if err := ReadResponse(bufio.NewReader(strings.NewReader("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n")), &Limits{MaxFields: 1}, &resp); StatusOf(err) != 502 {
		t.Fatalf("too many fields: %v", err)
	}
}

// TestReadResponseTimeout: a backend that stalls mid-head over a real
// connection gives a 408 *Error (the proxy maps it to 504), not a 502.
func TestReadResponseTimeout(t *testing.T) {
	checkGoroutines(t)
	client, server := tcpPair(t)
	io.WriteString(server, "HTTP/1.1 200 OK\r\nCont")
	client.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	var resp Response
	if err := ReadResponse(bufio.NewReader(client), nil, &resp); StatusOf(err) != 408 {
		t.Fatalf("got %v, want 408", err)
	}
}

func TestBodyAllowed(t *testing.T) {
	cases := []struct {
		method string
		status int
		want   bool
	}{
		{"GET", 200, true}, {"HEAD", 200, false}, {"GET", 100, false}, {"GET", 199, false},
		{"GET", 204, false}, {"GET", 304, false}, {"GET", 404, true}, {"CONNECT", 200, false},
		{"CONNECT", 299, false}, {"CONNECT", 302, true}, {"POST", 205, true},
	}
	for _, c := range cases {
		r := Response{Status: c.status}
		if got := r.BodyAllowed(c.method); got != c.want {
			t.Errorf("%s %d: %v", c.method, c.status, got)
		}
	}
}

// TestReadResponseAllocs: a Response read into again allocates nothing (the
// head goes to memory it owns), whether its head was buffered whole or came
// in pieces, and its strings hold while the reader reads on: with a 16-byte
// buffer the body refills it many times.
func TestReadResponseAllocs(t *testing.T) {
	const in = "HTTP/1.1 200 OK\r\nServer: backend\r\nX-Long: 0123456789abcdef\r\nContent-Length: 40\r\n\r\n" +
		"0123456789012345678901234567890123456789"
	for _, size := range []int{16, 4096} {
		src := strings.NewReader(in)
		br := bufio.NewReaderSize(src, size)
		var resp Response
		var b Body
		allocs := testing.AllocsPerRun(100, func() {
			src.Reset(in)
			br.Reset(src)
			if err := ReadResponse(br, nil, &resp); err != nil {
				t.Fatal(err)
			}
			b.ResetResponse(br, &resp, "GET")
			if n, err := io.Copy(io.Discard, &b); err != nil || n != 40 {
				t.Fatalf("body: %d bytes, %v", n, err)
			}
		})
		if allocs != 0 || resp.Reason != "OK" || resp.Header.Get("Server") != "backend" || resp.Header.Get("X-Long") != "0123456789abcdef" {
			t.Fatalf("buffer %d: %v allocs/op; after the body: reason %q, Server %q, X-Long %q", size, allocs, resp.Reason,
				resp.Header.Get("Server"), resp.Header.Get("X-Long"))
		}
	}
}

// TestParseResponse checks that a head parsed from memory comes out as
// ReadResponse reads it, over the response cases whose head is whole.
func TestParseResponse(t *testing.T) {
	for _, tc := range responseCases() {
		start, end, err := HeadEnd([]byte(tc.in))
		if err != nil || end < 0 {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			var read, parsed Response
			rerr := ReadResponse(bufio.NewReader(strings.NewReader(tc.in)), nil, &read)
			perr := ParseResponse(tc.in[start:end-2], nil, &parsed)
			if StatusOf(rerr) != StatusOf(perr) || (rerr == nil) != (perr == nil) {
				t.Fatalf("ParseResponse: %v, ReadResponse: %v", perr, rerr)
			}
			got := fmt.Sprintf("%d %d %q %d %v %v", parsed.Minor, parsed.Status, parsed.Reason, parsed.ContentLength, parsed.Chunked, parsed.Close)
			want := fmt.Sprintf("%d %d %q %d %v %v", read.Minor, read.Status, read.Reason, read.ContentLength, read.Chunked, read.Close)
			if rerr == nil && got != want {
				t.Fatalf("ParseResponse gives %s, ReadResponse %s", got, want)
			}
		})
	}
}
