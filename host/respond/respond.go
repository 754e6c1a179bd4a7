// Package respond writes HTTP/1.1 responses from the host to a client
// connection: the head with the fields every response carries (Date, Server,
// Connection), bodies from memory or from files with sendfile, and error
// pages (a virtual host's own page when it has one).
package respond

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/capuchin/capuchin/api/http1"
)

// Writer writes one response at a time on a connection. The host sets Conn,
// BW, Clock and Server once per connection and calls Reset before each
// response.
type Writer struct {
	Conn    net.Conn
	BW      *bufio.Writer
	Clock   *http1.Clock
	Server  string        // Server field value; "" sends none
	Timeout time.Duration // write timeout between file chunks; 0: none
	// Draining, when set and true, makes every response the connection's
	// last (Connection: close): the server is shutting down.
	Draining *atomic.Bool

	method string         // the request's method (HEAD: no body bytes)
	minor  int            // the request's HTTP minor version
	close  bool           // the connection closes after this response
	pages  map[int]string // error status -> page file

	Status    int   // status written, 0 before WriteHead
	Bytes     int64 // bytes written, head included
	HeadBytes int64 // of Bytes, the heads (100 Continue included)
	fields    []byte
	started   bool
}

// Reset prepares w for the response to req. close says whether the
// connection ends after it; pages are the virtual host's error pages.
func (w *Writer) Reset(req *http1.Request, close bool, pages map[int]string) {
	w.method, w.minor = "", 1
	if req != nil {
		w.method, w.minor = req.Method, req.Minor
	}
	w.close = close
	w.pages = pages
	w.Status, w.Bytes, w.HeadBytes, w.started = 0, 0, 0, false
	w.fields = w.fields[:0]
}

// SetClose makes the response announce Connection: close.
func (w *Writer) SetClose() { w.close = true }

// Closing reports whether the connection closes after this response.
func (w *Writer) Closing() bool { return w.close }

// Started reports whether any byte of the response was written.
func (w *Writer) Started() bool { return w.started }

// AddField adds a field to the head of the next WriteHead.
func (w *Writer) AddField(name, value string) {
	w.fields = http1.AppendField(w.fields, name, value)
}

// WriteHead writes the head through http1.ResponseHead: the status line,
// Date, Server, the fields added, Content-Length and Connection. length is
// the body length announced with Content-Length; -1 announces none, for
// 1xx, 204, 304 and HEAD: the writer has no chunked or close-delimited
// bodies, so other responses need a length.
func (w *Writer) WriteHead(status int, length int64) error {
	if !w.close && w.Draining != nil && w.Draining.Load() {
		w.SetClose()
	}
	h := http1.ResponseHead{Status: status, Date: w.Clock.Date(), Server: w.Server, Length: length,
		Method: w.method, Minor: w.minor, Close: w.close}
	if fr := h.Framing(); fr == http1.FrameChunked || fr == http1.FrameClose {
		return errNoLength
	}
	b, _ := h.Append(w.BW.AvailableBuffer(), w.fields)
	w.Status, w.started = status, true
	n, err := w.BW.Write(b)
	w.Bytes += int64(n)
	w.HeadBytes += int64(n)
	return err
}

var errNoLength = errors.New("respond: a response with a body needs its length")

// Write writes body bytes (none for HEAD).
func (w *Writer) Write(p []byte) (int, error) {
	if w.method == "HEAD" {
		return len(p), nil
	}
	n, err := w.BW.Write(p)
	w.Bytes += int64(n)
	return n, err
}

// SendFile writes n bytes of f from offset off, with sendfile(2) where the
// connection is a TCP socket.
func (w *Writer) SendFile(f *os.File, off, n int64) error {
	if w.method == "HEAD" || n == 0 {
		return nil
	}
	if err := w.BW.Flush(); err != nil {
		return err
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return err
	}
	for n > 0 {
		chunk := min(n, sendChunk)
		if w.Timeout > 0 {
			w.Conn.SetWriteDeadline(time.Now().Add(w.Timeout))
		}
		m, err := io.Copy(w.Conn, &io.LimitedReader{R: f, N: chunk})
		w.Bytes += m
		if err != nil {
			return err
		}
		if m < chunk {
			return io.ErrUnexpectedEOF // the file shrank under us
		}
		n -= m
	}
	return nil
}

// sendChunk is how much of a file goes out per write deadline: a slow
// reader gets Timeout per chunk, not for the whole file.
const sendChunk = 4 << 20

// Continue sends "100 Continue" at once.
func (w *Writer) Continue() error {
	n, err := w.BW.Write(http1.AppendContinue(w.BW.AvailableBuffer()))
	w.Bytes += int64(n)
	w.HeadBytes += int64(n)
	if err != nil {
		return err
	}
	return w.BW.Flush()
}

// Error sends an error response: the virtual host's page for status if it
// has one, else the built-in page with detail. Fields added before (such as
// Location or Content-Range) are kept.
func (w *Writer) Error(status int, detail string) error {
	page := http1.SitePage(w.pages, status, detail)
	w.AddField("Content-Type", "text/html; charset=utf-8")
	if status == 405 && !bytes.Contains(w.fields, []byte("Allow: ")) {
		w.AddField("Allow", "GET, HEAD, OPTIONS")
	}
	if err := w.WriteHead(status, int64(len(page))); err != nil {
		return err
	}
	_, err := w.Write(page)
	return err
}

// Flush sends buffered bytes to the client.
func (w *Writer) Flush() error { return w.BW.Flush() }
