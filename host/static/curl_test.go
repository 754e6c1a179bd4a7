package static

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// curl runs /usr/bin/curl (or the one on PATH) with args and returns its
// standard output; the test is skipped where curl is not installed.
func curl(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-sS", "--noproxy", "*"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl %q: %v: %s", args, err, stderr.String())
	}
	return string(out)
}

func TestCurlLargeAndResume(t *testing.T) {
	root, big, _ := bigSite(t)
	s := startServer(t, newHandler(), root)
	out := filepath.Join(t.TempDir(), "big.bin")
	code := curl(t, "-o", out, "-w", "%{http_code}", "http://"+s.Addr+"/big.bin")
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if code != "200" || !bytes.Equal(got, big) {
		t.Fatalf("status %s, %d bytes, equal %v", code, len(got), bytes.Equal(got, big))
	}
	// Resume a partial download: curl sends "Range: bytes=N-".
	if err := os.WriteFile(out, big[:1234567], 0o644); err != nil {
		t.Fatal(err)
	}
	code = curl(t, "-C", "-", "-o", out, "-w", "%{http_code}", "http://"+s.Addr+"/big.bin")
	if got, err = os.ReadFile(out); err != nil {
		t.Fatal(err)
	}
	if code != "206" || !bytes.Equal(got, big) {
		t.Fatalf("resume: status %s, %d bytes, equal %v", code, len(got), bytes.Equal(got, big))
	}
}

func TestCurlKeepAlive(t *testing.T) {
	root, _, _ := bigSite(t)
	s := startServer(t, newHandler(), root)
	base := "http://" + s.Addr
	// One curl, several URLs: curl reuses its connection when the server
	// keeps it open and every response is framed.
	out := curl(t, "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null",
		"-w", "%{http_code} %{num_connects}\n",
		base+"/abc.txt", base+"/big.bin", base+"/missing", base+"/1k.html")
	want := "200 1\n200 0\n404 0\n200 0\n"
	if out != want {
		t.Fatalf("curl -w: %q, want %q", out, want)
	}
	if n := s.srv.Accepts(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}

func TestCurlHeadersAndConditionals(t *testing.T) {
	root, _, mtime := bigSite(t)
	s := startServer(t, newHandler(), root)
	url := "http://" + s.Addr + "/abc.txt"
	head := curl(t, "-I", url)
	for _, want := range []string{
		"HTTP/1.1 200 OK\r\n", "Content-Length: 26\r\n", "Accept-Ranges: bytes\r\n",
		"Content-Type: text/plain; charset=utf-8\r\n",
		"Last-Modified: " + mtime.Format(time.RFC1123[:len(time.RFC1123)-3]) + "GMT\r\n",
	} {
		if !strings.Contains(head, want) {
			t.Errorf("HEAD: no %q in\n%s", want, head)
		}
	}
	// curl -z sends If-Modified-Since.
	if code := curl(t, "-o", "/dev/null", "-w", "%{http_code}", "-z", mtime.Format(time.RFC1123), url); code != "304" {
		t.Errorf("-z mtime: %s, want 304", code)
	}
	earlier := mtime.Add(-time.Hour).Format(time.RFC1123)
	if code := curl(t, "-o", "/dev/null", "-w", "%{http_code}", "-z", earlier, url); code != "200" {
		t.Errorf("-z earlier: %s, want 200", code)
	}
	if body := curl(t, "-r", "3-5", url); body != "def" {
		t.Errorf("-r 3-5: %q", body)
	}
	if body := curl(t, "-r", "-2", url); body != "yz" {
		t.Errorf("-r -2: %q", body)
	}
	if code := curl(t, "-o", "/dev/null", "-w", "%{http_code}", "-r", "100-", url); code != "416" {
		t.Errorf("-r 100-: %s, want 416", code)
	}
}

func TestCurlTraversal(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "www")
	writeFiles(t, base, map[string]string{"secret.txt": "SECRET", "www/ok.txt": "ok"})
	s := startServer(t, newHandler(), root)
	for _, p := range []string{"/../secret.txt", "/%2e%2e/secret.txt", "/ok/../../secret.txt", "/%2E%2E%2fsecret.txt"} {
		out := curl(t, "--path-as-is", "-w", "\n%{http_code}", "http://"+s.Addr+p)
		if strings.Contains(out, "SECRET") || !strings.HasSuffix(out, "\n403") {
			t.Errorf("%s: %q", p, out)
		}
	}
	// A directory redirect that curl follows.
	writeFiles(t, root, map[string]string{"d/index.html": "index of d"})
	if out := curl(t, "-L", "-w", fmt.Sprintf(" %s", "%{num_redirects}"), "http://"+s.Addr+"/d?x=1"); out != "index of d 1" {
		t.Errorf("-L /d: %q", out)
	}
}
