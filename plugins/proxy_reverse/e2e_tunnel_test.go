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

	dto "github.com/prometheus/client_model/go"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// wsBackend answers an Upgrade request with 101, greets, then echoes each
// line as "echo:LINE"; the line "close" makes it close the connection. It
// reports on eof when the client side closed first.
func wsBackend(t *testing.T, eof chan<- string) *raw {
	return newRaw(t, "", func(c net.Conn, br *bufio.Reader) {
		req, ok := readHead(br)
		if !ok {
			return
		}
		if req.Header.Get("Upgrade") != "websocket" || !strings.EqualFold(req.Header.Get("Connection"), "Upgrade") {
			io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhello\n")
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				eof <- fmt.Sprintf("backend saw %v after %q", err, line)
				return
			}
			if line == "close\n" {
				return
			}
			io.WriteString(c, "echo:"+line)
		}
	})
}

// dialUpgrade sends an Upgrade request and reads the 101. With lead, a
// plain request goes first, so that the upgrade is served under the lease.
func dialUpgrade(t *testing.T, addr string, lead bool) (net.Conn, *bufio.Reader) {
	c, err := net.Dial("tcp", addr)
	hosttest.Must(t, err)
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	if lead {
		io.WriteString(c, "GET /api/plain HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		hosttest.Must(t, err)
		resp.Body.Close()
		if resp.StatusCode != 400 || resp.Close {
			t.Fatalf("plain request: %d close=%v", resp.StatusCode, resp.Close)
		}
	}
	io.WriteString(c, "GET /api/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	hosttest.Must(t, err)
	if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "websocket" {
		t.Fatalf("upgrade answer: %d %v", resp.StatusCode, resp.Header)
	}
	return c, br
}

// A WebSocket-style upgrade is tunnelled both ways until either side closes.
func TestE2EWebSocketTunnel(t *testing.T) {
	hosttest.CheckLeaks(t)
	eof := make(chan string, 4)
	ws := wsBackend(t, eof)
	s, _ := startProxy(t, entryConf("Round-Robin", ws.Addr()))

	exchange := func(c net.Conn, br *bufio.Reader) {
		if l, err := br.ReadString('\n'); l != "hello\n" {
			t.Fatalf("greeting %q %v", l, err)
		}
		for i := 0; i < 5; i++ {
			msg := fmt.Sprintf("message %d %s\n", i, strings.Repeat("x", i*1000))
			io.WriteString(c, msg)
			if l, err := br.ReadString('\n'); l != "echo:"+msg {
				t.Fatalf("echo %d: %q %v", i, l, err)
			}
		}
	}
	// The backend closes: the client sees the end (also when the
	// upgrade follows another request on the connection).
	for _, lead := range []bool{false, true} {
		c, br := dialUpgrade(t, s.Addr(), lead)
		exchange(c, br)
		io.WriteString(c, "close\n")
		if n, err := br.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("client did not see the backend close: %d %v", n, err)
		}
	}
	// The client closes: the backend sees the end.
	c, br := dialUpgrade(t, s.Addr(), false)
	exchange(c, br)
	c.(*net.TCPConn).CloseWrite()
	select {
	case m := <-eof:
		if !strings.Contains(m, "EOF") {
			t.Fatalf("backend: %s", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("backend did not see the client close")
	}
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("client connection not closed after the tunnel: %d %v", n, err)
	}
}

// A tunnel is not an answer: a WebSocket open for longer than any answer
// takes stays out of the response times (metrics histogram, status page
// percentiles and request counts), which time answers to their head, and
// out of the host's stage-30 time, and is counted as a tunnel
// (capuchin_proxy_server_tunnels_total, "tunnels").
func TestE2ETunnelsLeftOutOfResponseTimes(t *testing.T) {
	const held = 1500 * time.Millisecond
	ws := wsBackend(t, make(chan string, 4))
	s, _ := startProxy(t, entryConf("Round-Robin", ws.Addr()), "MetricsURL /metrics")
	c := hosttest.Dial(t, s.Addr())
	for i := 0; i < 2; i++ { // plain requests: answered 400 at once
		if r := c.Get("/api/plain"); r.Status != 400 {
			t.Fatalf("plain request: %d", r.Status)
		}
	}
	wc, br := dialUpgrade(t, s.Addr(), false)
	if l, err := br.ReadString('\n'); l != "hello\n" {
		t.Fatalf("greeting %q %v", l, err)
	}
	time.Sleep(held)
	io.WriteString(wc, "close\n")
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("tunnel not closed: %v", err)
	}
	lab := map[string]string{"plugin": "proxy_reverse", "server": ws.Addr()}
	var fams map[string]*dto.MetricFamily
	hosttest.Poll(5*time.Second, func() bool { // the tunnel's end is counted after the client sees it
		fams = scrape(t, c)
		return value(t, fams, "capuchin_proxy_server_tunnels_total", lab) == 1
	})
	wantValue(t, fams, "capuchin_proxy_server_tunnels_total", lab, 1)
	wantValue(t, fams, "capuchin_proxy_server_response_seconds", lab, 2)
	if sum := histogramSum(t, fams, "capuchin_proxy_server_response_seconds", lab); sum >= held.Seconds() {
		t.Errorf("response times add up to %.3fs: the %v tunnel is in them", sum, held)
	}
	// The host's stage-30 time of the hand-over ends at the tunnel's 101
	// (the plugin lifts the deadline there), not at the tunnel's end.
	stage30 := map[string]string{"plugin": "proxy_reverse", "stage": "30"}
	if sum := histogramSum(t, fams, "capuchin_plugin_stage_duration_seconds", stage30); sum >= held.Seconds() {
		t.Errorf("stage-30 times add up to %.3fs: the %v tunnel is in them", sum, held)
	}
	srv := statusServers(t, s)[0][0]
	last := srv["last_1m"].(map[string]any)
	if srv["tunnels"] != 1.0 || last["requests"] != 2.0 || last["p99_ms"].(float64) >= float64(held.Milliseconds()) {
		t.Fatalf("status page: tunnels %v, last minute %v: want 1 tunnel, 2 requests, p99 well below %v",
			srv["tunnels"], last, held)
	}
}

// histogramSum returns the sum of the samples of histogram name whose
// labels include want.
func histogramSum(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	for _, m := range fams[name].GetMetric() {
		if hasLabels(m, want) && m.Histogram != nil {
			return m.Histogram.GetSampleSum()
		}
	}
	t.Fatalf("no histogram %s with labels %v", name, want)
	return 0
}
