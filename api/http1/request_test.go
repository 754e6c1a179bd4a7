package http1

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// describe renders the parsed parts of req so that a table can name the
// ones it cares about.
func describe(r *Request) string {
	return fmt.Sprintf("method=%s target=%s path=%q query=%q host=%q minor=%d cl=%d "+
		"chunked=%v close=%v expect=%v upgrade=%v fields=%d",
		r.Method, r.Target, r.Path, r.Query, r.Host, r.Minor, r.ContentLength,
		r.Chunked, r.Close, r.Expect100, r.Upgrade, len(r.Header))
}

type reqCase struct {
	name   string
	in     string // the head; "\r\n\r\n" is not added
	lim    *Limits
	status int      // 0: accepted; -1: a non-protocol error (see errIs)
	want   []string // fragments of describe() for an accepted request
	errIs  error
}

const host = "Host: example.com\r\n"

func requestCases() []reqCase {
	long := strings.Repeat("a", 100)
	return []reqCase{
		// Request line.
		{name: "simple", in: "GET / HTTP/1.1\r\n" + host + "\r\n",
			want: []string{"method=GET target=/ path=\"/\" query=\"\" host=\"example.com\" minor=1 cl=-1 chunked=false close=false", "fields=1"}},
		{name: "lowercase method is a token", in: "get / HTTP/1.1\r\n" + host + "\r\n", want: []string{"method=get"}},
		{name: "extension method", in: "M-SEARCH /x HTTP/1.1\r\n" + host + "\r\n", want: []string{"method=M-SEARCH"}},
		{name: "method not a token", in: "G@T / HTTP/1.1\r\n" + host + "\r\n", status: 400},
		{name: "no version", in: "GET /\r\n\r\n", status: 400},
		{name: "only method", in: "GET\r\n\r\n", status: 400},
		{name: "two spaces after method", in: "GET  / HTTP/1.1\r\n" + host + "\r\n", status: 400},
		{name: "space in target", in: "GET /a b HTTP/1.1\r\n" + host + "\r\n", status: 400},
		{name: "trailing space", in: "GET / HTTP/1.1 \r\n" + host + "\r\n", status: 400},
		{name: "tabs as separators", in: "GET\t/\tHTTP/1.1\r\n" + host + "\r\n", status: 400},
		{name: "lowercase http", in: "GET / http/1.1\r\n" + host + "\r\n", status: 400},
		{name: "HTTP/2.0 is 505", in: "GET / HTTP/2.0\r\n" + host + "\r\n", status: 505},
		{name: "HTTP/0.9 is 505", in: "GET / HTTP/0.9\r\n\r\n", status: 505},
		{name: "HTTP/5.6 is 505", in: "GET / HTTP/5.6\r\n\r\n", status: 505},
		{name: "two-digit minor", in: "GET / HTTP/1.10\r\n" + host + "\r\n", status: 400},
		{name: "two-digit major", in: "GET / HTTP/11.1\r\n" + host + "\r\n", status: 400},
		{name: "HTTP/1.2 read as 1.1", in: "GET / HTTP/1.2\r\n" + host + "\r\n", want: []string{"minor=1"}},
		{name: "HTTP/1.2 needs Host", in: "GET / HTTP/1.2\r\n\r\n", status: 400},
		// Targets.
		{name: "query", in: "GET /a/b?x=1&y HTTP/1.1\r\n" + host + "\r\n", want: []string{`path="/a/b" query="x=1&y"`}},
		{name: "second question mark in query", in: "GET /t?a=b?c HTTP/1.1\r\n" + host + "\r\n", want: []string{`path="/t" query="a=b?c"`}},
		{name: "percent-decoding", in: "GET /a%20b%2fc%C3%A9?q=%20 HTTP/1.1\r\n" + host + "\r\n",
			want: []string{`path="/a b/cé" query="q=%20"`}},
		{name: "truncated escape", in: "GET /a%2 HTTP/1.1\r\n" + host + "\r\n", status: 400},
		{name: "escape at end", in: "GET /a% HTTP/1.1\r\n" + host + "\r\n", status: 400},
		{name: "bad hex escape", in: "GET /%zz HTTP/1.1\r\n" + host + "\r\n", status: 400},
		{name: "encoded NUL", in: "GET /a%00 HTTP/1.1\r\n" + host + "\r\n", status: 400},
		{name: "fragment", in: "GET /a#b HTTP/1.1\r\n" + host + "\r\n", status: 400},
		{name: "non-ASCII target", in: "GET /\xce\xb4 HTTP/1.1\r\n" + host + "\r\n", status: 400},
		{name: "DEL in target", in: "GET /\x7f HTTP/1.1\r\n" + host + "\r\n", status: 400},
		{name: "relative target", in: "GET a/b HTTP/1.1\r\n" + host + "\r\n", status: 400},
		{name: "absolute-form", in: "GET http://other.org:8080/p%41?q=1 HTTP/1.1\r\n" + host + "\r\n",
			want: []string{`target=http://other.org:8080/p%41?q=1 path="/pA" query="q=1" host="other.org:8080"`}},
		{name: "absolute-form https upper case", in: "GET HTTPS://other.org/ HTTP/1.1\r\n" + host + "\r\n", want: []string{`host="other.org"`}},
		{name: "absolute-form no path", in: "GET http://other.org HTTP/1.1\r\n" + host + "\r\n", want: []string{`path="/" query="" host="other.org"`}},
		{name: "absolute-form query no path", in: "GET http://other.org:1?a=b HTTP/1.1\r\n" + host + "\r\n",
			want: []string{`path="/" query="a=b" host="other.org:1"`}},
		{name: "absolute-form userinfo", in: "GET http://u:p@other.org/ HTTP/1.1\r\n" + host + "\r\n", status: 400},
		{name: "absolute-form empty host", in: "GET http:///p HTTP/1.1\r\n" + host + "\r\n", status: 400},
		{name: "absolute-form bad port", in: "GET http://localhost:80x/ HTTP/1.1\r\n" + host + "\r\n", status: 400},
		{name: "absolute-form two colons", in: "GET http://localhost::80/ HTTP/1.1\r\n" + host + "\r\n", status: 400},
		{name: "absolute-form bad IPv6", in: "GET http://[4712::abcd::]/ HTTP/1.1\r\n" + host + "\r\n", status: 400},
		{name: "absolute-form IPv6 zone", in: "GET http://[fe80::1%25eth0]/ HTTP/1.1\r\n" + host + "\r\n", status: 400},
		{name: "absolute-form IPv6 and port", in: "GET http://[4712::abcd]:8080/x HTTP/1.1\r\n" + host + "\r\n", want: []string{`host="[4712::abcd]:8080"`}},
		{name: "absolute-form empty port", in: "GET http://a.b:/x HTTP/1.1\r\n" + host + "\r\n", want: []string{`host="a.b:"`}},
		{name: "Host unbracketed IPv6", in: "GET / HTTP/1.1\r\nHost: 4714::abcd:8001\r\n\r\n", status: 400},
		{name: "Host bad port", in: "GET / HTTP/1.1\r\nHost: a.b:8o\r\n\r\n", status: 400},
		{name: "Host port too long", in: "GET / HTTP/1.1\r\nHost: a.b:123456\r\n\r\n", status: 400},
		{name: "Host text after IPv6", in: "GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", status: 400},
		{name: "Host bracket in name", in: "GET / HTTP/1.1\r\nHost: a]b\r\n\r\n", status: 400},
		{name: "absolute-form other scheme", in: "GET ftp://other.org/ HTTP/1.1\r\n" + host + "\r\n", status: 400},
		{name: "asterisk-form", in: "OPTIONS * HTTP/1.1\r\n" + host + "\r\n", want: []string{`target=* path="*"`}},
		{name: "asterisk-form not OPTIONS", in: "GET * HTTP/1.1\r\n" + host + "\r\n", status: 400},
		{name: "authority-form", in: "CONNECT other.org:443 HTTP/1.1\r\n" + host + "\r\n", want: []string{`method=CONNECT target=other.org:443 path="" query="" host="other.org:443"`}},
		{name: "authority-form without port", in: "CONNECT other.org HTTP/1.1\r\n" + host + "\r\n", status: 400},
		{name: "CONNECT with origin-form", in: "CONNECT / HTTP/1.1\r\n" + host + "\r\n", status: 400},
		{name: "authority-form not CONNECT", in: "GET other.org:443 HTTP/1.1\r\n" + host + "\r\n", status: 400},
		// Host.
		{name: "1.1 without Host", in: "GET / HTTP/1.1\r\n\r\n", status: 400},
		{name: "1.0 without Host", in: "GET / HTTP/1.0\r\n\r\n", want: []string{`host="" minor=0`}},
		{name: "two Host fields", in: "GET / HTTP/1.1\r\n" + host + host + "\r\n", status: 400},
		{name: "Host case-insensitive", in: "GET / HTTP/1.1\r\nhOsT: a.b:80\r\n\r\n", want: []string{`host="a.b:80"`}},
		{name: "Host IPv6", in: "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", want: []string{`host="[::1]:80"`}},
		{name: "empty Host", in: "GET / HTTP/1.1\r\nHost:\r\n\r\n", want: []string{`host=""`}},
		{name: "Host with userinfo", in: "GET / HTTP/1.1\r\nHost: u@a.b\r\n\r\n", status: 400},
		{name: "Host with space", in: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", status: 400},
		{name: "Host with slash", in: "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", status: 400},
		// Connection.
		{name: "1.1 keep-alive by default", in: "GET / HTTP/1.1\r\n" + host + "\r\n", want: []string{"close=false"}},
		{name: "1.1 close", in: "GET / HTTP/1.1\r\n" + host + "Connection: Close\r\n\r\n", want: []string{"close=true"}},
		{name: "1.1 close in a list", in: "GET / HTTP/1.1\r\n" + host + "Connection: keep-alive, close\r\n\r\n", want: []string{"close=true"}},
		{name: "1.1 close in second field", in: "GET / HTTP/1.1\r\n" + host + "Connection: x\r\nConnection: close\t\r\n\r\n", want: []string{"close=true"}},
		{name: "1.0 closes by default", in: "GET / HTTP/1.0\r\n\r\n", want: []string{"close=true"}},
		{name: "1.0 keep-alive", in: "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", want: []string{"close=false"}},
		{name: "1.0 keep-alive in second field", in: "GET / HTTP/1.0\r\nConnection: foo\r\nConnection: keep-alive\r\n\r\n", want: []string{"close=false"}},
		{name: "1.0 keep-alive and close", in: "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", want: []string{"close=true"}},
		// Expect.
		{name: "100-continue", in: "PUT / HTTP/1.1\r\n" + host + "Expect: 100-Continue\r\nContent-Length: 1\r\n\r\n", want: []string{"expect=true"}},
		{name: "100-continue ignored in 1.0", in: "PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", want: []string{"expect=false"}},
		{name: "other expectation", in: "PUT / HTTP/1.1\r\n" + host + "Expect: 200-ok\r\n\r\n", status: 417},
		// Upgrade.
		{name: "upgrade", in: "GET / HTTP/1.1\r\n" + host + "Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n", want: []string{"close=false expect=false upgrade=true"}},
		{name: "Upgrade field alone", in: "GET / HTTP/1.1\r\n" + host + "Upgrade: websocket\r\n\r\n", want: []string{"upgrade=false"}},
		{name: "Connection upgrade alone", in: "GET / HTTP/1.1\r\n" + host + "Connection: upgrade\r\n\r\n", want: []string{"upgrade=false"}},
		{name: "upgrade ignored in 1.0", in: "GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", want: []string{"upgrade=false"}},
		// Leading empty lines (RFC 9112 §2.2).
		{name: "leading CRLFs", in: "\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n" + host + "\r\n", want: []string{"method=GET"}},
		{name: "many leading CRLFs", in: strings.Repeat("\r\n", 50) + "GET / HTTP/1.1\r\n" + host + "\r\n", want: []string{"method=GET"}},
		{name: "leading bare LFs", in: "\n\n\r\n\nGET / HTTP/1.1\r\n" + host + "\r\n", want: []string{"method=GET"}},
		{name: "too many leading empty lines", in: strings.Repeat("\r\n", 65) + "GET / HTTP/1.1\r\n" + host + "\r\n", status: 400},
		// Line endings and fields.
		{name: "bare LF after request line", in: "GET / HTTP/1.1\n" + host + "\r\n", status: 400},
		{name: "bare LF after field", in: "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", status: 400},
		{name: "bare LF ends head", in: "GET / HTTP/1.1\r\n" + host + "\n", status: 400},
		{name: "only LFs", in: "GET / HTTP/1.1\nHost: a\n\n", status: 400},
		{name: "bare CR in request line", in: "GET / HTTP/1.1\rX: y\r\n" + host + "\r\n", status: 400},
		{name: "bare CR in value", in: "GET / HTTP/1.1\r\n" + host + "X: a\rb\r\n\r\n", status: 400},
		{name: "CR CR LF", in: "GET / HTTP/1.1\r\n" + host + "X: a\r\r\n\r\n", status: 400},
		{name: "obs-fold", in: "GET / HTTP/1.1\r\n" + host + "X: a\r\n b\r\n\r\n", status: 400},
		{name: "space before first field", in: "GET / HTTP/1.1\r\n " + host + "\r\n", status: 400},
		{name: "space before colon", in: "GET / HTTP/1.1\r\n" + host + "X : a\r\n\r\n", status: 400},
		{name: "tab before colon", in: "GET / HTTP/1.1\r\n" + host + "X\t: a\r\n\r\n", status: 400},
		{name: "empty field name", in: "GET / HTTP/1.1\r\n" + host + ": a\r\n\r\n", status: 400},
		{name: "no colon", in: "GET / HTTP/1.1\r\n" + host + "X\r\n\r\n", status: 400},
		{name: "non-token name", in: "GET / HTTP/1.1\r\n" + host + "Fo@: a\r\n\r\n", status: 400},
		{name: "control byte in value", in: "GET / HTTP/1.1\r\n" + host + "X: a\x01b\r\n\r\n", status: 400},
		{name: "DEL in value", in: "GET / HTTP/1.1\r\n" + host + "X: a\x7f\r\n\r\n", status: 400},
		{name: "NUL in value", in: "GET / HTTP/1.1\r\n" + host + "X: \x00\r\n\r\n", status: 400},
		{name: "tab, obs-text and OWS in value", in: "GET / HTTP/1.1\r\n" + host + "X: \t a\tD\xc3\xbc \t\r\n\r\n", want: []string{"fields=2"}},
		// Content-Length.
		{name: "CL", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: 5\r\n\r\n", want: []string{"cl=5 chunked=false"}},
		{name: "CL zero", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: 0\r\n\r\n", want: []string{"cl=0"}},
		{name: "CL leading zeros", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: 003\r\n\r\n", want: []string{"cl=3"}},
		{name: "CL OWS", in: "POST / HTTP/1.1\r\n" + host + "Content-Length:\t42 \r\n\r\n", want: []string{"cl=42"}},
		{name: "CL equal list", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: 5, 5\r\n\r\n", want: []string{"cl=5"}},
		{name: "CL equal fields", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: 5\r\ncontent-length: 5\r\n\r\n", want: []string{"cl=5"}},
		{name: "CL differing list", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: 5, 6\r\n\r\n", status: 400},
		{name: "CL differing fields", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: 1\r\nContent-Length: 2\r\n\r\n", status: 400},
		{name: "CL empty", in: "POST / HTTP/1.1\r\n" + host + "Content-Length:\r\n\r\n", status: 400},
		{name: "CL negative", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: -1\r\n\r\n", status: 400},
		{name: "CL plus", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: +1\r\n\r\n", status: 400},
		{name: "CL hex", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: 0x5\r\n\r\n", status: 400},
		{name: "CL inner space", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: 4 2\r\n\r\n", status: 400},
		{name: "CL overflow", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: 1000000000000000000000\r\n\r\n", status: 400},
		{name: "CL 25 digits, 24 of them leading zeros", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: 0000000000000000000000003\r\n\r\n", want: []string{"cl=3"}},
		{name: "CL 19 digits after a zero", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: 01000000000000000000\r\n\r\n", status: 400},
		{name: "CL 18 digits", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: 999999999999999999\r\n\r\n", want: []string{"cl=999999999999999999"}},
		// Transfer-Encoding.
		{name: "chunked", in: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: Chunked\r\n\r\n", want: []string{"cl=-1 chunked=true"}},
		{name: "chunked after unknown coding is 501", in: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip, chunked\r\n\r\n", status: 501},
		{name: "unknown coding alone is 400", in: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip\r\n\r\n", status: 400},
		{name: "chunked not last", in: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked, gzip\r\n\r\n", status: 400},
		{name: "chunked twice", in: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400},
		{name: "chunkedchunked", in: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunkedchunked\r\n\r\n", status: 400},
		{name: "TE empty", in: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding:\r\n\r\n", status: 400},
		{name: "TE garbage", in: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: \"chunked\"\r\n\r\n", status: 400},
		{name: "TE and CL", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400},
		{name: "TE in 1.0", in: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400},
		// Limits.
		{name: "target over MaxURI is 414", in: "GET /" + long + " HTTP/1.1\r\n" + host + "\r\n", lim: &Limits{MaxURI: 50}, status: 414},
		{name: "target at MaxURI", in: "GET /" + long + " HTTP/1.1\r\n" + host + "\r\n", lim: &Limits{MaxURI: 101}, want: []string{"method=GET"}},
		{name: "request line over MaxHeadBytes is 414", in: "GET /" + long + " HTTP/1.1\r\n" + host + "\r\n", lim: &Limits{MaxHeadBytes: 64}, status: 414},
		{name: "fields over MaxHeadBytes is 431", in: "GET / HTTP/1.1\r\n" + host + "X: " + long + "\r\n\r\n", lim: &Limits{MaxHeadBytes: 64}, status: 431},
		{name: "too many fields is 431", in: "GET / HTTP/1.1\r\n" + host + "A: 1\r\nB: 2\r\n\r\n", lim: &Limits{MaxFields: 2}, status: 431},
		{name: "fields at MaxFields", in: "GET / HTTP/1.1\r\n" + host + "A: 1\r\n\r\n", lim: &Limits{MaxFields: 2}, want: []string{"fields=2"}},
		// Ends of input.
		{name: "empty input", in: "", status: -1, errIs: io.EOF},
		{name: "closed mid request line", in: "GET / HT", status: -1, errIs: ErrIncomplete},
		{name: "closed mid fields", in: "GET / HTTP/1.1\r\n" + host, status: -1, errIs: ErrIncomplete},
		{name: "closed after CRLF is idle", in: "\r\n", status: -1, errIs: io.EOF},
	}
}

func TestReadRequest(t *testing.T) {
	for _, tc := range requestCases() {
		t.Run(tc.name, func(t *testing.T) {
			readers := map[string]func() *bufio.Reader{
				"whole":      func() *bufio.Reader { return bufio.NewReader(strings.NewReader(tc.in)) },
				"bytewise16": func() *bufio.Reader { return bufio.NewReaderSize(oneByteReader{strings.NewReader(tc.in)}, 16) },
			}
			for rname, mk := range readers {
				var req Request
				err := ReadRequest(mk(), tc.lim, &req)
				checkReqCase(t, rname, tc, &req, err)
			}
		})
	}
}

func checkReqCase(t *testing.T, rname string, tc reqCase, req *Request, err error) {
	t.Helper()
	if got := statusOf(err); got != tc.status {
		t.Fatalf("%s: status %d (err %v), want %d; %s", rname, got, err, tc.status, describe(req))
	}
	if tc.errIs != nil && !errors.Is(err, tc.errIs) {
		t.Fatalf("%s: err %v, want %v", rname, err, tc.errIs)
	}
	if err != nil {
		if StatusOf(err) != max(tc.status, 400) {
			t.Errorf("%s: StatusOf = %d", rname, StatusOf(err))
		}
		return
	}
	d := describe(req)
	for _, w := range tc.want {
		if !strings.Contains(d, w) {
			t.Errorf("%s: got %s\nwant %s", rname, d, w)
		}
	}
	if req.Raw+"\r\n" != strings.TrimLeft(tc.in, "\r\n") {
		t.Errorf("%s: Raw %q", rname, req.Raw)
	}
}

// TestReadRequestStopsAtHead checks that the reader consumes exactly the
// head, leaving the body and the next request in the buffer.
func TestReadRequestStopsAtHead(t *testing.T) {
	const rest = "hello" + "GET /2 HTTP/1.1\r\nHost: b\r\n\r\n"
	in := "POST /1 HTTP/1.1\r\n" + host + "Content-Length: 5\r\n\r\n" + rest
	for _, size := range []int{16, 4096} {
		br := bufio.NewReaderSize(oneByteReader{strings.NewReader(in)}, size)
		var req Request
		if err := ReadRequest(br, nil, &req); err != nil {
			t.Fatal(err)
		}
		left, _ := io.ReadAll(br)
		if string(left) != rest {
			t.Fatalf("size %d: left %q", size, left)
		}
	}
}

// TestReadRequestReuse reads several requests into one Request and checks
// that nothing of an earlier one leaks into a later one.
func TestReadRequestReuse(t *testing.T) {
	in := "POST /a?x HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n" +
		"PUT http://h/ HTTP/1.1\r\nHost: o\r\nConnection: upgrade\r\nUpgrade: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"GET /b HTTP/1.1\r\nHost: c\r\n\r\n"
	br := bufio.NewReader(strings.NewReader(in))
	var req Request
	want := []string{
		`method=POST target=/a?x path="/a" query="x" host="" minor=0 cl=0 chunked=false close=false expect=false upgrade=false fields=3`,
		`method=PUT target=http://h/ path="/" query="" host="h" minor=1 cl=-1 chunked=true close=false expect=false upgrade=true fields=4`,
		`method=GET target=/b path="/b" query="" host="c" minor=1 cl=-1 chunked=false close=false expect=false upgrade=false fields=1`,
	}
	for i, w := range want {
		if err := ReadRequest(br, nil, &req); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if d := describe(&req); d != w {
			t.Errorf("request %d:\n got %s\nwant %s", i, d, w)
		}
	}
	if err := ReadRequest(br, nil, &req); err != io.EOF {
		t.Fatalf("after the last request: %v, want io.EOF", err)
	}
}

// TestReadRequestLongHead reads a head several times the bufio buffer.
func TestReadRequestLongHead(t *testing.T) {
	var b strings.Builder
	b.WriteString("GET /" + strings.Repeat("p", 3000) + " HTTP/1.1\r\n" + host)
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&b, "X-Field-%d: %s\r\n", i, strings.Repeat("v", 900))
	}
	b.WriteString("\r\n")
	br := bufio.NewReaderSize(strings.NewReader(b.String()), 1024)
	var req Request
	if err := ReadRequest(br, nil, &req); err != nil {
		t.Fatal(err)
	}
	if len(req.Header) != 21 || len(req.Path) != 3001 || req.Header[20].Value != strings.Repeat("v", 900) {
		t.Fatalf("got %s", describe(&req))
	}
	if err := ReadRequest(br, &Limits{MaxHeadBytes: 8000}, &req); err != io.EOF {
		t.Fatalf("second read: %v", err)
	}
	br = bufio.NewReaderSize(strings.NewReader(b.String()), 1024)
	if err := ReadRequest(br, &Limits{MaxHeadBytes: 8000}, &req); StatusOf(err) != 431 {
		t.Fatalf("over the limit: %v, want 431", err)
	}
}

// TestReadRequestTimeout uses a real TCP connection with a read deadline:
// a peer that stops in the middle of a head gets 408, an idle one gets the
// raw timeout (so that the server closes silently).
func TestReadRequestTimeout(t *testing.T) {
	checkGoroutines(t)
	client, server := tcpPair(t)
	br := bufio.NewReader(server)
	var req Request

	server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	err := ReadRequest(br, nil, &req)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || statusOf(err) != -1 {
		t.Fatalf("idle: %v, want a bare timeout", err)
	}

	if _, err := io.WriteString(client, "GET / HTTP/1.1\r\nHo"); err != nil {
		t.Fatal(err)
	}
	server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if err := ReadRequest(br, nil, &req); StatusOf(err) != 408 {
		t.Fatalf("mid-head: %v, want 408", err)
	}
}

// TestReadRequestPeerClose: a real peer closing mid-head gives ErrIncomplete.
func TestReadRequestPeerClose(t *testing.T) {
	checkGoroutines(t)
	client, server := tcpPair(t)
	io.WriteString(client, "GET / HTTP/1.1\r\nHost: a\r\n")
	client.Close()
	var req Request
	if err := ReadRequest(bufio.NewReader(server), nil, &req); err != ErrIncomplete {
		t.Fatalf("got %v, want ErrIncomplete", err)
	}
}

func TestParseRequest(t *testing.T) {
	var req Request
	if err := ParseRequest("GET /x HTTP/1.1\r\nHost: a\r\n", nil, &req); err != nil || req.Host != "a" {
		t.Fatalf("%v %s", err, describe(&req))
	}
	if err := ParseRequest("GET /x HTTP/1.1\r\nHost: a", nil, &req); err != nil || req.Host != "a" {
		t.Fatalf("no final CRLF: %v %s", err, describe(&req))
	}
	if err := ParseRequest("GET /x HTTP/1.1\r\n\r\nHost: a\r\n", nil, &req); StatusOf(err) != 400 {
		t.Fatalf("empty line inside: %v", err)
	}
}

func TestRequestHelpers(t *testing.T) {
	var req Request
	ParseRequest("POST / HTTP/1.0\r\nContent-Length: 0\r\n", nil, &req)
	if req.Proto() != "HTTP/1.0" || req.HasBody() {
		t.Fatalf("%s %v", req.Proto(), req.HasBody())
	}
	ParseRequest("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n", nil, &req)
	if req.Proto() != "HTTP/1.1" || !req.HasBody() {
		t.Fatalf("%s %v", req.Proto(), req.HasBody())
	}
	if StatusOf(io.EOF) != 400 || StatusOf(&Error{Status: 417}) != 417 {
		t.Fatal("StatusOf")
	}
	if s := (&Error{400, "x"}).Error(); s != "http1: 400 Bad Request: x" {
		t.Fatalf("Error() = %q", s)
	}
}

// A head over the limit that arrives buffered whole behind another request
// (pipelined) gets 431 like one read line by line; 414 only when the
// request line alone is over the limit.
func TestReadRequestBufferedOverLimit(t *testing.T) {
	lim := &Limits{MaxHeadBytes: 64}
	first := "GET /1 HTTP/1.1\r\n" + host + "\r\n"
	for _, tc := range []struct {
		second string
		status int
	}{
		{"GET /2 HTTP/1.1\r\n" + host + "X: " + strings.Repeat("b", 100) + "\r\n\r\n", 431},
		{"GET /" + strings.Repeat("a", 100) + " HTTP/1.1\r\n" + host + "\r\n", 414},
	} {
		br := bufio.NewReader(strings.NewReader(first + tc.second))
		var req Request
		if err := ReadRequest(br, lim, &req); err != nil {
			t.Fatal(err)
		}
		if err := ReadRequest(br, lim, &req); StatusOf(err) != tc.status {
			t.Errorf("%.30q after a buffered request: %v, want %d", tc.second, err, tc.status)
		}
	}
}
