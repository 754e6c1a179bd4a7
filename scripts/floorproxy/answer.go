package main

import (
	"bufio"
	"bytes"

	"github.com/capuchin/capuchin/api/http1"
)

// answerHead is what is known of a backend's answer being read into a
// buffer: its head's length once the head is whole (hl, 0 before) and its
// Content-Length (cl). The head is parsed with the project's reader.
type answerHead struct {
	hl, cl int
	rd     bytes.Reader
	br     *bufio.Reader
	resp   http1.Response
}

// parse parses the head at the start of b once it is whole; false for an
// answer the floor cannot relay (malformed, or without Content-Length).
func (a *answerHead) parse(b []byte) bool {
	if a.hl > 0 {
		return true
	}
	_, end, err := http1.HeadEnd(b)
	if err != nil || end < 0 {
		return err == nil
	}
	a.rd.Reset(b[:end])
	if a.br == nil {
		a.br = bufio.NewReaderSize(&a.rd, 4096)
	} else {
		a.br.Reset(&a.rd)
	}
	r := &a.resp
	if http1.ReadResponse(a.br, nil, r) != nil || r.ContentLength < 0 || r.Chunked || r.Close {
		return false
	}
	a.hl, a.cl = end, int(r.ContentLength)
	return true
}

// size is the whole answer's length once its head is parsed (0 before).
func (a *answerHead) size() int { return a.hl + a.cl }

// whole reports whether n bytes read hold the whole answer.
func (a *answerHead) whole(n int) bool { return a.hl > 0 && n >= a.size() }

// reset readies a for the next answer.
func (a *answerHead) reset() { a.hl, a.cl = 0, 0 }
