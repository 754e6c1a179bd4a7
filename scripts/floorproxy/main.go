// Command floorproxy is a reverse proxy with nothing but the work every
// proxy does, for the benchmark (scripts/bench.sh): it measures the floor
// of CPU per request that a Go process reaches on the machine, in the
// ways a Go server can wait for its sockets, beside nginx in the same run.
//
//	floorproxy -listen 127.0.0.1:18096 -loop goroutine|raw|featured|epoll \
//	    -api 127.0.0.1:18081,127.0.0.1:18082 -big 127.0.0.1:18083,127.0.0.1:18084
//
// It serves keep-alive requests without bodies: a request whose path
// begins with /big/ goes to the -big backends, any other to the -api ones,
// its head forwarded unchanged over a pooled keep-alive backend connection
// (the newest idle one; a new one in turn over the group's addresses when
// none is idle). The answer's head is read with the project's HTTP/1.1
// reader and sent back with its Content-Length body. Nothing else: no
// header rewriting, no X-Forwarded-For, no limits or timeouts, no
// plugins. A request it cannot serve so (a body, a malformed head, a
// backend's answer without Content-Length) closes its connection.
//
// With -loop goroutine each client connection has a goroutine blocked in
// its reads, as net/http's servers have, through net.Conn; -loop raw is
// the same model with the system calls Capuchin's connection lease makes
// (see serveRaw); with -loop epoll one goroutine serves every socket from
// its own epoll instance, as nginx's worker does. -loop featured is raw
// with the per-request work of Capuchin's proxy added (see
// serveFeatured): not a floor, the yardstick between the floor and
// Capuchin. raw, featured and epoll need Linux.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18096", "address to serve")
	loop := flag.String("loop", "goroutine", "how sockets are waited for: goroutine or raw (one per connection; featured: raw with the proxy's per-request work), or epoll (one loop)")
	api := flag.String("api", "127.0.0.1:18081,127.0.0.1:18082", "backends of every path but /big/ (comma-separated)")
	big := flag.String("big", "127.0.0.1:18083,127.0.0.1:18084", "backends of /big/ paths (comma-separated)")
	flag.Parse()
	fmt.Fprintln(os.Stderr, "floorproxy:", serve(*listen, *loop, &router{api: newPool(*api), big: newPool(*big)}))
	os.Exit(1)
}

// serve serves addr with loop until it fails.
func serve(addr, loop string, r *router) error {
	switch loop {
	case "goroutine", "raw", "featured":
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		switch loop {
		case "raw":
			return serveRaw(ln, r)
		case "featured":
			return serveFeatured(ln, r)
		}
		return serveGoroutines(ln, r)
	case "epoll":
		l, err := newLoop(addr, r)
		if err != nil {
			return err
		}
		return l.run()
	}
	return fmt.Errorf("-loop %q: want goroutine, raw, featured or epoll", loop)
}

// router picks a request's backend group by its path.
type router struct{ api, big *pool }

// pick returns the group of the request whose head is head.
func (r *router) pick(head []byte) *pool {
	if sp := bytes.IndexByte(head, ' '); sp >= 0 && bytes.HasPrefix(head[sp+1:], []byte("/big/")) {
		return r.big
	}
	return r.api
}

// pool is one group's idle backend connections (the loop's type), newest
// last, and the turn of the address a new one dials.
type pool struct {
	mu    sync.Mutex
	addrs []string
	next  int
	idle  []any
}

func newPool(addrs string) *pool { return &pool{addrs: strings.Split(addrs, ",")} }

// get returns the newest idle connection, or nil and the address to dial.
func (p *pool) get() (any, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle[n-1], p.idle = nil, p.idle[:n-1]
		return c, ""
	}
	p.next++
	return nil, p.addrs[p.next%len(p.addrs)]
}

// reuseOrDial returns g's newest idle connection, or makes one with mk
// over a new connection to g's next address.
func reuseOrDial[T any](g *pool, mk func(net.Conn) (T, error)) (T, error) {
	c, addr := g.get()
	if c != nil {
		return c.(T), nil
	}
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		var none T
		return none, err
	}
	return mk(nc)
}

// put makes c idle.
func (p *pool) put(c any) {
	p.mu.Lock()
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}
