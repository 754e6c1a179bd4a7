package static

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// bigSize is the size of the large test file: a few MiB, not a multiple of
// any buffer size.
const bigSize = 5<<20 + 12345

// bigSite is a document root with a large pseudo-random file, a 1 KiB file
// and a 26-byte alphabet file, plus its modification time.
func bigSite(t testing.TB) (root string, big []byte, mtime time.Time) {
	t.Helper()
	root = t.TempDir()
	big = make([]byte, bigSize)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i+8 <= len(big); i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			big[i+j] = byte(v >> (8 * j))
		}
	}
	writeFiles(t, root, map[string]string{
		"big.bin":   string(big),
		"abc.txt":   "abcdefghijklmnopqrstuvwxyz",
		"1k.html":   strings.Repeat("x", 1024),
		"empty.txt": "",
	})
	// A modification time on a whole second far in the past, so that date
	// comparisons are exact.
	mtime = time.Date(2020, 5, 17, 10, 20, 30, 0, time.UTC)
	for _, n := range []string{"big.bin", "abc.txt", "1k.html", "empty.txt"} {
		if err := os.Chtimes(filepath.Join(root, n), mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	return root, big, mtime
}

func TestLargeFile(t *testing.T) {
	root, big, _ := bigSite(t)
	s := startServer(t, newHandler(), root)
	c := client(t)
	for i := 0; i < 2; i++ { // twice: the connection survives a large body
		resp, body := get(t, c, "GET", "http://"+s.Addr+"/big.bin")
		wantStatus(t, resp, 200)
		wantField(t, resp, "Content-Length", strconv.Itoa(bigSize))
		if !bytes.Equal([]byte(body), big) {
			t.Fatalf("large body differs (got %d bytes)", len(body))
		}
	}
	// A range in the middle of the large file (sendfile from an offset).
	resp, body := get(t, c, "GET", "http://"+s.Addr+"/big.bin", "Range: bytes=1000000-3999999")
	wantStatus(t, resp, 206)
	wantField(t, resp, "Content-Range", fmt.Sprintf("bytes 1000000-3999999/%d", bigSize))
	if !bytes.Equal([]byte(body), big[1000000:4000000]) {
		t.Fatalf("large range differs (got %d bytes)", len(body))
	}
	resp, body = get(t, c, "GET", "http://"+s.Addr+"/big.bin", "Range: bytes=-100")
	wantStatus(t, resp, 206)
	if !bytes.Equal([]byte(body), big[bigSize-100:]) {
		t.Fatal("large suffix range differs")
	}
	if n := s.srv.Accepts(); n != 1 {
		t.Errorf("%d connections for keep-alive requests, want 1", n)
	}
}

func TestKeepAlive(t *testing.T) {
	root, big, _ := bigSite(t)
	s := startServer(t, newHandler(), root)
	r := dialRaw(t, s.Addr)
	// Small, large, missing, HEAD, range, redirect-free error: all on one connection.
	steps := []struct {
		method, target string
		fields         []string
		status         int
		body           string
	}{
		{"GET", "/abc.txt", nil, 200, "abcdefghijklmnopqrstuvwxyz"},
		{"GET", "/big.bin", nil, 200, string(big)},
		{"GET", "/missing", nil, 404, ""},
		{"HEAD", "/big.bin", nil, 200, ""},
		{"GET", "/abc.txt", []string{"Range: bytes=2-4"}, 206, "cde"},
		{"POST", "/abc.txt", []string{"Content-Length: 0"}, 405, ""},
		{"GET", "/empty.txt", nil, 200, ""},
		{"GET", "/1k.html", nil, 200, strings.Repeat("x", 1024)},
	}
	for _, st := range steps {
		resp, body := r.do(st.method, st.target, st.fields...)
		if resp.StatusCode != st.status {
			t.Fatalf("%s %s: status %d, want %d", st.method, st.target, resp.StatusCode, st.status)
		}
		if st.status < 300 && body != st.body {
			t.Fatalf("%s %s: body of %d bytes differs", st.method, st.target, len(body))
		}
		if resp.Close {
			t.Fatalf("%s %s: connection closed", st.method, st.target)
		}
	}
	if n := s.srv.Accepts(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

func TestPipelined(t *testing.T) {
	root, big, _ := bigSite(t)
	s := startServer(t, newHandler(), root)
	r := dialRaw(t, s.Addr)
	// All requests in one write; responses must come back complete and in order.
	r.send(requestText("GET", "/abc.txt") + requestText("HEAD", "/abc.txt") +
		requestText("GET", "/nope") + requestText("GET", "/big.bin") +
		requestText("GET", "/abc.txt", "Range: bytes=-3") +
		requestText("GET", "/1k.html", "Connection: close"))
	want := []struct {
		method string
		status int
		body   string
	}{
		{"GET", 200, "abcdefghijklmnopqrstuvwxyz"},
		{"HEAD", 200, ""},
		{"GET", 404, ""},
		{"GET", 200, string(big)},
		{"GET", 206, "xyz"},
		{"GET", 200, strings.Repeat("x", 1024)},
	}
	for i, w := range want {
		resp, body := r.read(w.method)
		if resp.StatusCode != w.status {
			t.Fatalf("response %d: status %d, want %d", i, resp.StatusCode, w.status)
		}
		if w.status != 404 && body != w.body {
			t.Fatalf("response %d: body of %d bytes differs", i, len(body))
		}
	}
	if _, err := r.BR.ReadByte(); err == nil {
		t.Fatal("bytes after the last response")
	}
}

func TestRanges(t *testing.T) {
	root, _, _ := bigSite(t)
	s := startServer(t, newHandler(), root)
	r := dialRaw(t, s.Addr)
	const abc = "abcdefghijklmnopqrstuvwxyz"
	cases := []struct {
		rng    string
		status int
		body   string // for 206
		cr     string // Content-Range, "" for none
	}{
		{"bytes=0-0", 206, "a", "bytes 0-0/26"},
		{"bytes=2-4", 206, "cde", "bytes 2-4/26"},
		{"bytes=20-", 206, "uvwxyz", "bytes 20-25/26"},
		{"bytes=-3", 206, "xyz", "bytes 23-25/26"},
		{"bytes=-100", 206, abc, "bytes 0-25/26"},
		{"bytes=10-1000", 206, abc[10:], "bytes 10-25/26"},
		{"bytes=25-25", 206, "z", "bytes 25-25/26"},
		{"BYTES=1-1", 206, "b", "bytes 1-1/26"}, // the unit is case-insensitive
		{"bytes=26-", 416, "", "bytes */26"},
		{"bytes=26-30", 416, "", "bytes */26"},
		{"bytes=-0", 416, "", "bytes */26"},
		{"bytes=0-1,3-4", 200, abc, ""}, // several ranges: the whole file
		{"bytes=0-1, 5-", 200, abc, ""},
		{"bytes=5-2", 200, abc, ""}, // malformed: ignored
		{"bytes=x-y", 200, abc, ""},
		{"bytes=", 200, abc, ""},
		{"bytes=1", 200, abc, ""},
		{"items=0-1", 200, abc, ""},
		{"bytes=-", 200, abc, ""},
		{"bytes=99999999999999999999-", 200, abc, ""},
	}
	for _, c := range cases {
		resp, body := r.do("GET", "/abc.txt", "Range: "+c.rng)
		if resp.StatusCode != c.status {
			t.Errorf("Range %q: status %d, want %d", c.rng, resp.StatusCode, c.status)
			continue
		}
		if got := resp.Header.Get("Content-Range"); got != c.cr {
			t.Errorf("Range %q: Content-Range %q, want %q", c.rng, got, c.cr)
		}
		if c.status != 416 && body != c.body {
			t.Errorf("Range %q: body %q, want %q", c.rng, body, c.body)
		}
		if c.status != 416 && resp.ContentLength != int64(len(c.body)) {
			t.Errorf("Range %q: Content-Length %d, want %d", c.rng, resp.ContentLength, len(c.body))
		}
	}
	// Nothing is satisfiable in an empty file.
	resp, _ := r.do("GET", "/empty.txt", "Range: bytes=0-")
	wantStatus(t, resp, 416)
	wantField(t, resp, "Content-Range", "bytes */0")
}

func TestIfRange(t *testing.T) {
	root, _, mtime := bigSite(t)
	s := startServer(t, newHandler(), root)
	r := dialRaw(t, s.Addr)
	resp, _ := r.do("GET", "/abc.txt")
	etag := resp.Header.Get("ETag")
	lm := mtime.Format(http.TimeFormat)
	cases := []struct {
		ifRange string
		status  int
	}{
		{etag, 206},
		{`"other"`, 200},
		{"W/" + etag, 200}, // If-Range needs a strong match
		{lm, 206},
		{mtime.Add(time.Second).Format(http.TimeFormat), 200},
		{mtime.Add(-time.Second).Format(http.TimeFormat), 200},
		{"not a date", 200},
	}
	for _, c := range cases {
		resp, body := r.do("GET", "/abc.txt", "Range: bytes=0-2", "If-Range: "+c.ifRange)
		if resp.StatusCode != c.status {
			t.Errorf("If-Range %q: status %d, want %d", c.ifRange, resp.StatusCode, c.status)
		}
		if c.status == 200 && len(body) != 26 || c.status == 206 && body != "abc" {
			t.Errorf("If-Range %q: body %q", c.ifRange, body)
		}
	}
}

func TestConditional(t *testing.T) {
	root, _, mtime := bigSite(t)
	s := startServer(t, newHandler(), root)
	r := dialRaw(t, s.Addr)
	resp, _ := r.do("GET", "/abc.txt")
	etag := resp.Header.Get("ETag")
	lm := mtime.Format(http.TimeFormat)
	wantField(t, resp, "Last-Modified", lm)
	if len(etag) < 2 || etag[0] != '"' || strings.HasPrefix(etag, "W/") {
		t.Fatalf("ETag %q is not a strong tag", etag)
	}
	later := mtime.Add(time.Hour).Format(http.TimeFormat)
	earlier := mtime.Add(-time.Hour).Format(http.TimeFormat)
	cases := []struct {
		fields []string
		status int
	}{
		{[]string{"If-None-Match: " + etag}, 304},
		{[]string{"If-None-Match: W/" + etag}, 304}, // weak comparison
		{[]string{`If-None-Match: "a", ` + etag + `, "b"`}, 304},
		{[]string{"If-None-Match: *"}, 304},
		{[]string{`If-None-Match: "other"`}, 200},
		{[]string{"If-Modified-Since: " + lm}, 304},
		{[]string{"If-Modified-Since: " + later}, 304},
		{[]string{"If-Modified-Since: " + earlier}, 200},
		{[]string{"If-Modified-Since: yesterday"}, 200},
		// If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2).
		{[]string{`If-None-Match: "other"`, "If-Modified-Since: " + later}, 200},
		{[]string{"If-None-Match: " + etag, "If-Modified-Since: " + earlier}, 304},
		{[]string{"If-Match: " + etag}, 200},
		{[]string{`If-Match: "other"`}, 412},
		{[]string{"If-Unmodified-Since: " + earlier}, 412},
		{[]string{"If-Unmodified-Since: " + later}, 200},
	}
	for _, c := range cases {
		for _, method := range []string{"GET", "HEAD"} {
			resp, body := r.do(method, "/abc.txt", c.fields...)
			if resp.StatusCode != c.status {
				t.Errorf("%s %q: status %d, want %d", method, c.fields, resp.StatusCode, c.status)
				continue
			}
			if c.status != 304 {
				continue
			}
			if _, ok := resp.Header["Content-Length"]; ok || body != "" {
				t.Errorf("%s %q: 304 with Content-Length %q, body %q", method, c.fields,
					resp.Header.Get("Content-Length"), body)
			}
			wantField(t, resp, "ETag", etag)
			wantField(t, resp, "Last-Modified", lm)
		}
	}
	// The connection is still in step after every 304.
	resp, body := r.do("GET", "/abc.txt")
	wantStatus(t, resp, 200)
	if body != "abcdefghijklmnopqrstuvwxyz" {
		t.Fatalf("body %q", body)
	}
}

func TestETagChanges(t *testing.T) {
	root, _, mtime := bigSite(t)
	s := startServer(t, newHandler(), root)
	c := client(t)
	resp, _ := get(t, c, "GET", "http://"+s.Addr+"/abc.txt")
	old := resp.Header.Get("ETag")
	p := filepath.Join(root, "abc.txt")
	if err := os.WriteFile(p, []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime.Add(1500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, c, "GET", "http://"+s.Addr+"/abc.txt", "If-None-Match: "+old)
	wantStatus(t, resp, 200)
	if body != "ABCDEFGHIJKLMNOPQRSTUVWXYZ" || resp.Header.Get("ETag") == old {
		t.Fatalf("after a change: body %q, ETag %q (was %q)", body, resp.Header.Get("ETag"), old)
	}
}
