package forward

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/hosttest"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/config"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/upstream"
)

// spliceBackend answers every GET on a kept-alive connection with a
// Content-Length body of size bytes; with cut it sends only cut of them
// and closes. It counts the connections it accepted.
func spliceBackend(t *testing.T, body []byte, cut int, accepts *atomic.Int32) string {
	t.Helper()
	return hosttest.Serve(t, "", func(c net.Conn) {
		accepts.Add(1)
		br := bufio.NewReader(c)
		for {
			var req http1.Request
			if http1.ReadRequest(br, nil, &req) != nil {
				return
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(body))
			if cut > 0 {
				c.Write(body[:cut])
				return
			}
			c.Write(body)
		}
	}).Addr()
}

// A large Content-Length answer goes through splice: the client gets it
// whole, the bytes are counted and the backend connection is reused; a
// backend that closes mid-body gets the client connection closed with the
// bytes it did send counted.
func TestSpliceBody(t *testing.T) {
	body := make([]byte, 300<<10)
	for i := range body {
		body[i] = byte(i * 7)
	}
	for _, cut := range []int{0, 100 << 10} {
		var accepts atomic.Int32
		addr := spliceBackend(t, body, cut, &accepts)
		ap := netip.MustParseAddrPort(addr)
		e := &config.Entry{Servers: []config.Server{{Host: "127.0.0.1", Port: ap.Port()}},
			ConnectTimeout: time.Second, ResolveInterval: time.Minute, IdleTimeout: time.Minute, MaxIdleConns: 4, ResponseTimeout: 10 * time.Second}
		g := upstream.NewGroup(e, nil, nil, hclog.NewNullLogger())
		defer g.Close()
		var f Forwarder
		client, server := connPair(t)
		if _, ok := server.(*net.TCPConn); !ok {
			t.Fatal("not a TCP connection")
		}
		cbr := bufio.NewReader(client)
		br := bufio.NewReader(server)
		for round := 0; round < 2; round++ {
			client.Write([]byte("GET /x HTTP/1.1\r\nHost: a\r\n\r\n"))
			var req http1.Request
			if err := http1.ReadRequest(br, nil, &req); err != nil {
				t.Fatal(err)
			}
			got := make(chan []byte, 1)
			go func() {
				var resp http1.Response
				if http1.ReadResponse(cbr, nil, &resp) != nil {
					got <- nil
					return
				}
				var b http1.Body
				b.ResetResponse(cbr, &resp, "GET")
				data, _ := io.ReadAll(&b)
				got <- append([]byte(resp.Raw+"\r\n"), data...) // Raw ends before the blank line
			}()
			res := f.Forward(context.Background(), g.Slots(), inOrder(1), &Request{Conn: server, BR: br, Req: &req,
				Client: netip.MustParseAddrPort("127.0.0.1:9"), KeepAlive: true, Server: "capuchin/test"})
			if cut > 0 {
				server.Close() // as the SDK does for a Close result
			}
			all := <-got
			if int64(len(all)) != res.BytesOut {
				t.Fatalf("cut %d: client got %d bytes, BytesOut %d: %+v %q", cut, len(all), res.BytesOut, res, all)
			}
			if cut > 0 {
				if !res.Close || res.Err == nil || !bytes.HasSuffix(all, body[:cut]) {
					t.Fatalf("cut body: close %v err %v, %d bytes", res.Close, res.Err, len(all))
				}
				break
			}
			if res.Close || res.Err != nil || res.Status != 200 || !bytes.HasSuffix(all, body) {
				t.Fatalf("round %d: close %v err %v status %d, %d bytes", round, res.Close, res.Err, res.Status, len(all))
			}
		}
		if cut == 0 && accepts.Load() != 1 {
			t.Fatalf("backend connections: %d, want 1 (reused)", accepts.Load())
		}
	}
}
