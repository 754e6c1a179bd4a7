package forward

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/hosttest"
)

// answerSized answers GET /N and HEAD /N with N bytes of body (204 for
// /204) on the keep-alive connection c until it closes.
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
	g, srv := testBackend(t, answerSized)
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
		client, r := sendRequest(t, tc.method, tc.path)
		r.Server = "capuchin/test"
		cl := hosttest.NewClient(t, client)
		got := make(chan string, 1)
		go func() { // ends when the answer is read (or the client's deadline passes)
			resp, err := cl.Read(tc.method)
			if err != nil {
				got <- err.Error()
				return
			}
			got <- fmt.Sprintf("%d %d %v", resp.Status, len(resp.Body), err)
		}()
		res := f.Forward(context.Background(), g.Slots(), inOrder(1), r)
		if answer, want := <-got, fmt.Sprintf("%d %d <nil>", tc.status, tc.size); answer != want || res.Status != tc.status || res.Close {
			t.Fatalf("%s %s: the client got %q, want %q; result %d close %v (%v)", tc.method, tc.path, answer, want, res.Status, res.Close, res.Err)
		}
	}
	if n := srv.Accepts(); n != 1 {
		t.Errorf("the backend accepted %d connections, want 1 (each answer's connection reused)", n)
	}
}
