// Package respond writes HTTP/1.1 responses from the host to a client
// connection: the head with the fields every response carries (Date, Server,
// Connection), bodies from memory or from files with sendfile, and error
// pages (a virtual host's own page when it has one).
package respond

import (
	"bufio"
	"bytes"
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

	head       bool           // answering HEAD: no body bytes
	close      bool           // the connection closes after this response
	keepAlive0 bool           // HTTP/1.0 keep-alive: say so
	pages      map[int]string // error status -> page file

	Status  int   // status written, 0 before WriteHead
	Bytes   int64 // bytes written, head included
	fields  []byte
	started bool
}

// Reset prepares w for the response to req. close says whether the
// connection ends after it; pages are the virtual host's error pages.
func (w *Writer) Reset(req *http1.Request, close bool, pages map[int]string) {
	w.head = req != nil && req.Method == "HEAD"
	w.close = close
	w.keepAlive0 = req != nil && req.Minor == 0 && !close
	w.pages = pages
	w.Status, w.Bytes, w.started = 0, 0, false
	w.fields = w.fields[:0]
}

// SetClose makes the response announce Connection: close.
func (w *Writer) SetClose() { w.close = true; w.keepAlive0 = false }

// Closing reports whether the connection closes after this response.
func (w *Writer) Closing() bool { return w.close }

// Started reports whether any byte of the response was written.
func (w *Writer) Started() bool { return w.started }

// AddField adds a field to the head of the next WriteHead.
func (w *Writer) AddField(name, value string) {
	w.fields = http1.AppendField(w.fields, name, value)
}

// WriteHead writes the status line and fields. length is the body length
// announced with Content-Length; -1 announces none (for 1xx, 204, 304 and
// responses without body).
func (w *Writer) WriteHead(status int, length int64) error {
	b := w.BW.AvailableBuffer()
	b = http1.AppendStatusLine(b, status)
	b = http1.AppendField(b, "Date", w.Clock.Date())
	if w.Server != "" {
		b = http1.AppendField(b, "Server", w.Server)
	}
	b = append(b, w.fields...)
	if length >= 0 {
		b = http1.AppendFieldInt(b, "Content-Length", length)
	}
	if !w.close && w.Draining != nil && w.Draining.Load() {
		w.SetClose()
	}
	if w.close {
		b = append(b, "Connection: close\r\n"...)
	} else if w.keepAlive0 {
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	b = append(b, "\r\n"...)
	w.Status, w.started = status, true
	n, err := w.BW.Write(b)
	w.Bytes += int64(n)
	return err
}

// Write writes body bytes (none for HEAD).
func (w *Writer) Write(p []byte) (int, error) {
	if w.head {
		return len(p), nil
	}
	n, err := w.BW.Write(p)
	w.Bytes += int64(n)
	return n, err
}

// SendFile writes n bytes of f from offset off, with sendfile(2) where the
// connection is a TCP socket.
func (w *Writer) SendFile(f *os.File, off, n int64) error {
	if w.head || n == 0 {
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
	n, err := w.BW.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
	w.Bytes += int64(n)
	if err != nil {
		return err
	}
	return w.BW.Flush()
}

// Error sends an error response: the virtual host's page for status if it
// has one, else the built-in page with detail. Fields added before (such as
// Location or Content-Range) are kept.
func (w *Writer) Error(status int, detail string) error {
	page := w.customPage(status)
	if page == nil {
		page = http1.ErrorPage(status, detail)
	}
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

// customPage reads a virtual host's error page; nil when there is none.
func (w *Writer) customPage(status int) []byte {
	p, ok := w.pages[status]
	if !ok {
		return nil
	}
	b, err := os.ReadFile(p)
	if err != nil || len(b) > 1<<20 {
		return nil
	}
	return b
}

// Flush sends buffered bytes to the client.
func (w *Writer) Flush() error { return w.BW.Flush() }
