// Package integration tests the real capuchin binary from the outside: each
// test writes a configuration into a temporary directory, starts the
// binary on 127.0.0.1 and talks to it with real clients. The machinery
// (building, configuration directories, the host process, a raw client)
// is internal/hosttest, shared with the plugins' end-to-end tests.
package integration

import (
	"os"
	"testing"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// bin holds the host built once for the whole package; binDir is its
// directory (the plugin tests build their plugins beside it).
var (
	bin    *hosttest.Bin
	binDir string
)

func TestMain(m *testing.M) {
	os.Exit(hosttest.Main(func() int { binDir = bin.Dir; return m.Run() }, &bin))
}

type (
	site     = hosttest.Site
	client   = hosttest.Client
	response = hosttest.Response
)

// newSite is a configuration directory whose index.html says hello.
func newSite(t *testing.T) *site {
	t.Helper()
	s := hosttest.NewSite(t, bin)
	s.WriteRoot("index.html", "<h1>hello</h1>\n")
	return s
}

func dial(t *testing.T, addr string) *client { t.Helper(); return hosttest.Dial(t, addr) }

func must(t testing.TB, err error) { t.Helper(); hosttest.Must(t, err) }

func freePort(t testing.TB) int { t.Helper(); return hosttest.FreePort(t) }

// build compiles package pkg (relative to the module root) into dir/name.
func build(dir, name, pkg string) error { return hosttest.BuildTo(dir, name, pkg) }

func moduleRoot() (string, error) { return hosttest.ModuleRoot() }
