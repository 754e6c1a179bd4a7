package hosttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Site is a test's configuration directory: capuchin.conf listening on
// 127.0.0.1:Port, sites/default serving Root, and plugins.load loading
// plugins from the Bin directory.
type Site struct {
	t    *testing.T
	bin  *Bin
	Dir  string // configuration directory
	Root string // document root
	Port int
	// Server holds extra [SERVER] lines, e.g. "KeepAlive off".
	Server []string
	// Prefix, when set, is a command the host runs under, e.g.
	// {"prlimit", "--nofile=80", "--"}.
	Prefix []string
	// Also are more listener addresses Start waits for (AddTLS adds its).
	Also []string
	// Env are more NAME=value variables for the host's environment.
	Env []string
}

// NewSite creates the configuration directory with a document root that
// holds index.html ("<h1>index</h1>\n").
func NewSite(t *testing.T, bin *Bin) *Site {
	t.Helper()
	dir := t.TempDir()
	s := &Site{t: t, bin: bin, Dir: dir, Root: filepath.Join(dir, "www"), Port: FreePort(t)}
	s.WriteFile("sites/default", "[HOST]\n    ServerName 127.0.0.1 localhost\n    DocumentRoot www\n")
	s.WriteFile("www/index.html", "<h1>index</h1>\n")
	return s
}

// Addr is the listener address.
func (s *Site) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// URL returns "http://ADDR" + path.
func (s *Site) URL(path string) string { return "http://" + s.Addr() + path }

// WriteFile writes a file relative to the configuration directory.
func (s *Site) WriteFile(name, content string) {
	s.t.Helper()
	p := filepath.Join(s.Dir, name)
	Must(s.t, os.MkdirAll(filepath.Dir(p), 0o755))
	Must(s.t, os.WriteFile(p, []byte(content), 0o644))
}

// Path returns the absolute path of name in the configuration directory.
func (s *Site) Path(name string) string { return filepath.Join(s.Dir, name) }

// Load writes plugins.load: Directory is the Bin directory, then one Load
// line per name, in order.
func (s *Site) Load(names ...string) {
	s.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[PLUGINS]\n    Directory %s\n", s.bin.Dir)
	for _, n := range names {
		fmt.Fprintf(&b, "    Load %s\n", n)
	}
	s.WriteFile("plugins.load", b.String())
}

// WriteRoot writes a file relative to the document root.
func (s *Site) WriteRoot(name, content string) { s.WriteFile(filepath.Join("www", name), content) }

// WriteConf writes capuchin.conf: Listen on Port, then the Server lines.
func (s *Site) WriteConf() {
	conf := fmt.Sprintf("[SERVER]\n    Listen %s\n", s.Addr())
	for _, l := range s.Server {
		conf += "    " + l + "\n"
	}
	s.WriteFile("capuchin.conf", conf)
}

// Proc is a running host.
type Proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan struct{}
	err    error
}

// Start writes capuchin.conf and starts the host, waiting until it listens.
// The host gets SIGTERM when the test ends (SIGKILL 10 s later).
func (s *Site) Start() *Proc {
	s.t.Helper()
	p, err := s.Run()
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { p.Stop(10 * time.Second) })
	for _, a := range append([]string{s.Addr()}, s.Also...) {
		if err := p.waitListening(a); err != nil {
			s.t.Fatal(err)
		}
	}
	return p
}

// Run writes capuchin.conf and starts the host without waiting; the caller
// stops it (Stop or Wait).
func (s *Site) Run() (*Proc, error) {
	s.WriteConf()
	p := &Proc{t: s.t, done: make(chan struct{})}
	args := append(append([]string{}, s.Prefix...), s.bin.Host(), "-c", s.Dir)
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.Stderr = lockedWriter{&p.mu, &p.stderr}
	// Race builds sleep 1 s at exit by default (atexit_sleep_ms), the host
	// and each plugin in turn: skip that, every test stops a host.
	p.cmd.Env = append(os.Environ(), "CAPUCHIN_LOG_LEVEL=debug",
		strings.TrimSpace("GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	p.cmd.Env = append(p.cmd.Env, s.Env...)
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start host: %w", err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }() // ends when the host exits
	return p, nil
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// Log returns what the host wrote to stderr so far (its plugins' lines
// included).
func (p *Proc) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// Pid is the host's process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Kill kills the host with SIGKILL.
func (p *Proc) Kill() { _ = p.cmd.Process.Kill() }

// Signal sends sig to the host.
func (p *Proc) Signal(sig syscall.Signal) { _ = p.cmd.Process.Signal(sig) }

// Wait waits up to d for the host to exit; ok is false on timeout.
func (p *Proc) Wait(d time.Duration) (err error, ok bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return p.err, true
	case <-t.C:
		return nil, false
	}
}

// Stop sends SIGTERM and waits up to d; then it kills the host and fails
// the test.
func (p *Proc) Stop(d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	p.Signal(syscall.SIGTERM)
	if err, ok := p.Wait(d); ok {
		return err
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	p.t.Errorf("host did not stop within %v after SIGTERM; log:\n%s", d, p.Log())
	return p.err
}

// WaitLog waits up to 5 s for the host's log to contain s.
func (p *Proc) WaitLog(s string) bool {
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(p.Log(), s) {
			return true
		}
	}
	return false
}

func (p *Proc) waitListening(addr string) error {
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		select {
		case <-p.done:
			return fmt.Errorf("host exited at start: %v\n%s", p.err, p.Log())
		default:
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
	}
	return fmt.Errorf("host not listening on %s; log:\n%s", addr, p.Log())
}

// Children returns the process ids of the host's child processes (its
// plugins), read from /proc (Linux).
func (p *Proc) Children() ([]int, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", p.Pid()))
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread ended
		}
		for _, s := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(s); err == nil {
				pids = append(pids, n)
			}
		}
	}
	return pids, nil
}

// PluginPid waits up to 10 s for the host's plugin process whose command
// line holds name (with name "": the host's only child) and whose pid is
// not not, and returns its pid.
func (p *Proc) PluginPid(t testing.TB, name string, not int) int {
	t.Helper()
	var pid int
	ok := Poll(10*time.Second, func() bool {
		pid = p.child(name)
		return pid != 0 && pid != not
	})
	if !ok {
		t.Fatalf("no plugin process %q other than %d; log:\n%s", name, not, p.Log())
	}
	return pid
}

// child is the pid of PluginPid's process now, or 0.
func (p *Proc) child(name string) int {
	kids, err := p.Children()
	if err != nil {
		return 0
	}
	if name == "" {
		if len(kids) != 1 {
			return 0
		}
		return kids[0]
	}
	for _, pid := range kids {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(b), name) {
			return pid
		}
	}
	return 0
}

// LoadFrom writes plugins.load: Directory dir, then one Load line per
// name, in order. The first Load line is line 3.
func (s *Site) LoadFrom(dir string, names ...string) {
	s.t.Helper()
	b := "[PLUGINS]\n    Directory " + dir + "\n"
	for _, n := range names {
		b += "    Load " + n + "\n"
	}
	s.WriteFile("plugins.load", b)
}

// Refused runs the host, which must refuse to start: exit non-zero within
// 30 s with want in its log. It returns the log.
func (s *Site) Refused(want string) string {
	s.t.Helper()
	p, err := s.Run()
	Must(s.t, err)
	err, ok := p.Wait(30 * time.Second)
	if !ok {
		p.Stop(10 * time.Second)
		s.t.Fatalf("the host started; want it refused with %q", want)
	}
	if err == nil || !strings.Contains(p.Log(), want) {
		s.t.Fatalf("exit %v; want non-zero and %q in the log:\n%s", err, want, p.Log())
	}
	return p.Log()
}

// StartChecked starts the host; when the test ends it stops it and fails
// the test if the host or a plugin reported a data race or a panic.
func (s *Site) StartChecked() *Proc {
	s.t.Helper()
	p := s.Start()
	s.t.Cleanup(func() {
		p.Stop(10 * time.Second)
		for _, bad := range []string{"WARNING: DATA RACE", "panic:"} {
			if strings.Contains(p.Log(), bad) {
				s.t.Errorf("%q in the log:\n%s", bad, p.Log())
			}
		}
	})
	return p
}

// CountLog counts the occurrences of sub in the host's log.
func (p *Proc) CountLog(sub string) int { return strings.Count(p.Log(), sub) }

// WaitLogCount waits up to 10 s for sub to appear at least n times.
func (p *Proc) WaitLogCount(sub string, n int) bool {
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if p.CountLog(sub) >= n {
			return true
		}
	}
	return false
}

// Check writes capuchin.conf, runs "capuchin -t -c DIR" and returns the
// exit status and the output.
func (s *Site) Check() (int, string) {
	s.t.Helper()
	s.WriteConf()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin.Host(), "-t", "-c", s.Dir)
	cmd.Env = append(os.Environ(), strings.TrimSpace("GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		s.t.Fatalf("capuchin -t did not exit within 30 s; output:\n%s", out)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	}
	Must(s.t, err)
	return 0, string(out)
}
