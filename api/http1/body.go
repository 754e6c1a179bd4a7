package http1

import (
	"bufio"
	"errors"
	"io"
	"net"
)

// Body reads one message body from a buffered connection, exactly to the end
// of its framing and never past it, so that the next pipelined message stays
// in the buffer. Reuse one per connection with Reset.
type Body struct {
	br      *bufio.Reader
	mode    bodyMode
	left    int64 // bytes left in the body (length mode) or the current chunk
	limit   int64 // largest body accepted; 0 means no limit
	total   int64 // bytes of body data delivered so far
	err     error // sticky
	trailer Header
}

type bodyMode uint8

const (
	modeNone bodyMode = iota
	modeLength
	modeChunked
	modeEOF // close-delimited (responses only)
)

// maxTrailerBytes bounds the trailer section of a chunked body, and
// maxChunkLine a chunk-size line with its extensions.
const (
	maxTrailerBytes = 8 << 10
	maxChunkLine    = 1 << 10
)

// ResetRequest prepares b to read the body of req. limit caps the body size
// (0: no cap); a Content-Length over the limit fails at once.
func (b *Body) ResetRequest(br *bufio.Reader, req *Request, limit int64) error {
	*b = Body{br: br, limit: limit, trailer: b.trailer[:0]}
	switch {
	case req.Chunked:
		b.mode = modeChunked
	case req.ContentLength > 0:
		if limit > 0 && req.ContentLength > limit {
			b.err = errBodyTooLarge
			return errBodyTooLarge
		}
		b.mode, b.left = modeLength, req.ContentLength
	}
	return nil
}

// ResetResponse prepares b to read the body of resp, an answer to a request
// with method reqMethod. It also sets resp.Close for that method: a response
// without a body (HEAD, 1xx, 204, 304, CONNECT 2xx) is not close-delimited.
func (b *Body) ResetResponse(br *bufio.Reader, resp *Response, reqMethod string) {
	*b = Body{br: br, trailer: b.trailer[:0]}
	switch {
	case !resp.BodyAllowed(reqMethod):
	case resp.Chunked:
		b.mode = modeChunked
	case resp.ContentLength >= 0:
		b.mode, b.left = modeLength, resp.ContentLength
	default:
		b.mode = modeEOF
	}
	resp.Close = resp.connClose || b.mode == modeEOF
}

// Release forgets the reader b reads from (b reads nothing until its
// next Reset), keeping its trailer buffer: a pooled Body then keeps no
// connection's buffer alive.
func (b *Body) Release() { *b = Body{trailer: b.trailer[:0]} }

// Chunked reports whether the body is chunk-encoded on the wire.
func (b *Body) Chunked() bool { return b.mode == modeChunked }

// Trailer returns the trailer fields of a chunked body, once it is read.
func (b *Body) Trailer() Header { return b.trailer }

// Total returns the body bytes delivered so far.
func (b *Body) Total() int64 { return b.total }

// Done reports whether the body has been read to its end.
func (b *Body) Done() bool { return b.err == io.EOF || b.mode == modeNone }

// Direct reports how many bytes of a Content-Length body remain when none
// of them is buffered (0 otherwise, and for other framings), so that a
// caller may move them straight off the connection (splice(2) between
// sockets) and report them with Moved.
func (b *Body) Direct() int64 {
	if b.mode != modeLength || b.err != nil || b.br.Buffered() > 0 {
		return 0
	}
	return b.left
}

// Moved records n body bytes that the caller moved straight off the
// connection after Direct, and the error that stopped the move early (nil
// when it stopped because the peer closed, or when n was all it asked for).
func (b *Body) Moved(n int64, short bool, err error) {
	b.left -= n
	b.total += n
	switch {
	case b.left <= 0:
		b.left, b.err = 0, io.EOF
	case err != nil:
		b.err = unexpected(err)
	case short:
		b.err = io.ErrUnexpectedEOF
	}
}

// ReadBuffered returns the next bytes of a Content-Length body that are
// already buffered (up to what remains of it), as consumed, without
// copying them: they stay valid until the next read of the connection.
// It returns nil when none is buffered, after an error, and for the other
// framings (use Read).
func (b *Body) ReadBuffered() []byte {
	if b.mode != modeLength || b.err != nil || b.br.Buffered() == 0 {
		return nil
	}
	n := int(min(int64(b.br.Buffered()), b.left))
	p, _ := b.br.Peek(n)
	b.br.Discard(n)
	b.Moved(int64(n), false, nil)
	if b.limit > 0 && b.total > b.limit {
		b.err = errBodyTooLarge
		return nil
	}
	return p
}

// Read reads body data. It returns io.EOF at the end of the framing,
// io.ErrUnexpectedEOF when the peer closes early, an *Error for bad chunk
// framing, and ErrBodyTooLarge past the limit.
func (b *Body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	var n int
	switch b.mode {
	case modeNone:
		b.err = io.EOF
	case modeLength:
		n = b.readLength(p)
	case modeChunked:
		n = b.readChunked(p)
	case modeEOF:
		n, b.err = b.br.Read(p)
	}
	b.total += int64(n)
	if b.limit > 0 && b.total > b.limit {
		b.err = errBodyTooLarge
		return 0, b.err
	}
	if n > 0 && b.err == io.EOF {
		return n, nil // deliver the data; EOF comes with the next call
	}
	return n, b.err
}

func (b *Body) readLength(p []byte) int {
	if b.left == 0 {
		b.err = io.EOF
		return 0
	}
	n, err := b.readLeft(p)
	if err != nil {
		b.err = unexpected(err)
	} else if b.left == 0 {
		b.err = io.EOF
	}
	return n
}

// readLeft reads into p at most the b.left bytes left of the body or of
// its chunk, and counts them off.
func (b *Body) readLeft(p []byte) (n int, err error) {
	n, err = b.br.Read(p[:min(int64(len(p)), b.left)])
	b.left -= int64(n)
	return n, err
}

func (b *Body) readChunked(p []byte) int {
	if b.left == 0 {
		if b.err = b.nextChunk(); b.err != nil {
			return 0
		}
	}
	n, err := b.readLeft(p)
	if err != nil {
		b.err = unexpected(err)
		return n
	}
	if b.left == 0 {
		b.err = b.chunkEnd()
	}
	return n
}

// nextChunk reads a chunk-size line; after the last chunk it reads the
// trailer and returns io.EOF.
func (b *Body) nextChunk() error {
	line, err := b.readLine(maxChunkLine, errChunkSize)
	if err != nil {
		return err
	}
	size, err := parseChunkSize(line)
	if err != nil {
		return err
	}
	if size == 0 {
		return b.readTrailer()
	}
	if b.limit > 0 && size > b.limit-b.total {
		return errBodyTooLarge
	}
	b.left = size
	return nil
}

func (b *Body) chunkEnd() error {
	crlf, err := b.br.Peek(2) // (not io.ReadFull into an array, which escapes)
	if err != nil {
		return unexpected(err)
	}
	if crlf[0] != '\r' || crlf[1] != '\n' {
		return errChunkEnd
	}
	b.br.Discard(2)
	return nil
}

func (b *Body) readTrailer() error {
	var used int
	for {
		line, err := b.readLine(maxTrailerBytes, errTrailer)
		if err != nil {
			return err
		}
		if line == "" {
			return io.EOF
		}
		if used += len(line); used > maxTrailerBytes || line[0] == ' ' || line[0] == '\t' {
			return errTrailer
		}
		f, err := parseField(line)
		if err != nil {
			return errTrailer
		}
		b.trailer = append(b.trailer, f)
	}
}

// readLine reads one CRLF-terminated line of at most max bytes; tooLong is
// the error for a longer one.
func (b *Body) readLine(max int, tooLong error) (string, error) {
	line, err := b.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull || len(line) > max+2 {
		return "", tooLong
	}
	if err != nil {
		return "", unexpected(err)
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return "", errBareLF
	}
	s := string(line[:len(line)-2])
	for i := 0; i < len(s); i++ {
		if s[i] == '\r' {
			return "", errBareCR
		}
	}
	return s, nil
}

// parseChunkSize parses "1*HEXDIG [ chunk-ext ]", at most 15 digits after
// the leading zeros.
func parseChunkSize(line string) (int64, error) {
	var n int64
	i, sig := 0, 0 // sig: digits from the first non-zero one, at most 15
	for ; i < len(line); i++ {
		d, ok := unhex(line[i])
		if !ok {
			break
		}
		if sig > 0 || d != 0 {
			if sig++; sig > 15 {
				return 0, errChunkSize
			}
		}
		n = n<<4 | int64(d)
	}
	if i == 0 {
		return 0, errChunkSize
	}
	if i < len(line) && line[i] != ';' && line[i] != ' ' && line[i] != '\t' {
		return 0, errChunkSize
	}
	if err := checkChunkExt(line[i:]); err != nil {
		return 0, err
	}
	return n, nil
}

// checkChunkExt accepts *( BWS ";" BWS name [ BWS "=" BWS value ] ), names
// being tokens and values tokens or quoted strings (RFC 9112 §7.1.1).
// Whitespace not followed by ";" is an error, as are control bytes.
func checkChunkExt(ext string) error {
	for ext != "" {
		ext = trimOWS(ext)
		if ext == "" || ext[0] != ';' {
			return errChunkExt
		}
		ext = trimLeftOWS(ext[1:])
		n := tokenLen(ext)
		if n == 0 {
			return errChunkExt
		}
		ext = ext[n:]
		if rest := trimLeftOWS(ext); rest != "" && rest[0] == '=' {
			var ok bool
			if ext, ok = cutExtValue(trimLeftOWS(rest[1:])); !ok {
				return errChunkExt
			}
		}
	}
	return nil
}

// cutExtValue removes a token or a quoted string from the front of s.
func cutExtValue(s string) (string, bool) {
	if s == "" || s[0] != '"' {
		n := tokenLen(s)
		return s[n:], n > 0
	}
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return s[i+1:], true
		case c == '\\':
			if i++; i == len(s) || !qdtextOrVisible(s[i]) {
				return "", false
			}
		case !qdtextOrVisible(c):
			return "", false
		}
	}
	return "", false
}

// qdtextOrVisible reports whether c may stand in a quoted string: HTAB, SP,
// visible ASCII and obs-text.
func qdtextOrVisible(c byte) bool { return c == '\t' || c >= ' ' && c != 0x7f }

func tokenLen(s string) int {
	i := 0
	for i < len(s) && tokenChars[s[i]] {
		i++
	}
	return i
}

func trimLeftOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	return s
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &Error{408, "timed out reading the request body"}
	}
	return err
}
