package http1

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
)

// Limits bounds what a head reader accepts. The zero value means the defaults.
type Limits struct {
	MaxHeadBytes int // request line + fields + CRLFs; over it 431 (default 32 KiB)
	MaxFields    int // number of header fields; over it 431 (default 100)
	MaxURI       int // request target length; over it 414 (default 8 KiB)
}

const (
	DefaultMaxHeadBytes = 32 << 10
	DefaultMaxFields    = 100
	DefaultMaxURI       = 8 << 10
)

func (l *Limits) headBytes() int {
	if l == nil || l.MaxHeadBytes <= 0 {
		return DefaultMaxHeadBytes
	}
	return l.MaxHeadBytes
}

func (l *Limits) fields() int {
	if l == nil || l.MaxFields <= 0 {
		return DefaultMaxFields
	}
	return l.MaxFields
}

func (l *Limits) uri() int {
	if l == nil || l.MaxURI <= 0 {
		return DefaultMaxURI
	}
	return l.MaxURI
}

// ErrIncomplete means the peer closed the connection in the middle of a head.
var ErrIncomplete = errors.New("http1: connection closed in the middle of a message head")

// readHead reads one message head, up to and including its empty line, into
// buf (reused) and returns the lines as one string without the final CRLF.
// It returns io.EOF (or the read error) untouched when no byte of a message
// was read (empty lines before it do not count), so that callers can tell
// an idle close from a broken request.
func readHead(br *bufio.Reader, buf []byte, limit int, skipEmpty bool) (string, []byte, error) {
	buf = buf[:0]
	skipped := 0
	for {
		line, err := br.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			return "", buf, headReadError(err, len(buf)+len(line))
		}
		if len(buf)+len(line) > limit {
			return "", buf, errHeadTooLarge
		}
		if err == bufio.ErrBufferFull { // a line longer than the buffer: keep going
			buf = append(buf, line...)
			continue
		}
		isEmpty := len(line) <= 2 && (len(buf) == 0 || buf[len(buf)-1] == '\n')
		if isEmpty && len(buf) == 0 && skipEmpty && (len(line) == 1 || line[0] == '\r') {
			// RFC 9112 §2.2: empty lines (CRLF, or a bare LF) before a
			// request line are ignored; they count against the head limit.
			if skipped += len(line); skipped > limit {
				return "", buf, errRequestLine
			}
			continue
		}
		if isEmpty && (len(line) == 1 || line[0] != '\r') {
			return "", buf, errBareLF
		}
		buf = append(buf, line...)
		if isEmpty {
			return string(buf[:len(buf)-2]), buf, nil
		}
	}
}

func headReadError(err error, n int) error {
	if n == 0 {
		return err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &Error{408, "timed out reading the request head"}
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return ErrIncomplete
	}
	return err
}

// nextLine splits s at the first CRLF. A bare CR or LF inside the line is an
// error.
func nextLine(s string) (line, rest string, err error) {
	cr := strings.IndexByte(s, '\r')
	if cr < 0 {
		if strings.IndexByte(s, '\n') >= 0 {
			return "", "", errBareLF
		}
		return s, "", nil
	}
	if strings.IndexByte(s[:cr], '\n') >= 0 {
		return "", "", errBareLF
	}
	if cr+1 < len(s) && s[cr+1] == '\n' {
		return s[:cr], s[cr+2:], nil
	}
	return "", "", errBareCR
}

// parseFields parses the field lines of a head into h.
func parseFields(s string, h Header, max int) (Header, error) {
	for s != "" {
		var line string
		var err error
		if line, s, err = nextLine(s); err != nil {
			return h, err
		}
		if line == "" {
			return h, errFieldLine
		}
		if line[0] == ' ' || line[0] == '\t' {
			return h, errObsFold
		}
		f, err := parseField(line)
		if err != nil {
			return h, err
		}
		if len(h) >= max {
			return h, errTooManyFields
		}
		h = append(h, f)
	}
	return h, nil
}

func parseField(line string) (Field, error) {
	colon := -1
	for i := 0; i < len(line); i++ {
		if line[i] == ':' {
			colon = i
			break
		}
	}
	if colon <= 0 {
		return Field{}, errFieldLine
	}
	name := line[:colon]
	if c := name[len(name)-1]; c == ' ' || c == '\t' {
		return Field{}, errSpaceColon
	}
	if !IsToken(name) {
		return Field{}, errFieldName
	}
	value := trimOWS(line[colon+1:])
	if !validFieldValue(value) {
		return Field{}, errFieldValue
	}
	return Field{Name: name, Value: value}, nil
}
