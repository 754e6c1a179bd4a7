// Package upstream manages the backend servers of one proxy entry: it turns
// the ServerList into servers (re-resolving hostnames periodically; every
// address a name resolves to is a server), keeps each server's health
// (high availability) and counters in a Registry shared by every entry and
// kept across reconfigurations, and pools keep-alive connections to it.
package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/capuchin/capuchin/plugins/proxy_reverse/config"
)

// Server is one backend address. It is safe for concurrent use.
type Server struct {
	Addr netip.AddrPort
	Name string // the ServerList item it came from, e.g. "api.internal:8080"

	addr string      // Addr as a dial string
	host string      // host:port for a Host field: the item's, or an SRV record's target
	tls  *tls.Config // https:// servers: TLS to the backend; nil for plain
	g    *Group
	h    *Health  // shared by every entry listing Addr
	chk  *Checker // the entry's active check of Addr; nil: none

	active atomic.Int64 // connections carrying a request now

	mu      sync.Mutex
	idle    []*Conn // pooled connections, oldest first
	retired bool    // removed from the ServerList by re-resolution or Close
}

// Conn is a connection to a backend with its buffers, which it holds only
// from TakeBuffers to the end of the request it carries (see bufPool).
type Conn struct {
	net.Conn
	BR     *bufio.Reader
	BW     *bufio.Writer
	Reused bool      // it came from the idle pool
	bufs   *connBufs // BR and BW, from the registry's pool
	srv    *Server
	idleAt time.Time
	check  IdleCheck
	wait   writeWait
	sio    sockIO
	readBy time.Time // the read deadline ExtendRead set last
}

// ExtendRead makes the read deadline d from now, coarsely: it is moved only
// when the one set last is less than 3/4 of d away, so that most requests
// spare the poller's timer update (a wait may thus end between 3/4 d and d
// after its start). Callers must not race on one connection.
func (c *Conn) ExtendRead(now time.Time, d time.Duration) {
	if c.readBy.Sub(now) >= d-d/4 {
		return
	}
	c.readBy = now.Add(d)
	c.Conn.SetReadDeadline(c.readBy)
}

// Address is the server's address as ip:port.
func (s *Server) Address() string { return s.addr }

// HostPort returns the server's name and port for a request that has no
// Host: the ServerList item's host:port, or an SRV record's target:port.
func (s *Server) HostPort() string { return s.host }

// Server returns the server the connection goes to.
func (c *Conn) Server() *Server { return c.srv }

// Available reports whether the server may be tried at now: its active
// check (if any) does not find it down, and it is not offline. A server goes
// offline after AttemptsCount consecutive failures and stays so until
// OfflineTimeOut after its last failure; then traffic probes it again and
// one success brings it back (or Rise good checks, before that).
func (s *Server) Available(now time.Time) bool {
	if s.chk != nil && s.chk.down.Load() {
		return false
	}
	return s.passiveOK(now)
}

func (s *Server) passiveOK(now time.Time) bool {
	attempts := s.g.entry.AttemptsCount
	if attempts <= 0 || int(s.h.fails.Load()) < attempts {
		return true
	}
	if now.UnixNano()-s.h.lastBad.Load() >= int64(s.g.entry.OfflineTimeout) {
		return true
	}
	s.h.markOffline(now, attempts)
	return false
}

// Share returns the part of its traffic share the server takes at now,
// in (0, 1]: below 1 during the entry's SlowStart after a recovery (a check
// bringing it up, or the end of a passive offline spell), growing linearly.
func (s *Server) Share(now time.Time) float64 {
	ss := s.g.entry.SlowStart
	if ss <= 0 {
		return 1
	}
	up := s.h.upSince.Load()
	if up == 0 {
		return 1
	}
	el := now.UnixNano() - up
	if el >= int64(ss) {
		return 1
	}
	return max(float64(el)/float64(ss), 1.0/256) // HAProxy's smallest weight step
}

// OfflineUntil returns when an offline server may be tried again, or the
// zero time when it is online.
func (s *Server) OfflineUntil(now time.Time) time.Time {
	if s.passiveOK(now) {
		return time.Time{}
	}
	return time.Unix(0, s.h.lastBad.Load()+int64(s.g.entry.OfflineTimeout))
}

// FailedAs records a failed attempt (connect failure, timeout, broken or
// malformed answer) of kind k.
func (s *Server) FailedAs(now time.Time, k FailKind) {
	s.h.kinds[k].Add(1)
	s.h.win.failure(now)
	s.h.failures.Add(1)
	s.h.lastBad.Store(now.UnixNano())
	s.h.fails.Add(1)
}

// Retried counts a request sent again after it failed on this server
// before any answer: to the next server (a failed connect, or a new
// connection closed or reset before any answer byte), or to this server on
// a new connection (a pooled one the server had closed while idle).
func (s *Server) Retried() { s.h.retries.Add(1) }

// Tunneled counts an upgraded (101) tunnel to this server. A tunnel is not
// an answer: it stays out of Answered's response times and recent traffic,
// which its lifetime (minutes of WebSocket) would swamp.
func (s *Server) Tunneled() { s.h.tunnels.Add(1) }

// ResponseTimes is the server address's response-time histogram (shared by
// every entry listing the address), for the metrics.
func (s *Server) ResponseTimes() prometheus.Histogram { return s.h.rtime }

// Succeeded records a good answer; the server is online again.
func (s *Server) Succeeded() {
	if s.h.fails.Load() != 0 {
		s.h.revive(time.Now())
	}
}

// Answered records an answer head with status received took after the
// request was sent, in the recent-traffic window (5xx counts as an error)
// and the response-time histogram. A 101 that opens a tunnel is counted
// by Tunneled instead. An answer whose body is then cut also
// counts as a failure (FailedAs).
func (s *Server) Answered(now time.Time, took time.Duration, status int) {
	s.h.win.answer(now, took, status >= 500)
	s.h.rtime.Observe(took.Seconds())
}

// Get returns a pooled connection, or nil. Connections idle for longer than
// IdleTimeout are closed instead, and so are connections on which anything
// (bytes or EOF) arrived while they were idle: such bytes belong to no
// request, and reading them as the next answer would hand one client
// another's response.
func (s *Server) Get(now time.Time) *Conn {
	for {
		c := s.pop(now)
		if c == nil {
			return nil
		}
		if c.check.Stray(c.readBy) {
			s.h.stray.Add(1)
			c.Conn.Close()
			continue
		}
		c.Reused = true
		s.active.Add(1)
		s.h.requests.Add(1)
		return c
	}
}

// pop takes the newest idle connection still within IdleTimeout, closing
// the expired ones it passes.
func (s *Server) pop(now time.Time) *Conn {
	var stale []*Conn
	var c *Conn
	s.mu.Lock()
	for len(s.idle) > 0 {
		n := len(s.idle) - 1
		c, s.idle[n] = s.idle[n], nil
		s.idle = s.idle[:n]
		if now.Sub(c.idleAt) < s.g.entry.IdleTimeout {
			break
		}
		stale, c = append(stale, c), nil
	}
	s.mu.Unlock()
	for _, sc := range stale {
		sc.Conn.Close()
	}
	return c
}

// Dial opens a new connection with the entry's ConnectTimeout, which also
// bounds the TLS handshake of an https:// server.
func (s *Server) Dial(ctx context.Context) (*Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.g.entry.ConnectTimeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, err
	}
	nc := raw
	if s.tls != nil {
		if nc, err = s.handshake(ctx, raw); err != nil {
			return nil, err
		}
	}
	s.active.Add(1)
	s.h.requests.Add(1)
	c := &Conn{Conn: nc, srv: s}
	c.check.Init(raw, nc)
	if c.check.raw != nil && c.check.tls == nil {
		c.sio.init(nc, c.check.raw)
	}
	return c, nil
}

// TakeBuffers gives c its read and write buffers (BR and BW) from the
// pool, when it has none: Get and Dial hand out a connection without them.
// A request takes them when it first needs them: a request without a
// body only once its answer is there (after WriteWait), so that the
// requests waiting for answers hold no buffers, and the pair taken is
// the one the last answer gave back, still in the CPU's cache (at 256
// concurrent requests this saves about 2 % of the CPU per request).
// A plain TCP connection's buffers go through sockIO.
func (c *Conn) TakeBuffers() {
	if c.bufs != nil {
		return
	}
	var rw io.ReadWriter = c.Conn
	if c.sio.io.Ready() {
		rw = &c.sio
	}
	c.bufs = c.srv.g.reg.bufs.get(rw)
	c.BR, c.BW = &c.bufs.br, &c.bufs.bw
}

// dropBuffers gives c's buffers (empty) back to the pool.
func (c *Conn) dropBuffers() {
	if c.bufs == nil {
		return
	}
	c.srv.g.reg.bufs.put(c.bufs)
	c.bufs, c.BR, c.BW = nil, nil, nil
}

// Release ends a request on c: with reuse the connection goes back to the
// idle pool (if there is room), otherwise it is closed. Bytes already read
// past the answer's end (a body after a HEAD, 204 or 304 answer in the same
// read) make it stray: it is closed and counted.
func (s *Server) Release(c *Conn, reuse bool, now time.Time) {
	s.active.Add(-1)
	if reuse && c.bufs != nil && c.BR.Buffered() > 0 {
		s.h.stray.Add(1)
		reuse = false
	}
	if reuse && (c.bufs == nil || c.BW.Buffered() == 0) {
		c.idleAt = now
		c.dropBuffers()
		s.mu.Lock()
		if max := s.g.entry.MaxIdleConns; !s.retired && (max == config.NoLimit || len(s.idle) < max) {
			s.idle = append(s.idle, c)
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
	}
	c.Conn.Close()
}

// retire closes every idle connection, keeps the pool from taking more,
// and releases the server's active check.
func (s *Server) retire() {
	s.mu.Lock()
	was := s.retired
	s.mu.Unlock()
	s.reap(time.Time{}, true)
	if s.chk != nil && !was {
		s.g.reg.releaseCheck(s.chk) // its state stays readable, frozen
	}
}

// reapEvery bounds how long an idle connection past its IdleTimeout
// stays open before its group's reap closes it (Get never hands it out).
const reapEvery = time.Second

// reap closes idle connections older than IdleTimeout; with all it closes
// every idle connection and retires the server.
func (s *Server) reap(now time.Time, all bool) {
	var out []*Conn
	s.mu.Lock()
	if all {
		s.retired = true
	}
	keep := s.idle[:0]
	for _, c := range s.idle {
		if all || now.Sub(c.idleAt) >= s.g.entry.IdleTimeout {
			out = append(out, c)
		} else {
			keep = append(keep, c)
		}
	}
	clear(s.idle[len(keep):])
	s.idle = keep
	s.mu.Unlock()
	for _, c := range out {
		c.Conn.Close()
	}
}

// Stats is a snapshot of a server's counters.
type Stats struct {
	Name         string
	Addr         string
	Online       bool
	OfflineUntil time.Time            // zero when online
	Active       int64                // connections carrying a request
	Idle         int                  // pooled connections
	Requests     uint64               // requests sent (attempts, retries included)
	Failures     uint64               // failed attempts
	Stray        uint64               // pooled connections closed for bytes or EOF while idle
	Retries      uint64               // requests sent again after a failure here
	Tunnels      uint64               // upgraded (101) tunnels opened
	Consecutive  int                  // current run of failures
	FailKinds    [NumFailKinds]uint64 // Failures by kind
	// Check is the active check's state; nil when the entry has none.
	Check *CheckStats
	// Share is the slow-start share, in (0, 1]; 1 outside slow start.
	Share float64
	// LastMinute and LastFive are the recent traffic over about one and
	// five minutes (Buckets of BucketWidth).
	LastMinute, LastFive Window
}

// State words of Stats.State.
const (
	StateUp        = "up"
	StateDown      = "down"    // found down by its active check
	StateOffline   = "offline" // passive: AttemptsCount failures in a row
	StateSlowStart = "slowstart"
)

// State returns the server's state in one word: down (by check) wins over
// offline (passive), which wins over slow start.
func (st *Stats) State() string {
	switch {
	case st.Check != nil && st.Check.Down:
		return StateDown
	case !st.Online:
		return StateOffline
	case st.Share < 1:
		return StateSlowStart
	}
	return StateUp
}

// Stats returns the server's counters at now.
func (s *Server) Stats(now time.Time) Stats {
	s.mu.Lock()
	idle := len(s.idle)
	s.mu.Unlock()
	until := s.OfflineUntil(now)
	st := Stats{Name: s.Name, Addr: s.addr, Online: until.IsZero(), OfflineUntil: until,
		Active: s.active.Load(), Idle: idle, Requests: s.h.requests.Load(),
		Failures: s.h.failures.Load(), Stray: s.h.stray.Load(), Retries: s.h.retries.Load(),
		Tunnels: s.h.tunnels.Load(), Consecutive: int(s.h.fails.Load()),
		Share: s.Share(now), LastMinute: s.h.win.sum(now, 6), LastFive: s.h.win.sum(now, Buckets),
		FailKinds: s.failKinds()}
	if s.chk != nil {
		st.Check = s.chk.stats()
	}
	return st
}

func (s *Server) failKinds() (out [NumFailKinds]uint64) {
	for i := range out {
		out[i] = s.h.kinds[i].Load()
	}
	return out
}

// ClientBodyTimeout returns how long a client may stall while sending a
// request body to this server's entry.
func (s *Server) ClientBodyTimeout() time.Duration { return s.g.entry.ClientBodyTimeout }

// TunnelIdleTimeout returns how long an upgraded tunnel to this server's
// entry may carry no byte either way.
func (s *Server) TunnelIdleTimeout() time.Duration { return s.g.entry.TunnelIdleTimeout }

// ClientBodyMinRate returns the lowest average rate (bytes per second) of a
// request body to this server's entry; 0: none.
func (s *Server) ClientBodyMinRate() int { return s.g.entry.ClientBodyMinRate }

// ResponseTimeout returns how long the server has to send an answer head.
func (s *Server) ResponseTimeout() time.Duration { return s.g.entry.ResponseTimeout }
