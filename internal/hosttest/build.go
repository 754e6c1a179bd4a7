// Package hosttest runs a real capuchin host with real plugin binaries for
// the plugins' end-to-end tests: Build compiles the host and the plugins
// into a temporary directory once per test binary, NewSite writes a
// configuration directory that loads them, and Site.Start runs the host on
// a free port of 127.0.0.1 until the test ends (SIGTERM in t.Cleanup).
package hosttest

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Bin is a directory of built executables: the host "capuchin" and one
// executable per plugin, named after the plugin's folder.
type Bin struct {
	Dir string
}

// Build compiles ./host and each plugin package (a path relative to the
// module root, e.g. "./plugins/hello") into a new temporary directory. The
// caller removes it with Bin.Remove. With -race the binaries are race
// builds too.
func Build(plugins ...string) (*Bin, error) {
	dir, err := os.MkdirTemp("", "capuchin-hosttest-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	b := &Bin{Dir: dir}
	if err := b.build("capuchin", "./host"); err != nil {
		b.Remove()
		return nil, err
	}
	for _, p := range plugins {
		if err := b.build(filepath.Base(p), p); err != nil {
			b.Remove()
			return nil, err
		}
	}
	return b, nil
}

// Remove deletes the directory.
func (b *Bin) Remove() { os.RemoveAll(b.Dir) }

// Host is the path of the host executable.
func (b *Bin) Host() string { return filepath.Join(b.Dir, "capuchin") }

func (b *Bin) build(name, pkg string) error { return BuildTo(b.Dir, name, pkg) }

// BuildTo compiles package pkg (relative to the module root) into dir/name,
// as a race build when the tests run with -race.
func BuildTo(dir, name, pkg string) error {
	root, err := ModuleRoot()
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
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
	}
	return nil
}

// ModuleRoot returns the directory of the module's go.mod.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module")
	}
	return filepath.Dir(mod), nil
}

// Main is a TestMain body: it builds the host and plugins, runs the tests
// with *bin set and returns the exit code. A fuzzing worker process, which
// runs only the fuzz function, builds nothing and leaves *bin nil: each
// worker the fuzzer starts or restarts would otherwise build every binary
// again before its first input.
func Main(run func() int, bin **Bin, plugins ...string) int {
	if fuzzWorker() {
		return run()
	}
	b, err := Build(plugins...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer b.Remove()
	*bin = b
	return run()
}

// fuzzWorker reports whether this test binary runs as one of the fuzzer's
// worker processes (the testing package's -test.fuzzworker flag).
func fuzzWorker() bool {
	if !flag.Parsed() {
		flag.Parse()
	}
	f := flag.Lookup("test.fuzzworker")
	return f != nil && f.Value.String() == "true"
}
