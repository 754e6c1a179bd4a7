package http1

import (
	"html"
	"io"
	"strconv"
	"sync/atomic"
	"time"
)

// StatusText returns the reason phrase of a status code, "" if unknown.
func StatusText(code int) string {
	switch code {
	case 100:
		return "Continue"
	case 101:
		return "Switching Protocols"
	case 200:
		return "OK"
	case 201:
		return "Created"
	case 204:
		return "No Content"
	case 206:
		return "Partial Content"
	case 301:
		return "Moved Permanently"
	case 302:
		return "Found"
	case 304:
		return "Not Modified"
	case 307:
		return "Temporary Redirect"
	case 308:
		return "Permanent Redirect"
	}
	return errorText(code)
}

func errorText(code int) string {
	switch code {
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 408:
		return "Request Timeout"
	case 411:
		return "Length Required"
	case 412:
		return "Precondition Failed"
	case 413:
		return "Content Too Large"
	case 414:
		return "URI Too Long"
	case 416:
		return "Range Not Satisfiable"
	case 417:
		return "Expectation Failed"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	}
	return ""
}

// AppendStatusLine appends "HTTP/1.1 code reason\r\n".
func AppendStatusLine(b []byte, code int) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, StatusText(code)...)
	return append(b, "\r\n"...)
}

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

// AppendErrorResponse appends a complete error response: head and page.
// server is the Server field value ("" for none); close adds Connection: close.
func AppendErrorResponse(b []byte, code int, detail, date, server string, close bool) []byte {
	page := ErrorPage(code, detail)
	b = AppendStatusLine(b, code)
	b = AppendField(b, "Date", date)
	if server != "" {
		b = AppendField(b, "Server", server)
	}
	b = AppendField(b, "Content-Type", "text/html; charset=utf-8")
	b = AppendFieldInt(b, "Content-Length", int64(len(page)))
	if close {
		b = AppendField(b, "Connection", "close")
	}
	b = append(b, "\r\n"...)
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
func (c *Clock) Date() string {
	now := time.Now()
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
