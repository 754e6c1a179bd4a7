package http1

import (
	"bufio"
	"bytes"
	"net/netip"
	"strings"
)

// Request is a parsed request head. Reuse one per connection: ReadRequest
// resets it and keeps its buffers.
type Request struct {
	Method string // token, as sent
	Target string // request-target, as sent
	Path   string // percent-decoded path of the target, without the query
	Query  string // raw query, without '?'
	Minor  int    // 0 for HTTP/1.0, 1 for HTTP/1.1
	Header Header
	Host   string // from an absolute-form target, else the Host field

	// Framing, derived from the fields.
	ContentLength int64 // -1 when the request has no Content-Length
	Chunked       bool  // Transfer-Encoding: chunked
	Close         bool  // the connection ends after this request
	Expect100     bool  // Expect: 100-continue
	Upgrade       bool  // Connection: upgrade with an Upgrade field

	Raw string // the head as read, without its final empty line

	buf       []byte
	keepAlive bool // a Connection field named keep-alive
	unknownTE bool // a transfer coding other than chunked
}

// Proto returns "HTTP/1.0" or "HTTP/1.1".
func (r *Request) Proto() string {
	if r.Minor == 0 {
		return "HTTP/1.0"
	}
	return "HTTP/1.1"
}

// HasBody reports whether a body follows the head.
func (r *Request) HasBody() bool { return r.Chunked || r.ContentLength > 0 }

// ReadRequest reads and validates one request head from br into req.
//
// It returns the read error untouched (io.EOF, a timeout) when the peer sent
// no byte of a new request, so that an idle keep-alive connection can be
// closed silently; ErrIncomplete when the peer closed in the middle; and an
// *Error with the status to answer for anything malformed.
func ReadRequest(br *bufio.Reader, lim *Limits, req *Request) error {
	head, buf, err := readHead(br, req.buf, lim.headBytes(), true)
	req.buf = buf
	if err != nil {
		if err == errHeadTooLarge && bytes.IndexByte(buf, '\n') < 0 {
			return errURITooLong
		}
		return err
	}
	return parseRequest(string(head), lim, req) // a handler may keep its strings
}

// ParseRequest parses a complete request head (request line and fields,
// each ending in CRLF, without the final empty line) into req.
func ParseRequest(head string, lim *Limits, req *Request) error {
	return parseRequest(head, lim, req)
}

func parseRequest(head string, lim *Limits, req *Request) error {
	req.reset()
	req.Raw = head
	line, rest, err := nextLine(head)
	if err != nil {
		return err
	}
	if err := req.parseRequestLine(line, lim); err != nil {
		return err
	}
	if req.Header, err = parseFields(rest, req.Header, lim.fields()); err != nil {
		return err
	}
	return req.interpretFields()
}

func (r *Request) reset() {
	h := r.Header[:0]
	b := r.buf
	*r = Request{Header: h, buf: b, ContentLength: -1}
}

func (r *Request) parseRequestLine(line string, lim *Limits) error {
	sp1 := strings.IndexByte(line, ' ')
	if sp1 < 0 {
		return errRequestLine
	}
	sp2 := strings.LastIndexByte(line, ' ')
	if sp2 == sp1 {
		return errRequestLine
	}
	r.Method, r.Target = line[:sp1], line[sp1+1:sp2]
	if !IsToken(r.Method) {
		return errMethod
	}
	if len(r.Target) > lim.uri() {
		return errURITooLong
	}
	minor, err := parseVersion(line[sp2+1:])
	if err != nil {
		return err
	}
	r.Minor = minor
	return r.parseTarget()
}

// parseVersion accepts HTTP/1.x; any other well-formed HTTP/x.y is 505,
// anything else 400. A minor version above 1 is read as 1 (RFC 9110 §2.5:
// process the message as the highest minor version we implement).
func parseVersion(v string) (int, error) {
	if len(v) != 8 || v[:5] != "HTTP/" || v[6] != '.' || !isDigit(v[5]) || !isDigit(v[7]) {
		return 0, errVersion
	}
	if v[5] != '1' {
		return 0, errVersionNot1
	}
	if v[7] == '0' {
		return 0, nil
	}
	return 1, nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parseTarget checks the request-target and splits it into path and query.
// Only visible ASCII is allowed; a fragment ('#') is an error.
func (r *Request) parseTarget() error {
	t := r.Target
	if t == "" {
		return errTarget
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return errTarget
		}
	}
	switch {
	case r.Method == "CONNECT":
		return r.parseAuthorityForm(t)
	case t[0] == '/':
	case t == "*":
		if r.Method != "OPTIONS" {
			return errTarget
		}
		r.Path = "*"
		return nil
	default:
		var err error
		if t, err = r.parseAbsoluteForm(t); err != nil {
			return err
		}
	}
	return r.splitPath(t)
}

// parseAuthorityForm checks the host:port target of a CONNECT request.
func (r *Request) parseAuthorityForm(t string) error {
	colon := strings.LastIndexByte(t, ':')
	if colon <= 0 || !validHost(t) || !allDigits(t[colon+1:]) {
		return errTarget
	}
	r.Host = t
	return nil
}

// parseAbsoluteForm takes the authority out of an http(s) absolute-form
// target and returns what follows it: the path and query ("/" if empty).
func (r *Request) parseAbsoluteForm(t string) (string, error) {
	rest, ok := cutScheme(t)
	if !ok {
		return "", errTarget
	}
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	r.Host, rest = rest[:end], rest[end:]
	if r.Host == "" || !validHost(r.Host) {
		return "", errTarget
	}
	if rest == "" || rest[0] == '?' {
		rest = "/" + rest
	}
	return rest, nil
}

// splitPath splits an origin-form target into the decoded Path and Query.
func (r *Request) splitPath(t string) error {
	path := t
	if q := strings.IndexByte(t, '?'); q >= 0 {
		path, r.Query = t[:q], t[q+1:]
	}
	p, ok := unescapePath(path)
	if !ok {
		return errTarget
	}
	r.Path = p
	return nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func cutScheme(t string) (string, bool) {
	for _, s := range [...]string{"http://", "https://"} {
		if len(t) >= len(s) && EqualFold(t[:len(s)], s) {
			return t[len(s):], true
		}
	}
	return "", false
}

// unescapePath percent-decodes p. A malformed escape or an encoded NUL is
// an error. Decoding costs one allocation, none when p has no escape.
func unescapePath(p string) (string, bool) {
	n := strings.IndexByte(p, '%')
	if n < 0 {
		return p, true
	}
	var b strings.Builder
	b.Grow(len(p))
	b.WriteString(p[:n])
	for i := n; i < len(p); i++ {
		if p[i] != '%' {
			b.WriteByte(p[i])
			continue
		}
		if i+2 >= len(p) {
			return "", false
		}
		hi, ok1 := unhex(p[i+1])
		lo, ok2 := unhex(p[i+2])
		if !ok1 || !ok2 || hi == 0 && lo == 0 {
			return "", false
		}
		b.WriteByte(hi<<4 | lo)
		i += 2
	}
	return b.String(), true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// hostChars marks the bytes a Host value may hold: those of reg-name,
// IPv4address and IP-literal (RFC 3986 §3.2.2) and the port separator.
// Userinfo ('@') is not allowed.
var hostChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "-._~%!$&'()*+,;=:[]" {
		t[c] = true
	}
	return t
}()

// validHost checks a Host value or the authority of a target (RFC 3986
// §3.2.2): a reg-name or IPv4 address, or an IPv6 literal in brackets,
// then an optional ":" and decimal port. The empty value is valid (RFC 9110
// §7.2).
func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		if !hostChars[h[i]] {
			return false
		}
	}
	host, port, hasPort := h, "", false
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 || !validIPv6(h[1:end]) {
			return false
		}
		host, port = "", h[end+1:]
		if port != "" {
			if port[0] != ':' {
				return false
			}
			port, hasPort = port[1:], true
		}
	} else if i := strings.IndexByte(h, ':'); i >= 0 {
		host, port, hasPort = h[:i], h[i+1:], true
	}
	if strings.ContainsAny(host, "[]:") {
		return false
	}
	return !hasPort || port == "" || len(port) <= 5 && allDigits(port)
}

// validIPv6 checks the inside of an IP-literal: an IPv6 address without a
// zone (IPvFuture is not accepted).
func validIPv6(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is6() && a.Zone() == ""
}

// interpretFields derives Host and the framing from the header fields.
func (r *Request) interpretFields() error {
	var hosts, cls, tes int
	var cl int64 = -1
	for _, f := range r.Header {
		switch {
		case EqualFold(f.Name, "Host"):
			hosts++
			if !validHost(f.Value) {
				return errBadHost
			}
			if r.Host == "" {
				r.Host = f.Value
			}
		case EqualFold(f.Name, "Content-Length"):
			cls++
			var err error
			if cl, err = addContentLength(cl, f.Value); err != nil {
				return err
			}
		case EqualFold(f.Name, "Transfer-Encoding"):
			tes++
			if err := r.addTransferCoding(f.Value); err != nil {
				return err
			}
		case EqualFold(f.Name, "Connection"):
			r.connectionOptions(f.Value)
		case EqualFold(f.Name, "Expect"):
			if !EqualFold(f.Value, "100-continue") {
				return errExpectation
			}
			r.Expect100 = r.Minor == 1
		}
	}
	return r.checkFraming(hosts, cls, tes, cl)
}

func (r *Request) checkFraming(hosts, cls, tes int, cl int64) error {
	if hosts > 1 {
		return errManyHosts
	}
	if hosts == 0 && r.Minor == 1 {
		return errNoHost
	}
	if tes > 0 {
		if cls > 0 {
			return errCLAndTE
		}
		if r.Minor == 0 {
			return errTEHTTP10
		}
		if !r.Chunked {
			return errTENotChunked
		}
		if r.unknownTE {
			return errTEUnknown
		}
	}
	r.ContentLength = cl
	if r.Upgrade && r.Minor == 0 {
		r.Upgrade = false
	}
	if r.Minor == 0 && !r.keepAlive {
		r.Close = true
	}
	return nil
}

// addTransferCoding records the codings of one Transfer-Encoding field.
// Only chunked is implemented; it must come last and only once. A coding
// we do not know before it makes the request 501 (checked in checkFraming,
// after the 400 for a missing final chunked).
func (r *Request) addTransferCoding(v string) error {
	var err error
	n := 0
	ForEachToken(v, func(tok string) {
		n++
		switch {
		case err != nil:
		case r.Chunked: // something after chunked
			err = errTENotChunked
		case EqualFold(tok, "chunked"):
			r.Chunked = true
		case IsToken(tok) || strings.IndexByte(tok, ';') > 0:
			r.unknownTE = true
		default:
			err = errTENotChunked
		}
	})
	if n == 0 {
		return errTENotChunked
	}
	return err
}

func (r *Request) connectionOptions(v string) {
	ForEachToken(v, func(tok string) {
		switch {
		case EqualFold(tok, "close"):
			r.Close = true
		case EqualFold(tok, "keep-alive"):
			r.keepAlive = true
		case EqualFold(tok, "upgrade"):
			r.Upgrade = r.Header.Has("Upgrade")
		}
	})
}

// addContentLength merges a Content-Length field's value v into cl, the
// value of the message's fields before it (-1: none), which it must equal.
// Requests and responses share the rule.
func addContentLength(cl int64, v string) (int64, error) {
	n, err := parseContentLength(v)
	if err == nil && cl >= 0 && n != cl {
		err = errDifferentCL
	}
	return n, err
}

// parseContentLength accepts 1*DIGIT, or a comma-separated list of equal
// values (RFC 9110 §8.6).
func parseContentLength(v string) (int64, error) {
	var out int64 = -1
	var err error
	ForEachToken(v, func(tok string) {
		n, ok := parseDecimal(tok)
		if !ok {
			err = errBadCL
		} else if out >= 0 && n != out {
			err = errDifferentCL
		}
		out = n
	})
	if out < 0 && err == nil {
		err = errBadCL
	}
	return out, err
}

// parseDecimal parses a non-negative decimal of at most 18 digits after
// its leading zeros (1*DIGIT allows any number of them, as nginx does).
func parseDecimal(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	sig := 0 // digits from the first non-zero one
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		if sig > 0 || s[i] != '0' {
			if sig++; sig > 18 {
				return 0, false
			}
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}
