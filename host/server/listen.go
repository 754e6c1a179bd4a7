package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/capuchin/capuchin/host/config"
	"github.com/capuchin/capuchin/internal/fdpass"
)

type listener struct {
	ln  net.Listener
	tls atomic.Bool // HTTPS; a reload may change it
}

// syncListeners opens the listeners of sv.Listen that are not open and
// closes those no longer wanted, and sets DeferAccept on each. If one
// cannot be opened, it closes what it opened and changes nothing.
func (s *Server) syncListeners(sv *config.Server) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return errors.New("server is shutting down")
	}
	opened, err := openListeners(s.listeners, sv)
	if err != nil {
		return err
	}
	for addr, l := range s.listeners {
		if !wanted(sv.Listen, addr) {
			l.ln.Close()
			delete(s.listeners, addr)
		}
	}
	for _, l := range sv.Listen {
		if o := s.listeners[l.Addr]; o != nil {
			o.tls.Store(l.TLS)
			if err := deferAccept(o.ln, sv.DeferAccept); err != nil {
				s.log.Warn("DeferAccept not changed", "addr", l.Addr, "error", err)
			}
		}
	}
	for addr, l := range opened {
		s.listeners[addr] = l
		s.wg.Add(1)
		go s.accept(l)
		s.log.Info("listening", "addr", l.ln.Addr().String(), "tls", l.tls.Load())
	}
	return nil
}

// openListeners opens the listeners of sv.Listen that are not in open, or
// none if one of them fails.
func openListeners(open map[string]*listener, sv *config.Server) (map[string]*listener, error) {
	opened := map[string]*listener{}
	for _, l := range sv.Listen {
		if open[l.Addr] != nil {
			continue
		}
		ln, err := listen(l.Addr, sv.DeferAccept)
		if err != nil {
			for _, o := range opened {
				o.ln.Close()
			}
			return nil, fmt.Errorf("listen %s (%s): %w", l.Addr, l.Where, err)
		}
		opened[l.Addr] = &listener{ln: ln}
		opened[l.Addr].tls.Store(l.TLS)
	}
	return opened, nil
}

// deferAccept sets the DeferAccept key on ln (fdpass's listener, see its
// SetDeferAccept); a listener without it (not on Linux) ignores the key.
func deferAccept(ln net.Listener, on bool) error {
	if d, ok := ln.(interface{ SetDeferAccept(bool) error }); ok {
		return d.SetDeferAccept(on)
	}
	return nil
}

// listen opens a TCP listener on addr whose connections are fdpass's
// sockets (see fdpass.Listen; net.TCPConns where it is not implemented).
// They have no TCP keep-alive probes, Go's default for accepted sockets
// (nginx's and HAProxy's default is off): an idle connection ends at
// KeepAliveTimeout. They are plain TCP, as nginx's and HAProxy's are by
// default: Go (since 1.24) would make the listener Multipath TCP where
// the kernel has it, whose accept path is longer for every plain client.
// deferred is the DeferAccept key (see deferAccept).
func listen(addr string, deferred bool) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	lc.SetMultipathTCP(false)
	tl, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	ln, err := fdpass.Listen(tl.(*net.TCPListener))
	if err != nil {
		return nil, err
	}
	if err := deferAccept(ln, deferred); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

func wanted(want []config.Listener, addr string) bool {
	for _, l := range want {
		if l.Addr == addr {
			return true
		}
	}
	return false
}

// accept runs until the listener is closed.
func (s *Server) accept(l *listener) {
	defer s.wg.Done()
	var delay time.Duration
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			delay = backoff(delay)
			s.log.Warn("accept failed", "addr", l.ln.Addr().String(), "error", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		secure := l.tls.Load()
		if sn := s.snap.Load(); s.full(sn) {
			if secure { // a 503 would need a handshake first: not under overload
				s.shedCount.Add(1)
				nc.Close()
				continue
			}
			s.shed(nc, sn)
			continue
		}
		c := s.newConn(nc, secure)
		s.track(c, true)
		if s.closing.Load() {
			s.track(c, false)
			nc.Close()
			continue
		}
		s.wg.Add(1)
		s.work.run(job{c: c})
	}
}

// backoff doubles d between 5 ms and 1 s (for EMFILE and the like).
func backoff(d time.Duration) time.Duration {
	if d == 0 {
		return 5 * time.Millisecond
	}
	if d *= 2; d > time.Second {
		d = time.Second
	}
	return d
}
