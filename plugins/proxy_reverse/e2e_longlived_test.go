package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// Long-lived requests outlive the stage-30 deadline while they have
// traffic, and idle timeouts end them: RequestDeadline 2s, TunnelIdleTimeout
// 1s, through the real host and plugin, fresh and leased.
func longLivedSite(t *testing.T) *hosttest.Site {
	t.Helper()
	ws := wsBackend(t, make(chan string, 8))
	slow := newRaw(t, "", func(c net.Conn, br *bufio.Reader) {
		for {
			req, ok := readHead(br)
			if !ok {
				return
			}
			n, _ := io.Copy(io.Discard, req.Body)
			if req.Method == "POST" {
				body := fmt.Sprint("got ", n)
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
				continue
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
			for i := 0; i < 12; i++ { // 12 x 300 ms: well past the deadline
				fmt.Fprintf(c, "2\r\n%02d\r\n", i)
				time.Sleep(300 * time.Millisecond)
			}
			io.WriteString(c, "0\r\n\r\n")
		}
	})
	s := hosttest.NewSite(t, bin)
	s.Load("proxy_reverse")
	s.WriteFile("proxy_reverse.conf", "[PROXY_DEFAULTS]\n    RequestDeadline 2s\n    TunnelIdleTimeout 1s\n"+
		"[PROXY_ENTRY]\n    Match ^/ws/\n    ServerList "+ws.Addr()+"\n"+
		"[PROXY_ENTRY]\n    Match ^/api/\n    ServerList "+slow.Addr()+"\n")
	s.Start()
	return s
}

func TestE2ELongLivedRequests(t *testing.T) {
	hosttest.CheckLeaks(t)
	s := longLivedSite(t)
	for _, leased := range []bool{false, true} {
		t.Run(fmt.Sprint("leased=", leased), func(t *testing.T) {
			t.Run("download", func(t *testing.T) { longDownload(t, s, leased) })
			t.Run("upload", func(t *testing.T) { longUpload(t, s, leased) })
			t.Run("tunnel", func(t *testing.T) { longTunnel(t, s, leased) })
		})
	}
}

// lead sends a first request on c so that what follows is leased.
func lead(t *testing.T, c *hosttest.Client) {
	c.Send("POST /api/lead HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n")
	if r := c.MustRead("POST"); r.Status != 200 {
		t.Fatalf("lead request: %d", r.Status)
	}
}

func longDownload(t *testing.T, s *hosttest.Site, leased bool) {
	c := hosttest.Dial(t, s.Addr())
	if leased {
		lead(t, c)
	}
	c.Send("GET /api/slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	r := c.MustRead("GET")
	if r.Status != 200 || len(r.Body) != 24 || !strings.HasSuffix(string(r.Body), "11") {
		t.Fatalf("download cut: %d %q", r.Status, r.Body)
	}
}

func longUpload(t *testing.T, s *hosttest.Site, leased bool) {
	c := hosttest.Dial(t, s.Addr())
	if leased {
		lead(t, c)
	}
	c.Send("POST /api/up HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 12000\r\n\r\n")
	for i := 0; i < 12; i++ { // 12 x 300 ms at 3.3 KB/s: above ClientBodyMinRate
		c.Send(strings.Repeat("u", 1000))
		time.Sleep(300 * time.Millisecond)
	}
	if r := c.MustRead("POST"); r.Status != 200 || string(r.Body) != "got 12000" {
		t.Fatalf("upload: %d %q", r.Status, r.Body)
	}
}

func longTunnel(t *testing.T, s *hosttest.Site, leased bool) {
	c := hosttest.Dial(t, s.Addr())
	if leased {
		lead(t, c)
	}
	c.Send("GET /ws/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	resp, err := http.ReadResponse(c.BR, nil)
	hosttest.Must(t, err)
	if resp.StatusCode != 101 {
		t.Fatalf("upgrade: %d", resp.StatusCode)
	}
	expectLine(t, c.BR, "hello\n")
	for i := 0; i < 8; i++ { // 8 x 400 ms: past the deadline, never idle 1 s
		time.Sleep(400 * time.Millisecond)
		c.Send(fmt.Sprintf("m%d\n", i))
		expectLine(t, c.BR, fmt.Sprintf("echo:m%d\n", i))
	}
	start := time.Now()
	c.C.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.BR.ReadByte(); err != io.EOF {
		t.Fatalf("idle tunnel: read %v, want EOF", err)
	}
	if d := time.Since(start); d < 800*time.Millisecond || d > 3*time.Second {
		t.Fatalf("idle tunnel closed after %v, want about TunnelIdleTimeout (1s)", d)
	}
}

func expectLine(t *testing.T, br *bufio.Reader, want string) {
	t.Helper()
	got, err := br.ReadString('\n')
	if err != nil || got != want {
		t.Fatalf("read %q, %v; want %q", got, err, want)
	}
}
