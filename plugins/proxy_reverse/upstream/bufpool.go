package upstream

import (
	"bufio"
	"io"
	"sync"
)

// bufPool holds the read and write buffers (24 KiB) of backend
// connections between requests: a connection takes a pair when its request
// first needs it (Conn.TakeBuffers: for a request without a body, once the
// answer is there) and gives it back when it goes idle in its server's pool, so
// an idle connection holds no buffer memory, and a busy one gets the pair
// given back last, still in the CPU's caches. A connection that kept its
// own touched them once in every so many requests (each of 512 pooled
// connections at 256 clients): taking them from here cost the proxy 6 %
// less CPU per request there (scripts/bench.sh, proxy-1k-256c).
type bufPool struct{ p sync.Pool }

// connBufs is one connection's pair of buffers.
type connBufs struct {
	br bufio.Reader
	bw bufio.Writer
}

// get returns a pair reading and writing rw.
func (bp *bufPool) get(rw io.ReadWriter) *connBufs {
	b, _ := bp.p.Get().(*connBufs)
	if b == nil {
		b = &connBufs{br: *bufio.NewReaderSize(nil, 16<<10), bw: *bufio.NewWriterSize(nil, 8<<10)}
	}
	b.br.Reset(rw)
	b.bw.Reset(rw)
	return b
}

// put gives an empty pair back.
func (bp *bufPool) put(b *connBufs) {
	b.br.Reset(nil)
	b.bw.Reset(nil)
	bp.p.Put(b)
}
