package http1

import (
	"bufio"
	"io"
)

// PrefixReader reads Pre first, then R: the bytes another party already
// read off a connection (and handed over), then the connection itself. Its
// zero value with R set reads R.
type PrefixReader struct {
	Pre []byte
	R   io.Reader
}

func (p *PrefixReader) Read(b []byte) (int, error) {
	if len(p.Pre) > 0 {
		n := copy(b, p.Pre)
		p.Pre = p.Pre[n:]
		return n, nil
	}
	return p.R.Read(b)
}

// Load puts b into br, which reads from p, without keeping b: b (no larger
// than br's buffer) is copied into br's buffer, so the caller may reuse it.
func (p *PrefixReader) Load(br *bufio.Reader, b []byte) {
	if len(b) == 0 {
		return
	}
	p.Pre = b
	br.Peek(1)                            // copies b into br's buffer
	p.Pre = append([]byte(nil), p.Pre...) // whatever did not fit (none): keep a copy
}
