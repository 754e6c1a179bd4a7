package static

import (
	"strings"
	"testing"
	"time"
)

func TestCleanPath(t *testing.T) {
	cases := []struct {
		in     string
		rel    string
		status int
	}{
		{"/", ".", 0},
		{"/a.txt", "a.txt", 0},
		{"/a/b/", "a/b/", 0},
		{"/a//b", "a/b", 0},
		{"/a/./b/", "a/b/", 0},
		{"/a/../b", "b", 0},
		{"/a/..", ".", 0},
		{"/a/b/..", "a/", 0},
		{"/.", ".", 0},
		{"/.hidden", ".hidden", 0},
		{"/..foo", "..foo", 0},
		{"/a..b/c", "a..b/c", 0},
		{"/..", "", 403},
		{"/../a", "", 403},
		{"/a/../../b", "", 403},
		{"/a/./../..", "", 403},
		{"/a\\b", "", 400},
		{"/a\x00b", "", 400},
		{"", "", 400},
		{"a", "", 400},
		{"*", "", 400},
	}
	for _, c := range cases {
		rel, status := cleanPath(c.in)
		if rel != c.rel || status != c.status {
			t.Errorf("cleanPath(%q) = %q, %d; want %q, %d", c.in, rel, status, c.rel, c.status)
		}
	}
}

func TestAppendLocation(t *testing.T) {
	cases := []struct{ rel, query, want string }{
		{"docs", "", "/docs/"},
		{"a b/c", "x=1", "/a%20b/c/?x=1"},
		{"x\r\ny", "", "/x%0D%0Ay/"},
		{"caf\xc3\xa9", "", "/caf%C3%A9/"},
	}
	for _, c := range cases {
		if got := string(appendLocation(nil, c.rel, c.query)); got != c.want {
			t.Errorf("appendLocation(%q, %q) = %q, want %q", c.rel, c.query, got, c.want)
		}
	}
}

func TestParseRange(t *testing.T) {
	cases := []struct {
		v      string
		size   int64
		kind   rangeKind
		off, n int64
	}{
		{"bytes=0-0", 10, rangeOne, 0, 1},
		{"bytes= 2-4 ", 10, rangeOne, 2, 3},
		{"bytes=2-4,", 10, rangeOne, 2, 3},
		{"bytes=-10", 10, rangeOne, 0, 10},
		{"bytes=0-999999999999999999", 10, rangeOne, 0, 10},
		{"bytes=0-9999999999999999999", 10, rangeNone, 0, 0},
		{"bytes=0-1,2-3", 10, rangeNone, 0, 0},
		{"bytes=-", 10, rangeNone, 0, 0},
		{"bytes=1", 10, rangeNone, 0, 0},
		{"bytes=+1-2", 10, rangeNone, 0, 0},
		{"bytes=20-", 10, rangeUnsatisfiable, 0, 0},
		{"bytes=-1", 0, rangeUnsatisfiable, 0, 0},
		{"bytes=0-", 0, rangeUnsatisfiable, 0, 0},
		{"bytes 0-1", 10, rangeNone, 0, 0},
	}
	for _, c := range cases {
		kind, off, n := parseRange(c.v, c.size)
		if kind != c.kind || kind == rangeOne && (off != c.off || n != c.n) {
			t.Errorf("parseRange(%q, %d) = %d %d %d; want %d %d %d", c.v, c.size, kind, off, n, c.kind, c.off, c.n)
		}
	}
}

func TestMatchETag(t *testing.T) {
	const tag = `"a-b"`
	cases := []struct {
		v            string
		weak, strong bool
	}{
		{`"a-b"`, true, true},
		{`W/"a-b"`, true, false},
		{` "x" ,W/"a-b"`, true, false},
		{`"x", "a-b"`, true, true},
		{`*`, true, true},
		{`"a-b`, false, false},
		{`a-b`, false, false},
		{`"x",,"y"`, false, false},
		{``, false, false},
	}
	for _, c := range cases {
		if got := matchETag(c.v, tag, true); got != c.weak {
			t.Errorf("weak match %q: %v", c.v, got)
		}
		if got := matchETag(c.v, tag, false); got != c.strong {
			t.Errorf("strong match %q: %v", c.v, got)
		}
	}
}

func TestParseHTTPDate(t *testing.T) {
	want := time.Date(1994, 11, 6, 8, 49, 37, 0, time.UTC).Unix()
	for _, s := range []string{
		"Sun, 06 Nov 1994 08:49:37 GMT",
		"Sunday, 06-Nov-94 08:49:37 GMT",
		"Sun Nov  6 08:49:37 1994",
	} {
		if got, ok := parseHTTPDate(s); !ok || got != want {
			t.Errorf("parseHTTPDate(%q) = %d %v, want %d", s, got, ok, want)
		}
	}
	for _, s := range []string{
		"", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Xyz 1994 08:49:37 GMT",
		"Sun, 32 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:49:37 GMT", "Sun, 0a Nov 1994 08:49:37 GMT",
	} {
		if _, ok := parseHTTPDate(s); ok {
			t.Errorf("parseHTTPDate(%q) accepted", s)
		}
	}
	var b [32]byte
	if got := string(appendHTTPDate(b[:0], want)); got != "Sun, 06 Nov 1994 08:49:37 GMT" {
		t.Errorf("appendHTTPDate: %q", got)
	}
}

func TestContentType(t *testing.T) {
	h := &Handler{DefaultMIME: "text/plain", MIME: map[string]string{"html": "text/html", "gz": "application/gzip"}}
	cases := map[string]string{
		"a.html": "text/html", "a.HTML": "text/html", "dir/x.HtMl": "text/html",
		"a.tar.gz": "application/gzip", "a.": "text/plain", "noext": "text/plain",
		"dir.html/file": "text/plain", "a." + string(make([]byte, 20)): "text/plain",
		".html": "text/html",
	}
	for name, want := range cases {
		if got := h.contentType(name); got != want {
			t.Errorf("contentType(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestParseHTTPDateNoAlloc(t *testing.T) {
	n := testing.AllocsPerRun(100, func() {
		parseHTTPDate("Sun, 06 Nov 1994 08:49:37 GMT")
		_ = matchETag(`"x", W/"a-b"`, `"a-b"`, true)
		parseRange("bytes=0-99", 1000)
	})
	if n != 0 {
		t.Errorf("%v allocations for an IMF-fixdate, an If-None-Match and a Range", n)
	}
}

// FuzzCleanPath checks that no input yields a path that could leave the
// root: no leading slash, no ".." segment, nothing empty.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "/..", "//x", "/a/./b/", "/.../", "/a/b/..", "/%2e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		rel, status := cleanPath(p)
		if status != 0 {
			if status != 400 && status != 403 {
				t.Fatalf("cleanPath(%q): status %d", p, status)
			}
			return
		}
		if rel == "" || rel[0] == '/' {
			t.Fatalf("cleanPath(%q) = %q", p, rel)
		}
		for _, seg := range strings.Split(strings.TrimSuffix(rel, "/"), "/") {
			if seg == ".." || seg == "" || seg == "." && rel != "." {
				t.Fatalf("cleanPath(%q) = %q: segment %q", p, rel, seg)
			}
		}
	})
}
