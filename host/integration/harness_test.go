// Package integration tests the real capuchin binary from the outside: each
// test writes a configuration into a temporary directory, starts the
// binary on 127.0.0.1 and talks to it with real clients.
package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/capuchin/capuchin/api/http1"
)

var binDir string // holds the binaries built once for the whole package

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "capuchin-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := func() int {
		if err := build(dir, "capuchin", "./host"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}()
	os.RemoveAll(dir)
	os.Exit(code)
}

// build compiles the package pkg (relative to the module root) into dir/name.
func build(dir, name, pkg string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	args := []string{"build", "-o", filepath.Join(dir, name)}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	return nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// site is a test's configuration directory with its document root.
type site struct {
	t    *testing.T
	Dir  string // configuration directory
	Root string // document root
	Port int
	// Server holds extra [SERVER] lines, e.g. "Timeout 1".
	Server []string
}

func newSite(t *testing.T) *site {
	t.Helper()
	dir := t.TempDir()
	s := &site{t: t, Dir: dir, Root: filepath.Join(dir, "www"), Port: freePort(t)}
	must(t, os.MkdirAll(filepath.Join(dir, "sites"), 0o755))
	must(t, os.MkdirAll(s.Root, 0o755))
	s.WriteFile("sites/default", "[HOST]\n    ServerName 127.0.0.1 localhost\n    DocumentRoot www\n")
	s.WriteRoot("index.html", "<h1>hello</h1>\n")
	return s
}

// Addr is the listener address.
func (s *site) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.Port) }

// URL returns http://addr + path.
func (s *site) URL(path string) string { return "http://" + s.Addr() + path }

// WriteFile writes a file relative to the configuration directory.
func (s *site) WriteFile(name, content string) {
	s.t.Helper()
	p := filepath.Join(s.Dir, name)
	must(s.t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(s.t, os.WriteFile(p, []byte(content), 0o644))
}

// WriteRoot writes a file relative to the document root.
func (s *site) WriteRoot(name, content string) { s.WriteFile(filepath.Join("www", name), content) }

// writeConf writes capuchin.conf from the port and the extra lines.
func (s *site) writeConf() {
	conf := fmt.Sprintf("[SERVER]\n    Listen 127.0.0.1:%d\n", s.Port)
	for _, l := range s.Server {
		conf += "    " + l + "\n"
	}
	s.WriteFile("capuchin.conf", conf)
}

// proc is a running capuchin.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan struct{}
	err    error
}

// Start writes the configuration and starts the server; it is stopped
// (SIGTERM, then SIGKILL) when the test ends.
func (s *site) Start() *proc {
	s.t.Helper()
	s.writeConf()
	p := &proc{t: s.t, done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(binDir, "capuchin"), "-c", s.Dir)
	p.cmd.Stderr = lockedWriter{&p.mu, &p.stderr}
	p.cmd.Env = append(os.Environ(), "CAPUCHIN_LOG_LEVEL=debug")
	must(s.t, p.cmd.Start())
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	s.t.Cleanup(func() { p.Stop(10 * time.Second) })
	waitListening(s.t, s.Addr(), p)
	return p
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

// Log returns what the server wrote to stderr so far.
func (p *proc) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// Signal sends sig to the server.
func (p *proc) Signal(sig syscall.Signal) { p.cmd.Process.Signal(sig) }

// Wait waits up to d for the server to exit and returns its exit error.
func (p *proc) Wait(d time.Duration) (error, bool) {
	select {
	case <-p.done:
		return p.err, true
	case <-time.After(d):
		return nil, false
	}
}

// Stop sends SIGTERM and waits; after d it kills the process.
func (p *proc) Stop(d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	p.Signal(syscall.SIGTERM)
	if err, ok := p.Wait(d); ok {
		return err
	}
	p.cmd.Process.Kill()
	<-p.done
	p.t.Errorf("server did not stop within %v after SIGTERM; log:\n%s", d, p.Log())
	return p.err
}

// WaitLog waits up to 5 s for the log to contain s.
func (p *proc) WaitLog(s string) bool {
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(p.Log(), s) {
			return true
		}
	}
	return false
}

func waitListening(t *testing.T, addr string, p *proc) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		select {
		case <-p.done:
			t.Fatalf("server exited at start: %v\n%s", p.err, p.Log())
		default:
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
	}
	t.Fatalf("server not listening on %s; log:\n%s", addr, p.Log())
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// client is a raw connection that writes bytes and reads responses.
type client struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	must(t, err)
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return &client{t: t, c: c, br: bufio.NewReader(c)}
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// response is a response read off the wire.
type response struct {
	http1.Response
	Body []byte
}

// read reads one response to a request with method.
func (c *client) read(method string) (*response, error) {
	r := &response{}
	if err := http1.ReadResponse(c.br, nil, &r.Response); err != nil {
		return nil, err
	}
	var b http1.Body
	b.ResetResponse(c.br, &r.Response, method)
	body, err := io.ReadAll(&b)
	r.Body = body
	return r, err
}

// mustRead reads one response or fails the test.
func (c *client) mustRead(method string) *response {
	c.t.Helper()
	r, err := c.read(method)
	if err != nil {
		c.t.Fatalf("reading response: %v", err)
	}
	return r
}

// closed reports whether the server closed the connection without sending
// anything more (within the deadline).
func (c *client) closed(within time.Duration) bool {
	c.c.SetReadDeadline(time.Now().Add(within))
	_, err := c.br.ReadByte()
	return err == io.EOF || isReset(err)
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "reset") || strings.Contains(err.Error(), "broken pipe"))
}
