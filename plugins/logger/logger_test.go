package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

var bin *hosttest.Bin

func TestMain(m *testing.M) {
	os.Exit(hosttest.Main(m.Run, &bin, "./plugins/logger", "./plugins/hello", "./plugins/proxy_reverse"))
}

// exchange sends one request with Connection: close on a new connection
// and returns every byte the host sent back.
func exchange(t *testing.T, addr, method, target string) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	hosttest.Must(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", method, target)
	hosttest.Must(t, err)
	b, err := io.ReadAll(c)
	hosttest.Must(t, err)
	return b
}

var lineRE = regexp.MustCompile(`^127\.0\.0\.1 - \[(\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] (\S+) (\S+) (HTTP/1\.[01]) (\d{3}) (\d+)$`)

// TestAccessLogLines checks the exact Monkey line for static and
// plugin-handled requests, LENGTH being the bytes the client received.
func TestAccessLogLines(t *testing.T) {
	hosttest.CheckLeaks(t)
	s := hosttest.NewSite(t, bin)
	s.Load("hello", "logger")
	logPath := filepath.Join(t.TempDir(), "access.log")
	s.WriteFile("logger.conf", "[LOGGER]\n    AccessLog "+logPath+"\n    FlushInterval 50\n")
	s.Start()

	type want struct {
		method, target string
		status         int
		bytes          int
	}
	before := time.Now().Add(-time.Second).Truncate(time.Second)
	var wants []want
	for _, r := range []struct {
		method, target string
		status         int
	}{
		{"GET", "/index.html", 200}, {"GET", "/hello?x=1", 200}, {"HEAD", "/hello", 200},
		{"GET", "/missing", 404}, {"HEAD", "/index.html", 200},
	} {
		resp := exchange(t, s.Addr(), r.method, r.target)
		if !strings.HasPrefix(string(resp), "HTTP/1.1 "+strconv.Itoa(r.status)) {
			t.Fatalf("%s %s: %q", r.method, r.target, resp)
		}
		wants = append(wants, want{r.method, r.target, r.status, len(resp)})
	}
	after := time.Now().Add(time.Second)

	lines := waitLines(t, logPath, len(wants))
	if len(lines) != len(wants) {
		t.Fatalf("want %d lines, got %q", len(wants), lines)
	}
	for i, w := range wants {
		m := lineRE.FindStringSubmatch(lines[i])
		if m == nil {
			t.Fatalf("line %d %q is not a Monkey access-log line", i, lines[i])
		}
		ts, err := time.Parse(timeLayout, m[1])
		hosttest.Must(t, err)
		if ts.Before(before) || ts.After(after) || ts.Format("-0700") != time.Now().Format("-0700") {
			t.Errorf("line %d: time %s not local and between %s and %s", i, m[1], before, after)
		}
		got := fmt.Sprintf("%s %s %s %s %s", m[2], m[3], m[4], m[5], m[6])
		exp := fmt.Sprintf("%s %s HTTP/1.1 %d %d", w.method, w.target, w.status, w.bytes)
		if got != exp {
			t.Errorf("line %d: %q, want %q", i, got, exp)
		}
	}
}

// TestAccessLogRejected: requests the host refuses while reading their
// head are logged too, as nginx logs them: with what parsed of the request
// line (an obs-fold in a field: 400), or "-" for each part when the line
// itself is refused (431 for a head over MaxHeaderSize, 400 for garbage).
func TestAccessLogRejected(t *testing.T) {
	hosttest.CheckLeaks(t)
	s := hosttest.NewSite(t, bin)
	s.Load("logger")
	s.Server = []string{"MaxHeaderSize 1"}
	logPath := filepath.Join(t.TempDir(), "access.log")
	s.WriteFile("logger.conf", "[LOGGER]\n    AccessLog "+logPath+"\n    FlushInterval 50\n")
	s.Start()
	var wants []string
	for _, r := range []struct{ raw, want string }{
		{"GET /fold HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", "GET /fold HTTP/1.1 400"},
		{"HELLO\r\n\r\n", "- - - 400"},
		{"GET /big HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", 2000) + "\r\n\r\n", "- - - 431"},
	} {
		c, err := net.Dial("tcp", s.Addr())
		hosttest.Must(t, err)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = io.WriteString(c, r.raw)
		hosttest.Must(t, err)
		resp, _ := io.ReadAll(c)
		c.Close()
		wants = append(wants, fmt.Sprintf("] %s %d", r.want, len(resp)))
	}
	lines := waitLines(t, logPath, len(wants))
	if len(lines) != len(wants) {
		t.Fatalf("want %d lines, got %q", len(wants), lines)
	}
	for i, w := range wants {
		if !strings.HasPrefix(lines[i], "127.0.0.1 - [") || !strings.HasSuffix(lines[i], w) {
			t.Errorf("line %d: %q, want one ending in %q", i, lines[i], w)
		}
	}
}

// TestAccessLogFlushedOnStop: with an hour-long interval nothing is written
// until the host stops the plugin, and then everything is.
func TestAccessLogFlushedOnStop(t *testing.T) {
	hosttest.CheckLeaks(t)
	s := hosttest.NewSite(t, bin)
	s.Load("logger")
	logPath := filepath.Join(t.TempDir(), "access.log")
	s.WriteFile("logger.conf", "[LOGGER]\n    AccessLog "+logPath+"\n    FlushInterval 3600000\n")
	p := s.Start()
	hc := &http.Client{Timeout: 10 * time.Second}
	for i := 0; i < 20; i++ {
		resp, err := hc.Get(s.URL(fmt.Sprintf("/index.html?n=%d", i)))
		hosttest.Must(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	hc.CloseIdleConnections()
	if b, err := os.ReadFile(logPath); err != nil || len(b) != 0 {
		t.Fatalf("before stop: %q %v (want an empty, existing file)", b, err)
	}
	hosttest.Must(t, p.Stop(15*time.Second))
	lines := waitLines(t, logPath, 20)
	for i, l := range lines {
		if !strings.Contains(l, fmt.Sprintf(" GET /index.html?n=%d HTTP/1.1 200 ", i)) {
			t.Fatalf("line %d: %q", i, l)
		}
	}
}

// TestAccessLogBufferSize: a full buffer is written before the interval.
func TestAccessLogBufferSize(t *testing.T) {
	hosttest.CheckLeaks(t)
	s := hosttest.NewSite(t, bin)
	s.Load("logger")
	logPath := filepath.Join(t.TempDir(), "access.log")
	s.WriteFile("logger.conf", "[LOGGER]\n    AccessLog "+logPath+"\n    FlushInterval 3600000\n    BufferSize 1\n")
	s.Start()
	c := hosttest.Dial(t, s.Addr())
	const n = 30 // 30 lines of ~75 bytes: over 1 KiB
	for i := 0; i < n; i++ {
		c.Send("GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		c.MustRead("GET")
	}
	waitLines(t, logPath, 1024/80)
}

// TestAccessLogDefaultPathAndReopen: without logger.conf the log goes to
// ../logs/access.log; SIGUSR1 to the plugin reopens it after a rotation.
func TestAccessLogDefaultPathAndReopen(t *testing.T) {
	hosttest.CheckLeaks(t)
	s := hosttest.NewSite(t, bin)
	s.Load("logger")
	p := s.Start()
	logPath := filepath.Join(filepath.Dir(s.Dir), "logs", "access.log")
	exchange(t, s.Addr(), "GET", "/one")
	waitLines(t, logPath, 1)

	hosttest.Must(t, os.Rename(logPath, logPath+".1"))
	plugin := p.PluginPid(t, "", 0)
	hosttest.Must(t, syscall.Kill(plugin, syscall.SIGUSR1))
	if !p.WaitLog("access log reopened") {
		t.Fatalf("no reopen in the log:\n%s", p.Log())
	}
	exchange(t, s.Addr(), "GET", "/two")
	if l := waitLines(t, logPath, 1); len(l) != 1 || !strings.Contains(l[0], " GET /two ") {
		t.Fatalf("after reopen: %q", l)
	}
	if b, _ := os.ReadFile(logPath + ".1"); strings.Count(string(b), "\n") != 1 || !strings.Contains(string(b), " GET /one ") {
		t.Fatalf("rotated file: %q", b)
	}
}

// TestAccessLogBadPathStopsStartup: an access log that cannot be opened is
// a start-up error, not silently lost lines.
func TestAccessLogBadPathStopsStartup(t *testing.T) {
	s := hosttest.NewSite(t, bin)
	s.Load("logger")
	s.WriteFile("blocker", "a file, not a folder\n")
	s.WriteFile("logger.conf", "[LOGGER]\n    AccessLog blocker/access.log\n")
	s.Refused("access log")
}

// TestAccessLogFlushedOnPluginSIGTERM: SIGTERM to the plugin itself writes
// the buffer before it exits (the host then restarts it).
func TestAccessLogFlushedOnPluginSIGTERM(t *testing.T) {
	hosttest.CheckLeaks(t)
	s := hosttest.NewSite(t, bin)
	s.Load("logger")
	logPath := filepath.Join(t.TempDir(), "access.log")
	s.WriteFile("logger.conf", "[LOGGER]\n    AccessLog "+logPath+"\n    FlushInterval 3600000\n")
	p := s.Start()
	for _, target := range []string{"/a", "/b", "/c"} {
		exchange(t, s.Addr(), "GET", target)
	}
	if b, err := os.ReadFile(logPath); err != nil || len(b) != 0 {
		t.Fatalf("before SIGTERM: %q %v (want an empty, existing file)", b, err)
	}
	plugin := p.PluginPid(t, "", 0)
	// Stage-40 notifications reach the plugin asynchronously, in batches:
	// let them arrive before the signal (nothing shows when they have).
	time.Sleep(500 * time.Millisecond)
	hosttest.Must(t, syscall.Kill(plugin, syscall.SIGTERM))
	lines := waitLines(t, logPath, 3)
	for i, target := range []string{"/a", "/b", "/c"} {
		if !strings.Contains(lines[i], " GET "+target+" HTTP/1.1 404 ") {
			t.Fatalf("line %d: %q", i, lines[i])
		}
	}
}
