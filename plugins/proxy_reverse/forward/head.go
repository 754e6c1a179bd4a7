package forward

import (
	"bufio"
	"net/netip"
	"strconv"
	"strings"

	"github.com/capuchin/capuchin/api/http1"
)

// hopByHop lists the fields that describe one connection, not the message
// (net/http/httputil's list), removed in both directions. Fields named in
// Connection are removed as well.
var hopByHop = [...]string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// skipField reports whether name must not be copied: hop-by-hop, named in a
// Connection field of h, or one the proxy writes itself (managed).
func skipField(h http1.Header, name string, managed []string) bool {
	for _, n := range hopByHop {
		if http1.EqualFold(name, n) {
			return true
		}
	}
	for _, n := range managed {
		if http1.EqualFold(name, n) {
			return true
		}
	}
	for i := range h {
		if http1.EqualFold(h[i].Name, "Connection") && http1.HasToken(h[i].Value, name) {
			return true
		}
	}
	return false
}

var requestManaged = []string{"Content-Length", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"}

// writeRequestHead writes the head sent to the backend: origin-form target,
// HTTP/1.1, end-to-end fields, X-Forwarded-*, and the body's framing.
func writeRequestHead(w *bufio.Writer, req *http1.Request, client netip.AddrPort, secure bool, backend string) {
	w.WriteString(req.Method)
	w.WriteByte(' ')
	w.WriteString(originForm(req.Target))
	w.WriteString(" HTTP/1.1\r\n")
	xff, hasHost := "", false
	for _, f := range req.Header {
		switch {
		case http1.EqualFold(f.Name, "X-Forwarded-For"):
			xff = joinList(xff, f.Value)
		case skipField(req.Header, f.Name, requestManaged):
		default:
			hasHost = hasHost || http1.EqualFold(f.Name, "Host")
			writeField(w, f.Name, f.Value)
		}
	}
	if !hasHost {
		writeField(w, "Host", hostOr(req.Host, backend))
	}
	w.WriteString("X-Forwarded-For: ")
	if xff != "" {
		w.WriteString(xff)
		w.WriteString(", ")
	}
	var ip [64]byte
	w.Write(client.Addr().Unmap().AppendTo(ip[:0]))
	if secure {
		w.WriteString("\r\nX-Forwarded-Proto: https\r\n")
	} else {
		w.WriteString("\r\nX-Forwarded-Proto: http\r\n")
	}
	if req.Host != "" {
		writeField(w, "X-Forwarded-Host", req.Host)
	}
	switch {
	case req.Chunked:
		w.WriteString("Transfer-Encoding: chunked\r\n")
	case req.ContentLength >= 0:
		writeInt(w, "Content-Length", req.ContentLength)
	}
	if req.Upgrade {
		w.WriteString("Connection: Upgrade\r\n")
		writeField(w, "Upgrade", req.Header.Get("Upgrade"))
	}
	w.WriteString("\r\n")
}

func hostOr(h, def string) string {
	if h != "" {
		return h
	}
	return def
}

func joinList(a, b string) string {
	if a == "" {
		return b
	}
	return a + ", " + b
}

// originForm turns an absolute-form target into origin-form.
func originForm(t string) string {
	if t == "" || t[0] == '/' || t == "*" {
		return t
	}
	i := strings.Index(t, "://")
	if i < 0 {
		return t
	}
	rest := t[i+3:]
	if j := strings.IndexAny(rest, "/?"); j >= 0 {
		if rest[j] == '?' {
			return "/" + rest[j:]
		}
		return rest[j:]
	}
	return "/"
}

func writeField(w *bufio.Writer, name, value string) {
	w.WriteString(name)
	w.WriteString(": ")
	w.WriteString(value)
	w.WriteString("\r\n")
}

func writeInt(w *bufio.Writer, name string, n int64) {
	var b [20]byte
	w.WriteString(name)
	w.WriteString(": ")
	w.Write(strconv.AppendInt(b[:0], n, 10))
	w.WriteString("\r\n")
}

// framing is how the response body goes to the client.
type framing uint8

const (
	frameNone    framing = iota // no body (HEAD, 1xx, 204, 304)
	frameLength                 // Content-Length, copied as is
	frameChunked                // re-chunked for an HTTP/1.1 client
	frameClose                  // close-delimited, for an HTTP/1.0 client
)

func chooseFraming(resp *http1.Response, req *http1.Request) framing {
	switch {
	case !resp.BodyAllowed(req.Method):
		return frameNone
	case !resp.Chunked && resp.ContentLength >= 0:
		return frameLength
	case req.Minor == 1:
		return frameChunked
	}
	return frameClose
}

var responseManaged = []string{"Content-Length"}

// writeResponseHead writes the head sent to the client. closing adds
// Connection: close; an HTTP/1.0 client kept alive gets Connection: keep-alive.
func writeResponseHead(w *bufio.Writer, resp *http1.Response, req *http1.Request, fr framing, closing bool) {
	var b [8]byte
	w.WriteString("HTTP/1.1 ")
	w.Write(strconv.AppendInt(b[:0], int64(resp.Status), 10))
	w.WriteByte(' ')
	if resp.Reason != "" {
		w.WriteString(resp.Reason)
	} else {
		w.WriteString(http1.StatusText(resp.Status))
	}
	w.WriteString("\r\n")
	for _, f := range resp.Header {
		if !skipField(resp.Header, f.Name, responseManaged) {
			writeField(w, f.Name, f.Value)
		}
	}
	switch fr {
	case frameNone:
		if cl := resp.Header.Get("Content-Length"); cl != "" && resp.Status >= 200 && resp.Status != 204 {
			writeField(w, "Content-Length", cl) // HEAD and 304 describe the GET's body
		}
	case frameLength:
		writeInt(w, "Content-Length", resp.ContentLength)
	case frameChunked:
		w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	switch {
	case resp.Status == 101:
		w.WriteString("Connection: Upgrade\r\n")
		writeField(w, "Upgrade", resp.Header.Get("Upgrade"))
	case resp.Status < 200:
	case closing:
		w.WriteString("Connection: close\r\n")
	case req.Minor == 0:
		w.WriteString("Connection: keep-alive\r\n")
	}
	w.WriteString("\r\n")
}
