package integration

import (
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// badPlugins are plugins.load entries that must stop start-up; each is
// loaded after hello, on line 4 of plugins.load. conf is the plugin's
// configuration file, if any.
var badPlugins = []struct {
	name, load, conf string
}{
	{"bad handshake", "badhandshake", ""},
	{"wrong protocol version", "wrongversion", ""},
	{"missing binary", "nosuchplugin", ""},
	{"bad configuration", "helloopen", "bad setting\n"},
}

// TestPluginStartFailures: a plugin with a bad handshake, a wrong protocol
// version, a missing binary or a bad configuration stops start-up with a
// non-zero exit and a message naming the plugin and its Load line, and no
// plugin process is left behind.
func TestPluginStartFailures(t *testing.T) {
	for _, tc := range badPlugins {
		t.Run(tc.name, func(t *testing.T) {
			dir := ownPluginDir(t, "hello", "helloopen", "badhandshake", "wrongversion")
			s := newSite(t)
			s.writeConf()
			if tc.conf != "" {
				s.WriteFile(tc.load+".conf", tc.conf)
			}
			s.writeLoad(dir, "hello", tc.load)
			start := time.Now()
			code, out := runCapuchin(t, "-c", s.Dir)
			where := filepath.Join(s.Dir, "plugins.load") + ":4"
			if code == 0 || !strings.Contains(out, tc.load) || !strings.Contains(out, where) {
				t.Fatalf("exit %d, output:\n%s\nwant a non-zero exit naming %s and %s", code, out, tc.load, where)
			}
			t.Logf("exit %d after %v", code, time.Since(start).Round(time.Millisecond))
			if !waitFor(func() bool { return len(pidsRunning(dir)) == 0 }) {
				t.Errorf("plugin processes left behind: %v", pidsRunning(dir))
			}
		})
	}
}

// TestPluginReloadFailures: the same bad plugins on SIGHUP are refused
// with a message naming them; the running set stays and keeps serving.
func TestPluginReloadFailures(t *testing.T) {
	noGoroutineLeak(t)
	dir := ownPluginDir(t, "hello", "helloopen", "badhandshake", "wrongversion")
	s := newSite(t)
	s.writeLoad(dir, "hello")
	p := s.Start()
	pid := s.pluginPid(t, "hello", 0)
	c := dial(t, s.Addr())
	for i, tc := range badPlugins {
		mark := len(p.Log())
		if tc.conf != "" {
			s.WriteFile(tc.load+".conf", tc.conf)
		}
		s.writeLoad(dir, "hello", tc.load)
		p.Signal(syscall.SIGHUP)
		if !p.waitLogCount("reload failed", i+1) {
			t.Fatalf("%s: reload not refused:\n%s", tc.name, p.Log())
		}
		msg := p.Log()[mark:]
		msg = msg[strings.Index(msg, "reload failed"):]
		if !strings.Contains(msg, "plugin "+tc.load) || !strings.Contains(msg, "plugins.load:4") {
			t.Errorf("%s: refusal does not name the plugin and its line:\n%s", tc.name, msg)
		}
		r := c.get("/hello/x")
		if r.Status != 200 || r.Header.Get("X-Plugin-Pid") != strconv.Itoa(pid) {
			t.Fatalf("%s: after the refused reload: %d from pid %q, want 200 from %d", tc.name, r.Status, r.Header.Get("X-Plugin-Pid"), pid)
		}
	}
	if got := pidsRunning(dir); len(got) != 1 || got[0] != pid {
		t.Errorf("plugin processes after the refused reloads: %v, want only hello's %d", got, pid)
	}
}

// TestPluginsDieWithHost: SIGKILL of the host leaves no plugin process
// within a few seconds.
func TestPluginsDieWithHost(t *testing.T) {
	dir := ownPluginDir(t, "hello", "gate", "notes")
	s := newSite(t)
	s.WriteFile("notes.conf", filepath.Join(s.Dir, "notes.txt"))
	s.writeLoad(dir, "gate", "hello", "notes")
	p := s.Start()
	pids := []int{s.pluginPid(t, "gate", 0), s.pluginPid(t, "hello", 0), s.pluginPid(t, "notes", 0)}
	// A handed-over connection, so that the plugin holds a client socket.
	c := dial(t, s.Addr())
	if r := c.get("/hello/x"); r.Status != 200 {
		t.Fatalf("status %d", r.Status)
	}
	if got := pidsRunning(dir); len(got) != 3 {
		t.Fatalf("plugin processes before: %v, want %v", got, pids)
	}
	p.cmd.Process.Kill()
	if _, ok := p.Wait(5 * time.Second); !ok {
		t.Fatal("host did not die on SIGKILL")
	}
	start := time.Now()
	if !waitFor(func() bool { return len(pidsRunning(dir)) == 0 }) {
		t.Fatalf("plugin processes alive 5 s after the host's SIGKILL: %v", pidsRunning(dir))
	}
	t.Logf("plugins gone %v after the host", time.Since(start).Round(time.Millisecond))
	if !c.closed(3 * time.Second) {
		t.Error("client connection still open after the host and its plugins died")
	}
}

// TestPluginCrashUnderLoad: kill -9 of the plugin while 8 clients send
// 200 requests each over keep-alive. Every request gets 200, 502, the
// fail-closed 503 while the plugin is down, or a closed connection — no
// hang; the host restarts the plugin (a new pid) and serves through it.
func TestPluginCrashUnderLoad(t *testing.T) {
	noGoroutineLeak(t)
	s := newSite(t)
	s.writeLoad(testPlugins(t), "hello")
	p := s.Start()
	pid := s.pluginPid(t, "hello", 0)

	var done atomic.Int64
	killed := make(chan struct{})
	progress := func() {
		if done.Add(1) == 300 {
			syscall.Kill(pid, syscall.SIGKILL)
			close(killed)
		}
	}
	start := time.Now()
	ls := load{Addr: s.Addr(), Path: "/hello/x", Workers: 8, PerWorker: 200, Progress: progress}.run()
	t.Logf("1600 requests in %v: %s", time.Since(start).Round(time.Millisecond), ls)
	select {
	case <-killed:
	default:
		t.Fatal("the load ended before the kill")
	}
	if len(ls.failures) > 0 {
		t.Errorf("requests that hung or broke: %s", ls)
	}
	for st := range ls.status {
		if st != 200 && st != 502 && st != 503 {
			t.Errorf("unexpected status %d: %s", st, ls)
		}
	}
	if ls.status[200] < 300 {
		t.Errorf("too few successes: %s", ls)
	}
	npid := s.pluginPid(t, "hello", pid)
	if !p.WaitLog("plugin restarted") {
		t.Errorf("no restart in the log:\n%s", p.Log())
	}
	var r *response
	ok := waitFor(func() bool {
		c := dial(t, s.Addr())
		defer c.c.Close()
		r = c.get("/hello/x")
		return r.Status == 200
	})
	if !ok || r.Header.Get("X-Plugin-Pid") != strconv.Itoa(npid) {
		t.Fatalf("after the restart: %d from pid %q, want 200 from %d", r.Status, r.Header.Get("X-Plugin-Pid"), npid)
	}
	if alive(pid) {
		t.Errorf("killed plugin %d still alive", pid)
	}
}
