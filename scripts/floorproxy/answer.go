package main

import (
	"errors"
	"syscall"
	"unsafe"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/rawsock"
)

// reqCheck parses request heads to refuse those with a body, reusing its
// request: a check allocates nothing.
type reqCheck struct{ req http1.Request }

var errBody = errors.New("a request with a body")

// noBody refuses a request head (up to its empty line) that is malformed
// or announces a body. The parsed strings point into head and are not
// kept past the call.
func (q *reqCheck) noBody(head []byte) error {
	h := head[:len(head)-2]
	if err := http1.ParseRequest(unsafe.String(unsafe.SliceData(h), len(h)), nil, &q.req); err != nil {
		return err
	}
	if q.req.HasBody() {
		return errBody
	}
	return nil
}

// answerHead is what is known of a backend's answer being read into a
// buffer: its head's length once the head is whole (hl, 0 before) and its
// Content-Length (cl). The head is parsed with the project's parser, in
// place: resp's strings point into the buffer and are not kept.
type answerHead struct {
	hl, cl int
	resp   http1.Response
}

// parse parses the head at the start of b once it is whole; false for an
// answer the floor cannot relay (malformed, or without Content-Length).
func (a *answerHead) parse(b []byte) bool {
	if a.hl > 0 {
		return true
	}
	start, end, err := http1.HeadEnd(b)
	if err != nil || end < 0 {
		return err == nil
	}
	h, r := b[start:end-2], &a.resp
	if http1.ParseResponse(unsafe.String(unsafe.SliceData(h), len(h)), nil, r) != nil || r.ContentLength < 0 || r.Chunked || r.Close {
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

// inbuf is a socket's input buffer: buf[:n] holds the bytes read.
type inbuf struct {
	buf []byte
	n   int
}

// full reports whether buf has no room left.
func (b *inbuf) full() bool { return b.n == len(b.buf) }

// read reads what fd holds into buf's free space, first growing buf to
// want bytes when it is smaller: the bytes read (0 at EOF) or the errno
// (EAGAIN: nothing there yet). buf must not be full.
func (b *inbuf) read(fd uintptr, want int) (int, syscall.Errno) {
	if want > len(b.buf) {
		b.buf = append(b.buf[:b.n], make([]byte, want-b.n)...)
	}
	n, errno := rawsock.Recv(fd, b.buf[b.n:], 0)
	if errno == 0 {
		b.n += n
	}
	return n, errno
}
