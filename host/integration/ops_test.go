package integration

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// TestConfigCheck: -t accepts a good configuration and rejects every kind
// of bad one with file:line and a non-zero exit.
func TestConfigCheck(t *testing.T) {
	s := newSite(t)
	s.WriteConf()
	if code, out := runCapuchin(t, "-t", "-c", s.Dir); code != 0 || !strings.Contains(out, "valid") {
		t.Fatalf("-t on a good config: exit %d, %s", code, out)
	}
	cases := []struct {
		name, file, content, want string
	}{
		{"unknown key", "capuchin.conf", "[SERVER]\n    Listen 1\n    Colour blue\n", "capuchin.conf:3: Colour: unknown key"},
		{"bad number", "capuchin.conf", "[SERVER]\n    Timeout soon\n", "capuchin.conf:2: Timeout: want a whole number"},
		{"bad boolean", "capuchin.conf", "[SERVER]\n    KeepAlive perhaps\n", "capuchin.conf:2: KeepAlive: want on or off"},
		{"bad port", "capuchin.conf", "[SERVER]\n    Listen 70000\n", "capuchin.conf:2: Listen: port 70000 out of range"},
		{"duplicate listener", "capuchin.conf", "[SERVER]\n    Listen 127.0.0.1:2001\n    Listen 127.0.0.1:2001\n", "capuchin.conf:3: Listen: duplicate listener"},
		{"unknown section", "capuchin.conf", "[SERVR]\n    Listen 1\n", "capuchin.conf:1: unknown section [SERVR]"},
		{"key outside section", "capuchin.conf", "Listen 1\n", "capuchin.conf:1:"},
		{"missing docroot", "sites/default", "[HOST]\n    DocumentRoot nowhere\n", "sites/default:2: DocumentRoot:"},
		{"bad plugins.load key", "plugins.load", "[PLUGINS]\n    Lod x\n", "plugins.load:2: Lod: unknown key"},
		{"bad mime line", "mimes.conf", "[MIMES]\n    txt\n", "mimes.conf:2:"},
		{"Load of a missing plugin", "plugins.load", "[PLUGINS]\n    Directory .\n    Load nothere\n", "plugins.load:3: Load: plugin executable "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t)
			s.WriteConf()
			s.WriteFile(tc.file, tc.content)
			code, out := runCapuchin(t, "-t", "-c", s.Dir)
			if code == 0 || !strings.Contains(out, filepath.Join(s.Dir, tc.want)) {
				t.Fatalf("exit %d, output %q, want it to contain %q", code, out, tc.want)
			}
			// The server itself refuses to start the same way.
			if code, out2 := runCapuchin(t, "-c", s.Dir); code == 0 || out2 != out && !strings.Contains(out2, tc.want) {
				t.Fatalf("start: exit %d, %q", code, out2)
			}
		})
	}
	if code, out := runCapuchin(t, "-t", "-c", filepath.Join(s.Dir, "absent")); code == 0 || !strings.Contains(out, "capuchin.conf") {
		t.Fatalf("missing directory: exit %d, %q", code, out)
	}
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	return resp.StatusCode, string(b)
}

// TestReload: SIGHUP switches to a new configuration without dropping a
// kept-alive connection; an invalid one is refused and the old one stays.
func TestReload(t *testing.T) {
	s := newSite(t)
	s.WriteRoot("v.txt", "one")
	p := s.Start()
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer c.CloseIdleConnections()
	if _, body := get(t, c, s.URL("/v.txt")); body != "one" {
		t.Fatalf("before reload: %q", body)
	}
	raw := dial(t, s.Addr())
	raw.Send("GET /v.txt HTTP/1.1\r\nHost: x\r\n\r\n")
	raw.MustRead("GET")

	must(t, os.MkdirAll(filepath.Join(s.Dir, "www2"), 0o755))
	s.WriteFile("www2/v.txt", "two")
	s.WriteFile("sites/default", "[HOST]\n    DocumentRoot www2\n")
	p.Signal(syscall.SIGHUP)
	if !p.WaitLog("configuration reloaded") {
		t.Fatalf("no reload in log:\n%s", p.Log())
	}
	if _, body := get(t, c, s.URL("/v.txt")); body != "two" {
		t.Fatalf("after reload: %q", body)
	}
	raw.Send("GET /v.txt HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := raw.MustRead("GET"); string(r.Body) != "two" {
		t.Fatalf("kept connection after reload: %q", r.Body)
	}

	s.WriteFile("sites/default", "[HOST]\n    DocumentRoot missing-dir\n")
	p.Signal(syscall.SIGHUP)
	if !p.WaitLog("reload failed") {
		t.Fatalf("bad config not reported:\n%s", p.Log())
	}
	if _, body := get(t, c, s.URL("/v.txt")); body != "two" {
		t.Fatalf("after a failed reload: %q", body)
	}
}

// TestGracefulShutdown: SIGTERM lets a request in flight finish, closes
// idle connections, removes the pid file and exits 0.
func TestGracefulShutdown(t *testing.T) {
	s := newSite(t)
	pid := filepath.Join(s.Dir, "capuchin.pid")
	s.Server = []string{"PidFile " + pid, "ShutdownTimeout 5"}
	p := s.Start()
	if !hosttest.Poll(5*time.Second, func() bool {
		b, _ := os.ReadFile(pid)
		return strings.TrimSpace(string(b)) == itoa(p.Pid())
	}) {
		t.Fatal("no pid file with the server's pid")
	}
	idle := dial(t, s.Addr())
	idle.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	idle.MustRead("GET")

	busy := dial(t, s.Addr())
	busy.Send("POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
	time.Sleep(200 * time.Millisecond) // the server is now reading the body
	p.Signal(syscall.SIGTERM)
	if !idle.Closed(3 * time.Second) {
		t.Error("idle connection not closed on shutdown")
	}
	time.Sleep(200 * time.Millisecond)
	busy.Send("world")
	r := busy.MustRead("POST")
	if r.Status != 405 || !r.Close {
		t.Errorf("request in flight: %d close=%v", r.Status, r.Close)
	}
	err, ok := p.Wait(5 * time.Second)
	if !ok || err != nil {
		t.Fatalf("exit: %v (exited: %v)\n%s", err, ok, p.Log())
	}
	if _, err := os.Stat(pid); !os.IsNotExist(err) {
		t.Errorf("pid file left behind: %v", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestListeners: several Listen lines (IPv4, IPv6 literal, bare port) all
// serve; a reload that adds one opens it and one that drops one closes it.
func TestListeners(t *testing.T) {
	s := newSite(t)
	v6 := freePort(t)
	bare := freePort(t)
	ipv6 := true
	if l, err := net.Listen("tcp", "[::1]:0"); err != nil {
		ipv6 = false
	} else {
		l.Close()
	}
	if ipv6 {
		s.Server = append(s.Server, fmt.Sprintf("Listen [::1]:%d", v6))
	}
	s.Server = append(s.Server, fmt.Sprintf("Listen %d", bare))
	p := s.Start()
	addrs := []string{s.Addr(), fmt.Sprintf("127.0.0.1:%d", bare)}
	if ipv6 {
		addrs = append(addrs, fmt.Sprintf("[::1]:%d", v6))
	}
	for _, a := range addrs {
		c := dial(t, a)
		c.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if r := c.MustRead("GET"); r.Status != 200 {
			t.Errorf("%s: %d", a, r.Status)
		}
	}
	// Reload without the bare-port listener: it closes, the others stay.
	s.Server = s.Server[:len(s.Server)-1]
	s.WriteConf()
	p.Signal(syscall.SIGHUP)
	if !p.WaitLog("configuration reloaded") {
		t.Fatalf("no reload:\n%s", p.Log())
	}
	if !hosttest.Poll(5*time.Second, func() bool {
		c, err := net.Dial("tcp", addrs[1])
		if err == nil {
			c.Close()
		}
		return err != nil
	}) {
		t.Error("dropped listener still accepts")
	}
	c := dial(t, s.Addr())
	c.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.MustRead("GET"); r.Status != 200 {
		t.Errorf("kept listener: %d", r.Status)
	}
}
