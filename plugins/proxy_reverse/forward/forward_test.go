package forward

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/hosttest"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/balance"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/config"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/upstream"
)

// connPair returns both ends of a TCP connection on 127.0.0.1.
func connPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	client, server = hosttest.TCPPair(t)
	client.SetDeadline(time.Now().Add(10 * time.Second))
	return client, server
}

// sendRequest sends "method path" from the client end of a new
// connection pair and returns that end with the Request read off the
// other (a keep-alive client at 127.0.0.1:9).
func sendRequest(t *testing.T, method, path string) (net.Conn, *Request) {
	t.Helper()
	client, server := connPair(t)
	br := bufio.NewReader(server)
	fmt.Fprintf(client, "%s %s HTTP/1.1\r\nHost: a\r\n\r\n", method, path)
	var req http1.Request
	if err := http1.ReadRequest(br, nil, &req); err != nil {
		t.Fatal(err)
	}
	return client, &Request{Conn: server, BR: br, Req: &req, Client: netip.MustParseAddrPort("127.0.0.1:9"), KeepAlive: true}
}

// testBackend is a group of one server on 127.0.0.1 (hosttest.Serve,
// whose Accepts counts its connections) that serves each connection
// with serve; its pool keeps every connection given back.
func testBackend(t *testing.T, serve func(net.Conn)) (*upstream.Group, *hosttest.Server) {
	t.Helper()
	srv := hosttest.Serve(t, "", serve)
	ap := netip.MustParseAddrPort(srv.Addr())
	e := &config.Entry{Servers: []config.Server{{Host: "127.0.0.1", Port: ap.Port()}},
		ConnectTimeout: time.Second, ResolveInterval: time.Minute, IdleTimeout: time.Minute,
		ResponseTimeout: time.Minute, MaxIdleConns: config.NoLimit}
	g := upstream.NewGroup(e, nil, nil, hclog.NewNullLogger())
	t.Cleanup(g.Close)
	return g, srv
}

// inOrder tries the first n slots in list order.
type inOrder int

func (n inOrder) Order(dst []int, _ balance.Request) []int {
	dst = dst[:0]
	for i := 0; i < int(n); i++ {
		dst = append(dst, i)
	}
	return dst
}

// A zero Forwarder answers a request no backend can take with an error page
// whose head carries Date and the given Server; to HEAD without the page.
func TestZeroForwarderErrorPage(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := dead.Addr().(*net.TCPAddr).Port
	dead.Close()
	e := &config.Entry{Servers: []config.Server{{Host: "127.0.0.1", Port: uint16(port)}},
		ConnectTimeout: time.Second, ResolveInterval: time.Minute, IdleTimeout: time.Minute}
	g := upstream.NewGroup(e, nil, nil, hclog.NewNullLogger())
	defer g.Close()
	var f Forwarder
	for _, method := range []string{"GET", "HEAD"} {
		client, r := sendRequest(t, method, "/x")
		r.Server = "capuchin/test"
		res := f.Forward(context.Background(), g.Slots(), inOrder(1), r)
		var resp http1.Response
		cbr := bufio.NewReader(client)
		if err := http1.ReadResponse(cbr, nil, &resp); err != nil {
			t.Fatal(err)
		}
		if res.Status != 502 || resp.Status != 502 || resp.Reason != "Bad Gateway" || resp.Header.Get("Server") != "capuchin/test" ||
			resp.Header.Get("Date") == "" || resp.ContentLength <= 0 {
			t.Fatalf("%s: result %d, answer %q", method, res.Status, resp.Raw)
		}
		var body http1.Body
		body.ResetResponse(cbr, &resp, method)
		page := make([]byte, 4096)
		n, _ := body.Read(page)
		if method == "GET" && !strings.Contains(string(page[:n]), "502 Bad Gateway") || method == "HEAD" && cbr.Buffered() != 0 {
			t.Fatalf("%s: page %q, %d bytes more", method, page[:n], cbr.Buffered())
		}
	}
}
