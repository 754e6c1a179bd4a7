// Package server is the host's connection loop: it owns the listeners,
// accepts connections, reads requests with api/http1, makes the core's
// checks, calls the stage pipeline at stages 10 to 50, falls back to the
// static-file handler, and handles keep-alive, pipelining, timeouts,
// reloads and graceful shutdown.
package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/host/config"
	"github.com/capuchin/capuchin/host/stage"
	"github.com/capuchin/capuchin/internal/idlepark"
	"github.com/capuchin/capuchin/internal/idlewait"
	"github.com/capuchin/capuchin/internal/memback"
)

// Version is the host's version, sent in the Server field unless HideVersion.
const Version = "0.1.0"

// Server serves HTTP/1.1 on the configured listeners.
type Server struct {
	log      hclog.Logger
	pipeline stage.Pipeline
	leaser   stage.Leaser             // the pipeline, if it grants leases; else nil
	snap     atomic.Pointer[snapshot] // replaced whole on reload
	tlsConf  *tls.Config              // of every TLS listener; made once, so session tickets outlive reloads
	clock    http1.Clock
	nextID   atomic.Uint64
	closing  atomic.Bool

	open      atomic.Int64  // connections being served (tracked)
	shedding  atomic.Int64  // connections being shed now
	shedCount atomic.Uint64 // connections shed since start
	reqs      *requestCounts
	exporter  Exporter // answers MetricsURL; nil: none

	mu        sync.Mutex
	listeners map[string]*listener // by configured address
	conns     map[*conn]struct{}
	wg        sync.WaitGroup // accept loops and connections
	work      workers        // the goroutines that serve connections

	// Read and write buffers of connections between requests: an idle
	// connection holds none (see conn.waitRequest).
	readers sync.Pool     // *bufio.Reader of readBufferSize
	writers sync.Pool     // *bufio.Writer of writeBufferSize
	raw     idlewait.Pool // a waiting connection's first read and the TLS relay's reads; gives memory back after a burst goes idle
	recs    sync.Pool     // *stage.Record: the stage-40 record of a request being completed
	// The exchanges of connections parked while idle (see conn.attach).
	exchanges sync.Pool       // *exchange
	mem       memback.Tracker // gives memory back after a burst of connections closes or parks
	idler     idlepark.Set    // parks connections idle for long (no goroutine while they wait)
}

// New prepares a server for cfg; Start opens the listeners.
func New(cfg *config.Config, p stage.Pipeline, log hclog.Logger) *Server {
	if p == nil {
		p = stage.Nop{}
	}
	s := &Server{
		log:       log,
		pipeline:  p,
		listeners: map[string]*listener{},
		conns:     map[*conn]struct{}{},
		reqs:      newRequestCounts(),
	}
	s.work.init()
	s.mem.Quiet = &s.raw.Idle // memory is given back once connections stop coming back to work
	s.leaser, _ = p.(stage.Leaser)
	s.snap.Store(newSnapshot(cfg))
	s.tlsConf = s.baseTLS()
	return s
}

// Start opens every configured listener and starts accepting.
func (s *Server) Start() error {
	sn := s.snap.Load()
	s.log.Info("connection cap", "max_connections", sn.maxConns, "descriptors", fdLimit())
	return s.syncListeners(&sn.cfg.Server)
}

// Reload switches to cfg: new requests use it at once, connections are kept,
// listeners are opened and closed to match. On error nothing changes.
func (s *Server) Reload(cfg *config.Config) error {
	if err := s.syncListeners(&cfg.Server); err != nil {
		return err
	}
	s.snap.Store(newSnapshot(cfg))
	s.mu.Lock()
	var leased []*conn
	for c := range s.conns {
		if c.state.Load() == stateLeased {
			leased = append(leased, c)
		}
	}
	s.mu.Unlock()
	s.revoke(leased) // their next requests must see the new configuration
	return nil
}

// revoke asks the handlers holding conns under a lease to give them back.
func (s *Server) revoke(conns []*conn) {
	if s.leaser == nil {
		return
	}
	for _, c := range conns {
		s.leaser.Revoke(&c.info)
	}
}

// Addrs returns the bound address of every listener.
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []net.Addr
	for _, l := range s.listeners {
		out = append(out, l.ln.Addr())
	}
	return out
}

// Shutdown stops accepting, closes idle connections, lets requests in flight
// finish until ctx is done, then closes what is left. It returns when every
// goroutine of the server has ended.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	defer s.idler.Stop() // after every connection ended: none is parked
	s.mu.Lock()
	for addr, l := range s.listeners {
		l.ln.Close()
		delete(s.listeners, addr)
	}
	var leased []*conn
	for c := range s.conns {
		if c.wakeIfIdle() {
			leased = append(leased, c)
		}
	}
	s.mu.Unlock()
	s.revoke(leased)
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		s.work.stop(true)
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	n := len(s.conns)
	for c := range s.conns {
		c.shut() // a plugin's copy of the socket must not keep it open
		c.closeNow()
	}
	s.mu.Unlock()
	t := time.NewTimer(shutWait)
	defer t.Stop()
	select {
	case <-done:
		s.work.stop(true)
	case <-t.C:
		s.work.stop(false) // those still busy end when their connection does
		return fmt.Errorf("shutdown: closed %d connections still busy after the grace period; "+
			"some still wait for a plugin, until the plugins stop", n)
	}
	return fmt.Errorf("shutdown: closed %d connections still busy after the grace period", n)
}

// shutWait is how long Shutdown waits, after the grace period, for the
// connections it shut to end. One whose stage-30 call a plugin never
// answers (a handler that hangs under a lease: a lease's reply is not
// bounded by the stage deadline) ends when the plugins stop, which the
// caller does next: before, such a plugin kept the host from ever
// stopping.
const shutWait = 2 * time.Second

func (s *Server) track(c *conn, add bool) {
	s.mu.Lock()
	if add {
		s.conns[c] = struct{}{}
		s.open.Add(1)
		s.mem.Opened()
	} else if _, ok := s.conns[c]; ok {
		delete(s.conns, c)
		s.open.Add(-1)
		s.mem.Closed()
	}
	s.mu.Unlock()
}

// serverField returns the Server field value.
func serverField(hide bool) string {
	if hide {
		return "capuchin"
	}
	return "capuchin/" + Version
}

// deadline returns now+d.
func deadline(d time.Duration) time.Time { return time.Now().Add(d) }
