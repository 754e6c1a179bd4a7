package forward

import (
	"net/netip"
	"strings"

	"github.com/capuchin/capuchin/api/http1"
)

// hopByHop lists the fields that describe one connection, not the message
// (net/http/httputil's list but Trailer, which announces the trailer fields
// that the proxy forwards), removed in both directions. Fields named in
// Connection are removed as well.
var hopByHop = newFieldSet("Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Transfer-Encoding", "Upgrade")

// trailerManaged are fields never forwarded in a trailer section: framing,
// routing and the announcement itself (RFC 9110 §6.5.1).
var trailerManaged = newFieldSet("Content-Length", "Host", "Trailer")

// fieldSet is a set of field names, matched without regard to case. Its
// lens has bit n set when a name is n bytes long, so that most fields of
// a head are told apart from every name of the set by their length alone.
type fieldSet struct {
	names []string
	lens  uint64
}

func newFieldSet(names ...string) fieldSet {
	s := fieldSet{names: names}
	for _, n := range names {
		s.lens |= 1 << min(len(n), 63) // (a name of 63 bytes or more: checked by EqualFold)
	}
	return s
}

// has reports whether name is in s.
func (s fieldSet) has(name string) bool {
	if s.lens&(1<<min(len(name), 63)) == 0 {
		return false
	}
	for _, n := range s.names {
		if http1.EqualFold(name, n) {
			return true
		}
	}
	return false
}

// trailerFields returns the forwardable fields of a trailer section t,
// reusing buf.
func trailerFields(buf, t http1.Header) http1.Header {
	buf = buf[:0]
	skip := newHopFilter(t, trailerManaged)
	for _, f := range t {
		if !skip.field(f.Name) {
			buf = append(buf, f)
		}
	}
	return buf
}

// hopFilter tells which fields of a head h are not copied: hop-by-hop
// ones, those named in a Connection field of h, and those the proxy
// writes itself (managed).
type hopFilter struct {
	h       http1.Header
	conn    bool // h has a Connection field (looked for once, not per field)
	managed fieldSet
}

func newHopFilter(h http1.Header, managed fieldSet) hopFilter {
	return hopFilter{h: h, conn: h.Has("Connection"), managed: managed}
}

// field reports whether the field named name must not be copied.
func (f hopFilter) field(name string) bool {
	if hopByHop.has(name) || f.managed.has(name) {
		return true
	}
	if !f.conn {
		return false
	}
	for i := range f.h {
		if http1.EqualFold(f.h[i].Name, "Connection") && http1.HasToken(f.h[i].Value, name) {
			return true
		}
	}
	return false
}

var requestManaged = newFieldSet("Content-Length", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host")

// AppendRequestHead appends the head sent to the backend: origin-form
// target, HTTP/1.1, Host (an absolute-form target's authority, else the
// client's Host, else backend), end-to-end fields (without names holding '_' unless
// keepUnderscores), X-Forwarded-* (Proto https when secure: the client
// connection is TLS), Forwarded when fw is set (forwarded.go), and the
// body's framing.
//
// It is exported for scripts/floorproxy's featured loop, which measures
// what the proxy's per-request work costs without the SDK's structure.
// It is not inlined: its locals would stay in the frame of exchange,
// below which the request's deepest calls run (see AppendResponseHead).
//
//go:noinline
func AppendRequestHead(b []byte, req *http1.Request, client netip.AddrPort, secure bool, backend string,
	keepUnderscores bool, fw *Forwarded) []byte {
	b = append(b, req.Method...)
	b = append(b, ' ')
	b = append(b, originForm(req.Target)...)
	b = append(b, " HTTP/1.1\r\n"...)
	xff, fwd, hasHost := "", "", false
	skip := newHopFilter(req.Header, requestManaged)
	for _, f := range req.Header {
		switch {
		case http1.EqualFold(f.Name, "X-Forwarded-For"):
			xff = joinList(xff, f.Value)
		case fw != nil && http1.EqualFold(f.Name, "Forwarded"):
			if fw.trusts(client.Addr()) {
				fwd = joinList(fwd, f.Value)
			}
		case skip.field(f.Name):
		case !keepUnderscores && strings.IndexByte(f.Name, '_') >= 0:
		case !hasHost && http1.EqualFold(f.Name, "Host"):
			// req.Host: an absolute-form target's authority, which the
			// client's Host must not override (RFC 9112 §3.2.2), and
			// which chose the site
			hasHost = true
			b = http1.AppendField(b, "Host", hostOr(req.Host, f.Value))
		default:
			b = http1.AppendField(b, f.Name, f.Value)
		}
	}
	if !hasHost {
		b = http1.AppendField(b, "Host", hostOr(req.Host, backend))
	}
	b = appendXForwarded(b, xff, client.Addr(), req.Host, secure)
	if fw != nil {
		b = fw.appendField(b, fwd, client.Addr(), req.Host, secure)
	}
	switch {
	case req.Chunked:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	case req.ContentLength >= 0:
		b = http1.AppendFieldInt(b, "Content-Length", req.ContentLength)
	case req.Method == "POST" || req.Method == "PUT" || req.Method == "PATCH":
		// No framing means an empty body (RFC 9112 §6.3); say so to a
		// backend that would want a length for these (RFC 9110 §8.6).
		b = append(b, "Content-Length: 0\r\n"...)
	}
	if forwardsUpgrade(req) {
		b = append(b, "Connection: Upgrade\r\n"...)
		b = http1.AppendField(b, "Upgrade", req.Header.Get("Upgrade"))
	}
	return append(b, "\r\n"...)
}

// appendXForwarded appends X-Forwarded-For (the incoming list xff, then
// client), X-Forwarded-Proto and X-Forwarded-Host (when the request has a
// Host).
func appendXForwarded(b []byte, xff string, client netip.Addr, host string, secure bool) []byte {
	b = append(b, "X-Forwarded-For: "...)
	if xff != "" {
		b = append(b, xff...)
		b = append(b, ", "...)
	}
	b = client.Unmap().AppendTo(b)
	if secure {
		b = append(b, "\r\nX-Forwarded-Proto: https\r\n"...)
	} else {
		b = append(b, "\r\nX-Forwarded-Proto: http\r\n"...)
	}
	if host != "" {
		b = http1.AppendField(b, "X-Forwarded-Host", host)
	}
	return b
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

var responseManaged = newFieldSet("Content-Length")

// AppendResponseHead appends the head of a backend's answer as sent to
// the client, through http1.ResponseHead: the backend's status, reason and
// end-to-end fields; Date and Server when the backend sent none (RFC 9110
// §6.6.1: a proxy adds Date); the framing for this client (h.Length,
// h.Minor) and Connection (h.Close). It returns the body's framing; a
// close-delimited body sets h.Close. extra holds whole fields the proxy
// adds (a sticky Set-Cookie). Exported as AppendRequestHead is.
//
// It is not inlined: in relay's frame its locals would sit above the
// body's copy and the writes to the client, the deepest calls of a
// request, whose stack then spans more cache lines (a keep-alive
// connection's goroutine stack is cold when its next request comes).
//
//go:noinline
func AppendResponseHead(b []byte, resp *http1.Response, h *http1.ResponseHead, extra []byte) ([]byte, http1.Framing) {
	h.Status, h.Reason, h.Length = resp.Status, resp.Reason, resp.ContentLength
	if resp.Header.Has("Date") {
		h.Date = ""
	}
	if resp.Header.Has("Server") {
		h.Server = ""
	}
	if resp.Status == 101 {
		h.Upgrade = resp.Header.Get("Upgrade")
	}
	b = h.AppendStart(b)
	chunked := h.Framing() == http1.FrameChunked
	skip := newHopFilter(resp.Header, responseManaged)
	for _, f := range resp.Header {
		switch {
		case skip.field(f.Name):
		case !chunked && http1.EqualFold(f.Name, "Trailer"): // no trailer follows
		default:
			b = http1.AppendField(b, f.Name, f.Value)
		}
	}
	b = append(b, extra...)
	return h.AppendEnd(b)
}
