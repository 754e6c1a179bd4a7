package main

import (
	"bufio"
	"errors"
	"io"
	"net"

	"github.com/capuchin/capuchin/api/http1"
)

// upstream is a pooled backend connection of the goroutine loop.
type upstream struct {
	nc   net.Conn
	br   *bufio.Reader
	resp http1.Response
}

// serveGoroutines serves each connection ln accepts on its own goroutine,
// until ln fails.
func serveGoroutines(ln net.Listener, r *router) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go serveConn(c, r)
	}
}

// serveConn serves c's requests one at a time until c closes or a request
// cannot be served.
func serveConn(c net.Conn, r *router) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 4096)
	out := make([]byte, 0, 4096)
	var q reqCheck
	for {
		head, err := readHead(br, &q)
		if err != nil {
			return
		}
		g := r.pick(head)
		up, err := reuseOrDial(g, newUpstream)
		if err != nil {
			return
		}
		out, err = up.exchange(head, out[:0])
		br.Discard(len(head))
		if err != nil {
			up.nc.Close()
			return
		}
		g.put(up)
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// readHead waits until a request head is buffered whole in br and returns
// it (not consumed); a request with a body is refused.
func readHead(br *bufio.Reader, q *reqCheck) ([]byte, error) {
	for n := 1; ; n = br.Buffered() + 1 {
		if _, err := br.Peek(n); err != nil {
			return nil, err
		}
		b, _ := br.Peek(br.Buffered())
		switch _, end, err := http1.HeadEnd(b); {
		case err != nil:
			return nil, err
		case end >= 0:
			return b[:end], q.noBody(b[:end])
		}
	}
}

// newUpstream makes a pooled connection of nc.
func newUpstream(nc net.Conn) (*upstream, error) {
	return &upstream{nc: nc, br: bufio.NewReaderSize(nc, 8192)}, nil
}

// exchange sends head and appends the answer (head and body) to out.
func (u *upstream) exchange(head, out []byte) ([]byte, error) {
	if _, err := u.nc.Write(head); err != nil {
		return out, err
	}
	if err := http1.ReadResponse(u.br, nil, &u.resp); err != nil {
		return out, err
	}
	if u.resp.ContentLength < 0 || u.resp.Chunked || u.resp.Close {
		return out, errors.New("an answer without Content-Length")
	}
	out = append(append(out, u.resp.Raw...), "\r\n"...)
	n := len(out)
	out = append(out, make([]byte, u.resp.ContentLength)...)
	_, err := io.ReadFull(u.br, out[n:])
	return out, err
}
