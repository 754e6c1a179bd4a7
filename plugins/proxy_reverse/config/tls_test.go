package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// TestHTTPSServers: https:// items, the TLS keys inherited from the
// defaults, and their errors at file:line.
func TestHTTPSServers(t *testing.T) {
	dir := t.TempDir()
	ca := hosttest.NewCA(t, "CA")
	cert, key := ca.Issue(t, "client")
	for name, b := range map[string][]byte{"ca.pem": ca.PEM, "c.pem": cert, "c.key": key, "junk": []byte("junk\n")} {
		hosttest.Must(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
	}
	path := filepath.Join(dir, "p.conf")
	cfg, err := Parse(path, strings.NewReader(`[PROXY_DEFAULTS]
    TLSCA ca.pem
    TLSServerName api.test
[PROXY_ENTRY]
    Match ^/a
    ServerList https://api.internal:443 http://10.0.0.1:80 10.0.0.2:80
    TLSCertificate c.pem
    TLSKey c.key
[PROXY_ENTRY]
    Match ^/b
    ServerList 10.0.0.3:80
`))
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.Entries[0], cfg.Entries[1]
	if got := a.Servers[0]; !got.TLS || got.Host != "api.internal" || got.String() != "https://api.internal:443" {
		t.Errorf("https item: %+v %s", got, got)
	}
	if a.Servers[1].TLS || a.Servers[2].TLS || a.Servers[1].String() != "10.0.0.1:80" {
		t.Errorf("plain items: %+v", a.Servers[1:])
	}
	if a.TLS == nil || a.TLS.RootCAs == nil || a.TLS.ServerName != "api.test" || len(a.TLS.Certificates) != 1 {
		t.Errorf("entry TLS: %+v", a.TLS)
	}
	if b.TLS != nil {
		t.Errorf("an entry without https:// items has TLS settings")
	}
	for conf, want := range map[string]string{
		"    TLSCA none.pem\n":                        "p.conf:4: TLSCA: cannot read CA file",
		"    TLSCA junk\n":                            "p.conf:4: TLSCA: " + filepath.Join(dir, "junk") + " holds no PEM certificate",
		"    TLSKey c.key\n":                          "p.conf:4: TLSKey: TLSKey without TLSCertificate",
		"    TLSCertificate c.pem\n    TLSKey junk\n": "p.conf:5: TLSKey: certificate",
		"    TLSCertificate none.pem\n":               "p.conf:4: TLSCertificate: cannot read certificate",
	} {
		_, err := Parse(path, strings.NewReader("[PROXY_ENTRY]\n    Match ^/\n    ServerList https://h:1\n"+conf))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", conf, err, want)
		}
	}
}
