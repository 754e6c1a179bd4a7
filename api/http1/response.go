package http1

import (
	"bufio"
	"unsafe"
)

// Response is a parsed response head, as a proxy reads it from a backend.
type Response struct {
	Minor         int
	Status        int
	Reason        string
	Header        Header
	ContentLength int64 // -1 when absent
	Chunked       bool
	Close         bool // the backend closes the connection after this response
	Raw           string

	buf       []byte
	connClose bool // Close for a reason other than a close-delimited body
}

// BodyAllowed reports whether a body follows this response to a request
// with method reqMethod (RFC 9112 §6.3).
func (r *Response) BodyAllowed(reqMethod string) bool {
	switch {
	case reqMethod == "HEAD", r.Status < 200, r.Status == 204, r.Status == 304:
		return false
	case reqMethod == "CONNECT" && r.Status < 300:
		return false
	}
	return true
}

// ReadResponse reads one response head from br into resp. Malformed heads are
// *Error values with status 502 (a bad gateway answer).
//
// Like ReadRequest it skips a few empty lines before the status line, and
// returns the read error untouched when no byte arrived, ErrIncomplete when
// the peer closed in the middle of the head and a 408 *Error on a timeout.
// resp.Close assumes a body is allowed; Body.ResetResponse corrects it for
// the request method.
//
// The head is copied into memory resp owns and reuses, and resp's strings
// (Reason, Header, Raw) refer to it: they hold until the next ReadResponse
// into resp, and a caller that keeps one longer copies it (strings.Clone).
// A response read so costs no allocation (a proxy reads one per request).
func ReadResponse(br *bufio.Reader, lim *Limits, resp *Response) error {
	head, buf, err := readHead(br, resp.buf, lim.headBytes(), true)
	if err == nil {
		buf = append(buf[:0], head...) // (head may be in buf: copy moves it to the front)
		err = parseResponse(unsafe.String(unsafe.SliceData(buf), len(buf)), lim, resp)
	}
	resp.buf = buf
	return badGateway(err)
}

// ParseResponse parses a complete response head (status line and fields,
// each ending in CRLF, without the final empty line) into resp, as
// ReadResponse does a head it reads; resp's strings point into head.
func ParseResponse(head string, lim *Limits, resp *Response) error {
	return badGateway(parseResponse(head, lim, resp))
}

// badGateway words a malformed response head's error as a 502 (a timeout's
// 408 and read errors pass as they are).
func badGateway(err error) error {
	if e, ok := err.(*Error); ok && e.Status != 408 {
		return &Error{502, e.Reason}
	}
	return err
}

func parseResponse(head string, lim *Limits, r *Response) error {
	h, b := r.Header[:0], r.buf
	*r = Response{Header: h, buf: b, ContentLength: -1, Raw: head}
	line, rest, err := nextLine(head)
	if err != nil {
		return err
	}
	if err := r.parseStatusLine(line); err != nil {
		return err
	}
	if r.Header, err = parseFields(rest, r.Header, lim.fields()); err != nil {
		return err
	}
	return r.interpretFields()
}

// parseStatusLine parses "HTTP/1.x SP 3DIGIT SP [reason]".
func (r *Response) parseStatusLine(line string) error {
	if len(line) < 12 || line[8] != ' ' || line[12:] != "" && line[12] != ' ' {
		return errStatusLine
	}
	minor, err := parseVersion(line[:8])
	if err != nil {
		return errStatusLine
	}
	code := line[9:12]
	if !isDigit(code[0]) || !isDigit(code[1]) || !isDigit(code[2]) || code[0] == '0' {
		return errStatusLine
	}
	r.Minor = minor
	r.Status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	if len(line) > 12 {
		r.Reason = line[13:]
	}
	if !validFieldValue(r.Reason) {
		return errStatusLine
	}
	return nil
}

func (r *Response) interpretFields() error {
	var cl int64 = -1
	tes, keepAlive, badTE := 0, false, false
	for _, f := range r.Header {
		switch {
		case EqualFold(f.Name, "Content-Length"):
			var err error
			if cl, err = addContentLength(cl, f.Value); err != nil {
				return err
			}
		case EqualFold(f.Name, "Transfer-Encoding"):
			tes++
			badTE = badTE || r.addTransferCoding(f.Value)
		case EqualFold(f.Name, "Connection"):
			r.connClose = r.connClose || HasToken(f.Value, "close")
			keepAlive = keepAlive || HasToken(f.Value, "keep-alive")
		}
	}
	switch {
	case tes == 0:
		r.ContentLength = cl
	case cl >= 0:
		// TE would override CL, but the message is a smuggling or response
		// splitting attempt or a broken backend (RFC 9112 §6.3): 502.
		return errCLAndTE
	case badTE || !r.Chunked:
		return errTEResponse
	case r.Minor == 0:
		// The framing of an HTTP/1.0 message with Transfer-Encoding is
		// faulty (RFC 9112 §6.1); net/http ignores the field, llhttp
		// honours it: refuse rather than pick one.
		return errTEHTTP10
	}
	if r.Minor == 0 && !keepAlive {
		r.connClose = true
	}
	r.Close = r.connClose || r.BodyAllowed("GET") && !r.Chunked && r.ContentLength < 0
	return nil
}

// addTransferCoding records the codings of one Transfer-Encoding field and
// reports whether it holds anything but a single chunked. A proxy cannot
// pass another coding on (Transfer-Encoding is hop-by-hop, and the answer
// goes out re-chunked), so, like nginx, it refuses it rather than hand the
// client a body still coded in a way nothing tells it about.
func (r *Response) addTransferCoding(v string) (bad bool) {
	ForEachToken(v, func(tok string) {
		bad = bad || r.Chunked || !EqualFold(tok, "chunked")
		r.Chunked = true
	})
	return bad
}
