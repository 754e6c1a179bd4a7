package integration

import (
	"bufio"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/hosttest"
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

// failureWhere is where the error about a bad plugin points: its Load line
// in plugins.load, or for a bad configuration the plugin's own file:line.
func failureWhere(dir, load, conf string) string {
	if conf != "" {
		return filepath.Join(dir, load+".conf") + ":1: "
	}
	return filepath.Join(dir, "plugins.load") + ":4: Load: "
}

// TestPluginStartFailures: a plugin with a bad handshake, a wrong protocol
// version, a missing binary or a bad configuration stops start-up with a
// non-zero exit and a message naming the plugin and its Load line (for a
// bad configuration, the plugin's file and line), and no plugin process is
// left behind.
func TestPluginStartFailures(t *testing.T) {
	pluginTest(t)
	for _, tc := range badPlugins {
		t.Run(tc.name, func(t *testing.T) {
			dir := ownPluginDir(t, "hello", "helloopen", "badhandshake", "wrongversion")
			s := newSite(t)
			s.WriteConf()
			if tc.conf != "" {
				s.WriteFile(tc.load+".conf", tc.conf)
			}
			s.LoadFrom(dir, "hello", tc.load)
			start := time.Now()
			code, out := runCapuchin(t, "-c", s.Dir)
			where := failureWhere(s.Dir, tc.load, tc.conf)
			if code == 0 || !strings.Contains(out, tc.load) || !strings.Contains(out, where) {
				t.Fatalf("exit %d, output:\n%s\nwant a non-zero exit naming %s and %s", code, out, tc.load, where)
			}
			t.Logf("exit %d after %v", code, time.Since(start).Round(time.Millisecond))
			if !hosttest.Poll(5*time.Second, func() bool { return len(pidsRunning(dir)) == 0 }) {
				t.Errorf("plugin processes left behind: %v", pidsRunning(dir))
			}
		})
	}
}

// TestPluginReloadFailures: the same bad plugins on SIGHUP are refused
// with a message naming them; the running set stays and keeps serving.
func TestPluginReloadFailures(t *testing.T) {
	pluginTest(t)
	dir := ownPluginDir(t, "hello", "helloopen", "badhandshake", "wrongversion")
	s := newSite(t)
	s.LoadFrom(dir, "hello")
	p := s.StartChecked()
	pid := pluginPid(t, s, "hello", 0)
	c := dial(t, s.Addr())
	for i, tc := range badPlugins {
		mark := len(p.Log())
		if tc.conf != "" {
			s.WriteFile(tc.load+".conf", tc.conf)
		}
		s.LoadFrom(dir, "hello", tc.load)
		p.Signal(syscall.SIGHUP)
		if !p.WaitLogCount("reload failed", i+1) {
			t.Fatalf("%s: reload not refused:\n%s", tc.name, p.Log())
		}
		msg := p.Log()[mark:]
		msg = msg[strings.Index(msg, "reload failed"):]
		if !strings.Contains(msg, tc.load) || !strings.Contains(msg, failureWhere(s.Dir, tc.load, tc.conf)) {
			t.Errorf("%s: refusal does not name the plugin and its line:\n%s", tc.name, msg)
		}
		r := c.Get("/hello/x")
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
	pluginTest(t)
	dir := ownPluginDir(t, "hello", "gate", "notes")
	s := newSite(t)
	s.WriteFile("notes.conf", filepath.Join(s.Dir, "notes.txt"))
	s.LoadFrom(dir, "gate", "hello", "notes")
	p := s.StartChecked()
	pids := []int{pluginPid(t, s, "gate", 0), pluginPid(t, s, "hello", 0), pluginPid(t, s, "notes", 0)}
	// A handed-over connection, so that the plugin holds a client socket.
	c := dial(t, s.Addr())
	if r := c.Get("/hello/x"); r.Status != 200 {
		t.Fatalf("status %d", r.Status)
	}
	if got := pidsRunning(dir); len(got) != 3 {
		t.Fatalf("plugin processes before: %v, want %v", got, pids)
	}
	p.Kill()
	if _, ok := p.Wait(5 * time.Second); !ok {
		t.Fatal("host did not die on SIGKILL")
	}
	start := time.Now()
	if !hosttest.Poll(5*time.Second, func() bool { return len(pidsRunning(dir)) == 0 }) {
		t.Fatalf("plugin processes alive 5 s after the host's SIGKILL: %v", pidsRunning(dir))
	}
	t.Logf("plugins gone %v after the host", time.Since(start).Round(time.Millisecond))
	if !c.Closed(3 * time.Second) {
		t.Error("client connection still open after the host and its plugins died")
	}
}

// TestPluginCrashUnderLoad: kill -9 of the plugin while 8 clients send
// 400 requests each over keep-alive. Every request gets 200, the
// fail-closed 503 while the plugin is down, 502, or a closed connection —
// no hang; the host restarts the plugin (a new pid), which answers part of
// the same load and then every request.
func TestPluginCrashUnderLoad(t *testing.T) {
	pluginTest(t)
	s := newSite(t)
	s.LoadFrom(testPlugins(t), "hello")
	p := s.StartChecked()
	pid := pluginPid(t, s, "hello", 0)

	var done atomic.Int64
	killed := make(chan struct{})
	progress := func() {
		if done.Add(1) == 300 {
			syscall.Kill(pid, syscall.SIGKILL)
			close(killed)
		}
	}
	start := time.Now()
	ls := loadRun(hosttest.Load{Addr: s.Addr(), Path: "/hello/x", Workers: 8, PerWorker: 400, Pace: 3 * time.Millisecond,
		Progress: progress})
	t.Logf("3200 requests in %v: %s", time.Since(start).Round(time.Millisecond), ls)
	select {
	case <-killed:
	default:
		t.Fatal("the load ended before the kill")
	}
	if len(ls.Failures) > 0 || ls.Refused > 0 {
		t.Errorf("requests that hung or broke: %s", ls)
	}
	for st := range ls.Status {
		if st != 200 && st != 502 && st != 503 {
			t.Errorf("unexpected status %d: %s", st, ls)
		}
	}
	npid := pluginPid(t, s, "hello", pid)
	if !p.WaitLog("plugin restarted") {
		t.Errorf("no restart in the log:\n%s", p.Log())
	}
	t.Logf("200s by plugin pid: %v (killed %d, restarted %d)", ls.Tally, pid, npid)
	if ls.Tally[strconv.Itoa(npid)] == 0 {
		t.Errorf("the restarted plugin answered none of the load: %v", ls.Tally)
	}
	c := dial(t, s.Addr())
	for range 20 {
		if r := c.Get("/hello/x"); r.Status != 200 || r.Header.Get("X-Plugin-Pid") != strconv.Itoa(npid) {
			t.Fatalf("after the restart: %d from pid %q, want 200 from %d", r.Status, r.Header.Get("X-Plugin-Pid"), npid)
		}
	}
	if procAlive(pid) {
		t.Errorf("killed plugin %d still alive", pid)
	}
}

// TestPluginCrashInFlight: kill -9 of the plugin while it holds two
// requests: the one it has not answered yet gets 502 from the host, the
// one whose response it had started ends with a closed connection.
func TestPluginCrashInFlight(t *testing.T) {
	pluginTest(t)
	s := newSite(t)
	s.LoadFrom(testPlugins(t), "hello")
	s.StartChecked()
	pid := pluginPid(t, s, "hello", 0)

	started := dial(t, s.Addr())
	started.Send("GET /hello/hang HTTP/1.1\r\nHost: x\r\n\r\n")
	var head response
	if err := http1.ReadResponse(started.BR, nil, &head.Response); err != nil || head.Status != 200 {
		t.Fatalf("head of /hello/hang: %v %d", err, head.Status)
	}
	waiting := dial(t, s.Addr())
	waiting.Send("GET /hello/slow HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(300 * time.Millisecond) // both are in the plugin now
	killHard(t, pid)

	r := waiting.MustRead("GET")
	if r.Status != 502 || !strings.Contains(string(r.Body), "<h1>") {
		t.Errorf("request in flight without a response byte: %d %q, want a 502 page", r.Status, r.Body)
	}
	if !started.Closed(3 * time.Second) {
		t.Error("connection with a started response still open after the crash")
	}
	pluginPid(t, s, "hello", pid)
}

// TestPluginRestartFails: a crashed plugin whose binary no longer starts
// (replaced by one with a bad handshake) is retried with backoff while the
// host keeps serving: its paths get the fail-closed 503, static files 200.
// Once the binary is good again the next retry brings it back.
func TestPluginRestartFails(t *testing.T) {
	pluginTest(t)
	dir := ownPluginDir(t, "hello")
	s := newSite(t)
	s.LoadFrom(dir, "hello")
	p := s.StartChecked()
	pid := pluginPid(t, s, "hello", 0)
	src := testPlugins(t)
	bin := filepath.Join(dir, "hello")
	must(t, os.Rename(bin, bin+".good"))
	must(t, copyExec(filepath.Join(src, "badhandshake"), bin))
	killHard(t, pid)
	if !p.WaitLogCount("plugin restart failed", 2) {
		t.Fatalf("no failed restarts:\n%s", p.Log())
	}
	c := dial(t, s.Addr())
	if r := c.Get("/hello/x"); r.Status != 503 {
		t.Errorf("plugin path while the plugin cannot start: %d, want 503", r.Status)
	}
	c = dial(t, s.Addr())
	if r := c.Get("/index.html"); r.Status != 200 {
		t.Errorf("static while the plugin cannot start: %d", r.Status)
	}
	must(t, os.Rename(bin+".good", bin))
	npid := 0
	for end := time.Now().Add(10 * time.Second); npid == 0 && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if b, err := os.ReadFile(filepath.Join(s.Dir, "hello.conf.pid")); err == nil {
			if n, _ := strconv.Atoi(strings.TrimSpace(string(b))); n != pid {
				npid = n
			}
		}
	}
	if npid == 0 {
		t.Fatalf("plugin not back 10 s after its binary was fixed:\n%s", p.Log())
	}
	ok := hosttest.Poll(5*time.Second, func() bool {
		c := dial(t, s.Addr())
		defer c.C.Close()
		r := c.Get("/hello/x")
		return r.Status == 200 && r.Header.Get("X-Plugin-Pid") == strconv.Itoa(npid)
	})
	if !ok {
		t.Errorf("restarted plugin %d does not answer", npid)
	}
	if got := pidsRunning(dir); len(got) != 1 {
		t.Errorf("plugin processes: %v, want only %d (no stray bad-handshake processes)", got, npid)
	}
}

// TestPluginReloadChanged: a reload restarts a plugin whose configuration
// file or binary changed (a new pid answers) and keeps one that did not.
func TestPluginReloadChanged(t *testing.T) {
	pluginTest(t)
	dir := ownPluginDir(t, "hello", "gate")
	s := newSite(t)
	s.LoadFrom(dir, "gate", "hello")
	p := s.StartChecked()
	gate, hello := pluginPid(t, s, "gate", 0), pluginPid(t, s, "hello", 0)
	reload := func(n int) {
		t.Helper()
		p.Signal(syscall.SIGHUP)
		if !p.WaitLogCount("configuration reloaded", n) {
			t.Fatalf("reload %d:\n%s", n, p.Log())
		}
	}
	answeredBy := func() string {
		c := dial(t, s.Addr())
		defer c.C.Close()
		return c.Get("/hello/x").Header.Get("X-Plugin-Pid")
	}
	s.WriteFile("hello.conf", "changed\n")
	reload(1)
	hello2 := pluginPid(t, s, "hello", hello)
	if got := answeredBy(); got != strconv.Itoa(hello2) {
		t.Errorf("after a config change answered by %s, want the new %d", got, hello2)
	}
	future := time.Now().Add(time.Minute)
	must(t, os.Chtimes(filepath.Join(dir, "hello"), future, future))
	reload(2)
	hello3 := pluginPid(t, s, "hello", hello2)
	if got := answeredBy(); got != strconv.Itoa(hello3) {
		t.Errorf("after a binary change answered by %s, want the new %d", got, hello3)
	}
	if g := pluginPid(t, s, "gate", 0); g != gate {
		t.Errorf("unchanged gate restarted: %d → %d", gate, g)
	}
	if got := pidsRunning(dir); len(got) != 2 {
		t.Errorf("plugin processes after two reloads: %v, want 2", got)
	}
}

// TestHandOverToStoppedPlugin: a plugin that stops reading (SIGSTOP) while
// new connections keep coming cannot hold them past its stage-30 deadline,
// whether it takes its events on the framed calls socket (hello) or on the
// gRPC stream (hellogrpc). Enough hand-overs to fill the socket that
// passes descriptors come at once, then one every 10 ms for 3 s: every
// client gets the fail-closed 503 (or a closed connection) within the
// deadline (1.5 s) and a margin, none waits until the load ends. After
// SIGCONT the plugin answers again and lets go of the descriptors passed
// while it was stopped.
func TestHandOverToStoppedPlugin(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		deadline   time.Duration
	}{{"hello", "/hello/x", 1500 * time.Millisecond}, {"hellogrpc", "/hello/x", 1500 * time.Millisecond},
		{"gate", "/", 2 * time.Second}, {"gategrpc", "/", 2 * time.Second}} {
		t.Run(tc.name, func(t *testing.T) { callsToStopped(t, tc.name, tc.path, tc.deadline) })
	}
}

func callsToStopped(t *testing.T, name, path string, deadline time.Duration) {
	pluginTest(t)
	s := newSite(t)
	s.LoadFrom(testPlugins(t), name)
	s.StartChecked()
	pid := pluginPid(t, s, name, 0)
	fds0 := openFDs(t, pid)
	must(t, syscall.Kill(pid, syscall.SIGSTOP))
	cont := sync.OnceFunc(func() { syscall.Kill(pid, syscall.SIGCONT) })
	t.Cleanup(cont)

	const burst, trickle = 400, 300
	waits := make([]time.Duration, burst+trickle)
	statuses := make([]string, burst+trickle)
	var wg sync.WaitGroup
	for i := range waits {
		if i >= burst {
			time.Sleep(10 * time.Millisecond)
		}
		wg.Go(func() { waits[i], statuses[i] = timedGet(s.Addr(), path) })
	}
	wg.Wait()
	worst, counts := time.Duration(0), map[string]int{}
	for i, w := range waits {
		worst = max(worst, w)
		counts[statuses[i]]++
	}
	t.Logf("%d clients: worst wait %v, answers %v", len(waits), worst.Round(time.Millisecond), counts)
	if worst > deadline+1500*time.Millisecond {
		t.Errorf("a client waited %v for a stopped plugin whose deadline is %v", worst.Round(time.Millisecond), deadline)
	}
	for st := range counts {
		if st != "503" && st != "closed" {
			t.Errorf("answer %q from a stopped plugin, want 503 or a closed connection", st)
		}
	}
	cont()
	if !hosttest.Poll(10*time.Second, func() bool { _, st := timedGet(s.Addr(), path); return st == "200" }) {
		t.Fatal("the plugin does not answer after SIGCONT")
	}
	if !hosttest.Poll(5*time.Second, func() bool { return openFDs(t, pid) <= fds0 }) {
		t.Errorf("the plugin holds %d descriptors, %d before it stopped", openFDs(t, pid), fds0)
	}
}

// timedGet sends one GET (with a field of 1,000 bytes) and Connection:
// close on a new connection, and returns how long the answer's status line
// took and its status ("closed" when the connection ended without one,
// "timeout" after 10 s).
func timedGet(addr, path string) (time.Duration, string) {
	start := time.Now()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return time.Since(start), "dial: " + err.Error()
	}
	defer c.Close()
	c.SetDeadline(start.Add(10 * time.Second))
	pad := strings.Repeat("p", 1000) // a head that fills gRPC's window sooner
	if _, err := c.Write([]byte("GET " + path + " HTTP/1.1\r\nHost: x\r\nX-Pad: " + pad + "\r\nConnection: close\r\n\r\n")); err != nil {
		return time.Since(start), "closed"
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return time.Since(start), "timeout"
	case err != nil:
		return time.Since(start), "closed"
	}
	_, status, _ := strings.Cut(line, " ")
	status, _, _ = strings.Cut(status, " ")
	return time.Since(start), status
}
