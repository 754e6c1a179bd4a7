package upstream

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"

	"github.com/capuchin/capuchin/plugins/proxy_reverse/config"
)

// tlsFor returns the TLS configuration of a ServerList item: nil for a
// plain one; for an https:// one the entry's, naming the item's host (for
// verification and SNI) unless TLSServerName is set.
func (g *Group) tlsFor(it config.Server) *tls.Config {
	if !it.TLS || g.entry.TLS == nil {
		return nil
	}
	c := g.entry.TLS.Clone()
	if c.ServerName == "" {
		c.ServerName = it.Host
	}
	c.NextProtos = []string{"http/1.1"}
	return c
}

// handshake runs the TLS handshake on a new connection to an https://
// server. A failure (an untrusted or wrong certificate, a backend that does
// not speak TLS) is logged: it says more than the 502 the client gets.
func (s *Server) handshake(ctx context.Context, raw net.Conn) (*tls.Conn, error) {
	tc := tls.Client(raw, s.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		if ctx.Err() == nil || ctx.Err() == context.DeadlineExceeded {
			s.g.log.Warn("backend TLS handshake failed", "server", s.Name, "addr", s.addr, "error", err)
		}
		return nil, fmt.Errorf("tls handshake with %s: %w", s.addr, err)
	}
	return tc, nil
}
