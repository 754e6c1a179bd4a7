package pluginhost

import (
	"strings"
	"testing"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// Failure-policy tests: a missed deadline gets the plugin's policy.

// TestDeadlineFailurePolicy: a missed deadline gets the plugin's policy,
// on both call paths.
func TestDeadlineFailurePolicy(t *testing.T) {
	for _, cp := range callPaths {
		t.Run(cp.name, func(t *testing.T) { testDeadlineFailurePolicy(t, cp.suffix) })
	}
}

func testDeadlineFailurePolicy(t *testing.T, suffix string) {
	hosttest.CheckLeaks(t)
	dir := t.TempDir()
	closed := startHost(t, spec(t, dir, "gate"+suffix, ""), spec(t, dir, "hello"+suffix, ""))
	c := dial(t, newLoop(t, closed).addr())
	if r := c.get("/gate-slow"); r.status != 503 {
		t.Errorf("stage 20 fail-closed: %d %q", r.status, r.body)
	}
	if r := c.get("/hello/slow"); r.status != 503 {
		t.Errorf("stage 30 fail-closed: %d %q", r.status, r.body)
	}
	open := startHost(t, spec(t, dir, "gateopen"+suffix, ""), spec(t, dir, "helloopen"+suffix, ""))
	c = dial(t, newLoop(t, open).addr())
	if r := c.get("/gate-slow"); r.status != 200 || !strings.HasPrefix(r.body, "static") {
		t.Errorf("stage 20 fail-open: %d %q", r.status, r.body)
	}
	if r := c.get("/hello/slow"); r.status != 200 || !strings.HasPrefix(r.body, "static") {
		t.Errorf("stage 30 fail-open: %d %q", r.status, r.body)
	}
}
