package config

import (
	"crypto/tls"
	"crypto/x509"
	"path/filepath"

	"github.com/capuchin/capuchin/api/conf"
)

// HTTPS backends. A ServerList item written https://host:port is reached
// over TLS (TLS 1.2 or 1.3): the certificate is verified against the
// system roots, or only against TLSCA when given, for the item's host name
// (or TLSServerName), which is also sent as SNI; sessions are resumed.
// Keys, in an entry or in [PROXY_DEFAULTS]:
//
//	TLSCA FILE             PEM CA certificates to trust instead of the system roots
//	TLSCertificate FILE    PEM client certificate presented to the backends
//	TLSKey FILE            its PEM key; default: the certificate file
//	TLSServerName NAME     name verified and sent as SNI instead of the item's host
//
// Files are relative to the configuration file's directory and read when
// the configuration is loaded; an unreadable or bad one is an error at its
// line.
var tlsKeys = []string{"tlsca", "tlscertificate", "tlskey", "tlsservername"}

// setTLSKey records one of tlsKeys, once per section.
func (s *section) setTLSKey(e conf.Entry, key string, once func(conf.Entry, string) error) error {
	if err := once(e, key); err != nil {
		return err
	}
	if _, err := e.String(); err != nil {
		return err
	}
	s.strs[key] = e
	return nil
}

// tlsKey returns the entry that sets key: the section's, else the defaults'.
func tlsKey(s, d *section, key string) (conf.Entry, bool) {
	if e, ok := s.strs[key]; ok {
		return e, true
	}
	e, ok := d.strs[key]
	return e, ok
}

// backendTLS builds the entry's TLS settings for its https:// servers; nil
// when it has none.
func backendTLS(s, d *section, servers []Server) (*tls.Config, error) {
	secure := false
	for _, srv := range servers {
		secure = secure || srv.TLS
	}
	if !secure {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ClientSessionCache: tls.NewLRUClientSessionCache(64)}
	if e, ok := tlsKey(s, d, "tlsca"); ok {
		pool, err := readCA(e)
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool
	}
	if e, ok := tlsKey(s, d, "tlsservername"); ok {
		c.ServerName = e.Value
	}
	cert, err := clientCert(s, d)
	if err != nil || cert == nil {
		return c, err
	}
	c.Certificates = []tls.Certificate{*cert}
	return c, nil
}

func readCA(e conf.Entry) (*x509.CertPool, error) { return conf.LoadCertPool(relTo(e), e) }

// clientCert loads TLSCertificate and TLSKey; nil when not set.
func clientCert(s, d *section) (*tls.Certificate, error) {
	ce, hasCert := tlsKey(s, d, "tlscertificate")
	ke, hasKey := tlsKey(s, d, "tlskey")
	switch {
	case !hasCert && hasKey:
		return nil, ke.Errorf("TLSKey without TLSCertificate")
	case !hasCert:
		return nil, nil
	case !hasKey:
		ke = ce
	}
	return conf.LoadKeyPair(relTo(ce), relTo(ke), ce, ke)
}

// relTo resolves the entry's value against its file's directory.
func relTo(e conf.Entry) string {
	if filepath.IsAbs(e.Value) {
		return e.Value
	}
	return filepath.Join(filepath.Dir(e.File), e.Value)
}
