package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// startTLSProxy runs the host with an HTTPS listener (certificate from a
// fresh CA) and the plugin; it returns the site, the CA and the HTTPS
// address.
func startTLSProxy(t *testing.T, conf string) (*hosttest.Site, *hosttest.CA, string) {
	t.Helper()
	ca := hosttest.NewCA(t, "test CA")
	s := hosttest.NewSite(t, bin)
	addr := s.AddTLS(ca)
	s.Load("proxy_reverse")
	s.WriteFile("proxy_reverse.conf", conf)
	s.StartChecked() // a data race or panic in the host (the relay) fails the test
	return s, ca, addr
}

// protoBackend answers with the scheme the proxy reported, the path and
// the length of the request body.
func protoBackend(t *testing.T) *httptest.Server {
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "proto=%s path=%s body=%d", r.Header.Get("X-Forwarded-Proto"), r.URL.Path, n)
	}))
	t.Cleanup(b.Close)
	return b
}

// TestE2ETLSClient: HTTPS clients (Go's, and curl) through the proxy: the
// backend sees X-Forwarded-Proto: https, kept-alive connections carry many
// proxied requests (under the lease) mixed with static ones, and a 1 MiB
// upload and a plain-HTTP client on the other listener work.
func TestE2ETLSClient(t *testing.T) {
	hosttest.CheckLeaks(t)
	b := protoBackend(t)
	s, ca, addr := startTLSProxy(t, entryConf("Round-Robin", b.Listener.Addr().String()))
	c := hosttest.HTTPSClient(ca, "localhost")
	defer c.CloseIdleConnections()
	for i := range 20 {
		st, body := get(t, c, fmt.Sprintf("https://%s/api/n%d", addr, i))
		if want := fmt.Sprintf("proto=https path=/api/n%d body=0", i); st != 200 || body != want {
			t.Fatalf("request %d: %d %q, want %q", i, st, body, want)
		}
		if i%5 == 4 {
			if st, body := get(t, c, "https://"+addr+"/"); st != 200 || body != "<h1>index</h1>\n" {
				t.Fatalf("static between proxied requests: %d %q", st, body)
			}
		}
	}
	up := bytes.Repeat([]byte("u"), 1<<20)
	resp, err := c.Post("https://"+addr+"/api/up", "application/octet-stream", bytes.NewReader(up))
	hosttest.Must(t, err)
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != "proto=https path=/api/up body=1048576" {
		t.Errorf("1 MiB upload over TLS: %q", got)
	}
	if st, body := get(t, client(t, true, ""), s.URL("/api/plain")); body != "proto=http path=/api/plain body=0" {
		t.Errorf("plain listener: %d %q", st, body)
	}
	if _, err := exec.LookPath("curl"); err != nil {
		return
	}
	s.WriteFile("tls/ca.pem", string(ca.PEM))
	_, port, _ := net.SplitHostPort(addr)
	url := "https://localhost:" + port + "/api/curl"
	out, err := exec.Command("curl", "-sS", "--cacert", s.Path("tls/ca.pem"), url, url).CombinedOutput()
	if want := strings.Repeat("proto=https path=/api/curl body=0", 2); err != nil || string(out) != want {
		t.Errorf("curl: %v %q, want %q", err, out, want)
	}
}

// TestE2ETLSWebSocket: an upgrade over an HTTPS connection is tunnelled
// both ways through the host's relay; the backend's close reaches the
// client as the end of the TLS stream, the client's close reaches the
// backend.
func TestE2ETLSWebSocket(t *testing.T) {
	hosttest.CheckLeaks(t)
	eof := make(chan string, 4)
	ws := wsBackend(t, eof)
	_, ca, addr := startTLSProxy(t, entryConf("Round-Robin", ws.Addr()))
	dial := func() (*tls.Conn, *bufio.Reader) {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
			&tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
		hosttest.Must(t, err)
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		io.WriteString(c, "GET /api/ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		hosttest.Must(t, err)
		if resp.StatusCode != 101 {
			t.Fatalf("upgrade answer: %d", resp.StatusCode)
		}
		if l, err := br.ReadString('\n'); l != "hello\n" {
			t.Fatalf("greeting %q %v", l, err)
		}
		for i := range 5 {
			msg := fmt.Sprintf("message %d %s\n", i, strings.Repeat("x", i*7000))
			io.WriteString(c, msg)
			if l, err := br.ReadString('\n'); l != "echo:"+msg {
				t.Fatalf("echo %d: %d bytes, %v", i, len(l), err)
			}
		}
		return c, br
	}
	c, br := dial()
	io.WriteString(c, "close\n")
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("client did not see the backend close: %d %v", n, err)
	}
	c, br = dial()
	c.CloseWrite()
	select {
	case m := <-eof:
		if !strings.Contains(m, "EOF") {
			t.Fatalf("backend: %s", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("backend did not see the client close")
	}
	if _, err := br.Read(make([]byte, 1)); err == nil {
		t.Fatal("client connection not closed after the tunnel")
	}
}
