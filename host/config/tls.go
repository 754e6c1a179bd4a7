package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strconv"
	"strings"

	"github.com/capuchin/capuchin/api/conf"
)

// TLS keys. In capuchin.conf [SERVER]:
//
//	Listen ADDR tls        a listener that speaks HTTPS (TLS 1.2 and 1.3, ALPN
//	                       http/1.1, session tickets); needs a site with a certificate
//	TLSClientCA FILE       PEM CA certificates: clients are asked for a certificate,
//	                       and one they present must chain to these; default none
//	                       (no client certificate is asked for)
//
// In a site's [HOST]:
//
//	TLSCertificate FILE    PEM certificate chain served to clients that name this
//	                       site (SNI); the default site's (or the first site's
//	                       with one) also answers unknown names
//	TLSKey FILE            PEM private key of TLSCertificate; default: the
//	                       certificate file itself
//	RedirectHTTPS on|off|PORT  answer requests that came over plain HTTP with
//	                       301 to https:// (PORT: that port); default off
//
// The files are read when the configuration is loaded (start-up, SIGHUP,
// capuchin -t); an unreadable or mismatched pair is an error at its line.

// siteTLS collects a site's TLS keys until its [HOST] section is read.
type siteTLS struct {
	cert, key conf.Entry
	hasCert   bool
	hasKey    bool
}

func (t *siteTLS) keys() map[string]func(conf.Entry) error {
	return map[string]func(conf.Entry) error{
		"tlscertificate": func(e conf.Entry) error {
			if t.hasCert {
				return e.Errorf("TLSCertificate given twice (first at line %d)", t.cert.Line)
			}
			t.cert, t.hasCert = e, true
			return nil
		},
		"tlskey": func(e conf.Entry) error {
			if t.hasKey {
				return e.Errorf("TLSKey given twice (first at line %d)", t.key.Line)
			}
			t.key, t.hasKey = e, true
			return nil
		},
	}
}

// load reads the certificate and key; nil when the site has none.
func (t *siteTLS) load(dir string) (*tls.Certificate, error) {
	if !t.hasCert {
		if t.hasKey {
			return nil, t.key.Errorf("TLSKey without TLSCertificate")
		}
		return nil, nil
	}
	certFile, err := t.cert.String()
	if err != nil {
		return nil, err
	}
	certFile = resolve(dir, certFile)
	keyFile, at := certFile, t.cert
	if t.hasKey {
		if keyFile, err = t.key.String(); err != nil {
			return nil, err
		}
		keyFile, at = resolve(dir, keyFile), t.key
	}
	return conf.LoadKeyPair(certFile, keyFile, t.cert, at)
}

// redirectHTTPS parses RedirectHTTPS: off is 0, on is 443, or a port.
func redirectHTTPS(e conf.Entry) (int, error) {
	switch strings.ToLower(e.Value) {
	case "off":
		return 0, nil
	case "on":
		return 443, nil
	}
	p, err := strconv.Atoi(e.Value)
	if err != nil || p < 1 || p > 65535 {
		return 0, e.Errorf("want on, off or a port, got %q", e.Value)
	}
	return p, nil
}

// loadClientCA reads the PEM file of TLSClientCA.
func loadClientCA(e conf.Entry, dir string) (*x509.CertPool, error) {
	v, err := e.String()
	if err != nil {
		return nil, err
	}
	return conf.LoadCertPool(resolve(dir, v), e)
}

// checkTLS makes sure every TLS listener has a certificate to serve.
func (c *Config) checkTLS() error {
	for _, l := range c.Server.Listen {
		if l.TLS && c.DefaultCert() == nil {
			return fmt.Errorf("%s: Listen %s tls: no site has a TLSCertificate", l.Where, l.Addr)
		}
	}
	return nil
}

// DefaultCert is the certificate for clients naming no known site: the
// default site's, or else the first site's that has one; nil when none has.
func (c *Config) DefaultCert() *tls.Certificate {
	for _, s := range c.Sites {
		if s.Cert != nil {
			return s.Cert
		}
	}
	return nil
}
