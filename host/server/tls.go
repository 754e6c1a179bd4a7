package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"syscall"
	"time"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/host/config"
	"github.com/capuchin/capuchin/internal/contract"
)

// HTTPS. A TLS listener wraps each accepted socket in a crypto/tls server
// connection; the handshake runs on the connection's goroutine before
// stage 10, within Timeout. The server's tls.Config is made once, so the
// session-ticket keys (rotated by crypto/tls) outlive reloads and clients
// resume across them; for each hello it hands crypto/tls the current
// snapshot's settings (GetConfigForClient), whose GetCertificate picks the
// site's certificate by SNI from the snapshot's table. A SIGHUP therefore
// swaps every certificate at once, atomically, without touching open
// connections.

// baseTLS is the server's one tls.Config.
func (s *Server) baseTLS() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.snap.Load().tls, nil
		},
	}
}

// certTable maps names to certificates, built with a snapshot.
type certTable struct {
	byName map[string]*tls.Certificate // exact names and "*.suffix" wildcards
	def    *tls.Certificate
}

// newTLSConfig is the per-snapshot configuration handed out for each hello.
func newTLSConfig(cfg *config.Config) *tls.Config {
	t := &certTable{byName: map[string]*tls.Certificate{}, def: cfg.DefaultCert()}
	for _, site := range cfg.Sites {
		if site.Cert == nil {
			continue
		}
		for _, n := range site.Names {
			if _, dup := t.byName[n]; !dup {
				t.byName[n] = site.Cert
			}
		}
	}
	// Full-size records from the first byte, as nginx sends them
	// (ssl_buffer_size 16k): crypto/tls would otherwise cut a new
	// connection's first responses into MSS-sized records, one write each.
	c := &tls.Config{
		MinVersion:                  tls.VersionTLS12,
		NextProtos:                  []string{"http/1.1"},
		GetCertificate:              t.certificate,
		DynamicRecordSizingDisabled: true,
	}
	if pool := cfg.Server.TLSClientCA; pool != nil {
		c.ClientAuth, c.ClientCAs = tls.VerifyClientCertIfGiven, pool
	}
	return c
}

// certificate picks the certificate for a hello: the site named by SNI
// (exactly, or by a "*.domain" ServerName), else the default.
func (t *certTable) certificate(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.TrimSuffix(strings.ToLower(h.ServerName), ".")
	if c, ok := t.byName[name]; ok {
		return c, nil
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		if c, ok := t.byName["*"+name[i:]]; ok {
			return c, nil
		}
	}
	if t.def == nil {
		return nil, errors.New("no certificate configured")
	}
	return t.def, nil
}

// handshake completes the TLS handshake of c within timeout and fills in
// the connection's TLS facts; false means the connection must close.
func (c *conn) handshake(timeout time.Duration) bool {
	c.nc.SetDeadline(deadline(timeout))
	// Idle until the handshake is done: Shutdown ends the wait at once.
	c.state.Store(stateIdle)
	if c.s.closing.Load() {
		return false
	}
	err := c.tls.Handshake()
	c.state.Store(stateActive)
	if err != nil {
		c.notTLS(err)
		return false
	}
	st := c.tls.ConnectionState()
	c.info.Conn.TLS = contract.TLS{Version: st.Version, ServerName: st.ServerName}
	if len(st.PeerCertificates) > 0 {
		c.info.Conn.TLS.ClientCert = true
		c.info.Conn.TLS.ClientSubject = subject(st.PeerCertificates[0])
	}
	c.mu.Lock()
	var sock syscall.RawConn
	if c.info.TCP != nil {
		sock, _ = c.info.TCP.SyscallConn()
	}
	c.relay = newRelay(c.tls, c.tlsSrc, sock, &c.s.raw, c.s.snap.Load().cfg.Server.Timeout)
	c.info.Relay = c.relay
	c.mu.Unlock()
	return true
}

func subject(cert *x509.Certificate) string { return cert.Subject.String() }

// notTLS handles a failed handshake. A client that spoke plain HTTP gets a
// plain 400 saying so, as nginx and net/http answer; anything else is
// closed (logged at debug level).
func (c *conn) notTLS(err error) {
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) && rh.Conn != nil && looksLikeHTTP(rh.RecordHeader) {
		sn := c.s.snap.Load()
		h := http1.ResponseHead{Status: 400, Date: c.s.clock.Date(), Server: sn.server, Minor: 1, Close: true}
		page := h.AppendError(nil, nil, "plain HTTP request sent to an HTTPS port")
		lingerClose(rh.Conn, c.info.TCP, page, deadline(sn.cfg.Server.Timeout))
	}
	if c.s.log.IsDebug() {
		c.s.log.Debug("tls handshake failed", "remote", c.info.Remote.String(), "error", err)
	}
}

// looksLikeHTTP reports whether the five bytes read as a TLS record
// header are the start of an HTTP request (as net/http tells).
func looksLikeHTTP(h [5]byte) bool {
	switch string(h[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "DELET", "PATCH":
		return true
	}
	return false
}
