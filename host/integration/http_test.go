package integration

import (
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBadRequests sends hostile and malformed requests on raw sockets and
// checks the status of each and that the connection then closes.
func TestBadRequests(t *testing.T) {
	s := newSite(t)
	s.Server = []string{"MaxRequestSize 1", "MaxHeaderSize 4"}
	s.Start()
	long := strings.Repeat("a", 9000)
	cases := []struct {
		name, raw string
		status    int
	}{
		{"garbage request line", "HELLO\r\n\r\n", 400},
		{"two spaces in request line", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"bare LF line endings", "GET / HTTP/1.1\nHost: x\n\n", 400},
		{"bare CR in header", "GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n", 400},
		{"NUL in header value", "GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n", 400},
		{"control byte in header value", "GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n", 400},
		{"whitespace before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", 400},
		{"no Host in HTTP/1.1", "GET / HTTP/1.1\r\n\r\n", 400},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"CL and TE", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"differing CLs", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
		{"negative CL", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
		{"bad chunk size", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
		{"chunk without CRLF", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", 400},
		{"TE not chunked last", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400},
		{"unknown TE before chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
		{"TE without chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
		{"HTTP/2.0 version", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
		{"HTTP/0.9 style", "GET / HTTP/0.9\r\nHost: x\r\n\r\n", 505},
		{"URI too long", "GET /" + long + " HTTP/1.1\r\nHost: x\r\n\r\n", 414},
		{"header too large", "GET / HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("b", 5000) + "\r\n\r\n", 431},
		{"too many headers", "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X: y\r\n", 150) + "\r\n", 431},
		{"body over the limit (CL)", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", 413},
		{"absolute-form with a bad port", "GET http://localhost:80x/ HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"absolute-form with two colons", "GET http://localhost::80/ HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"absolute-form with a bad IPv6", "GET http://[4712::abcd::]/ HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"Host with an unbracketed IPv6", "GET / HTTP/1.1\r\nHost: 4714::abcd:8001\r\n\r\n", 400},
		{"unsupported expectation", "GET / HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n", 417},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, s.Addr())
			c.Send(tc.raw)
			r := c.MustRead("GET")
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d; body %q", r.Status, tc.status, r.Body)
			}
			if !strings.Contains(string(r.Body), "<h1>") || r.Header.Get("Date") == "" {
				t.Errorf("want an HTML error page with Date, got %q %v", r.Body, r.Header)
			}
			if !c.Closed(2 * time.Second) {
				t.Errorf("connection still open after %d", tc.status)
			}
		})
	}
}

// TestTokenMethodsAndEmptyBodies: any token method reaches the content
// handlers, and the static handler answers those it does not serve with 405
// and Allow, keeping the connection; a POST with neither Content-Length nor
// Transfer-Encoding has an empty body (RFC 9112 §6.3), so the next request
// on the connection is read as a request.
func TestTokenMethodsAndEmptyBodies(t *testing.T) {
	s := newSite(t)
	s.Start()
	c := dial(t, s.Addr())
	for _, m := range []string{"PROPFIND", "BREW", "M-SEARCH", "POST", "PUT", "DELETE"} {
		r := c.RoundTrip(m + " / HTTP/1.1\r\nHost: x\r\n\r\n")
		if r.Status != 405 || r.Header.Get("Allow") != "GET, HEAD, OPTIONS" {
			t.Fatalf("%s: status %d Allow %q, want 405 with Allow", m, r.Status, r.Header.Get("Allow"))
		}
	}
	if r := c.Get("/"); r.Status != 200 {
		t.Fatalf("GET after the 405s on one connection: %d", r.Status)
	}
}

// TestEmptyLinesBeforeRequest: CRLFs and bare LFs before a request line are
// ignored (RFC 9112 §2.2), also between keep-alive requests.
func TestEmptyLinesBeforeRequest(t *testing.T) {
	s := newSite(t)
	s.Start()
	c := dial(t, s.Addr())
	for _, pre := range []string{"\r\n", "\n", "\n\n", "\r\n\r\n\r\n\r\n\r\n\r\n"} {
		r := c.RoundTrip(pre + "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if r.Status != 200 {
			t.Fatalf("%q before the request line: status %d", pre, r.Status)
		}
	}
}

// TestChunkedBodyOverLimit: a chunked body that grows past MaxRequestSize
// gets 413.
func TestChunkedBodyOverLimit(t *testing.T) {
	s := newSite(t)
	s.Server = []string{"MaxRequestSize 1"}
	s.Start()
	c := dial(t, s.Addr())
	chunk := strings.Repeat("z", 800)
	c.Send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
	c.Send("320\r\n" + chunk + "\r\n320\r\n" + chunk + "\r\n0\r\n\r\n")
	if r := c.MustRead("POST"); r.Status != 413 {
		t.Fatalf("status %d, want 413", r.Status)
	}
}

// TestRefusedBodyLingers: a client still sending a body the server refused
// (413 on its Content-Length) reads the answer and then the server's close
// (EOF), not a reset: the server shuts its side down and drops what still
// comes for a while before it closes (lingering close, RFC 9112 §9.6; as
// nginx does). A reset can destroy an answer the client has not read yet.
// The same holds for a request refused for its head, with more to come.
func TestRefusedBodyLingers(t *testing.T) {
	s := newSite(t)
	s.Server = []string{"MaxRequestSize 1"}
	s.Start()
	for _, head := range []string{
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 10000000\r\n\r\n",
	} {
		c := dial(t, s.Addr())
		c.Send(head + strings.Repeat("b", 32<<10)) // unread when the answer goes out
		time.Sleep(100 * time.Millisecond)
		var wg sync.WaitGroup
		wg.Go(func() { // the body, as a client that does not wait for an answer sends it
			chunk := make([]byte, 64<<10)
			for range 64 {
				if _, err := c.C.Write(chunk); err != nil {
					return
				}
			}
		})
		r := c.MustRead("POST")
		_, err := io.Copy(io.Discard, c.BR)
		if r.Status/100 != 4 || err != nil {
			t.Errorf("%.40q: %d, then %v; want the answer, then the server's FIN", head, r.Status, err)
		}
		c.C.Close()
		wg.Wait()
	}
}

// TestStalledRequest: a client that stops in the middle of a head gets 408;
// an idle keep-alive connection is closed without a byte.
func TestStalledRequest(t *testing.T) {
	s := newSite(t)
	s.Server = []string{"Timeout 1", "KeepAliveTimeout 1"}
	s.Start()
	c := dial(t, s.Addr())
	c.Send("GET / HTTP/1.1\r\nHost: x\r\n")
	if r := c.MustRead("GET"); r.Status != 408 {
		t.Fatalf("status %d, want 408", r.Status)
	}
	if !c.Closed(3 * time.Second) {
		t.Fatal("connection open after 408")
	}

	c = dial(t, s.Addr())
	c.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.MustRead("GET"); r.Status != 200 {
		t.Fatalf("status %d", r.Status)
	}
	start := time.Now()
	if !c.Closed(4 * time.Second) {
		t.Fatal("idle keep-alive connection not closed")
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Fatalf("idle connection closed after %v, before KeepAliveTimeout", d)
	}

	c = dial(t, s.Addr())
	c.Send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
	if r := c.MustRead("POST"); r.Status != 408 {
		t.Fatalf("stalled body: status %d, want 408", r.Status)
	}
}

// TestKeepAliveAndPipelining: several requests on one connection, sent at
// once, answered in order; MaxKeepAliveRequest ends the connection.
func TestKeepAliveAndPipelining(t *testing.T) {
	s := newSite(t)
	s.Server = []string{"MaxKeepAliveRequest 3"}
	s.WriteRoot("a.txt", "AAA")
	s.WriteRoot("b.txt", "BB")
	s.Start()
	c := dial(t, s.Addr())
	c.Send("GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n" +
		"HEAD /b.txt HTTP/1.1\r\nHost: x\r\n\r\n" +
		"GET /b.txt HTTP/1.1\r\nHost: x\r\n\r\n")
	want := []struct {
		method, body string
		close        bool
	}{{"GET", "AAA", false}, {"HEAD", "", false}, {"GET", "BB", true}}
	for i, w := range want {
		r := c.MustRead(w.method)
		if r.Status != 200 || string(r.Body) != w.body || r.Close != w.close {
			t.Fatalf("response %d: %d %q close=%v, want 200 %q close=%v", i, r.Status, r.Body, r.Close, w.body, w.close)
		}
	}
	if !c.Closed(2 * time.Second) {
		t.Fatal("connection open after MaxKeepAliveRequest")
	}
}

// TestBodiesAndContinue: a body sent to the static handler is read and
// dropped so the connection goes on; Expect: 100-continue without a reason
// to read the body closes after the answer; HTTP/1.0 closes by default and
// keeps alive on request.
func TestBodiesAndContinue(t *testing.T) {
	s := newSite(t)
	s.Start()
	c := dial(t, s.Addr())
	c.Send("POST /index.html HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5;ext=1\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n" +
		"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.MustRead("POST"); r.Status != 405 || r.Header.Get("Allow") == "" || r.Close {
		t.Fatalf("POST to a file: %d close=%v allow=%q", r.Status, r.Close, r.Header.Get("Allow"))
	}
	if r := c.MustRead("GET"); r.Status != 200 {
		t.Fatalf("request after a chunked body: %d", r.Status)
	}

	c = dial(t, s.Addr())
	c.Send("PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	r := c.MustRead("PUT")
	if r.Status < 400 || !r.Close {
		t.Fatalf("Expect without reading: %d close=%v", r.Status, r.Close)
	}

	c = dial(t, s.Addr())
	c.Send("GET / HTTP/1.0\r\n\r\n")
	if r := c.MustRead("GET"); r.Status != 200 || !r.Close {
		t.Fatalf("HTTP/1.0: %d close=%v", r.Status, r.Close)
	}
	c = dial(t, s.Addr())
	c.Send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n")
	if r := c.MustRead("GET"); r.Status != 200 || r.Close || r.Header.Get("Connection") != "keep-alive" {
		t.Fatalf("HTTP/1.0 keep-alive: %d close=%v %v", r.Status, r.Close, r.Header)
	}
	if r := c.MustRead("GET"); r.Status != 200 || !r.Close {
		t.Fatalf("second HTTP/1.0 request: %d close=%v", r.Status, r.Close)
	}
}

// TestServerField checks Date and Server, with and without HideVersion.
func TestServerField(t *testing.T) {
	for _, hide := range []bool{false, true} {
		s := newSite(t)
		if hide {
			s.Server = []string{"HideVersion on"}
		}
		s.Start()
		c := dial(t, s.Addr())
		c.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		r := c.MustRead("GET")
		srv := r.Header.Get("Server")
		if hide && srv != "capuchin" || !hide && !strings.HasPrefix(srv, "capuchin/") {
			t.Errorf("HideVersion %v: Server %q", hide, srv)
		}
		if _, err := time.Parse(http1TimeFormat, r.Header.Get("Date")); err != nil {
			t.Errorf("Date %q: %v", r.Header.Get("Date"), err)
		}
	}
}

const http1TimeFormat = "Mon, 02 Jan 2006 15:04:05 GMT"
