package static

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// condSite serves one file, "f.txt" ("0123456789"), with a known mtime.
func condSite(t *testing.T) (addr, etag, lastMod string, mtime time.Time) {
	t.Helper()
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"f.txt": "0123456789"})
	mtime = time.Date(2024, 3, 1, 12, 30, 45, 123456789, time.UTC)
	if err := os.Chtimes(filepath.Join(root, "f.txt"), mtime, mtime); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, newHandler(), root)
	etag = fmt.Sprintf(`"%x-%x"`, 10, mtime.UnixNano())
	return s.Addr, etag, "Fri, 01 Mar 2024 12:30:45 GMT", mtime
}

func TestPreconditionsSmall(t *testing.T) {
	addr, etag, lm, _ := condSite(t)
	cases := []struct {
		name   string
		fields []string
		status int
	}{
		{"INM exact", []string{"If-None-Match: " + etag}, 304},
		{"INM weak", []string{"If-None-Match: W/" + etag}, 304},
		{"INM list", []string{`If-None-Match: "x", "a,b", ` + etag}, 304},
		{"INM star", []string{"If-None-Match: *"}, 304},
		{"INM other", []string{`If-None-Match: "other"`}, 200},
		{"INM malformed", []string{"If-None-Match: " + strings.Trim(etag, `"`)}, 200},
		{"IMS equal", []string{"If-Modified-Since: " + lm}, 304},
		{"IMS later", []string{"If-Modified-Since: Sat, 02 Mar 2024 00:00:00 GMT"}, 304},
		{"IMS earlier", []string{"If-Modified-Since: Fri, 01 Mar 2024 12:30:44 GMT"}, 200},
		{"IMS RFC 850", []string{"If-Modified-Since: Friday, 01-Mar-24 12:30:45 GMT"}, 304},
		{"IMS asctime", []string{"If-Modified-Since: Fri Mar  1 12:30:45 2024"}, 304},
		{"IMS invalid", []string{"If-Modified-Since: yesterday"}, 200},
		{"INM wins over IMS", []string{`If-None-Match: "other"`, "If-Modified-Since: " + lm}, 200},
		{"IM match", []string{"If-Match: " + etag}, 200},
		{"IM star", []string{"If-Match: *"}, 200},
		{"IM weak never matches", []string{"If-Match: W/" + etag}, 412},
		{"IM other", []string{`If-Match: "other"`}, 412},
		{"IUS earlier", []string{"If-Unmodified-Since: Fri, 01 Mar 2024 12:00:00 GMT"}, 412},
		{"IUS equal", []string{"If-Unmodified-Since: " + lm}, 200},
	}
	r := dialRaw(t, addr) // all over one keep-alive connection
	for _, c := range cases {
		for _, method := range []string{"GET", "HEAD"} {
			resp, body := r.do(method, "/f.txt", c.fields...)
			if resp.StatusCode != c.status {
				t.Errorf("%s %s: status %d, want %d", c.name, method, resp.StatusCode, c.status)
				continue
			}
			if c.status != 304 {
				continue
			}
			if _, ok := resp.Header["Content-Length"]; ok || body != "" {
				t.Errorf("%s: 304 with Content-Length %q body %q", c.name, resp.Header.Get("Content-Length"), body)
			}
			wantField(t, resp, "ETag", etag)
			wantField(t, resp, "Last-Modified", lm)
		}
	}
}

func TestRangeSmall(t *testing.T) {
	addr, etag, lm, _ := condSite(t)
	const content = "0123456789"
	cases := []struct {
		rng    string
		extra  string
		status int
		body   string
		cr     string // Content-Range
	}{
		{"bytes=0-4", "", 206, "01234", "bytes 0-4/10"},
		{"bytes=5-", "", 206, "56789", "bytes 5-9/10"},
		{"bytes=-3", "", 206, "789", "bytes 7-9/10"},
		{"bytes=-100", "", 206, content, "bytes 0-9/10"},
		{"bytes=3-100", "", 206, "3456789", "bytes 3-9/10"},
		{"bytes=9-9", "", 206, "9", "bytes 9-9/10"},
		{"BYTES=1-1", "", 206, "1", "bytes 1-1/10"},
		{"bytes=10-", "", 416, "", "bytes */10"},
		{"bytes=10-20", "", 416, "", "bytes */10"},
		{"bytes=-0", "", 416, "", "bytes */10"},
		{"bytes=0-1,3-4", "", 200, content, ""},
		{"bytes=x-y", "", 200, content, ""},
		{"bytes=5-2", "", 200, content, ""},
		{"bytes=", "", 200, content, ""},
		{"items=0-1", "", 200, content, ""},
		{"bytes=0-1", "If-Range: " + etag, 206, "01", "bytes 0-1/10"},
		{"bytes=0-1", `If-Range: "other"`, 200, content, ""},
		{"bytes=0-1", "If-Range: W/" + etag, 200, content, ""},
		{"bytes=0-1", "If-Range: " + lm, 206, "01", "bytes 0-1/10"},
		{"bytes=0-1", "If-Range: Fri, 01 Mar 2024 12:30:44 GMT", 200, content, ""},
	}
	r := dialRaw(t, addr)
	for _, c := range cases {
		fields := []string{"Range: " + c.rng}
		if c.extra != "" {
			fields = append(fields, c.extra)
		}
		resp, body := r.do("GET", "/f.txt", fields...)
		name := c.rng + " " + c.extra
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d", name, resp.StatusCode, c.status)
			continue
		}
		if c.status != 416 && body != c.body {
			t.Errorf("%s: body %q, want %q", name, body, c.body)
		}
		if got := resp.Header.Get("Content-Range"); got != c.cr {
			t.Errorf("%s: Content-Range %q, want %q", name, got, c.cr)
		}
		if c.status != 416 && resp.ContentLength != int64(len(c.body)) {
			t.Errorf("%s: Content-Length %d", name, resp.ContentLength)
		}
	}
	// HEAD with a range: the same head as GET, no body.
	resp, body := r.do("HEAD", "/f.txt", "Range: bytes=2-3")
	if resp.StatusCode != 206 || body != "" || resp.Header.Get("Content-Range") != "bytes 2-3/10" ||
		resp.Header.Get("Content-Length") != "2" {
		t.Errorf("HEAD range: %d %q %v", resp.StatusCode, body, resp.Header)
	}
}

// TestRangeEmptyFile: no byte range can be satisfied in an empty file.
func TestRangeEmptyFile(t *testing.T) {
	s := startServer(t, newHandler(), site(t))
	r := dialRaw(t, s.Addr)
	for _, rng := range []string{"bytes=0-", "bytes=-5"} {
		resp, _ := r.do("GET", "/zero.txt", "Range: "+rng)
		if resp.StatusCode != 416 || resp.Header.Get("Content-Range") != "bytes */0" {
			t.Errorf("%s: %d %q", rng, resp.StatusCode, resp.Header.Get("Content-Range"))
		}
	}
}
