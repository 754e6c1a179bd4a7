package pluginhost

import (
	"os"
	"strings"
	"testing"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// callPaths are the per-request channels a plugin may take: the framed
// socket (what the SDK takes), the same with the stage-20 hook run on the
// goroutine that read its call (api.InlineRequestHook), and the gRPC
// Calls stream (a plugin that ignores the socket, as one in another
// language may). The suffix of the test plugin's name picks one.
var callPaths = []struct{ name, suffix string }{{"framed", ""}, {"inline", "inline"}, {"grpc", "grpc"}}

// TestStagesAndVerdicts: every stage sees what it hooks and every verdict
// holds, on both call paths.
func TestStagesAndVerdicts(t *testing.T) {
	for _, cp := range callPaths {
		t.Run(cp.name, func(t *testing.T) { testStagesAndVerdicts(t, cp.suffix) })
	}
}

func testStagesAndVerdicts(t *testing.T, suffix string) {
	hosttest.CheckLeaks(t)
	dir := t.TempDir()
	notesFile := dir + "/notes.log"
	h := startHost(t, spec(t, dir, "gate"+suffix, ""), spec(t, dir, "hello"+suffix, ""), spec(t, dir, "notes"+suffix, notesFile))
	l := newLoop(t, h)

	c := dial(t, l.addr())
	if r := c.get("/hello/x"); r.status != 200 || r.body != `hello GET /hello/x vhost=default body=""` {
		t.Errorf("handled: %d %q", r.status, r.body)
	}
	if r := c.get("/hello/x?chunked"); r.status != 200 || !strings.HasPrefix(r.body, "hello GET") {
		t.Errorf("chunked response: %d %q", r.status, r.body)
	}
	if r := c.get("/elsewhere"); r.body != `static GET /elsewhere body=""` {
		t.Errorf("unclaimed: %q", r.body)
	}
	if r := c.get("/hello/decline"); r.body != `static GET /hello/decline body=""` {
		t.Errorf("declined: %q", r.body)
	}
	if r := c.get("/hello/raw"); r.status != 200 || r.body != "raw" {
		t.Errorf("raw: %d %q", r.status, r.body)
	}
	if r := c.get("/deny"); r.status != 403 || r.body != "denied" || r.header.Get("X-Gate") != "denied default" {
		t.Errorf("stage 20 respond: %d %q %v", r.status, r.body, r.header)
	}
	if r := c.get("/hello/close"); r.status != 418 {
		t.Errorf("stage 30 close: %d", r.status)
	}
	if !c.closed() {
		t.Error("connection open after stage-30 close")
	}

	c2 := dial(t, l.addr())
	c2.send("GET /gate-close HTTP/1.1\r\nHost: test\r\n\r\n")
	if !c2.closed() {
		t.Error("stage 20 close: connection still open")
	}

	if c3 := dialFrom(t, "127.0.0.2", l.addr()); !c3.closed() {
		t.Error("stage 10 close: connection still open")
	}

	want := []string{"done 1 127.0.0.1 GET /hello/x 200", "done 1 127.0.0.1 GET /elsewhere 200",
		"done 1 127.0.0.1 GET /deny 403", "closed 1", "closed 2", "closed 3"}
	hosttest.WaitFor(t, "stage 40/50 notes", func() bool {
		b, _ := os.ReadFile(notesFile)
		for _, w := range want {
			if !strings.Contains(string(b), w) {
				return false
			}
		}
		return true
	})
	if errs := l.results(); len(errs) > 0 {
		t.Errorf("handler errors: %v", errs)
	}
}
