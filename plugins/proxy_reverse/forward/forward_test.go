package forward

import (
	"bufio"
	"context"
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
		client, server := connPair(t)
		var req http1.Request
		br := bufio.NewReader(server)
		client.Write([]byte(method + " /x HTTP/1.1\r\nHost: a\r\n\r\n"))
		if err := http1.ReadRequest(br, nil, &req); err != nil {
			t.Fatal(err)
		}
		res := f.Forward(context.Background(), g.Slots(), inOrder(1), &Request{Conn: server, BR: br, Req: &req,
			Client: netip.MustParseAddrPort("127.0.0.1:9"), KeepAlive: true, Server: "capuchin/test"})
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
