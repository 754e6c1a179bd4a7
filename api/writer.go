package api

import (
	"errors"

	"github.com/capuchin/capuchin/api/http1"
)

// ResponseWriter writes a response straight to the client socket, its
// head through http1.ResponseHead: the status line, Date, Server (the
// host's), the fields added, framing (Content-Length, or chunked when the
// length is unknown) and Connection. It is valid only during
// Handle; the SDK ends the body and flushes after Handle returns.
type ResponseWriter struct {
	cs        *connState
	clock     *http1.Clock
	server    string
	method    string
	minor     int
	fields    []byte
	head      []byte
	status    int
	errStatus int
	pages     map[int]string // the site's error pages, under a lease
	reported  int64
	heads     int64 // bytes of response heads written or reported (1xx included)
	close     bool
	noBody    bool
	wroteHead bool
	chunked   bool
	cw        http1.ChunkedWriter
	err       error
}

var errHeadWritten = errors.New("api: response head already written")

func (w *ResponseWriter) reset(r *Request, keep bool, clock *http1.Clock) {
	w.clock, w.server = clock, r.Server
	w.method, w.minor = r.Method, r.Minor
	w.fields = w.fields[:0]
	w.status, w.errStatus, w.reported, w.heads = 0, 0, 0, 0
	w.pages = nil
	w.close = !keep
	w.noBody, w.wroteHead, w.chunked, w.err = false, false, false, nil
}

// AddField adds a response field. Date, Server, Content-Length,
// Transfer-Encoding and Connection are set by the writer.
func (w *ResponseWriter) AddField(name, value string) {
	w.fields = http1.AppendField(w.fields, name, value)
}

// SetClose makes the connection close after this response.
func (w *ResponseWriter) SetClose() { w.close = true }

// SetErrorStatus sets the status of the error page the host sends when
// Handle returns Close (default 403, as in Monkey).
func (w *ResponseWriter) SetErrorStatus(code int) { w.errStatus = code }

// Report records a response written directly on the raw connection:
// its status and the bytes sent, for stage 40 and for the host's error
// handling.
func (w *ResponseWriter) Report(status int, bytes int64) {
	w.status, w.reported = status, w.reported+bytes
}

// ReportHead records how many of the bytes reported with Report were
// response heads (1xx heads included), so that the access log can count
// the body alone (nginx's $body_bytes_sent).
func (w *ResponseWriter) ReportHead(bytes int64) { w.heads += bytes }

// WriteHead writes the response head. length is the body size, or -1 when
// unknown: the body is then chunked (HTTP/1.1) or ends with the connection
// (HTTP/1.0). 204 and 304 get no Content-Length, HEAD the one of length.
func (w *ResponseWriter) WriteHead(status int, length int64) error {
	if w.wroteHead {
		return errHeadWritten
	}
	if status == 304 {
		length = -1 // no body; the length of the GET's is not known here
	}
	w.wroteHead, w.status = true, status
	h := http1.ResponseHead{Status: status, Date: w.clock.Date(), Server: w.server, Length: length,
		Method: w.method, Minor: w.minor, Close: w.close}
	var fr http1.Framing
	w.head, fr = h.Append(w.head[:0], w.fields)
	w.close = h.Close
	w.noBody, w.chunked = fr == http1.FrameNone, fr == http1.FrameChunked
	w.cw.W = w.cs.out()
	_, err := w.cw.W.Write(w.head)
	w.heads += int64(len(w.head))
	return w.fail(err)
}

// Write writes body bytes, writing a 200 head of unknown length first if
// none was written.
func (w *ResponseWriter) Write(p []byte) (int, error) {
	if !w.wroteHead {
		if err := w.WriteHead(200, -1); err != nil {
			return 0, err
		}
	}
	if w.noBody {
		return len(p), nil
	}
	if w.err != nil {
		return 0, w.err
	}
	var n int
	var err error
	if w.chunked {
		n, err = w.cw.Write(p)
	} else {
		n, err = w.cs.out().Write(p)
	}
	return n, w.fail(err)
}

// WriteString writes s like Write.
func (w *ResponseWriter) WriteString(s string) (int, error) {
	return w.Write([]byte(s))
}

// Flush sends buffered bytes to the client.
func (w *ResponseWriter) Flush() error {
	if w.cs.bw == nil {
		return nil // nothing was written
	}
	return w.fail(w.cs.bw.Flush())
}

// finish ends the body and flushes.
func (w *ResponseWriter) finish() {
	if !w.wroteHead && w.reported == 0 && w.status == 0 {
		_ = w.WriteHead(204, 0)
	}
	if w.chunked && w.err == nil {
		_ = w.fail(w.cw.Close())
	}
	_ = w.Flush()
}

func (w *ResponseWriter) fail(err error) error {
	if err != nil && w.err == nil {
		w.err = err
		w.close = true
	}
	return err
}

// errorPage sends the error page for Handle's Close verdict (status
// errStatus, 403 if none) when the SDK answers in the host's place, and
// marks the connection to close.
func (w *ResponseWriter) errorPage() {
	w.close = true
	if w.wroteHead {
		return
	}
	st := w.errStatus
	if st == 0 {
		st = 403
	}
	w.page(st)
}

// page writes status with the short error page as its body.
func (w *ResponseWriter) page(st int) {
	page := http1.SitePage(w.pages, st, "")
	w.fields = http1.AppendField(w.fields[:0], "Content-Type", "text/html; charset=utf-8")
	if w.WriteHead(st, int64(len(page))) == nil {
		_, _ = w.Write(page)
	}
}

// reply writes a stage-20 plugin's Reply when the SDK answers in the
// host's place under a lease, as the host would: a status it cannot send
// is a 500 that closes the connection, and an error status with no body
// gets the error page.
func (w *ResponseWriter) reply(r *Reply) {
	switch {
	case r.Status < 200 || r.Status > 599:
		w.close = true
		w.page(500)
		return
	case len(r.Body) == 0 && r.Status >= 400:
		w.page(r.Status)
		return
	}
	for _, f := range r.Header {
		w.AddField(f.Name, f.Value)
	}
	if w.WriteHead(r.Status, int64(len(r.Body))) == nil {
		_, _ = w.Write(r.Body)
	}
}
