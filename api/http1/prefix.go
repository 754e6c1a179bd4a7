package http1

import "io"

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
