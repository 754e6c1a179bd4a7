package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeConf writes a minimal configuration in dir: the server, one site.
func writeConf(t *testing.T, dir string) {
	t.Helper()
	for name, text := range map[string]string{
		"capuchin.conf": "[SERVER]\n    Listen 127.0.0.1:0\n",
		"sites/default": "[HOST]\n    DocumentRoot www\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "www"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestPathsNotUTF8: a configuration directory, or a site file, whose path
// is not UTF-8 is refused with its path: the paths under it and the site's
// name go to plugins as protobuf strings, which must be UTF-8 (one that is
// not failed every event that carried it).
func TestPathsNotUTF8(t *testing.T) {
	good := t.TempDir()
	writeConf(t, good)
	if _, err := Load(good); err != nil {
		t.Fatalf("the minimal configuration: %v", err)
	}
	site := filepath.Join(good, "sites", "caf\xe9")
	if err := os.WriteFile(site, []byte("[HOST]\n    ServerName example.com\n    DocumentRoot www\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(good); err == nil || !strings.Contains(err.Error(), "name is not UTF-8") {
		t.Errorf("a site file whose name is not UTF-8: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "conf\xff")
	writeConf(t, bad)
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), "path is not UTF-8") {
		t.Errorf("a configuration directory whose path is not UTF-8: %v", err)
	}
}

// TestDeferAccept: DeferAccept is on unless the configuration says off,
// and a value that is not on or off is refused with its file and line.
func TestDeferAccept(t *testing.T) {
	dir := t.TempDir()
	writeConf(t, dir)
	conf := filepath.Join(dir, "capuchin.conf")
	for _, tc := range []struct {
		line string
		want bool
		err  string
	}{
		{"", true, ""},
		{"    DeferAccept off\n", false, ""},
		{"    DeferAccept on\n", true, ""},
		{"    DeferAccept later\n", false, conf + ":3"},
	} {
		text := "[SERVER]\n    Listen 127.0.0.1:0\n" + tc.line
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Load(dir)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want one naming %s", tc.line, err, tc.err)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.line, err)
		case c.Server.DeferAccept != tc.want:
			t.Errorf("%q: DeferAccept %v, want %v", tc.line, c.Server.DeferAccept, tc.want)
		}
	}
}
