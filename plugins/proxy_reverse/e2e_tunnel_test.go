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
