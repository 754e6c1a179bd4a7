package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// tlsBackend is an HTTPS backend with a certificate from ca for names. It
// answers with the SNI it got, the client certificate's subject and the
// path, and counts new connections. With clients, it requires a client
// certificate from that CA.
type tlsBackend struct {
	*httptest.Server
	conns atomic.Int64
}

func newTLSBackend(t *testing.T, ca *hosttest.CA, clients *hosttest.CA, names ...string) *tlsBackend {
	t.Helper()
	certPEM, keyPEM := ca.Issue(t, names...)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	hosttest.Must(t, err)
	b := &tlsBackend{}
	b.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		subject := ""
		if len(r.TLS.PeerCertificates) > 0 {
			subject = r.TLS.PeerCertificates[0].Subject.String()
		}
		fmt.Fprintf(w, "sni=%s client=%s path=%s", r.TLS.ServerName, subject, r.URL.Path)
	}))
	b.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			b.conns.Add(1)
		}
	}
	b.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	if clients != nil {
		b.TLS.ClientAuth, b.TLS.ClientCAs = tls.RequireAndVerifyClientCert, clients.Pool()
	}
	b.StartTLS()
	t.Cleanup(b.Close)
	return b
}

func (b *tlsBackend) port() string {
	_, p, _ := net.SplitHostPort(b.Listener.Addr().String())
	return p
}

// TestE2EHTTPSBackends: ServerList https:// items reached over TLS —
// verified against a pinned CA (TLSCA), named by the item's host or by
// TLSServerName (sent as SNI), with a client certificate, connections
// pooled and kept alive; a certificate that does not verify gives 502 and
// a log line saying why.
func TestE2EHTTPSBackends(t *testing.T) {
	hosttest.CheckLeaks(t)
	ca := hosttest.NewCA(t, "backend CA")
	clients := hosttest.NewCA(t, "client CA")
	good := newTLSBackend(t, ca, nil, "localhost", "127.0.0.1")
	named := newTLSBackend(t, ca, nil, "backend.test")
	rogue := newTLSBackend(t, hosttest.NewCA(t, "rogue CA"), nil, "localhost", "127.0.0.1")
	mtls := newTLSBackend(t, ca, clients, "localhost")

	conf := "[PROXY_DEFAULTS]\n    StatisticsURL /proxy_stats\n    TLSCA ca.pem\n" +
		"[PROXY_ENTRY]\n    Match ^/good/\n    ServerList https://localhost:" + good.port() + "\n" +
		"[PROXY_ENTRY]\n    Match ^/ip/\n    ServerList https://127.0.0.1:" + good.port() + "\n" +
		"[PROXY_ENTRY]\n    Match ^/named/\n    ServerList https://127.0.0.1:" + named.port() + "\n    TLSServerName backend.test\n" +
		"[PROXY_ENTRY]\n    Match ^/wrongname/\n    ServerList https://localhost:" + named.port() + "\n" +
		"[PROXY_ENTRY]\n    Match ^/rogue/\n    ServerList https://localhost:" + rogue.port() + "\n" +
		"[PROXY_ENTRY]\n    Match ^/mtls/\n    ServerList https://localhost:" + mtls.port() + "\n" +
		"    TLSCertificate client.pem\n    TLSKey client.key\n" +
		"[PROXY_ENTRY]\n    Match ^/nocert/\n    ServerList https://localhost:" + mtls.port() + "\n"
	s := hosttest.NewSite(t, bin)
	s.Load("proxy_reverse")
	s.WriteFile("ca.pem", string(ca.PEM))
	cert, key := clients.Issue(t, "capuchin-proxy")
	s.WriteFile("client.pem", string(cert))
	s.WriteFile("client.key", string(key))
	s.WriteFile("proxy_reverse.conf", conf)
	p := s.StartChecked()

	c := hosttest.Dial(t, s.Addr())
	for i := range 10 {
		path := fmt.Sprintf("/good/%d", i)
		if r := c.Get(path); r.Status != 200 || string(r.Body) != "sni=localhost client= path="+path {
			t.Fatalf("%s: %d %q", path, r.Status, r.Body)
		}
	}
	if n := good.conns.Load(); n != 1 {
		t.Errorf("10 sequential requests opened %d backend connections, want 1 (pooled, kept alive)", n)
	}
	want := map[string]string{
		"/ip/x":    "sni= client= path=/ip/x", // an IP literal is verified against the IP, no SNI
		"/named/x": "sni=backend.test client= path=/named/x",
		"/mtls/x":  "sni=localhost client=CN=capuchin-proxy,O=Capuchin tests path=/mtls/x",
	}
	for path, body := range want {
		if r := c.Get(path); r.Status != 200 || string(r.Body) != body {
			t.Errorf("%s: %d %q, want %q", path, r.Status, r.Body, body)
		}
	}
	for _, path := range []string{"/rogue/x", "/wrongname/x", "/nocert/x"} {
		if r := hosttest.Dial(t, s.Addr()).Get(path); r.Status != 502 {
			t.Errorf("%s: %d, want 502", path, r.Status)
		}
	}
	for _, want := range []string{"certificate signed by unknown authority", "backend.test, not localhost"} {
		if !p.WaitLog(want) || !strings.Contains(p.Log(), "backend TLS handshake failed") {
			t.Errorf("no log line about %q:\n%s", want, p.Log())
		}
	}
}

// TestE2EHTTPSBackendStray: the stray-byte checks of pooled connections
// hold over TLS: bytes or a close arriving while a TLS connection is idle
// (on the socket, or already read by crypto/tls) retire it, and no client
// gets another's answer.
func TestE2EHTTPSBackendStray(t *testing.T) {
	hosttest.CheckLeaks(t)
	ca := hosttest.NewCA(t, "backend CA")
	certPEM, keyPEM := ca.Issue(t, "127.0.0.1")
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	hosttest.Must(t, err)
	answer := func(c net.Conn, req *http.Request) string {
		body := "answer to " + req.URL.Path
		return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	}
	cases := map[string]func(c net.Conn, req *http.Request){
		"late second answer": func(c net.Conn, req *http.Request) {
			io.WriteString(c, answer(c, req))
			time.Sleep(100 * time.Millisecond)
			io.WriteString(c, emptyOK)
		},
		"second answer in the next record": func(c net.Conn, req *http.Request) {
			io.WriteString(c, answer(c, req))
			io.WriteString(c, emptyOK)
		},
		"close while idle": func(c net.Conn, req *http.Request) {
			io.WriteString(c, answer(c, req))
			time.Sleep(100 * time.Millisecond)
			c.Close()
		},
	}
	for name, late := range cases {
		t.Run(name, func(t *testing.T) {
			be := newRaw(t, "", func(c net.Conn, _ *bufio.Reader) {
				tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{pair}})
				strayServe(tc, bufio.NewReader(tc), "/api/late", late)
			})
			s := hosttest.NewSite(t, bin)
			s.Load("proxy_reverse")
			s.WriteFile("ca.pem", string(ca.PEM))
			s.WriteFile("proxy_reverse.conf", entryConf("Naive", "https://"+be.Addr(), "TLSCA ca.pem"))
			s.StartChecked()
			a := hosttest.Dial(t, s.Addr())
			a.Send("GET /api/late HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			a.MustRead("GET")
			time.Sleep(300 * time.Millisecond)
			for _, path := range []string{"/api/userB", "/api/userC"} {
				if r := hosttest.Dial(t, s.Addr()).Get(path); r.Status != 200 || string(r.Body) != "answer to "+path {
					t.Fatalf("%s got %d %q, not its own answer", path, r.Status, r.Body)
				}
			}
			if n := strayClosed(t, s); n != 1 {
				t.Fatalf("stray connections closed: %d, want 1", n)
			}
		})
	}
}

// strayServe is strayBackend's loop on an already wrapped connection.
func strayServe(c net.Conn, br *bufio.Reader, trigger string, late func(c net.Conn, req *http.Request)) {
	for {
		req, ok := readHead(br)
		if !ok {
			return
		}
		io.Copy(io.Discard, req.Body)
		if req.URL.Path == trigger {
			late(c, req)
			continue
		}
		body := "answer to " + req.URL.Path
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	}
}
