package integration

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/hosttest"
)

// tlsSite is a site with an HTTPS listener (certificate for 127.0.0.1 and
// localhost) and a second site, b.test, with its own certificate and files.
func tlsSite(t *testing.T) (*site, *hosttest.CA, string) {
	t.Helper()
	ca := hosttest.NewCA(t, "test CA")
	s := newSite(t)
	addr := s.AddTLS(ca)
	s.WriteCert(ca, "b", "b.test", "*.b.test")
	s.WriteFile("wwwb/index.html", "site b\n")
	s.WriteFile("sites/b", "[HOST]\n    ServerName b.test *.b.test\n    DocumentRoot wwwb\n"+
		"    TLSCertificate tls/b.pem\n    TLSKey tls/b.key\n")
	return s, ca, addr
}

// httpsGet fetches url with c and returns the status, body and TLS state.
func httpsGet(t *testing.T, c *http.Client, url string) (int, string, *tls.ConnectionState) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	return resp.StatusCode, string(b), resp.TLS
}

// tlsDial opens a TLS connection to addr with conf and completes the
// handshake.
func tlsDial(t *testing.T, addr string, conf *tls.Config) *tls.Conn {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, conf)
	if err != nil {
		t.Fatalf("tls dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestTLSStatic: static files over HTTPS with Go's client (TLS 1.3 and
// 1.2, ALPN http/1.1, keep-alive), the certificate picked by SNI (exact
// and wildcard), the default certificate for an unknown name, session
// resumption, and the plain listener still plain.
func TestTLSStatic(t *testing.T) {
	s, ca, addr := tlsSite(t)
	s.Start()
	c := hosttest.HTTPSClient(ca, "")
	defer c.CloseIdleConnections()
	st, body, cs := httpsGet(t, c, "https://"+addr+"/")
	if st != 200 || body != "<h1>hello</h1>\n" {
		t.Fatalf("https /: %d %q", st, body)
	}
	if cs.Version != tls.VersionTLS13 {
		t.Errorf("version %x, want TLS 1.3", cs.Version)
	}
	alpn := tlsDial(t, addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", NextProtos: []string{"h2", "http/1.1"}})
	if p := alpn.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
		t.Errorf("ALPN offering h2 and http/1.1: %q, want http/1.1", p)
	}
	if st, body, _ := httpsGet(t, c, s.URL("/")); st != 200 || body != "<h1>hello</h1>\n" {
		t.Fatalf("plain listener: %d %q", st, body)
	}

	conf := &tls.Config{RootCAs: ca.Pool(), ServerName: "b.test", MaxVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	tc := tlsDial(t, addr, conf)
	if st := tc.ConnectionState(); st.Version != tls.VersionTLS12 || st.PeerCertificates[0].Subject.CommonName != "b.test" ||
		st.NegotiatedProtocol != "http/1.1" {
		t.Errorf("TLS 1.2 to b.test: version %x, certificate %q, ALPN %q", st.Version, st.PeerCertificates[0].Subject.CommonName, st.NegotiatedProtocol)
	}
	r := hosttest.NewClient(t, tc).RoundTrip("GET / HTTP/1.1\r\nHost: b.test\r\n\r\n")
	if r.Status != 200 || string(r.Body) != "site b\n" {
		t.Errorf("b.test over TLS 1.2: %d %q", r.Status, r.Body)
	}
	if cn := peerCN(t, addr, "x.b.test"); cn != "b.test" {
		t.Errorf("wildcard name got certificate %q, want b.test's", cn)
	}
	if cn := peerCN(t, addr, "unknown.example"); cn != "127.0.0.1" {
		t.Errorf("unknown name got certificate %q, want the default site's", cn)
	}
	if cn := peerCN(t, addr, ""); cn != "127.0.0.1" {
		t.Errorf("no SNI got certificate %q, want the default site's", cn)
	}
	checkResumption(t, ca, addr)
}

// peerCN returns the common name of the certificate served for sni.
func peerCN(t *testing.T, addr, sni string) string {
	t.Helper()
	c := tlsDial(t, addr, &tls.Config{InsecureSkipVerify: true, ServerName: sni})
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// checkResumption: a second connection resumes the first one's session,
// with TLS 1.3 and with TLS 1.2.
func checkResumption(t *testing.T, ca *hosttest.CA, addr string) {
	t.Helper()
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		conf := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MaxVersion: v,
			ClientSessionCache: tls.NewLRUClientSessionCache(4)}
		for i := range 2 {
			tc := tlsDial(t, addr, conf)
			// Read a response: TLS 1.3 tickets come after the handshake.
			if r := hosttest.NewClient(t, tc).Get("/"); r.Status != 200 {
				t.Fatalf("TLS %x: %d", v, r.Status)
			}
			if resumed := tc.ConnectionState().DidResume; resumed != (i == 1) {
				t.Errorf("TLS %x connection %d: resumed=%v", v, i+1, resumed)
			}
			tc.Close()
		}
	}
}

// TestTLSCurl: curl over HTTPS, checking the certificate against the CA,
// for both sites.
func TestTLSCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	s, ca, addr := tlsSite(t)
	s.WriteFile("tls/ca.pem", string(ca.PEM))
	s.WriteRoot("big.bin", strings.Repeat("0123456789abcdef", 1<<16)) // 1 MiB
	s.Start()
	_, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command("curl", "-sS", "--cacert", s.Path("tls/ca.pem"), "https://localhost:"+port+"/",
		"--resolve", "b.test:"+port+":127.0.0.1", "https://b.test:"+port+"/", "https://localhost:"+port+"/big.bin").CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	if want := "<h1>hello</h1>\nsite b\n" + strings.Repeat("0123456789abcdef", 1<<16); string(out) != want {
		t.Fatalf("curl got %d bytes, want %d; start %q", len(out), len(want), out[:min(len(out), 64)])
	}
}

// TestTLSWrongProtocol: a plain HTTP request on the TLS port gets a plain
// 400 saying so; a TLS hello on the plain port fails the handshake; both
// ports keep serving.
func TestTLSWrongProtocol(t *testing.T) {
	s, ca, addr := tlsSite(t)
	s.Start()
	c := dial(t, addr)
	c.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	r := c.MustRead("GET")
	if r.Status != 400 || !strings.Contains(string(r.Body), "plain HTTP request sent to an HTTPS port") {
		t.Errorf("plain HTTP on the TLS port: %d %q", r.Status, r.Body)
	}
	if !c.Closed(3 * time.Second) {
		t.Error("connection not closed after the 400")
	}
	nc, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
	must(t, err)
	defer nc.Close()
	tc := tls.Client(nc, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Errorf("TLS hello on the plain port: handshake error %v, want a prompt failure", err)
	}
	hc := hosttest.HTTPSClient(ca, "")
	defer hc.CloseIdleConnections()
	if st, _, _ := httpsGet(t, hc, "https://"+addr+"/"); st != 200 {
		t.Errorf("TLS port after: %d", st)
	}
	if r := dial(t, s.Addr()).Get("/"); r.Status != 200 {
		t.Errorf("plain port after: %d", r.Status)
	}
}

// TestTLSRedirectHTTPS: a site with RedirectHTTPS sends plain-HTTP
// requests to https:// and serves TLS ones.
func TestTLSRedirectHTTPS(t *testing.T) {
	s, ca, addr := tlsSite(t)
	_, port, _ := net.SplitHostPort(addr)
	s.WriteFile("sites/b", "[HOST]\n    ServerName b.test\n    DocumentRoot wwwb\n"+
		"    TLSCertificate tls/b.pem\n    TLSKey tls/b.key\n    RedirectHTTPS "+port+"\n")
	s.Start()
	c := dial(t, s.Addr())
	c.Send("GET /a/b?c=d HTTP/1.1\r\nHost: b.test:2001\r\n\r\n")
	r := c.MustRead("GET")
	if want := "https://b.test:" + port + "/a/b?c=d"; r.Status != 301 || r.Header.Get("Location") != want {
		t.Errorf("plain request: %d Location %q, want 301 %q", r.Status, r.Header.Get("Location"), want)
	}
	if r := c.Get("/"); r.Status != 200 {
		t.Errorf("the default site (no redirect) over plain HTTP: %d", r.Status)
	}
	tc := tlsDial(t, addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "b.test"})
	tr := hosttest.NewClient(t, tc).RoundTrip("GET / HTTP/1.1\r\nHost: b.test\r\n\r\n")
	if tr.Status != 200 || string(tr.Body) != "site b\n" {
		t.Errorf("over TLS: %d %q", tr.Status, tr.Body)
	}
}

// TestTLSConfigErrors: a missing, unreadable or mismatched certificate, a
// TLS listener without any certificate, and a bad Listen suffix are
// configuration errors with file:line, from capuchin -t and at start.
func TestTLSConfigErrors(t *testing.T) {
	ca := hosttest.NewCA(t, "test CA")
	other := hosttest.NewCA(t, "other CA")
	cases := []struct {
		name, file, content, want string
		prep                      func(s *site)
	}{
		{"missing certificate", "sites/default", "[HOST]\n    DocumentRoot www\n    TLSCertificate tls/none.pem\n",
			"sites/default:3: TLSCertificate: cannot read certificate", nil},
		{"not a certificate", "sites/default", "[HOST]\n    DocumentRoot www\n    TLSCertificate tls/junk.pem\n    TLSKey tls/c.key\n",
			"sites/default:3: TLSCertificate: bad certificate", func(s *site) { s.WriteFile("tls/junk.pem", "hello\n") }},
		{"key of another certificate", "sites/default", "[HOST]\n    DocumentRoot www\n    TLSCertificate tls/c.pem\n    TLSKey tls/d.key\n",
			"sites/default:4: TLSKey: certificate", func(s *site) { s.WriteCert(other, "d", "d.test") }},
		{"missing key", "sites/default", "[HOST]\n    DocumentRoot www\n    TLSCertificate tls/c.pem\n    TLSKey tls/none.key\n",
			"sites/default:4: TLSKey: cannot read key", nil},
		{"key without certificate", "sites/default", "[HOST]\n    DocumentRoot www\n    TLSKey tls/c.key\n",
			"sites/default:3: TLSKey: TLSKey without TLSCertificate", nil},
		{"TLS listener without certificate", "sites/default", "[HOST]\n    DocumentRoot www\n",
			"capuchin.conf:3: Listen 127.0.0.1:", nil},
		{"bad RedirectHTTPS", "sites/default", "[HOST]\n    DocumentRoot www\n    TLSCertificate tls/c.pem\n    TLSKey tls/c.key\n    RedirectHTTPS maybe\n",
			"sites/default:5: RedirectHTTPS: want on, off or a port", nil},
		{"bad client CA", "capuchin.conf", "[SERVER]\n    Listen 127.0.0.1:1\n    TLSClientCA tls/c.key\n",
			"capuchin.conf:3: TLSClientCA:", nil},
		{"bad Listen suffix", "capuchin.conf", "[SERVER]\n    Listen 127.0.0.1:1 ssl\n", "capuchin.conf:2: Listen: want ADDR or ADDR tls", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t)
			s.Server = append(s.Server, "Listen 127.0.0.1:"+itoa(freePort(t))+" tls")
			s.WriteConf()
			s.WriteCert(ca, "c", "c.test")
			if tc.prep != nil {
				tc.prep(s)
			}
			s.WriteFile(tc.file, tc.content)
			code, out := runCapuchin(t, "-t", "-c", s.Dir)
			if code == 0 || !strings.Contains(out, filepath.Join(s.Dir, tc.want)) {
				t.Fatalf("exit %d, output %q, want it to contain %q", code, out, tc.want)
			}
			if code, out := runCapuchin(t, "-c", s.Dir); code == 0 || !strings.Contains(out, tc.want) {
				t.Fatalf("start: exit %d, %q", code, out)
			}
		})
	}
}

// TestTLSClientCertificate: stage 10 sees the SNI; with TLSClientCA, a
// client certificate signed by that CA is accepted and stage 20 sees its
// subject, through the host and under a lease (asked by the lease holder,
// hello); a client without one is served too; one from another CA is
// refused.
func TestTLSClientCertificate(t *testing.T) {
	pluginTest(t)
	s, ca, addr := tlsSite(t)
	clients := hosttest.NewCA(t, "client CA")
	s.WriteFile("tls/clients.pem", string(clients.PEM))
	s.Server = append(s.Server, "TLSClientCA tls/clients.pem")
	s.LoadFrom(testPlugins(t), "gate", "hello")
	s.StartChecked()

	certPEM, keyPEM := clients.Issue(t, "alice")
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	must(t, err)
	facts := func(conf *tls.Config) (string, error) {
		nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, conf)
		if err != nil {
			return "", err
		}
		defer nc.Close()
		c := hosttest.NewClient(t, nc)
		var got []string // through the host; the lease's first request; under the lease
		for _, p := range []string{"/tls-facts", "/hello/x", "/hello/tls-facts"} {
			c.Send("GET " + p + " HTTP/1.1\r\nHost: localhost\r\n\r\n")
			r, err := c.Read("GET")
			if err != nil {
				return "", err
			}
			got = append(got, string(r.Body))
		}
		if got[2] != got[0] {
			t.Errorf("stage 20 under the lease saw %q, through the host %q", got[2], got[0])
		}
		return got[0], nil
	}
	// Stage 10 sees the SNI: the gate closes connections naming blocked.test.
	blocked := tlsDial(t, addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "blocked.test", InsecureSkipVerify: true})
	if !hosttest.NewClient(t, blocked).Closed(3 * time.Second) {
		t.Error("stage 10 did not close a connection whose SNI is blocked.test")
	}
	got, err := facts(&tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{pair}})
	if want := "scheme=https tls=true version=TLS1.3 sni=localhost cert=true subject=CN=alice,O=Capuchin tests"; err != nil || got != want {
		t.Errorf("with a client certificate: %q, %v; want %q", got, err, want)
	}
	got, err = facts(&tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
	if want := "scheme=https tls=true version=TLS1.3 sni=localhost cert=false subject="; err != nil || got != want {
		t.Errorf("without a client certificate: %q, %v; want %q", got, err, want)
	}
	badPEM, badKey := hosttest.NewCA(t, "rogue").Issue(t, "mallory")
	bad, err := tls.X509KeyPair(badPEM, badKey)
	must(t, err)
	send := func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &bad, nil }
	if got, err := facts(&tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", GetClientCertificate: send}); err == nil {
		t.Errorf("a certificate from another CA was accepted: %q", got)
	}
}

// certSerial returns the serial of the certificate addr serves.
func certSerial(addr string, pool *x509.CertPool) (string, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

// TestTLSReloadCertificate: SIGHUP swaps the certificate while clients
// keep making requests, on new connections and on kept-alive ones: no
// request fails, kept-alive connections stay open, and new connections get
// the new certificate.
func TestTLSReloadCertificate(t *testing.T) {
	s, ca, addr := tlsSite(t)
	p := s.Start()
	before, err := certSerial(addr, ca.Pool())
	must(t, err)

	stop := make(chan struct{})
	errs := make(chan error, 64)
	counts := make(chan int, 4)
	for w := range 4 {
		go func() { counts <- tlsLoad(addr, ca, w%2 == 0, stop, errs) }()
	}
	time.Sleep(300 * time.Millisecond)
	s.WriteCert(ca, "default", "127.0.0.1", "localhost")
	p.Signal(syscall.SIGHUP)
	if !p.WaitLog("configuration reloaded") {
		t.Fatalf("no reload:\n%s", p.Log())
	}
	after, err := certSerial(addr, ca.Pool())
	must(t, err)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	total := 0
	for range 4 {
		total += <-counts
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if after == before {
		t.Errorf("certificate serial %s unchanged after the reload", after)
	}
	if total < 20 {
		t.Errorf("only %d requests made under load", total)
	}
}

// tlsLoad makes requests until stop, over one kept-alive connection
// (keep) or a new connection each time, and returns how many succeeded.
func tlsLoad(addr string, ca *hosttest.CA, keep bool, stop <-chan struct{}, errs chan<- error) int {
	conf := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
	var nc *tls.Conn
	var br *bufio.Reader
	defer func() {
		if nc != nil {
			nc.Close()
		}
	}()
	for n := 0; ; n++ {
		select {
		case <-stop:
			return n
		default:
		}
		if nc == nil || !keep {
			if nc != nil {
				nc.Close()
			}
			var err error
			if nc, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, conf); err != nil {
				errs <- fmt.Errorf("request %d: dial: %w", n, err)
				return n
			}
			br = bufio.NewReader(nc)
		}
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(nc, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
		var resp http1.Response
		if err := http1.ReadResponse(br, nil, &resp); err != nil || resp.Status != 200 {
			errs <- fmt.Errorf("request %d (keep-alive %v): status %d, %v", n, keep, resp.Status, err)
			return n
		}
		if _, err := br.Discard(int(resp.ContentLength)); err != nil {
			errs <- fmt.Errorf("request %d: body: %w", n, err)
			return n
		}
		if resp.Close { // MaxKeepAliveRequest reached
			nc.Close()
			nc = nil
		}
	}
}

// TestTLSShutdownDuringHandshake: a connection still waiting for its TLS
// hello does not hold up a graceful shutdown (it is closed like an idle
// one, not after the grace period).
func TestTLSShutdownDuringHandshake(t *testing.T) {
	s, _, addr := tlsSite(t)
	s.Server = append(s.Server, "ShutdownTimeout 2")
	p := s.Start()
	silent := dial(t, addr)
	silent.Send("\x16") // the first byte of a hello, and no more: accepted (see DeferAccept), waiting
	time.Sleep(200 * time.Millisecond)
	p.Signal(syscall.SIGTERM)
	if !silent.Closed(3 * time.Second) {
		t.Error("connection waiting for its hello not closed on shutdown")
	}
	err, ok := p.Wait(5 * time.Second)
	if !ok || err != nil || strings.Contains(p.Log(), "still busy") {
		t.Fatalf("exit: %v (exited: %v)\n%s", err, ok, p.Log())
	}
}

// TestTLSListenerReload: a reload that adds "tls" to a listener makes its
// new connections HTTPS (and removing it makes them plain again), while a
// connection accepted before keeps its protocol.
func TestTLSListenerReload(t *testing.T) {
	s, ca, _ := tlsSite(t)
	p := s.Start()
	before := dial(t, s.Addr())
	if r := before.Get("/"); r.Status != 200 {
		t.Fatalf("plain before: %d", r.Status)
	}
	reload := func(extra string) {
		t.Helper()
		s.WriteFile("capuchin.conf", "[SERVER]\n    Listen "+s.Addr()+extra+"\n")
		n := p.CountLog("configuration reloaded")
		p.Signal(syscall.SIGHUP)
		if !p.WaitLogCount("configuration reloaded", n+1) {
			t.Fatalf("no reload:\n%s", p.Log())
		}
	}
	reload(" tls")
	tc := hosttest.NewClient(t, tlsDial(t, s.Addr(), &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}))
	if r := tc.Get("/"); r.Status != 200 || string(r.Body) != "<h1>hello</h1>\n" {
		t.Errorf("HTTPS after the reload: %d %q", r.Status, r.Body)
	}
	if r := before.Get("/"); r.Status != 200 {
		t.Errorf("plain connection from before the reload: %d", r.Status)
	}
	reload("")
	if r := dial(t, s.Addr()).Get("/"); r.Status != 200 {
		t.Errorf("plain again: %d", r.Status)
	}
}
