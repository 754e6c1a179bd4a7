package integration

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// tlsClient opens a TLS connection to addr trusting ca, naming localhost.
func tlsClient(t *testing.T, addr string, ca *hosttest.CA) *client {
	t.Helper()
	return hosttest.NewClient(t, tlsDial(t, addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}))
}

// TestTLSPluginStage30: a stage-30 plugin handed a TLS connection reads
// and writes plain HTTP through the host's relay: bodies, chunked
// answers, pipelined requests mixing plugin and static answers, a decline
// falling through to the static file, the connection's TLS facts, and
// requests served under a connection lease (MaxKeepAliveRequest, a static
// request in the middle, the idle timeout).
// TestTLSPluginDeclineThenHandle: client bytes that arrive while one
// plugin holds a request it then declines reach the next plugin, which
// reads them as the request body.
func TestTLSPluginDeclineThenHandle(t *testing.T) {
	pluginTest(t)
	s, ca, addr := tlsSite(t)
	s.LoadFrom(testPlugins(t), "hello", "helloopen")
	s.StartChecked()
	c := tlsClient(t, addr, ca)
	c.Send("POST /hello/nap HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
	time.Sleep(200 * time.Millisecond)
	c.Send("abcdeGET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.MustRead("POST"); r.Status != 200 || string(r.Body) != `hello POST /hello/nap vhost=127.0.0.1 body="abcde"` {
		t.Errorf("second plugin: %d %q", r.Status, r.Body)
	}
	if r := c.MustRead("GET"); r.Status != 200 || string(r.Body) != "<h1>hello</h1>\n" {
		t.Errorf("after: %d %q", r.Status, r.Body)
	}
}

func TestTLSPluginStage30(t *testing.T) {
	pluginTest(t)
	s, ca, addr := tlsSite(t)
	s.WriteRoot("hello/decline", "static-decline")
	s.Server = append(s.Server, "MaxKeepAliveRequest 6", "KeepAliveTimeout 1")
	s.LoadFrom(testPlugins(t), "hello")
	s.StartChecked()

	c := tlsClient(t, addr, ca)
	if r := c.Get("/hello/tls"); string(r.Body) != "scheme=https tls=true version=TLS1.3 sni=localhost cert=false subject=" {
		t.Errorf("TLS facts at stage 30: %d %q", r.Status, r.Body)
	}
	big := strings.Repeat("b", 300<<10) // more than the relay's socket buffers hold
	c.Send("POST /hello/up HTTP/1.1\r\nHost: x\r\nContent-Length: 307200\r\n\r\n" + big)
	if r := c.MustRead("POST"); r.Status != 200 || !strings.HasSuffix(string(r.Body), `body="`+big+`"`) {
		t.Errorf("POST 300 KiB: %d, %d bytes", r.Status, len(r.Body))
	}
	c.Send("GET /hello/a?chunked HTTP/1.1\r\nHost: x\r\n\r\nGET /index.html HTTP/1.1\r\nHost: x\r\n\r\n" +
		"GET /hello/decline HTTP/1.1\r\nHost: x\r\n\r\nGET /hello/b HTTP/1.1\r\nHost: x\r\n\r\n")
	want := []string{"hello GET /hello/a vhost=127.0.0.1 body=\"\"", "<h1>hello</h1>\n", "static-decline", "hello GET /hello/b vhost=127.0.0.1 body=\"\""}
	for i, w := range want {
		r := c.MustRead("GET")
		if r.Status != 200 || string(r.Body) != w || r.Close != (i == 3) {
			t.Errorf("pipelined response %d: %d %q close=%v, want %q (close on the 6th request)", i+1, r.Status, r.Body, r.Close, w)
		}
	}
	if !c.Closed(3 * time.Second) {
		t.Error("connection open after MaxKeepAliveRequest")
	}

	// Bytes that arrive while the plugin holds the request and that it
	// does not read (it declines) reach the host, in order.
	c = tlsClient(t, addr, ca)
	c.Send("GET /hello/nap HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(200 * time.Millisecond)
	c.Send("GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.MustRead("GET"); r.Status != 404 {
		t.Errorf("declined /hello/nap: %d, want the static 404", r.Status)
	}
	if r := c.MustRead("GET"); r.Status != 200 || string(r.Body) != "<h1>hello</h1>\n" {
		t.Errorf("request sent while the plugin held the connection: %d %q", r.Status, r.Body)
	}

	c = tlsClient(t, addr, ca)
	c.Get("/hello/first")
	if r := c.Get("/hello/leased"); r.Status != 200 || string(r.Body) != "hello GET /hello/leased vhost=127.0.0.1 body=\"\"" {
		t.Errorf("leased request: %d %q", r.Status, r.Body)
	}
	if !c.Closed(4 * time.Second) {
		t.Error("idle leased TLS connection not closed after KeepAliveTimeout 1")
	}
}

// TestTLSServerNameNotUTF8: a client may send any bytes as its SNI; a
// plugin gets them as sent, and the connection is served as any other.
// Before, an SNI that is not UTF-8 failed to encode in every event of the
// connection: each call failed and the client got 503s (and a fail-open
// stage-20 plugin would have been skipped).
func TestTLSServerNameNotUTF8(t *testing.T) {
	pluginTest(t)
	s, _, addr := tlsSite(t)
	s.LoadFrom(testPlugins(t), "hello")
	s.StartChecked()
	c := hosttest.NewClient(t, tlsDial(t, addr, &tls.Config{InsecureSkipVerify: true, ServerName: "a\xffb.example"}))
	for range 2 { // the hand-over, then under its lease
		if r := c.Get("/hello/tls"); r.Status != 200 || !strings.Contains(string(r.Body), "sni=a\xffb.example ") {
			t.Errorf("TLS facts at stage 30: %d %q", r.Status, r.Body)
		}
	}
}
