package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// echoBackend answers by path:
//
//	/api/echo      method, framing and body of the request
//	/api/headers   Host and every request field, sorted
//	/api/chunked   three flushed parts (chunked)
//	/api/204, /api/304, /api/big (10000 bytes)
//	anything else  the path and query
func echoBackend(t *testing.T) *httptest.Server {
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/echo":
			body, err := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s te=%v len=%d err=%v body=%s", r.Method, r.TransferEncoding, len(body), err, body)
		case "/api/headers":
			var lines []string
			for k, v := range r.Header {
				lines = append(lines, k+": "+strings.Join(v, "|"))
			}
			sort.Strings(lines)
			fmt.Fprintf(w, "Host: %s\n%s\n", r.Host, strings.Join(lines, "\n"))
		case "/api/chunked":
			for _, part := range []string{"one,", "two,", "three"} {
				io.WriteString(w, part)
				w.(http.Flusher).Flush()
			}
		case "/api/204":
			w.WriteHeader(204)
		case "/api/304":
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(304)
		case "/api/big":
			w.Header().Set("Content-Length", "10000")
			io.WriteString(w, strings.Repeat("b", 10000))
		default:
			io.WriteString(w, r.URL.RequestURI())
		}
	}))
	t.Cleanup(b.Close)
	return b
}

// hopBackend answers with hop-by-hop fields.
func hopBackend(t *testing.T) *raw {
	return newRaw(t, "", func(c net.Conn, br *bufio.Reader) {
		for {
			if _, ok := readHead(br); !ok {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: X-Resp-Hop\r\nX-Resp-Hop: 1\r\nKeep-Alive: timeout=5\r\n"+
				"Proxy-Authenticate: Basic\r\nTrailer: X-T\r\nX-End: ok\r\nContent-Length: 2\r\n\r\nok")
		}
	})
}

// Forwarding on one host: /api/ to the echo backend, /hop/ to hopBackend.
func TestE2EForwarding(t *testing.T) {
	hosttest.CheckLeaks(t)
	b := echoBackend(t)
	s, p := startProxy(t, entryConf("Round-Robin", b.Listener.Addr().String())+
		"[PROXY_ENTRY]\n    Match ^/hop/\n    ServerList "+hopBackend(t).Addr()+"\n")
	t.Run("Framing", func(t *testing.T) { framing(t, s) })
	t.Run("Pipelined", func(t *testing.T) { pipelined(t, s, p) })
	t.Run("Headers", func(t *testing.T) { headers(t, s) })
}

// Chunked bodies both ways, HEAD/204/304 framing and Expect: 100-continue.
func framing(t *testing.T, s *hosttest.Site) {
	hc := client(t, true, "")

	// Chunked upload from Go's client (unknown length).
	resp, err := hc.Post(s.URL("/api/echo"), "text/plain", io.MultiReader(strings.NewReader("hello "), strings.NewReader("chunked")))
	hosttest.Must(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "POST te=[chunked] len=13 err=<nil> body=hello chunked"; string(body) != want {
		t.Fatalf("chunked upload: %q, want %q", body, want)
	}
	// Chunked answer.
	resp, err = hc.Get(s.URL("/api/chunked"))
	hosttest.Must(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "one,two,three" || len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("chunked answer: %q %v", body, resp.TransferEncoding)
	}

	// Raw: chunked upload with an extension, HEAD, 204, 304, pipelined.
	c := hosttest.Dial(t, s.Addr())
	c.Send("POST /api/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n" +
		"HEAD /api/big HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" +
		"GET /api/204 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" +
		"GET /api/304 HTTP/1.1\r\nHost: 127.0.0.1\r\nIf-None-Match: \"v1\"\r\n\r\n" +
		"GET /api/big HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	if r := c.MustRead("POST"); string(r.Body) != "POST te=[chunked] len=5 err=<nil> body=abcde" {
		t.Fatalf("raw chunked upload: %d %q", r.Status, r.Body)
	}
	if r := c.MustRead("HEAD"); r.Status != 200 || len(r.Body) != 0 || r.Header.Get("Content-Length") != "10000" {
		t.Fatalf("HEAD: %d %q CL=%q", r.Status, r.Body, r.Header.Get("Content-Length"))
	}
	if r := c.MustRead("GET"); r.Status != 204 || len(r.Body) != 0 {
		t.Fatalf("204: %d %q", r.Status, r.Body)
	}
	if r := c.MustRead("GET"); r.Status != 304 || len(r.Body) != 0 || r.Header.Get("ETag") != `"v1"` {
		t.Fatalf("304: %d %q", r.Status, r.Body)
	}
	if r := c.MustRead("GET"); r.Status != 200 || len(r.Body) != 10000 {
		t.Fatalf("GET after HEAD/204/304: %d, %d bytes", r.Status, len(r.Body))
	}

	// Expect: 100-continue: the body is sent only after the 100.
	c.Send("POST /api/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	if r := c.MustRead("POST"); r.Status != 100 {
		t.Fatalf("want 100 Continue first, got %d", r.Status)
	}
	c.Send("12345")
	if r := c.MustRead("POST"); r.Status != 200 || string(r.Body) != "POST te=[] len=5 err=<nil> body=12345" {
		t.Fatalf("after 100-continue: %d %q", r.Status, r.Body)
	}

	// An HTTP/1.0 client gets a chunked answer close-delimited.
	c10 := hosttest.Dial(t, s.Addr())
	c10.Send("GET /api/chunked HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
	if r := c10.MustRead("GET"); string(r.Body) != "one,two,three" || !c10.Closed(5*time.Second) {
		t.Fatalf("HTTP/1.0 chunked answer: %q", r.Body)
	}
}

// Pipelined requests through the proxy are answered in order, mixed with
// static ones on the same (leased, then returned) connection.
func pipelined(t *testing.T, s *hosttest.Site, p *hosttest.Proc) {
	c := hosttest.Dial(t, s.Addr())
	var reqs strings.Builder
	var want []string
	for i := 0; i < 24; i++ {
		switch {
		case i%6 == 5:
			reqs.WriteString("GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
			want = append(want, "<h1>index</h1>\n")
		case i%4 == 3:
			fmt.Fprintf(&reqs, "POST /api/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\n\r\nn%02d", i)
			want = append(want, fmt.Sprintf("POST te=[] len=3 err=<nil> body=n%02d", i))
		default:
			fmt.Fprintf(&reqs, "GET /api/p?n=%d HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", i)
			want = append(want, fmt.Sprintf("/api/p?n=%d", i))
		}
	}
	c.Send(reqs.String()) // one write
	for i, w := range want {
		r, err := c.Read("GET")
		if err != nil {
			t.Fatalf("answer %d: %v; host log:\n%s", i, err, p.Log())
		}
		if r.Status != 200 || string(r.Body) != w {
			t.Fatalf("answer %d: %d %q, want %q", i, r.Status, r.Body, w)
		}
	}
	// A proxied POST whose backend answers as soon as it has the body,
	// then a static request already buffered: the connection must go back
	// to the host, not close (it did, now and then, before the upload
	// marked the body read ahead of its last bytes).
	for i := 0; i < 100; i++ {
		c := hosttest.Dial(t, s.Addr())
		c.Send("GET /api/a HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" +
			"POST /api/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello" +
			"GET /missing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		for j, want := range []int{200, 200, 404} {
			if r, err := c.Read("GET"); err != nil || r.Status != want {
				t.Fatalf("round %d answer %d: %v %v, want %d", i, j, r, err, want)
			}
		}
		c.C.Close()
	}
	// The connection is still good for more.
	c.Send("GET /api/last HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
	if r := c.MustRead("GET"); string(r.Body) != "/api/last" {
		t.Fatalf("after the pipeline: %q", r.Body)
	}
	if r := c.MustRead("GET"); r.Status != 200 || !r.Close || !c.Closed(5*time.Second) {
		t.Fatalf("Connection: close not honoured: %d close=%v", r.Status, r.Close)
	}
}

// Hop-by-hop fields are removed both ways, X-Forwarded-* set, Host kept.
func headers(t *testing.T, s *hosttest.Site) {
	c := hosttest.Dial(t, s.Addr())
	c.Send("GET /api/headers HTTP/1.1\r\nHost: www.example.test:8080\r\nConnection: keep-alive, X-Hop\r\n" +
		"X-Hop: secret\r\nKeep-Alive: timeout=9\r\nProxy-Authorization: Basic eA==\r\nProxy-Connection: keep-alive\r\n" +
		"TE: trailers\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: spoofed\r\nX-Keep: yes\r\n\r\n")
	r := c.MustRead("GET")
	got := string(r.Body)
	for _, want := range []string{"Host: www.example.test:8080\n", "X-Forwarded-For: 203.0.113.7, 127.0.0.1\n",
		"X-Forwarded-Proto: http\n", "X-Forwarded-Host: www.example.test:8080\n", "X-Keep: yes\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("backend did not see %q in:\n%s", want, got)
		}
	}
	for _, bad := range []string{"X-Hop", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Te:", "spoofed", "https"} {
		if strings.Contains(got, bad) {
			t.Errorf("backend saw %q:\n%s", bad, got)
		}
	}
	c.Send("GET /hop/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	r = c.MustRead("GET")
	if r.Header.Get("X-End") != "ok" || string(r.Body) != "ok" {
		t.Fatalf("hop answer: %+v %q", r.Header, r.Body)
	}
	for _, bad := range []string{"X-Resp-Hop", "Keep-Alive", "Proxy-Authenticate", "Trailer"} {
		if r.Header.Get(bad) != "" || strings.Contains(r.Header.Get("Connection"), "X-Resp-Hop") {
			t.Errorf("client got %s: %+v", bad, r.Header)
		}
	}
}
