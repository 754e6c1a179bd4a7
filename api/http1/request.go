package http1

import (
	"bufio"
	"bytes"
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

	buf []byte
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
	return parseRequest(head, lim, req)
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

// parseVersion accepts HTTP/1.0 and HTTP/1.1; any other well-formed
// HTTP/x.y is 505, anything else 400.
func parseVersion(v string) (int, error) {
	if len(v) != 8 || v[:5] != "HTTP/" || v[6] != '.' || !isDigit(v[5]) || !isDigit(v[7]) {
		return 0, errVersion
	}
	if v[5] != '1' {
		return 0, errVersionNot1
	}
	return int(v[7] - '0'), nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parseTarget checks the request-target and splits it into path and query.
func (r *Request) parseTarget() error {
	t := r.Target
	if t == "" {
		return errTarget
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; c <= ' ' || c == 0x7f || c == '#' {
			return errTarget
		}
	}
	switch {
	case t[0] == '/':
	case t == "*":
		if r.Method != "OPTIONS" {
			return errTarget
		}
		r.Path = "*"
		return nil
	case r.Method == "CONNECT":
		r.Host = t // authority-form
		return nil
	default:
		rest, ok := cutScheme(t)
		if !ok {
			return errTarget
		}
		slash := strings.IndexByte(rest, '/')
		if slash < 0 {
			r.Host, t = rest, "/"
		} else {
			r.Host, t = rest[:slash], rest[slash:]
		}
		if !validHost(r.Host) || strings.IndexByte(r.Host, '@') >= 0 {
			return errTarget
		}
	}
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

func cutScheme(t string) (string, bool) {
	for _, s := range [...]string{"http://", "https://"} {
		if len(t) >= len(s) && EqualFold(t[:len(s)], s) {
			return t[len(s):], true
		}
	}
	return "", false
}

// unescapePath percent-decodes p. A malformed escape or an encoded NUL is
// an error.
func unescapePath(p string) (string, bool) {
	n := strings.IndexByte(p, '%')
	if n < 0 {
		return p, true
	}
	b := make([]byte, 0, len(p))
	b = append(b, p[:n]...)
	for i := n; i < len(p); i++ {
		if p[i] != '%' {
			b = append(b, p[i])
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
		b = append(b, hi<<4|lo)
		i += 2
	}
	return string(b), true
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

// validHost checks a Host value: reg-name, IPv4 or [IPv6], optional port.
func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"<>\\^`{|}/?#", c) >= 0 {
			return false
		}
	}
	return true
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
			n, err := parseContentLength(f.Value)
			if err != nil {
				return err
			}
			if cl >= 0 && n != cl {
				return errDifferentCL
			}
			cl = n
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
	}
	r.ContentLength = cl
	if r.Upgrade && r.Minor == 0 {
		r.Upgrade = false
	}
	if r.Minor == 0 && !r.Close {
		r.Close = !HasToken(r.Header.Get("Connection"), "keep-alive")
	}
	return nil
}

// addTransferCoding records the codings of one Transfer-Encoding field.
// Only chunked is implemented; it must come last and only once.
func (r *Request) addTransferCoding(v string) error {
	var err error
	n := 0
	ForEachToken(v, func(tok string) {
		n++
		if err != nil {
			return
		}
		switch {
		case r.Chunked: // something after chunked
			err = errTENotChunked
		case EqualFold(tok, "chunked"):
			r.Chunked = true
		case IsToken(tok) || strings.IndexByte(tok, ';') > 0:
			err = errTEUnknown
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
		case EqualFold(tok, "upgrade"):
			r.Upgrade = r.Header.Has("Upgrade")
		}
	})
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

// parseDecimal parses a non-negative decimal of at most 18 digits.
func parseDecimal(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}
