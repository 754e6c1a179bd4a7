package hosttest

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/capuchin/capuchin/api/http1"
)

// Must fails the test on err.
func Must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Must(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Client is a raw TCP connection to the host: it writes bytes and reads
// responses with the project's HTTP/1.1 reader.
type Client struct {
	t  testing.TB
	C  net.Conn
	BR *bufio.Reader // what was read and not yet consumed
}

// Dial connects to addr; the connection closes when the test ends.
func Dial(t testing.TB, addr string) *Client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	Must(t, err)
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return &Client{t: t, C: c, BR: bufio.NewReader(c)}
}

// NewClient wraps an open connection (a TLS one, say); it closes when
// the test ends.
func NewClient(t *testing.T, c net.Conn) *Client {
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return &Client{t: t, C: c, BR: bufio.NewReader(c)}
}

// Send writes s.
func (c *Client) Send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.C, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// Response is a response read off the wire.
type Response struct {
	http1.Response
	Body []byte
}

// Read reads one response to a request with method.
func (c *Client) Read(method string) (*Response, error) {
	r := &Response{}
	if err := http1.ReadResponse(c.BR, nil, &r.Response); err != nil {
		return nil, err
	}
	var b http1.Body
	b.ResetResponse(c.BR, &r.Response, method)
	body, err := io.ReadAll(&b)
	r.Body = body
	return r, err
}

// MustRead reads one response or fails the test.
func (c *Client) MustRead(method string) *Response {
	c.t.Helper()
	r, err := c.Read(method)
	if err != nil {
		c.t.Fatalf("reading response: %v", err)
	}
	return r
}

// Closed reports whether the peer closed the connection without sending a
// byte, within d.
func (c *Client) Closed(d time.Duration) bool {
	_ = c.C.SetReadDeadline(time.Now().Add(d))
	_, err := c.BR.ReadByte()
	return errors.Is(err, io.EOF) || IsReset(err)
}

// IsReset reports whether err says the peer reset the connection.
func IsReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "reset") || strings.Contains(err.Error(), "broken pipe"))
}

// DialFrom connects to addr from the local address ip (e.g. 127.0.0.2).
func DialFrom(t *testing.T, ip, addr string) *Client {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", addr)
	Must(t, err)
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return &Client{t: t, C: c, BR: bufio.NewReader(c)}
}

// RoundTrip sends one request and reads its response.
func (c *Client) RoundTrip(req string) *Response {
	c.t.Helper()
	c.Send(req)
	m, _, _ := strings.Cut(req, " ")
	return c.MustRead(m)
}

// Get is a keep-alive GET of path.
func (c *Client) Get(path string) *Response {
	c.t.Helper()
	return c.RoundTrip("GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
}

// SendQuiet writes s and ignores errors: the server may have closed.
func (c *Client) SendQuiet(s string) { _, _ = io.WriteString(c.C, s) }

// Poll calls cond every 10 ms until it is true or d has passed, and
// reports whether it became true.
func Poll(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

// WaitFor fails the test unless cond becomes true within 5 s; what says
// what was awaited.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !Poll(5*time.Second, cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}
