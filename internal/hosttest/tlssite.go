package hosttest

import (
	"crypto/tls"
	"net"
	"net/http"
	"strconv"
	"time"
)

// AddTLS gives s an HTTPS listener on a free port of 127.0.0.1 (a
// "Listen ADDR tls" line in Server) and sites/default a certificate from
// ca for 127.0.0.1 and localhost (tls/default.pem and .key). It returns
// the listener's address.
func (s *Site) AddTLS(ca *CA) string {
	s.t.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(s.t)))
	s.Server = append(s.Server, "Listen "+addr+" tls")
	s.Also = append(s.Also, addr)
	s.WriteCert(ca, "default", "127.0.0.1", "localhost")
	s.WriteFile("sites/default", "[HOST]\n    ServerName 127.0.0.1 localhost\n    DocumentRoot www\n"+
		"    TLSCertificate tls/default.pem\n    TLSKey tls/default.key\n")
	return addr
}

// WriteCert writes a certificate from ca for names and its key to
// tls/NAME.pem and tls/NAME.key in the configuration directory.
func (s *Site) WriteCert(ca *CA, name string, names ...string) {
	s.t.Helper()
	cert, key := ca.Issue(s.t, names...)
	s.WriteFile("tls/"+name+".pem", string(cert))
	s.WriteFile("tls/"+name+".key", string(key))
}

// HTTPSClient is an http.Client that trusts only ca, keeps connections
// alive and names serverName in its hellos (empty: the URL's host).
func HTTPSClient(ca *CA, serverName string) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: ca.Pool(), ServerName: serverName},
			ForceAttemptHTTP2: false,
		},
	}
}
