package forward

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/upstream"
)

// sizedBackend answers GET /N and HEAD /N with N bytes of body (204 for
// /204) on keep-alive connections, and counts the connections it accepts.
func sizedBackend(t *testing.T, conns *atomic.Int32) *upstream.Group {
	return testBackend(t, func(c net.Conn) {
		conns.Add(1)
		answerSized(c)
	})
}

// answerSized serves sizedBackend's answers on c until it closes.
func answerSized(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		var req http1.Request
		if http1.ReadRequest(br, nil, &req) != nil {
			return
		}
		if req.Path == "/204" {
			io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
			continue
		}
		var n int
		fmt.Sscanf(req.Path, "/%d", &n)
		body := ""
		if req.Method != "HEAD" {
			body = strings.Repeat("b", n)
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", n, body)
	}
}

// Answers with a body that came with their head, without a body (HEAD,
// 204, Content-Length: 0) and with one larger than the read buffer all
// arrive intact, each one ends its backend connection's turn cleanly, and
// all of them go over one backend connection (reused, never reopened).
func TestAnswersReuseTheirConnection(t *testing.T) {
	var conns atomic.Int32
	g := sizedBackend(t, &conns)
	var f Forwarder
	defer f.Close()
	for _, tc := range []struct {
		method, path string
		status, size int
	}{
		{"GET", "/1024", 200, 1024},
		{"HEAD", "/1024", 200, 0},
		{"GET", "/204", 204, 0},
		{"GET", "/0", 200, 0},
		{"GET", "/300000", 200, 300000},
		{"GET", "/10", 200, 10},
	} {
		client, server := connPair(t)
		br := bufio.NewReader(server)
		fmt.Fprintf(client, "%s %s HTTP/1.1\r\nHost: a\r\n\r\n", tc.method, tc.path)
		var req http1.Request
		if err := http1.ReadRequest(br, nil, &req); err != nil {
			t.Fatal(err)
		}
		got := make(chan string, 1)
		go func() { // ends when the answer is read (or the client's deadline passes)
			cbr := bufio.NewReader(client)
			var resp http1.Response
			if err := http1.ReadResponse(cbr, nil, &resp); err != nil {
				got <- err.Error()
				return
			}
			var body http1.Body
			body.ResetResponse(cbr, &resp, tc.method)
			b, err := io.ReadAll(&body)
			got <- fmt.Sprintf("%d %d %v", resp.Status, len(b), err)
		}()
		res := f.Forward(context.Background(), g.Slots(), inOrder(1), &Request{Conn: server, BR: br, Req: &req,
			Client: netip.MustParseAddrPort("127.0.0.1:9"), KeepAlive: true, Server: "capuchin/test"})
		if answer, want := <-got, fmt.Sprintf("%d %d <nil>", tc.status, tc.size); answer != want || res.Status != tc.status || res.Close {
			t.Fatalf("%s %s: the client got %q, want %q; result %d close %v (%v)", tc.method, tc.path, answer, want, res.Status, res.Close, res.Err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("the backend accepted %d connections, want 1 (each answer's connection reused)", n)
	}
}
