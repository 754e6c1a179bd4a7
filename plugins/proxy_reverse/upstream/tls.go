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
	tc, err := clientHandshake(ctx, raw, s.tls)
	if err != nil {
		raw.Close()
		if ctx.Err() == nil || ctx.Err() == context.DeadlineExceeded {
			s.g.log.Warn("backend TLS handshake failed", "server", s.Name, "addr", s.addr, "error", err)
		}
		return nil, fmt.Errorf("%s: %w", s.addr, err)
	}
	return tc, nil
}

// clientHandshake runs the client side of the TLS handshake with an
// https:// server on raw, within ctx: the one handshake of the pool's
// dialer (ConnectTimeout) and the health checker (its own timeout). raw
// stays the caller's to close on an error.
func clientHandshake(ctx context.Context, raw net.Conn, c *tls.Config) (*tls.Conn, error) {
	tc := tls.Client(raw, c)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("tls handshake: %w", unwrapOp(err))
	}
	return tc, nil
}
