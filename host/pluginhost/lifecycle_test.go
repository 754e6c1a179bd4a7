package pluginhost

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/capuchin/capuchin/host/config"
	"github.com/capuchin/capuchin/internal/hosttest"
)

// Lifecycle tests: load order, start errors, crash and restart, the host
// killed, reload.

func TestLoadOrder(t *testing.T) {
	hosttest.CheckLeaks(t)
	for _, order := range [][]string{{"hello", "helloopen"}, {"helloopen", "hello"}} {
		dir := t.TempDir()
		a, b := spec(t, dir, order[0], ""), spec(t, dir, order[1], "")
		h := startHost(t, a, b)
		c := dial(t, newLoop(t, h).addr())
		r := c.get("/hello/who")
		if got := r.header.Get("X-Plugin-Pid"); got != strconv.Itoa(pidOf(t, a)) {
			t.Errorf("order %v: answered by pid %s, want the first plugin %d", order, got, pidOf(t, a))
		}
		// Declined by the first, declined by the second: static.
		if r := c.get("/hello/decline"); !strings.HasPrefix(r.body, "static") {
			t.Errorf("double decline: %q", r.body)
		}
	}
}

func TestStartErrors(t *testing.T) {
	hosttest.CheckLeaks(t)
	dir := t.TempDir()
	cases := []struct {
		spec config.PluginSpec
		want string
	}{
		{config.PluginSpec{Name: "nope", Path: filepath.Join(dir, "nope"), Where: "plugins.load:7"}, "no such file"},
		{spec(t, dir, "badhandshake", ""), "Unrecognized remote plugin message"},
		{spec(t, dir, "wrongversion", ""), "incompatible API version"},
		{spec(t, dir, "gate", "bad"), "gate.conf:1: bad is not a setting"},
	}
	for _, tc := range cases {
		good := spec(t, dir, "hello", "")
		h, err := Start([]config.PluginSpec{good, tc.spec}, nil)
		if err == nil {
			h.Shutdown(context.Background())
			t.Errorf("%s: started", tc.spec.Name)
			continue
		}
		msg := err.Error()
		var ce *ConfigError
		if errors.As(err, &ce) {
			// A configuration error is the plugin's one line, naming its
			// file once, not the Load line.
			if !strings.HasSuffix(msg, tc.want) || strings.Count(msg, ".conf") != 1 {
				t.Errorf("%s: configuration error %q, want one line ending %q", tc.spec.Name, msg, tc.want)
			}
		} else if !strings.Contains(msg, tc.spec.Where) || !strings.Contains(msg, "plugin "+tc.spec.Name) ||
			!strings.Contains(msg, tc.want) {
			t.Errorf("%s: error %q lacks %q, the plugin or its Load line", tc.spec.Name, msg, tc.want)
		}
		hosttest.WaitFor(t, "first plugin stopped", func() bool { return gone(pidOf(t, good)) })
	}
}

// gone reports whether pid no longer runs (a zombie counts as gone).
func gone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] == "Z"
}

func TestCrashRestart(t *testing.T) {
	hosttest.CheckLeaks(t)
	dir := t.TempDir()
	s := spec(t, dir, "hello", "")
	h := startHost(t, s)
	l := newLoop(t, h)
	pid := pidOf(t, s)

	// In flight with the response started: the connection just closes.
	c := dial(t, l.addr())
	c.send("GET /hello/hang HTTP/1.1\r\nHost: test\r\n\r\n")
	var resp strings.Builder
	br := c.BR
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("hang head: %q %v", line, err)
	}
	resp.WriteString(line)
	syscall.Kill(pid, syscall.SIGKILL)
	if !c.closed() {
		t.Error("connection open after the plugin crashed mid-response")
	}

	// In flight before any byte: 502.
	hosttest.WaitFor(t, "restart", func() bool { p := readPid(s); return p != 0 && p != pid })
	pid = readPid(s)
	// The pid file is written at Configure; the host takes the plugin back
	// a moment later.
	hosttest.WaitFor(t, "served after the restart", func() bool { return dial(t, l.addr()).get("/hello/up").status == 200 })
	c = dial(t, l.addr())
	c.send("GET /hello/slow HTTP/1.1\r\nHost: test\r\n\r\n")
	time.Sleep(300 * time.Millisecond)
	syscall.Kill(pid, syscall.SIGKILL)
	if r, err := c.read(); err != nil || r.status != 502 {
		t.Errorf("crash before any byte: %d %v", r.status, err)
	}
	if len(l.results()) != 2 {
		t.Errorf("Err results = %v, want 2", l.results())
	}

	// Served again after the restart.
	hosttest.WaitFor(t, "second restart", func() bool { p := readPid(s); return p != 0 && p != pid })
	hosttest.WaitFor(t, "served again", func() bool {
		c := dial(t, l.addr())
		return c.get("/hello/again").status == 200
	})
}

func readPid(s config.PluginSpec) int {
	b, _ := os.ReadFile(s.Config + ".pid")
	n, _ := strconv.Atoi(string(b))
	return n
}

func TestHostSIGKILLLeavesNoPlugin(t *testing.T) {
	dir := t.TempDir()
	s := spec(t, dir, "hello", "")
	cmd := exec.Command(filepath.Join(binDir, "tinyhost"), s.Path, s.Config)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("tinyhost: %q %v", line, err)
	}
	pid := pidOf(t, s)
	if gone(pid) {
		t.Fatal("plugin not running")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	hosttest.WaitFor(t, "plugin to die with its host", func() bool { return gone(pid) })
}

func TestReload(t *testing.T) {
	hosttest.CheckLeaks(t)
	dir := t.TempDir()
	hello, gate := spec(t, dir, "hello", ""), spec(t, dir, "gate", "")
	h := startHost(t, hello)
	l := newLoop(t, h)
	helloPid := pidOf(t, hello)

	// Load runs during every reload: no request may fail.
	var stop atomic.Bool
	var failures, done atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 2000 && !stop.Load(); n++ {
				c := dial(t, l.addr())
				c.send("GET /static HTTP/1.1\r\nHost: test\r\n\r\n")
				if r, err := c.read(); err != nil || r.status != 200 {
					failures.Add(1)
				}
				c.C.Close()
				done.Add(1)
			}
		}()
	}

	if err := h.Reload([]config.PluginSpec{hello, gate}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, l.addr())
	if r := c.get("/deny"); r.status != 403 {
		t.Errorf("added gate: %d", r.status)
	}
	if pidOf(t, hello) != helloPid {
		t.Error("unchanged plugin was restarted")
	}
	missing := config.PluginSpec{Name: "missing", Path: filepath.Join(dir, "missing"), Where: "plugins.load:3"}
	if err := h.Reload([]config.PluginSpec{missing}); err == nil || !strings.Contains(err.Error(), "plugins.load:3") {
		t.Errorf("reload with a missing plugin: %v", err)
	}
	if r := c.get("/deny"); r.status != 403 {
		t.Errorf("old set not kept after a failed reload: %d", r.status)
	}
	if err := h.Reload([]config.PluginSpec{gate}); err != nil {
		t.Fatal(err)
	}
	if r := c.get("/hello/x"); !strings.HasPrefix(r.body, "static") {
		t.Errorf("removed plugin still answers: %q", r.body)
	}
	hosttest.WaitFor(t, "removed plugin to exit", func() bool { return gone(helloPid) })
	stop.Store(true)
	wg.Wait()
	if failures.Load() > 0 || done.Load() == 0 {
		t.Errorf("%d of %d requests failed during reloads", failures.Load(), done.Load())
	}
	if errs := l.results(); len(errs) > 0 {
		t.Error(errors.Join(errs...))
	}
}
