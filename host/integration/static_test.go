package integration

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestStaticWithGoClient covers the static handler through the binary with
// Go's HTTP client: index, redirects, errors, custom error pages,
// validators, conditional requests and ranges.
func TestStaticWithGoClient(t *testing.T) {
	s := newSite(t)
	s.WriteRoot("docs/index.htm", "docs index")
	s.WriteRoot("file.CSS", "body{}")
	s.WriteRoot("data.bin", "0123456789")
	s.WriteRoot("404.html", "<p>custom missing page</p>")
	s.WriteFile("sites/default", "[HOST]\n    DocumentRoot www\n[ERROR_PAGES]\n    404 404.html\n")
	must(t, os.Symlink(filepath.Join(s.Root, "data.bin"), filepath.Join(s.Root, "link.bin")))
	s.Start()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer c.CloseIdleConnections()

	do := func(method, path string, hdr ...string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, s.URL(path), nil)
		must(t, err)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		must(t, err)
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	body := func(r *http.Response) string {
		b := new(strings.Builder)
		_, err := io.Copy(b, r.Body)
		must(t, err)
		return b.String()
	}

	if r := do("GET", "/"); r.StatusCode != 200 || body(r) != "<h1>hello</h1>\n" || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Errorf("index: %d %v", r.StatusCode, r.Header)
	}
	if r := do("GET", "/docs?x=1"); r.StatusCode != 301 || r.Header.Get("Location") != "/docs/?x=1" {
		t.Errorf("directory without slash: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	if r := do("GET", "/docs/"); r.StatusCode != 200 || body(r) != "docs index" {
		t.Errorf("second index file: %d", r.StatusCode)
	}
	if r := do("GET", "/nope"); r.StatusCode != 404 || !strings.Contains(body(r), "custom missing page") {
		t.Errorf("custom 404: %d", r.StatusCode)
	}
	if r := do("GET", "/link.bin"); r.StatusCode != 403 {
		t.Errorf("symlink with SymLink off: %d", r.StatusCode)
	}
	if r := do("GET", "/%2e%2e/%2e%2e/etc/passwd"); r.StatusCode != 403 && r.StatusCode != 400 && r.StatusCode != 404 {
		t.Errorf("encoded traversal: %d", r.StatusCode)
	}
	if r := do("GET", "/file.css"); r.StatusCode != 404 {
		t.Errorf("case-sensitive file names: %d", r.StatusCode)
	}
	r := do("GET", "/file.CSS")
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/css") {
		t.Errorf("MIME by upper-case extension: %q", r.Header.Get("Content-Type"))
	}
	etag, lm := r.Header.Get("ETag"), r.Header.Get("Last-Modified")
	if etag == "" || lm == "" {
		t.Fatalf("validators missing: %v", r.Header)
	}
	if r := do("GET", "/file.CSS", "If-None-Match", etag); r.StatusCode != 304 || r.Header.Get("ETag") != etag {
		t.Errorf("If-None-Match: %d", r.StatusCode)
	}
	if r := do("GET", "/file.CSS", "If-Modified-Since", lm); r.StatusCode != 304 {
		t.Errorf("If-Modified-Since: %d", r.StatusCode)
	}
	if r := do("GET", "/data.bin", "Range", "bytes=2-5"); r.StatusCode != 206 || body(r) != "2345" || r.Header.Get("Content-Range") != "bytes 2-5/10" {
		t.Errorf("range: %d %q", r.StatusCode, r.Header.Get("Content-Range"))
	}
	if r := do("GET", "/data.bin", "Range", "bytes=-3"); r.StatusCode != 206 || body(r) != "789" {
		t.Errorf("suffix range: %d", r.StatusCode)
	}
	if r := do("GET", "/data.bin", "Range", "bytes=20-"); r.StatusCode != 416 || r.Header.Get("Content-Range") != "bytes */10" {
		t.Errorf("unsatisfiable range: %d %q", r.StatusCode, r.Header.Get("Content-Range"))
	}
	if r := do("HEAD", "/data.bin"); r.StatusCode != 200 || r.ContentLength != 10 {
		t.Errorf("HEAD: %d %d", r.StatusCode, r.ContentLength)
	}
}

// TestStaticWithCurl: what a new user does first.
func TestStaticWithCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	s := newSite(t)
	s.WriteRoot("big.bin", strings.Repeat("0123456789abcdef", 1<<16)) // 1 MiB
	s.Start()
	out, err := exec.Command("curl", "-si", s.URL("/")).CombinedOutput()
	must(t, err)
	if !strings.HasPrefix(string(out), "HTTP/1.1 200 OK") || !strings.Contains(string(out), "<h1>hello</h1>") {
		t.Fatalf("curl -i /:\n%s", out)
	}
	out, err = exec.Command("curl", "-s", "-r", "1048570-", s.URL("/big.bin")).CombinedOutput()
	must(t, err)
	if string(out) != "abcdef" {
		t.Fatalf("curl -r: %q", out)
	}
	dst := filepath.Join(t.TempDir(), "big.bin")
	must(t, exec.Command("curl", "-s", "-o", dst, s.URL("/big.bin")).Run())
	got, err := os.ReadFile(dst)
	must(t, err)
	if string(got) != strings.Repeat("0123456789abcdef", 1<<16) {
		t.Fatalf("curl download: %d bytes differ", len(got))
	}
}

// TestVirtualHosts: the Host header picks the site; unknown names get the
// default; a Redirect site answers 301 to its URL plus the target.
func TestVirtualHosts(t *testing.T) {
	s := newSite(t)
	must(t, os.MkdirAll(filepath.Join(s.Dir, "other"), 0o755))
	s.WriteFile("other/index.html", "other site")
	s.WriteFile("sites/other", "[HOST]\n    ServerName other.test www.other.test\n    DocumentRoot other\n")
	s.WriteFile("sites/moved", "[HOST]\n    ServerName old.test\n    Redirect https://new.test/\n")
	s.Start()
	for host, want := range map[string]string{
		"other.test": "other site", "WWW.OTHER.TEST:80": "other site",
		"unknown.test": "<h1>hello</h1>\n", "127.0.0.1": "<h1>hello</h1>\n",
	} {
		c := dial(t, s.Addr())
		c.Send("GET / HTTP/1.1\r\nHost: " + host + "\r\n\r\n")
		if r := c.MustRead("GET"); r.Status != 200 || string(r.Body) != want {
			t.Errorf("Host %s: %d %q, want %q", host, r.Status, r.Body, want)
		}
	}
	c := dial(t, s.Addr())
	c.Send("GET /a/b?c=d HTTP/1.1\r\nHost: old.test\r\n\r\n")
	r := c.MustRead("GET")
	if r.Status != 301 || r.Header.Get("Location") != "https://new.test/a/b?c=d" {
		t.Errorf("redirect site: %d %q", r.Status, r.Header.Get("Location"))
	}
}
