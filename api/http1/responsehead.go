package http1

import "strconv"

// Framing is how a response body is delimited (RFC 9112 §6.3).
type Framing uint8

const (
	FrameNone    Framing = iota // no body follows: HEAD, CONNECT 2xx, 1xx, 204, 304
	FrameLength                 // Content-Length bytes
	FrameChunked                // Transfer-Encoding: chunked (HTTP/1.1 clients)
	FrameClose                  // the body ends when the connection closes (HTTP/1.0 clients)
)

// ResponseHead is everything a response head says besides the fields of
// the response itself. Its Append methods are the one place that writes a
// response head, for the host, the plugin SDK and the proxy, as net/http
// has one Response.Write path: the status line with its reason phrase,
// Date, Server, the body's framing and the Connection field.
type ResponseHead struct {
	Status int
	Reason string // "": the registered reason phrase (StatusText)
	Date   string // Date field value (Clock.Date); "": none, for interim answers
	Server string // Server field value; "": none
	// Length is the body length announced in Content-Length, -1 when
	// unknown: the body is then chunked for an HTTP/1.1 client and
	// close-delimited for an HTTP/1.0 one. With HEAD and 304 it describes
	// the body a GET would have had. 1xx and 204 never carry one.
	Length  int64
	Method  string // the request's method: HEAD (and CONNECT with 2xx) get no body
	Minor   int    // the request's HTTP minor version
	Close   bool   // the connection closes after this response; set by AppendEnd for FrameClose
	Upgrade string // with 101: the protocol switched to
}

// Framing returns how the body of the response must be sent.
func (h *ResponseHead) Framing() Framing {
	switch {
	case h.noBody():
		return FrameNone
	case h.Length >= 0:
		return FrameLength
	case h.Minor >= 1:
		return FrameChunked
	}
	return FrameClose
}

func (h *ResponseHead) noBody() bool {
	return h.Method == "HEAD" || h.Status < 200 || h.Status == 204 || h.Status == 304 ||
		h.Method == "CONNECT" && h.Status < 300
}

// Append appends the whole head: AppendStart, fields (complete field
// lines, as AppendField writes them), AppendEnd. It returns the framing
// the body must use.
func (h *ResponseHead) Append(b, fields []byte) ([]byte, Framing) {
	b = h.AppendStart(b)
	b = append(b, fields...)
	return h.AppendEnd(b)
}

// AppendStart appends the status line, Date and Server. The response's own
// fields follow, then AppendEnd.
func (h *ResponseHead) AppendStart(b []byte) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(h.Status), 10)
	b = append(b, ' ')
	if h.Reason != "" {
		b = append(b, h.Reason...)
	} else {
		b = append(b, StatusText(h.Status)...)
	}
	b = append(b, "\r\n"...)
	if h.Date != "" {
		b = AppendField(b, "Date", h.Date)
	}
	if h.Server != "" {
		b = AppendField(b, "Server", h.Server)
	}
	return b
}

// AppendEnd appends the framing field (Content-Length or
// Transfer-Encoding), the Connection field and the empty line that ends
// the head. A close-delimited body sets h.Close.
func (h *ResponseHead) AppendEnd(b []byte) ([]byte, Framing) {
	fr := h.Framing()
	switch {
	case fr == FrameChunked:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	case fr == FrameClose:
		h.Close = true
	case h.Length >= 0 && h.Status >= 200 && h.Status != 204 && !(h.Method == "CONNECT" && h.Status < 300):
		b = AppendFieldInt(b, "Content-Length", h.Length)
	}
	switch {
	case h.Status == 101:
		b = append(b, "Connection: Upgrade\r\n"...)
		b = AppendField(b, "Upgrade", h.Upgrade)
	case h.Status < 200:
	case h.Close:
		b = append(b, "Connection: close\r\n"...)
	case h.Minor == 0:
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	return append(b, "\r\n"...), fr
}

// AppendContinue appends the interim "100 Continue" answer to a request
// that expects it.
func AppendContinue(b []byte) []byte {
	h := ResponseHead{Status: 100, Length: -1, Minor: 1}
	b, _ = h.Append(b, nil)
	return b
}
