package hosttest

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Server is a TCP server on a loopback address for tests (a backend, a
// stand-in for the host): it runs serve on each connection it accepts, in
// a goroutine of its own, and counts the accepts. Close, also registered
// with t.Cleanup, stops accepting, closes every connection still open and
// waits until every goroutine of the server has ended.
type Server struct {
	ln      net.Listener
	serve   func(net.Conn)
	accepts atomic.Int64

	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// Serve listens on addr ("" is 127.0.0.1 on a free port) and serves each
// accepted connection with serve, which need not close it.
func Serve(t testing.TB, addr string, serve func(net.Conn)) *Server {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	Must(t, err)
	s := &Server{ln: ln, serve: serve, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.Close)
	return s
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Accepts is the number of connections accepted so far.
func (s *Server) Accepts() int64 { return s.accepts.Load() }

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.accepts.Add(1)
		if !s.track(c) {
			c.Close()
			return
		}
		go s.run(c)
	}
}

// track records c and counts its goroutine; false once Close has begun.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) run(c net.Conn) {
	defer s.wg.Done()
	defer c.Close()
	s.serve(c)
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Close stops the server and waits for its goroutines; it may be called
// more than once.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
}

// Kill closes the listener and resets every connection, as the kernel
// does for a killed process with unread input; unlike Close it does not
// wait for the goroutines (Close, at cleanup, does).
func (s *Server) Kill() {
	s.ln.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for c := range s.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		c.Close()
	}
}

// TCPPair returns both ends of a TCP connection on 127.0.0.1; both close
// when the test ends.
func TCPPair(t testing.TB) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	Must(t, err)
	defer ln.Close()
	client, err = net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	Must(t, err)
	server, err = ln.AcceptTCP()
	if err != nil {
		client.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}
