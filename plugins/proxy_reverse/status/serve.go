package status

import (
	"io"
	"strings"
	"time"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/forward"
)

// maxStatusBody bounds a request body sent to the status page (discarded).
const maxStatusBody = 64 << 10

// Serve answers a request for the page on r's connection (GET and HEAD
// only): date is the Date field, snapshot gives the page.
func Serve(r *forward.Request, date string, snapshot func() *Page) forward.Result {
	req := r.Req
	res := forward.Result{Status: 200, Close: !r.KeepAlive || req.Close}
	if req.HasBody() {
		discardBody(r, &res)
	}
	var body []byte
	ctype := "text/html; charset=utf-8"
	switch {
	case req.Method != "GET" && req.Method != "HEAD":
		res.Status, body = 405, http1.ErrorPage(405, "")
	case formatJSON(req.Query):
		body, ctype = JSON(snapshot()), "application/json"
	default:
		body = HTML(snapshot())
	}
	h := http1.ResponseHead{Status: res.Status, Date: date, Server: r.Server,
		Length: int64(len(body)), Method: req.Method, Minor: req.Minor, Close: res.Close}
	b := h.AppendStart(nil)
	b = http1.AppendField(b, "Content-Type", ctype)
	b = http1.AppendField(b, "Cache-Control", "no-store")
	if res.Status == 405 {
		b = http1.AppendField(b, "Allow", "GET, HEAD")
	}
	b, fr := h.AppendEnd(b)
	if fr != http1.FrameNone {
		b = append(b, body...)
	}
	r.Conn.SetWriteDeadline(time.Now().Add(r.ClientTimeoutOrDefault()))
	n, err := r.Conn.Write(b)
	res.BytesOut, res.Err = int64(n), err
	if err != nil {
		res.Close = true
	}
	return res
}

// discardBody reads a request body to its end (at most maxStatusBody, all
// of it within the client's Timeout), so that the connection can carry
// the next request. A client waiting for 100 (Continue) before its body
// gets the answer at once and the connection closes after it, unread (RFC
// 9110 §10.1.1), as does one whose body is too large or too slow.
func discardBody(r *forward.Request, res *forward.Result) {
	var body http1.Body
	if r.Req.Expect100 || body.ResetRequest(r.BR, r.Req, maxStatusBody) != nil {
		res.Close = true
		return
	}
	r.Conn.SetReadDeadline(time.Now().Add(r.ClientTimeoutOrDefault()))
	n, err := io.Copy(io.Discard, &body)
	r.Conn.SetReadDeadline(time.Time{})
	res.BytesIn = n
	if err != nil {
		res.Close = true
	}
}

// formatJSON reports whether the query asks for format=json.
func formatJSON(q string) bool {
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		if http1.EqualFold(kv, "format=json") {
			return true
		}
	}
	return false
}
