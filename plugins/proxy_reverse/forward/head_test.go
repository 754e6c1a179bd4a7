package forward

import (
	"bufio"
	"net/netip"
	"strings"
	"testing"

	"github.com/capuchin/capuchin/api/http1"
)

func readResp(t testing.TB, s string) *http1.Response {
	var r http1.Response
	if err := http1.ReadResponse(bufio.NewReader(strings.NewReader(s)), nil, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

func TestAppendResponseHead(t *testing.T) {
	const date = "Mon, 30 Nov 2026 06:00:00 GMT"
	cases := []struct {
		name, resp, method string
		minor              int
		close              bool
		want               string
		fr                 http1.Framing
	}{
		{"adds Date and Server", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", "GET", 1, false,
			"HTTP/1.1 200 OK\r\nDate: " + date + "\r\nServer: capuchin\r\nContent-Length: 2\r\n\r\n", http1.FrameLength},
		{"keeps the backend's", "HTTP/1.1 404 Gone Away\r\nServer: b\r\nDate: D\r\nContent-Length: 0\r\n\r\n", "GET", 1, false,
			"HTTP/1.1 404 Gone Away\r\nServer: b\r\nDate: D\r\nContent-Length: 0\r\n\r\n", http1.FrameLength},
		{"hop-by-hop removed, re-chunked", "HTTP/1.1 200 OK\r\nDate: D\r\nServer: b\r\nConnection: x-a, keep-alive\r\nX-A: 1\r\nKeep-Alive: 5\r\nTransfer-Encoding: chunked\r\nX-B: 2\r\n\r\n", "GET", 1, false,
			"HTTP/1.1 200 OK\r\nDate: D\r\nServer: b\r\nX-B: 2\r\nTransfer-Encoding: chunked\r\n\r\n", http1.FrameChunked},
		{"close-delimited to 1.0", "HTTP/1.1 200 OK\r\nDate: D\r\nServer: b\r\n\r\n", "GET", 0, false,
			"HTTP/1.1 200 OK\r\nDate: D\r\nServer: b\r\nConnection: close\r\n\r\n", http1.FrameClose},
		{"HEAD keeps the length", "HTTP/1.1 200 OK\r\nDate: D\r\nServer: b\r\nContent-Length: 7\r\n\r\n", "HEAD", 0, false,
			"HTTP/1.1 200 OK\r\nDate: D\r\nServer: b\r\nContent-Length: 7\r\nConnection: keep-alive\r\n\r\n", http1.FrameNone},
		{"interim", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", "GET", 1, true,
			"HTTP/1.1 103 Early Hints\r\nDate: " + date + "\r\nServer: capuchin\r\nLink: </a>\r\n\r\n", http1.FrameNone},
		{"upgrade", "HTTP/1.1 101 Switching Protocols\r\nDate: D\r\nServer: b\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", "GET", 1, true,
			"HTTP/1.1 101 Switching Protocols\r\nDate: D\r\nServer: b\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", http1.FrameNone},
		{"closing", "HTTP/1.1 204 No Content\r\nDate: D\r\nServer: b\r\n\r\n", "DELETE", 1, true,
			"HTTP/1.1 204 No Content\r\nDate: D\r\nServer: b\r\nConnection: close\r\n\r\n", http1.FrameNone},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := http1.ResponseHead{Date: date, Server: "capuchin", Method: c.method, Minor: c.minor, Close: c.close}
			got, fr := AppendResponseHead(nil, readResp(t, c.resp), &h, nil)
			if string(got) != c.want || fr != c.fr {
				t.Fatalf("got %q (%d)\nwant %q (%d)", got, fr, c.want, c.fr)
			}
		})
	}
}

func TestAppendRequestHead(t *testing.T) {
	var req http1.Request
	in := "POST http://example.com/a?b HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: 10.0.0.1\r\n" +
		"Connection: x-hop\r\nX-Hop: 1\r\nContent-Length: 3\r\nX-Keep: 2\r\n\r\n"
	if err := http1.ReadRequest(bufio.NewReader(strings.NewReader(in)), nil, &req); err != nil {
		t.Fatal(err)
	}
	got := string(AppendRequestHead(nil, &req, netip.MustParseAddrPort("[::ffff:192.0.2.7]:5000"), false, "b:80", false, nil))
	want := "POST /a?b HTTP/1.1\r\nHost: example.com\r\nX-Keep: 2\r\nX-Forwarded-For: 10.0.0.1, 192.0.2.7\r\n" +
		"X-Forwarded-Proto: http\r\nX-Forwarded-Host: example.com\r\nContent-Length: 3\r\n\r\n"
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	// An absolute-form target's authority is the Host sent, whatever the
	// client's Host says (RFC 9112 §3.2.2): the host chose the site by it.
	in = "GET http://other.example/rec HTTP/1.1\r\nHost: secure.example\r\nX-A: 1\r\n\r\n"
	if err := http1.ReadRequest(bufio.NewReader(strings.NewReader(in)), nil, &req); err != nil {
		t.Fatal(err)
	}
	got = string(AppendRequestHead(nil, &req, netip.MustParseAddrPort("192.0.2.7:5000"), false, "b:80", false, nil))
	want = "GET /rec HTTP/1.1\r\nHost: other.example\r\nX-A: 1\r\nX-Forwarded-For: 192.0.2.7\r\n" +
		"X-Forwarded-Proto: http\r\nX-Forwarded-Host: other.example\r\n\r\n"
	if got != want {
		t.Fatalf("absolute-form: got %q\nwant %q", got, want)
	}
	// A TLS client connection: https; an HTTP/1.0 request without Host
	// gets the backend's host:port, without the https:// of its item.
	in = "GET /x HTTP/1.0\r\nX-Forwarded-Proto: http\r\n\r\n"
	if err := http1.ReadRequest(bufio.NewReader(strings.NewReader(in)), nil, &req); err != nil {
		t.Fatal(err)
	}
	got = string(AppendRequestHead(nil, &req, netip.MustParseAddrPort("192.0.2.7:5000"), true, "b:443", false, nil))
	want = "GET /x HTTP/1.1\r\nHost: b:443\r\nX-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: https\r\n\r\n"
	if got != want {
		t.Fatalf("TLS client: got %q\nwant %q", got, want)
	}
}

// The heads written per proxied request cost no allocation.
func TestHeadsAllocs(t *testing.T) {
	resp := readResp(t, backendAnswer)
	req, client := browserRequest(t), netip.MustParseAddrPort("127.0.0.1:4000")
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		buf = AppendRequestHead(buf[:0], req, client, false, "b:80", false, nil)
		h := http1.ResponseHead{Date: "Mon, 30 Nov 2026 06:00:00 GMT", Server: "capuchin/1", Method: "GET", Minor: 1}
		buf, _ = AppendResponseHead(buf[:0], resp, &h, nil)
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per request", allocs)
	}
}

const backendAnswer = "HTTP/1.1 200 OK\r\nContent-Type: text/css\r\nContent-Length: 1024\r\n" +
	"Last-Modified: Tue, 11 Jun 2024 08:00:00 GMT\r\nETag: \"5f3a-61a8c0e2\"\r\nCache-Control: max-age=3600\r\n\r\n"

func browserRequest(t testing.TB) *http1.Request {
	var req http1.Request
	in := "GET /static/app.css HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Mozilla/5.0\r\n" +
		"Accept: text/css,*/*;q=0.1\r\nAccept-Encoding: gzip\r\nConnection: keep-alive\r\nCookie: a=b\r\n\r\n"
	if err := http1.ReadRequest(bufio.NewReader(strings.NewReader(in)), nil, &req); err != nil {
		t.Fatal(err)
	}
	return &req
}

func BenchmarkHeads(b *testing.B) {
	resp := readResp(b, backendAnswer)
	req, client := browserRequest(b), netip.MustParseAddrPort("127.0.0.1:4000")
	var clock http1.Clock
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendRequestHead(buf[:0], req, client, false, "b:80", false, nil)
		h := http1.ResponseHead{Date: clock.Date(), Server: "capuchin/1", Method: "GET", Minor: 1}
		buf, _ = AppendResponseHead(buf[:0], resp, &h, nil)
	}
}

// TestFieldSet checks the set's length filter against plain comparison:
// names of a length the set holds, of other lengths, in any case, and
// names of 63 bytes or more (which share the filter's last bit).
func TestFieldSet(t *testing.T) {
	long := strings.Repeat("x", 63)
	longer := strings.Repeat("x", 70)
	s := newFieldSet("Connection", "Te", "Upgrade", long)
	cases := []struct {
		name string
		want bool
	}{
		{"Connection", true}, {"CONNECTION", true}, {"connection", true},
		{"Keep-Alive", false}, // the length of Connection, another name
		{"te", true}, {"TE", true}, {"Tf", false},
		{"upgrade", true}, {"Trailer", false},
		{"Host", false}, {"", false}, {"Content-Length", false},
		{long, true}, {strings.ToUpper(long), true}, {longer, false},
	}
	for _, c := range cases {
		if got := s.has(c.name); got != c.want {
			t.Errorf("has(%q) = %v, want %v", c.name, got, c.want)
		}
	}
}
