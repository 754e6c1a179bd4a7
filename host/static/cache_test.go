package static

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestFileCache: with FileCacheValid, a small file is served from memory
// until the entry expires, then read again; large files are not cached;
// a deleted file is gone after expiry.
func TestFileCache(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "a.txt")
	if err := os.WriteFile(p, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := &Handler{DefaultMIME: "text/plain", FileCacheValid: 300 * time.Millisecond}
	cached := func(path string) (string, *file) {
		t.Helper()
		rel, st := cleanPath(path)
		if st != 0 {
			t.Fatalf("cleanPath(%q): %d", path, st)
		}
		f := h.cacheOf().get(root, rel)
		if f == nil {
			return "", nil
		}
		return string(f.body), f
	}
	if body, _ := cached("/a.txt"); body != "" {
		t.Fatal("cached before the first request")
	}
	srv := startServer(t, h, root)
	c := client(t)
	url := "http://" + srv.Addr
	fetch := func(path string, fields ...string) (int, string) {
		t.Helper()
		resp, body := get(t, c, "GET", url+path, fields...)
		return resp.StatusCode, body
	}
	if _, body := fetch("/a.txt"); body != "one" {
		t.Fatalf("first: %q", body)
	}
	if body, f := cached("/a.txt"); body != "one" || f.etag == "" || f.ctype == "" {
		t.Fatalf("not cached after a request: %q", body)
	}
	if err := os.WriteFile(p, []byte("two!"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, body := fetch("/a.txt"); body != "one" {
		t.Fatalf("within validity: %q, want the cached one", body)
	}
	time.Sleep(350 * time.Millisecond)
	if _, body := fetch("/a.txt"); body != "two!" {
		t.Fatalf("after expiry: %q", body)
	}
	if st, body := fetch("/a.txt", "Range: bytes=1-2"); st != 206 || body != "wo" {
		t.Fatalf("range from the cache: %d %q", st, body)
	}
	big := make([]byte, cacheMaxFile+1)
	if err := os.WriteFile(filepath.Join(root, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	fetch("/big.bin")
	if _, f := cached("/big.bin"); f != nil {
		t.Fatal("a file over the limit was cached")
	}
	os.Remove(p)
	time.Sleep(350 * time.Millisecond)
	if st, _ := fetch("/a.txt"); st != 404 {
		t.Fatalf("deleted file after expiry: %d", st)
	}
}
