package http1

import (
	"bufio"
	"bytes"
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
	maxLeadingEmpty     = 64 // empty lines skipped before a request line
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

// readHead reads one message head, up to and including its empty line, and
// returns the lines without the final CRLF; HeadEnd says where the head
// starts and ends. The lines are in br's buffer, until br's next read, or
// in buf (reused, returned), which holds a head that was not buffered
// whole. It returns io.EOF (or the read error) untouched when no byte of a
// message was read (empty lines before it do not count), so that callers
// can tell an idle close from a broken request.
func readHead(br *bufio.Reader, buf []byte, limit int, skipEmpty bool) ([]byte, []byte, error) {
	if b, _ := br.Peek(br.Buffered()); len(b) > 0 {
		start, end, err := HeadEnd(b)
		switch {
		case err != nil:
			return nil, buf, err
		case end >= 0 && !skipEmpty && start > 0:
			return nil, buf, errRequestLine
		case end-start > limit: // buf gets what the limit covers: 414 or 431
			return nil, append(buf[:0], b[start:start+limit]...), errHeadTooLarge
		case end >= 0: // the common case: the whole head is buffered
			br.Discard(end) // (which leaves the bytes where they are)
			return b[start : end-2], buf, nil
		}
	}
	return readHeadLines(br, buf[:0], limit, skipEmpty)
}

// readHeadLines reads a head line by line into buf, for heads that arrive
// in pieces or outgrow the reader's buffer.
func readHeadLines(br *bufio.Reader, buf []byte, limit int, skipEmpty bool) ([]byte, []byte, error) {
	start := 0 // where the start line begins in buf, past empty lines
	for {
		line, err := br.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			return nil, buf, headReadError(err, len(buf)+len(line)-start)
		}
		if len(buf)+len(line)-start > limit {
			return nil, buf, errHeadTooLarge
		}
		buf = append(buf, line...)
		if err != nil || len(line) > 2 {
			continue // only a short line can be an empty one
		}
		var end int
		if start, end, err = HeadEnd(buf); err != nil {
			return nil, buf, err
		}
		if end >= 0 {
			if !skipEmpty && start > 0 {
				return nil, buf, errRequestLine
			}
			return buf[start : end-2], buf, nil
		}
	}
}

// HeadEnd finds the message head at the start of b as the head readers
// read it (RFC 9112 §2.2): up to 64 empty lines (CRLF, or a bare LF) before
// the start line are skipped, and the head ends with the first empty line
// after it.
// It returns where the start line begins and the offset just past the
// head's empty line, or end -1 when b does not hold a whole head yet. err
// is the error the readers give for what b holds: a short line ended by a
// bare LF, or too many empty lines before the start line.
func HeadEnd(b []byte) (start, end int, err error) {
	pos, skipped := 0, 0
	for {
		i := bytes.IndexByte(b[pos:], '\n')
		if i < 0 {
			return start, -1, nil
		}
		next := pos + i + 1
		switch {
		case i > 1:
		case pos == start && (i == 0 || b[pos] == '\r'): // an empty line before the start line
			if skipped++; skipped > maxLeadingEmpty {
				return start, -1, errRequestLine
			}
			start = next
		case i == 0 || b[pos] != '\r':
			return start, -1, errBareLF
		default: // the empty line that ends the head
			return start, next, nil
		}
		pos = next
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
