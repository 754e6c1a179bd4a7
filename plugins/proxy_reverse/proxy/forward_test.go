package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/capuchin/capuchin/api/http1"
)

func TestHeaderRewriting(t *testing.T) {
	checkLeaks(t)
	var mu sync.Mutex
	var seen http.Header
	var host string
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen, host = r.Header.Clone(), r.Host
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	defer back.Close()
	respHop := newRawBackend(t, "", rawServe("HTTP/1.1 200 OK\r\nConnection: X-Hop\r\nX-Hop: 1\r\n"+
		"Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nX-Keep: yes\r\nContent-Length: 2\r\n\r\nok"))
	p := newProxy(t, conf("[PROXY_ENTRY]\n ServerList %s\n Match ^/req\n[PROXY_ENTRY]\n ServerList %s\n Match ^/resp\n",
		hostPort(back), respHop.addr()))
	cl := dial(t, startHarness(t, p))
	cl.send("GET /req?q=1 HTTP/1.1\r\nHost: example.com:8080\r\nConnection: X-Custom, keep-alive\r\nX-Custom: 1\r\n" +
		"Keep-Alive: 300\r\nProxy-Authorization: secret\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n" +
		"X-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Proto: https\r\nX-End: kept\r\n\r\n")
	if r, body := cl.read("GET"); r.Status != 200 || body != "ok" {
		t.Fatalf("%d %q", r.Status, body)
	}
	mu.Lock()
	for _, name := range []string{"Connection", "X-Custom", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Te"} {
		if v := seen.Get(name); v != "" {
			t.Errorf("backend got hop-by-hop %s: %q", name, v)
		}
	}
	want := map[string]string{"X-Forwarded-For": "192.0.2.1, 127.0.0.1", "X-Forwarded-Proto": "http",
		"X-Forwarded-Host": "example.com:8080", "X-End": "kept"}
	for k, v := range want {
		if got := seen.Get(k); got != v {
			t.Errorf("backend got %s %q, want %q", k, got, v)
		}
	}
	if host != "example.com:8080" {
		t.Errorf("Host %q not preserved", host)
	}
	mu.Unlock()
	cl.send("GET /resp HTTP/1.1\r\nHost: x\r\n\r\n")
	r, _ := cl.read("GET")
	for _, name := range []string{"Connection", "X-Hop", "Keep-Alive", "Proxy-Authenticate"} {
		if v := r.Header.Get(name); v != "" {
			t.Errorf("client got hop-by-hop %s: %q", name, v)
		}
	}
	if r.Header.Get("X-Keep") != "yes" {
		t.Errorf("end-to-end field lost: %q", r.Raw)
	}
}

// echoBackend streams the request body back without a length (chunked).
func echoBackend(t *testing.T) (*httptest.Server, *[]string) {
	var mu sync.Mutex
	var te []string
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		te = append(te, strings.Join(r.TransferEncoding, ","))
		mu.Unlock()
		w.Header().Set("X-Method", r.Method)
		http.NewResponseController(w).EnableFullDuplex()
		buf := make([]byte, 7)
		for {
			n, err := r.Body.Read(buf)
			w.Write(buf[:n])
			w.(http.Flusher).Flush()
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(s.Close)
	return s, &te
}

func TestChunkedBothWaysAndPipelining(t *testing.T) {
	checkLeaks(t)
	echo, te := echoBackend(t)
	p := newProxy(t, conf("[PROXY_ENTRY]\n ServerList %s\n Match ^/\n", hostPort(echo)))
	cl := dial(t, startHarness(t, p))
	// Three pipelined requests in one write: chunked, Content-Length, none.
	cl.send("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n" +
		"PUT /b HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello again" +
		"GET /c HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, want := range []string{"hello, world", "hello again", ""} {
		r, body := cl.read("X")
		if r.Status != 200 || body != want {
			t.Fatalf("got %d %q, want %q", r.Status, body, want)
		}
		if want != "" && !r.Chunked {
			t.Fatalf("streamed answer not chunked to an HTTP/1.1 client: %q", r.Raw)
		}
	}
	if (*te)[0] != "chunked" || (*te)[1] != "" {
		t.Fatalf("backend saw transfer codings %q", *te)
	}
}

// An HTTP/1.0 client gets a close-delimited body and a closed connection.
func TestHTTP10CloseDelimited(t *testing.T) {
	checkLeaks(t)
	echo, _ := echoBackend(t)
	p := newProxy(t, conf("[PROXY_ENTRY]\n ServerList %s\n Match ^/\n", hostPort(echo)))
	cl := dial(t, startHarness(t, p))
	cl.send("POST / HTTP/1.0\r\nContent-Length: 4\r\n\r\nabcd")
	all, err := io.ReadAll(cl.BR)
	if err != nil {
		t.Fatal(err)
	}
	s := string(all)
	if !strings.HasPrefix(s, "HTTP/1.1 200") || !strings.HasSuffix(s, "\r\n\r\nabcd") ||
		strings.Contains(s, "chunked") || !strings.Contains(s, "Connection: close") {
		t.Fatalf("answer %q", s)
	}
}

func TestHeadAndNoBodyStatuses(t *testing.T) {
	checkLeaks(t)
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(204)
		case "/304":
			w.Header().Set("ETag", `"x"`)
			w.WriteHeader(304)
		default:
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		}
	}))
	defer back.Close()
	p := newProxy(t, conf("[PROXY_ENTRY]\n ServerList %s\n Match ^/\n", hostPort(back)))
	cl := dial(t, startHarness(t, p))
	cl.send("HEAD /x HTTP/1.1\r\nHost: x\r\n\r\nGET /204 HTTP/1.1\r\nHost: x\r\n\r\n" +
		"GET /304 HTTP/1.1\r\nHost: x\r\n\r\nGET /x HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, tc := range []struct {
		method string
		status int
		body   string
	}{{"HEAD", 200, ""}, {"GET", 204, ""}, {"GET", 304, ""}, {"GET", 200, "hello"}} {
		r, body := cl.read(tc.method)
		if r.Status != tc.status || body != tc.body {
			t.Fatalf("%s: %d %q", tc.method, r.Status, body)
		}
		if tc.method == "HEAD" && r.Header.Get("Content-Length") != "5" {
			t.Fatalf("HEAD lost Content-Length: %q", r.Raw)
		}
	}
}

func TestExpectContinue(t *testing.T) {
	checkLeaks(t)
	echo, _ := echoBackend(t)
	p := newProxy(t, conf("[PROXY_ENTRY]\n ServerList %s\n Match ^/\n", hostPort(echo)))
	cl := dial(t, startHarness(t, p))
	cl.send("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	if err := http1.ReadResponse(cl.BR, nil, &cl.resp); err != nil || cl.resp.Status != 100 {
		t.Fatalf("want 100 Continue before the body, got %v %d", err, cl.resp.Status)
	}
	cl.send("12345")
	if r, body := cl.read("POST"); r.Status != 200 || body != "12345" {
		t.Fatalf("%d %q", r.Status, body)
	}
}

// A WebSocket-like upgrade: the backend answers 101 and echoes; the tunnel
// carries bytes both ways until the client closes.
func TestUpgradeTunnel(t *testing.T) {
	checkLeaks(t)
	got := make(chan string, 1)
	back := newRawBackend(t, "", func(c net.Conn, br *bufio.Reader) {
		var req http1.Request
		if http1.ReadRequest(br, nil, &req) != nil {
			return
		}
		got <- req.Header.Get("Upgrade") + "|" + req.Header.Get("Connection")
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		io.Copy(c, br)
	})
	p := newProxy(t, conf("[PROXY_ENTRY]\n ServerList %s\n Match ^/ws\n", back.addr()))
	h := startHarness(t, p)
	cl := dial(t, h)
	cl.send("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	if err := http1.ReadResponse(cl.BR, nil, &cl.resp); err != nil || cl.resp.Status != 101 {
		t.Fatalf("%v %d", err, cl.resp.Status)
	}
	if v := <-got; v != "echo|Upgrade" {
		t.Fatalf("backend saw Upgrade|Connection %q", v)
	}
	for i := 0; i < 3; i++ {
		msg := fmt.Sprintf("frame %d", i)
		cl.send(msg)
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(cl.BR, buf); err != nil || string(buf) != msg {
			t.Fatalf("echo %q %v", buf, err)
		}
	}
	cl.C.(*net.TCPConn).CloseWrite()
	cl.expectClosed()
	if res := <-h.results; res.Status != 101 || !res.Close || res.BytesIn != 21 {
		t.Fatalf("result %+v", res)
	}
}
