package static

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// site is a document root with a few files, plus a secret next to it that
// must never be served.
func site(t *testing.T) (root string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "www")
	writeFiles(t, base, map[string]string{
		"secret.txt":             "SECRET",
		"www/hello.txt":          "hello, world\n",
		"www/index.html":         "<h1>root index</h1>",
		"www/docs/index.htm":     "docs htm",
		"www/both/index.html":    "both html",
		"www/both/index.htm":     "both htm",
		"www/empty/":             "",
		"www/idxdir/index.html/": "",
		"www/idxdir/index.htm":   "idxdir htm",
		"www/my dir/a.txt":       "spaced",
		"www/a/b.txt":            "nested",
		"www/page.HTML":          "upper",
		"www/style.Css":          "css",
		"www/data.xyz":           "unknown",
		"www/README":             "no extension",
		"www/zero.txt":           "",
	})
	return root
}

func TestGet(t *testing.T) {
	root := site(t)
	s := startServer(t, newHandler(), root)
	resp, body := get(t, client(t), "GET", "http://"+s.Addr+"/hello.txt")
	wantStatus(t, resp, 200)
	if body != "hello, world\n" {
		t.Fatalf("body %q", body)
	}
	fi, err := os.Stat(filepath.Join(root, "hello.txt"))
	if err != nil {
		t.Fatal(err)
	}
	wantField(t, resp, "Content-Type", "text/plain; charset=utf-8")
	wantField(t, resp, "Content-Length", "13")
	wantField(t, resp, "Accept-Ranges", "bytes")
	wantField(t, resp, "Server", "capuchin")
	wantField(t, resp, "Last-Modified", fi.ModTime().UTC().Format(http.TimeFormat))
	wantField(t, resp, "ETag", fmt.Sprintf(`"%x-%x"`, fi.Size(), fi.ModTime().UnixNano()))
	if _, err := http.ParseTime(resp.Header.Get("Date")); err != nil {
		t.Errorf("Date: %v", err)
	}
}

func TestGetEmptyFile(t *testing.T) {
	s := startServer(t, newHandler(), site(t))
	resp, body := get(t, client(t), "GET", "http://"+s.Addr+"/zero.txt")
	wantStatus(t, resp, 200)
	wantField(t, resp, "Content-Length", "0")
	if body != "" {
		t.Fatalf("body %q", body)
	}
}

func TestHead(t *testing.T) {
	s := startServer(t, newHandler(), site(t))
	r := dialRaw(t, s.Addr)
	resp, body := r.do("HEAD", "/hello.txt")
	wantStatus(t, resp, 200)
	wantField(t, resp, "Content-Length", "13")
	wantField(t, resp, "Content-Type", "text/plain; charset=utf-8")
	if body != "" {
		t.Fatalf("HEAD body %q", body)
	}
	// No stray body bytes: the next response on the connection parses.
	resp, body = r.do("GET", "/hello.txt")
	wantStatus(t, resp, 200)
	if body != "hello, world\n" {
		t.Fatalf("body after HEAD %q", body)
	}
}

func TestOptions(t *testing.T) {
	s := startServer(t, newHandler(), site(t))
	r := dialRaw(t, s.Addr)
	for _, target := range []string{"*", "/hello.txt"} {
		resp, body := r.do("OPTIONS", target)
		wantStatus(t, resp, 204)
		wantField(t, resp, "Allow", "GET, HEAD, OPTIONS")
		if _, ok := resp.Header["Content-Length"]; ok || body != "" {
			t.Fatalf("OPTIONS %s: Content-Length %q, body %q", target, resp.Header.Get("Content-Length"), body)
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	s := startServer(t, newHandler(), site(t))
	c := client(t)
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
		resp, _ := get(t, c, m, "http://"+s.Addr+"/hello.txt")
		wantStatus(t, resp, 405)
		allow := resp.Header.Get("Allow")
		if !strings.Contains(allow, "GET") || !strings.Contains(allow, "HEAD") {
			t.Errorf("%s: Allow %q", m, allow)
		}
	}
}

func TestNotFound(t *testing.T) {
	s := startServer(t, newHandler(), site(t))
	c := client(t)
	for _, p := range []string{"/nope.txt", "/hello.txt/", "/hello.txt/x", "/nodir/x.txt", "/" + strings.Repeat("n", 300)} {
		resp, body := get(t, c, "GET", "http://"+s.Addr+p)
		wantStatus(t, resp, 404)
		wantField(t, resp, "Content-Type", "text/html; charset=utf-8")
		if !strings.Contains(body, "404 Not Found") {
			t.Errorf("%s: page %q", p, body)
		}
	}
}

func TestDirectoryRedirect(t *testing.T) {
	s := startServer(t, newHandler(), site(t))
	r := dialRaw(t, s.Addr)
	cases := []struct{ target, location string }{
		{"/docs", "/docs/"},
		{"/docs?a=1&b=%20", "/docs/?a=1&b=%20"},
		{"/my%20dir", "/my%20dir/"},
		{"//docs", "/docs/"}, // never a protocol-relative Location
		{"/a/../docs", "/docs/"},
		{"/empty", "/empty/"},
	}
	for _, c := range cases {
		resp, _ := r.do("GET", c.target)
		wantStatus(t, resp, 301)
		wantField(t, resp, "Location", c.location)
	}
}

func TestIndexFiles(t *testing.T) {
	root := site(t)
	s := startServer(t, newHandler(), root)
	c := client(t)
	cases := []struct {
		path   string
		status int
		body   string
		ctype  string
	}{
		{"/", 200, "<h1>root index</h1>", "text/html; charset=utf-8"},
		{"/docs/", 200, "docs htm", "text/html; charset=utf-8"},
		{"/both/", 200, "both html", "text/html; charset=utf-8"},
		{"/idxdir/", 200, "idxdir htm", "text/html; charset=utf-8"}, // index.html is a directory
		{"/empty/", 403, "", ""},
		{"/my%20dir/", 403, "", ""},
	}
	for _, tc := range cases {
		resp, body := get(t, c, "GET", "http://"+s.Addr+tc.path)
		wantStatus(t, resp, tc.status)
		if tc.status == 200 && body != tc.body {
			t.Errorf("%s: body %q, want %q", tc.path, body, tc.body)
		}
		if tc.ctype != "" {
			wantField(t, resp, "Content-Type", tc.ctype)
		}
	}

	// Order is the configured one.
	h := newHandler()
	h.IndexFiles = []string{"index.htm", "index.html"}
	s2 := startServer(t, h, root)
	resp, body := get(t, c, "GET", "http://"+s2.Addr+"/both/")
	wantStatus(t, resp, 200)
	if body != "both htm" {
		t.Fatalf("reversed order: body %q", body)
	}

	// No index files configured: directories are refused, never listed.
	h3 := newHandler()
	h3.IndexFiles = nil
	s3 := startServer(t, h3, root)
	resp, _ = get(t, c, "GET", "http://"+s3.Addr+"/")
	wantStatus(t, resp, 403)
}

func TestTraversal(t *testing.T) {
	root := site(t)
	s := startServer(t, newHandler(), root)
	cases := []struct {
		target string
		status int
	}{
		{"/../secret.txt", 403},
		{"/a/../../secret.txt", 403},
		{"/%2e%2e/secret.txt", 403},
		{"/%2E%2E%2Fsecret.txt", 403},
		{"/..%2fsecret.txt", 403},
		{"/a/%2e%2e/%2e%2e/secret.txt", 403},
		{"/./../secret.txt", 403},
		{"/..", 403},
		{"/..\\secret.txt", 400},
		{"/%5c..%5csecret.txt", 400},
		{"/hello.txt%00.html", 400},
		{"/a/../hello.txt", 200}, // stays inside the root
		{"/a/./b.txt", 200},
		{"//a//b.txt", 200},
		{"http://test/a/b.txt", 200},
	}
	for _, c := range cases {
		r := dialRaw(t, s.Addr) // a 400 from the reader closes the connection
		resp, body := r.do("GET", c.target)
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d", c.target, resp.StatusCode, c.status)
		}
		if strings.Contains(body, "SECRET") {
			t.Fatalf("%s: served the file outside the root", c.target)
		}
	}
}

func TestSymlinks(t *testing.T) {
	root := site(t)
	outside := filepath.Join(filepath.Dir(root), "secret.txt")
	links := []struct{ name, target string }{ // in order: directories first
		{"link.txt", "hello.txt"},            // file inside the root
		{"linkdir", "a"},                     // directory inside the root
		{"out.txt", outside},                 // file outside
		{"outdir", filepath.Dir(root)},       // directory outside
		{"docs2/", ""},                       // a directory ...
		{"docs2/index.html", "../hello.txt"}, // ... whose index file is a link
	}
	for _, l := range links {
		p := filepath.Join(root, l.name)
		if l.target == "" {
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.Symlink(l.target, p); err != nil {
			t.Fatal(err)
		}
	}
	off := startServer(t, newHandler(), root)
	on := newHandler()
	on.SymLink = true
	onSrv := startServer(t, on, root)
	// The root itself reached through a link is allowed either way.
	rootLink := filepath.Join(t.TempDir(), "rootlink")
	if err := os.Symlink(root, rootLink); err != nil {
		t.Fatal(err)
	}
	viaLink := startServer(t, newHandler(), rootLink)

	c := client(t)
	cases := []struct {
		path    string
		off, on int
		onBody  string
	}{
		{"/link.txt", 403, 200, "hello, world\n"},
		{"/linkdir/b.txt", 403, 200, "nested"},
		{"/out.txt", 403, 200, "SECRET"},
		{"/outdir/secret.txt", 403, 200, "SECRET"},
		{"/docs2/", 403, 200, "hello, world\n"},
		{"/linkdir", 403, 301, ""},
	}
	for _, tc := range cases {
		resp, body := get(t, c, "GET", "http://"+off.Addr+tc.path)
		if resp.StatusCode != tc.off || strings.Contains(body, "SECRET") {
			t.Errorf("SymLink off %s: status %d, want %d", tc.path, resp.StatusCode, tc.off)
		}
		resp, body = get(t, c, "GET", "http://"+onSrv.Addr+tc.path)
		if resp.StatusCode != tc.on || tc.onBody != "" && body != tc.onBody {
			t.Errorf("SymLink on %s: status %d body %q, want %d %q", tc.path, resp.StatusCode, body, tc.on, tc.onBody)
		}
	}
	resp, body := get(t, c, "GET", "http://"+viaLink.Addr+"/hello.txt")
	wantStatus(t, resp, 200)
	if body != "hello, world\n" {
		t.Fatalf("root via link: body %q", body)
	}
	// Links below a root reached through a link are still refused.
	for _, tc := range cases {
		resp, body := get(t, c, "GET", "http://"+viaLink.Addr+tc.path)
		if resp.StatusCode != tc.off || strings.Contains(body, "SECRET") {
			t.Errorf("root via link, SymLink off %s: status %d, want %d", tc.path, resp.StatusCode, tc.off)
		}
	}
	for _, p := range []string{"/", "/docs/", "/a/b.txt", "/nope"} {
		want := map[string]int{"/": 200, "/docs/": 200, "/a/b.txt": 200, "/nope": 404}[p]
		resp, _ := get(t, c, "GET", "http://"+viaLink.Addr+p)
		wantStatus(t, resp, want)
	}
}

// TestWalkBeneath exercises the fallback used where openat2 is missing.
func TestWalkBeneath(t *testing.T) {
	root := site(t)
	if err := os.Symlink("a", filepath.Join(root, "linkdir")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("hello.txt", filepath.Join(root, "link.txt")); err != nil {
		t.Fatal(err)
	}
	rfd, err := syscall.Open(root, syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(rfd)
	cases := []struct {
		rel  string
		want int // 0: opens
	}{
		{"hello.txt", 0}, {"a/b.txt", 0}, {".", 0}, {"a/", 0},
		{"linkdir/b.txt", 403}, {"link.txt", 403}, {"nope", 404}, {"hello.txt/x", 404},
	}
	for _, c := range cases {
		fd, err := walkBeneath(rfd, c.rel)
		got := 0
		if err != nil {
			got = statusOf(err)
		} else {
			syscall.Close(fd)
		}
		if got != c.want {
			t.Errorf("walkBeneath(%q): %d (%v), want %d", c.rel, got, err, c.want)
		}
	}
}

func TestNotRegular(t *testing.T) {
	root := site(t)
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(root, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := startServer(t, newHandler(), root)
	c := client(t)
	for _, p := range []string{"/fifo", "/sock"} {
		done := make(chan struct{})
		go func() { // a FIFO must not block the open
			defer close(done)
			resp, _ := get(t, c, "GET", "http://"+s.Addr+p)
			wantStatus(t, resp, 403)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no answer", p)
		}
	}
}

func TestUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root: permissions do not apply (statusOf(EACCES) is checked in TestStatusOf)")
	}
	root := site(t)
	if err := os.Chmod(filepath.Join(root, "hello.txt"), 0); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, newHandler(), root)
	resp, _ := get(t, client(t), "GET", "http://"+s.Addr+"/hello.txt")
	wantStatus(t, resp, 403)
}

func TestStatusOf(t *testing.T) {
	cases := map[syscall.Errno]int{
		syscall.ENOENT: 404, syscall.ENOTDIR: 404, syscall.ENAMETOOLONG: 404,
		syscall.EACCES: 403, syscall.EPERM: 403, syscall.ELOOP: 403, syscall.EXDEV: 403,
		syscall.EMFILE: 500, syscall.EIO: 500,
	}
	for errno, want := range cases {
		if got := statusOf(errno); got != want {
			t.Errorf("statusOf(%v) = %d, want %d", errno, got, want)
		}
	}
}

// TestMissingRoot: a document root that does not exist answers 404, as
// nginx does, whichever way the path is opened.
func TestMissingRoot(t *testing.T) {
	for _, symlink := range []bool{false, true} {
		h := newHandler()
		h.SymLink = symlink
		s := startServer(t, h, filepath.Join(t.TempDir(), "gone"))
		resp, _ := get(t, client(t), "GET", "http://"+s.Addr+"/x")
		wantStatus(t, resp, 404)
	}
}

func TestMIME(t *testing.T) {
	h := newHandler()
	h.DefaultMIME = "application/octet-stream"
	s := startServer(t, h, site(t))
	c := client(t)
	cases := map[string]string{
		"/page.HTML": "text/html; charset=utf-8",
		"/style.Css": "text/css",
		"/data.xyz":  "application/octet-stream",
		"/README":    "application/octet-stream",
		"/hello.txt": "text/plain; charset=utf-8",
		"/docs/":     "text/html; charset=utf-8",
	}
	for p, want := range cases {
		resp, _ := get(t, c, "GET", "http://"+s.Addr+p)
		wantStatus(t, resp, 200)
		wantField(t, resp, "Content-Type", want)
	}
}

// TestLongPath serves a file whose full path is longer than the stack
// buffer used to open it, and a link below such a path.
func TestLongPath(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(strings.Repeat("d", 200), strings.Repeat("e", 200), strings.Repeat("f", 200))
	writeFiles(t, root, map[string]string{filepath.Join(dir, "x.txt"): "deep"})
	if err := os.Symlink("x.txt", filepath.Join(root, dir, "l.txt")); err != nil {
		t.Fatal(err)
	}
	for _, symlink := range []bool{false, true} {
		h := newHandler()
		h.SymLink = symlink
		s := startServer(t, h, root)
		c := client(t)
		resp, body := get(t, c, "GET", "http://"+s.Addr+"/"+dir+"/x.txt")
		wantStatus(t, resp, 200)
		if body != "deep" {
			t.Fatalf("body %q", body)
		}
		resp, _ = get(t, c, "GET", "http://"+s.Addr+"/"+dir+"/l.txt")
		wantStatus(t, resp, map[bool]int{false: 403, true: 200}[symlink])
		resp, _ = get(t, c, "GET", "http://"+s.Addr+"/"+dir+"/none")
		wantStatus(t, resp, 404)
	}
}
