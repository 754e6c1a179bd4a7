package respond

import (
	"bufio"
	"bytes"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/capuchin/capuchin/api/http1"
)

func newWriter(t *testing.T, req string, close bool) (*Writer, *bytes.Buffer) {
	t.Helper()
	var r http1.Request
	if err := http1.ReadRequest(bufio.NewReader(strings.NewReader(req)), nil, &r); err != nil {
		t.Fatal(err)
	}
	out := new(bytes.Buffer)
	w := &Writer{BW: bufio.NewWriter(out), Clock: new(http1.Clock), Server: "capuchin/t", Draining: new(atomic.Bool)}
	w.Reset(&r, close, nil)
	return w, out
}

// The host's heads: Date and Server always, keep-alive named to HTTP/1.0,
// a length for HEAD without the body, and no head it cannot frame.
func TestWriteHead(t *testing.T) {
	w, out := newWriter(t, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", false)
	w.AddField("X", "1")
	if err := w.WriteHead(200, 2); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("ok"))
	w.Flush()
	if got := out.String(); !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\nDate: ") ||
		!strings.HasSuffix(got, "\r\nServer: capuchin/t\r\nX: 1\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok") ||
		w.Bytes != int64(len(got)) {
		t.Fatalf("%q (%d bytes counted)", got, w.Bytes)
	}

	w, out = newWriter(t, "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", false)
	w.Draining.Store(true)
	w.WriteHead(200, 5)
	w.Write([]byte("hello"))
	w.Flush()
	if got := out.String(); !strings.HasSuffix(got, "Content-Length: 5\r\nConnection: close\r\n\r\n") || !w.Closing() {
		t.Fatalf("HEAD while draining: %q", got)
	}

	w, out = newWriter(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", false)
	if err := w.WriteHead(200, -1); err != errNoLength || w.Started() {
		t.Fatalf("unknown length: %v, started %v", err, w.Started())
	}
	if err := w.Continue(); err != nil || out.String() != "HTTP/1.1 100 Continue\r\n\r\n" || w.Bytes != 25 {
		t.Fatalf("continue: %v %q %d", err, out.String(), w.Bytes)
	}
}

func TestError(t *testing.T) {
	w, out := newWriter(t, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", true)
	if err := w.Error(405, ""); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	var resp http1.Response
	br := bufio.NewReader(out)
	if err := http1.ReadResponse(br, nil, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Status != 405 || resp.Reason != "Method Not Allowed" || resp.Header.Get("Allow") == "" ||
		resp.Header.Get("Server") != "capuchin/t" || !resp.Close || resp.ContentLength != int64(br.Buffered()) {
		t.Fatalf("%q, %d body bytes", resp.Raw, br.Buffered())
	}
}
