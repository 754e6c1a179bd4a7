package http1

import (
	"html"
	"io"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// AppendField appends "name: value\r\n".
func AppendField(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, "\r\n"...)
}

// AppendFieldInt appends "name: n\r\n".
func AppendFieldInt(b []byte, name string, n int64) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = strconv.AppendInt(b, n, 10)
	return append(b, "\r\n"...)
}

// ErrorPage returns the short HTML page sent with an error status.
// detail is escaped; it may be empty.
func ErrorPage(code int, detail string) []byte {
	title := strconv.Itoa(code) + " " + StatusText(code)
	p := "<!DOCTYPE html>\n<html><head><title>" + title + "</title></head>\n<body><h1>" +
		title + "</h1>\n"
	if detail != "" {
		p += "<p>" + html.EscapeString(detail) + "</p>\n"
	}
	return []byte(p + "</body></html>\n")
}

// maxPageFile bounds a site's error page file.
const maxPageFile = 1 << 20

// SitePage returns the error page for status: the file pages names for it
// (a site's [ERROR_PAGES], status -> path) when there is one and it can be
// read (at most 1 MiB), else ErrorPage(status, detail).
func SitePage(pages map[int]string, status int, detail string) []byte {
	if p, ok := pages[status]; ok {
		if b, err := os.ReadFile(p); err == nil && len(b) <= maxPageFile {
			return b
		}
	}
	return ErrorPage(status, detail)
}

// AppendError appends a complete error response for h.Status: the head,
// with fields (complete field lines, may be nil), Content-Type and the
// length of the page, and the page of ErrorPage (none for HEAD). detail is
// escaped; it may be empty.
func (h *ResponseHead) AppendError(b, fields []byte, detail string) []byte {
	page := ErrorPage(h.Status, detail)
	h.Length = int64(len(page))
	b = h.AppendStart(b)
	b = append(b, fields...)
	b = AppendField(b, "Content-Type", "text/html; charset=utf-8")
	b, fr := h.AppendEnd(b)
	if fr == FrameNone {
		return b
	}
	return append(b, page...)
}

// Clock formats the Date field once a second. The zero value works; share
// one between goroutines.
type Clock struct {
	cur atomic.Pointer[dateStamp]
}

type dateStamp struct {
	unix int64
	text string
}

// Date returns the current time in IMF-fixdate form.
func (c *Clock) Date() string { return c.DateAt(time.Now()) }

// DateAt returns now in IMF-fixdate form: for a caller that has just read
// the clock (a read costs about as much as the formatting it spares).
func (c *Clock) DateAt(now time.Time) string {
	s := now.Unix()
	if d := c.cur.Load(); d != nil && d.unix == s {
		return d.text
	}
	d := &dateStamp{unix: s, text: now.UTC().Format(TimeFormat)}
	c.cur.Store(d)
	return d.text
}

// TimeFormat is the IMF-fixdate layout of HTTP dates.
const TimeFormat = "Mon, 02 Jan 2006 15:04:05 GMT"

// ChunkedWriter writes a chunked body to w. Close writes the last chunk
// and an empty trailer.
type ChunkedWriter struct {
	W   io.Writer
	hdr []byte
}

func (c *ChunkedWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.hdr = strconv.AppendInt(c.hdr[:0], int64(len(p)), 16)
	c.hdr = append(c.hdr, "\r\n"...)
	if _, err := c.W.Write(c.hdr); err != nil {
		return 0, err
	}
	n, err := c.W.Write(p)
	if err != nil {
		return n, err
	}
	_, err = io.WriteString(c.W, "\r\n")
	return n, err
}

// Close ends the body with the last chunk and an empty trailer section.
func (c *ChunkedWriter) Close() error {
	_, err := io.WriteString(c.W, "0\r\n\r\n")
	return err
}

// CloseTrailer writes the last chunk, the trailer fields t and the final
// CRLF (RFC 9112 §7.1.2).
func (c *ChunkedWriter) CloseTrailer(t Header) error {
	if len(t) == 0 {
		return c.Close()
	}
	b := append(c.hdr[:0], "0\r\n"...)
	for _, f := range t {
		b = append(append(append(append(b, f.Name...), ": "...), f.Value...), "\r\n"...)
	}
	c.hdr = append(b, "\r\n"...)
	_, err := c.W.Write(c.hdr)
	return err
}
