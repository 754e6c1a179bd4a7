package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWritingPluginsGuide follows docs/writing-plugins.md as written, from
// an empty folder outside the repository: step 1's commands, step 2's
// main.go, step 3's commands (go mod tidy, go build into the checkout's
// bin/plugins), then loads the plugin into the real host and asks it for
// its page. The checkout is a folder of links to this repository's files,
// with a bin/ of its own, so the build does not write into the repository.
func TestWritingPluginsGuide(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module from scratch")
	}
	root, err := moduleRoot()
	must(t, err)
	doc, err := os.ReadFile(filepath.Join(root, "docs", "writing-plugins.md"))
	must(t, err)
	guide := string(doc)
	work := t.TempDir()
	linkCheckout(t, root, filepath.Join(work, "capuchin"))

	runShell(t, work, codeBlock(t, guide, "**1. Make a module**", "sh"))
	greet := filepath.Join(work, "greet")
	must(t, os.WriteFile(filepath.Join(greet, "main.go"), []byte(codeBlock(t, guide, "**2. Write `main.go`.**", "go")), 0o644))
	runShell(t, greet, codeBlock(t, guide, "**3. Build it**", "sh"))

	s := newSite(t)
	s.LoadFrom(filepath.Join(work, "capuchin", "bin", "plugins"), "greet")
	s.Start()
	r := dial(t, s.Addr()).Get("/greet")
	if r.Status != 200 || string(r.Body) != "good day\n" {
		t.Fatalf("GET /greet: %d %q, want the guide's greeting", r.Status, r.Body)
	}
}

// linkCheckout makes dir a checkout of the repository at root: a link to
// each top-level entry but bin, and an empty bin/plugins.
func linkCheckout(t *testing.T, root, dir string) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Join(dir, "bin", "plugins"), 0o755))
	ents, err := os.ReadDir(root)
	must(t, err)
	for _, e := range ents {
		if n := e.Name(); n != "bin" && !strings.HasPrefix(n, ".") {
			must(t, os.Symlink(filepath.Join(root, n), filepath.Join(dir, n)))
		}
	}
}

// codeBlock returns the first fenced block of the language lang after the
// marker in doc.
func codeBlock(t *testing.T, doc, marker, lang string) string {
	t.Helper()
	_, after, ok := strings.Cut(doc, marker)
	if !ok {
		t.Fatalf("the guide has no %q", marker)
	}
	_, after, ok = strings.Cut(after, "```"+lang+"\n")
	block, _, ok2 := strings.Cut(after, "```")
	if !ok || !ok2 {
		t.Fatalf("no ```%s block after %q in the guide", lang, marker)
	}
	return block
}

// runShell runs script with sh -e in dir, bounded to 3 minutes.
func runShell(t *testing.T, dir, script string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-ec", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the guide's commands\n%s\nfailed in %s: %v\n%s", script, dir, err, out)
	}
}
