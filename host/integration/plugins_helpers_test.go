package integration

// Helpers of the plugin end-to-end tests (plugins_*_test.go): building the
// test plugins, writing plugins.load, finding plugin processes, and the
// bounded keep-alive load (hosttest.Load) with the test plugin's pid tally.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// testplugModes are the names testplug answers to (see its doc comment).
var testplugModes = []string{"hello", "helloopen", "hellogrpc", "gate", "gategrpc", "gateopen", "notes"}

var (
	plugOnce sync.Once
	plugDir  string
	plugErr  error
)

// testPlugins builds the test plugins once per package run and returns the
// directory holding them: testplug under each of its mode names, closer,
// stuck, badhandshake and wrongversion, and the real plugins hello (as realhello),
// logger and mandril.
func testPlugins(t *testing.T) string {
	t.Helper()
	plugOnce.Do(func() { plugDir, plugErr = buildPlugins(filepath.Join(binDir, "plugins")) })
	if plugErr != nil {
		t.Fatal(plugErr)
	}
	return plugDir
}

func buildPlugins(dir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "./host/pluginhost/testdata/testplug", "./host/pluginhost/testdata/badhandshake",
		"./host/pluginhost/testdata/wrongversion", "./host/integration/testdata/closer", "./host/integration/testdata/stuck",
		"./plugins/logger", "./plugins/mandril")
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building test plugins: %v\n%s", err, out)
	}
	if err := build(dir, "realhello", "./plugins/hello"); err != nil {
		return "", err
	}
	for _, m := range testplugModes {
		if err := copyExec(filepath.Join(dir, "testplug"), filepath.Join(dir, m)); err != nil {
			return "", err
		}
	}
	return dir, nil
}

func copyExec(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o755)
}

// ownPluginDir returns a fresh plugin directory for one test holding
// copies of the named test plugins, so that the test can find its own
// plugin processes by path.
func ownPluginDir(t *testing.T, names ...string) string {
	t.Helper()
	src := testPlugins(t)
	dir := filepath.Join(t.TempDir(), "plugins")
	must(t, os.MkdirAll(dir, 0o755))
	for _, n := range names {
		must(t, copyExec(filepath.Join(src, n), filepath.Join(dir, n)))
	}
	return dir
}

// pluginPid waits for the pid a testplug wrote at Configure (NAME.conf.pid)
// to differ from not, and returns it.
func pluginPid(t *testing.T, s *site, name string, not int) int {
	t.Helper()
	var pid int
	ok := hosttest.Poll(5*time.Second, func() bool {
		b, err := os.ReadFile(filepath.Join(s.Dir, name+".conf.pid"))
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid != not
	})
	if !ok {
		t.Fatalf("no pid file of plugin %s (other than %d)", name, not)
	}
	return pid
}

// alive reports whether pid is a live process (not gone, not a zombie).
func procAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) STATE ...: comm may hold spaces, the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// pidsRunning returns the live processes whose executable path (argv[0])
// lies in dir.
func pidsRunning(dir string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		argv0, _, _ := strings.Cut(string(b), "\x00")
		if filepath.Dir(argv0) == dir && procAlive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

func dialFrom(t *testing.T, ip, addr string) *client {
	t.Helper()
	return hosttest.DialFrom(t, ip, addr)
}

// runCapuchin runs the binary with args to its end (at most 30 s) and
// returns its exit code and combined output.
func runCapuchin(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "capuchin"), args...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("capuchin %v did not exit within 30 s; output:\n%s", args, out)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	}
	must(t, err)
	return 0, string(out)
}

// pluginTest prepares a plugin test: race-instrumented binaries exit
// without the race runtime's 1 s exit delay (GORACE reaches the plugins
// through the host's environment), and no goroutine may leak.
func pluginTest(t *testing.T) {
	t.Setenv("GORACE", "atexit_sleep_ms=0")
	noGoroutineLeak(t)
}

// noGoroutineLeak registers a check, run after every later cleanup (the
// server's stop included), that the test left no goroutine behind.
func noGoroutineLeak(t *testing.T) { t.Helper(); hosttest.CheckLeaks(t) }

// loadRun is a bounded keep-alive load of GETs (hosttest.Load) whose
// answers are counted by the test plugin's X-Plugin-Pid.
func loadRun(l hosttest.Load) *hosttest.LoadStats {
	l.Tally = "X-Plugin-Pid"
	return l.Run()
}

// killHard sends SIGKILL to pid.
func killHard(t *testing.T, pid int) {
	t.Helper()
	must(t, syscall.Kill(pid, syscall.SIGKILL))
}

// notesSite is a site with the hello and notes test plugins loaded: notes
// writes a line for each stage-40 record and stage-50 notice to the file
// it returns.
func notesSite(t *testing.T) (*site, string) {
	t.Helper()
	s := newSite(t)
	notes := filepath.Join(s.Dir, "notes.txt")
	s.WriteFile("notes.conf", notes)
	s.LoadFrom(testPlugins(t), "hello", "notes")
	return s, notes
}
