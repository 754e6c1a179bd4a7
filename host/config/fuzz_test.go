package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad: a configuration directory whose capuchin.conf and default
// site file hold any text either loads or fails with an error that names
// the file it found wrong (with its line when the fault is on one); no
// text panics.
func FuzzLoad(f *testing.F) {
	server, _ := os.ReadFile("../../conf/capuchin.conf")
	for _, s := range []struct{ server, site string }{
		{string(server), "[HOST]\n    DocumentRoot www\n"},
		{"[SERVER]\n    Listen 127.0.0.1:0\n    Timeout 0\n    MaxRequestSize 1\n", "[HOST]\n    ServerName a b\n    DocumentRoot www\n[ERROR_PAGES]\n    404 404.html\n"},
		{"[SERVER]\n    Listen [::1]:99999\n    KeepAlive maybe\n", "[HOST]\n    DocumentRoot /\n    Redirect_HTTPS 301\n"},
		{"[SERVER]\n    Listen 2001 tls\n", "[HOST]\n    DocumentRoot www\n    TLS_Certificate x.pem\n"},
		{"[SERVER]\n    Listen 127.0.0.1:0\n    MaxHeaderSize -1\n    IndexFile\n", "[HOST]\n"},
	} {
		f.Add(s.server, s.site)
	}
	f.Fuzz(func(t *testing.T, server, site string) {
		dir := t.TempDir()
		for name, text := range map[string]string{"capuchin.conf": server, "sites/default": site, "www/index.html": "hi"} {
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		c, err := Load(dir)
		if err != nil {
			if msg := err.Error(); !strings.Contains(msg, filepath.Join(dir, "capuchin.conf")) && !strings.Contains(msg, filepath.Join(dir, "sites", "default")) {
				t.Fatalf("error names neither file: %v", err)
			}
			return
		}
		if len(c.Sites) == 0 || len(c.Server.Listen) == 0 {
			t.Fatalf("loaded without a site or a listener: %+v", c)
		}
	})
}
