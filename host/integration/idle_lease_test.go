package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// TestIdleLeasedConnectionsGivenBack: keep-alive connections leased to a
// plugin and then idle past the SDK's hold (500 ms) hold no
// goroutine in the plugin or in the host (the plugin gives them back and
// the host parks them at once). Each still gets its next request answered,
// after every idle spell, and still closes at KeepAliveTimeout counted
// from its last request; no goroutine stays behind in either process.
func TestIdleLeasedConnectionsGivenBack(t *testing.T) {
	pluginTest(t)
	s := newSite(t)
	hostPprof := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	pluginPprof := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s.Env = []string{"CAPUCHIN_PPROF=" + hostPprof, "CAPUCHIN_PPROF_HELLO=" + pluginPprof}
	s.Server = []string{"KeepAliveTimeout 8"}
	s.LoadFrom(testPlugins(t), "hello")
	s.StartChecked()
	hostBase, pluginBase := goroutines(t, hostPprof), goroutines(t, pluginPprof)

	// More connections than the SDK keeps idle workers (64, each for 10 s
	// after its last event), which the plugin's counts below allow for.
	const n, workers = 200, 64
	cs := make([]*client, n)
	for i := range cs {
		cs[i] = dial(t, s.Addr())
		for _, p := range []string{"/hello/a", "/hello/b"} { // the second under the lease
			if r := cs[i].Get(p); r.Status != 200 {
				t.Fatalf("connection %d, %s: %d", i, p, r.Status)
			}
		}
	}
	last := time.Now()
	for spell := range 3 { // idle past the hold, then a request on each
		// Given back and parked within 900 ms of the last request: the
		// hold is 500 ms (it was 1 s).
		settled := func() bool {
			return goroutines(t, hostPprof) <= hostBase+20 && goroutines(t, pluginPprof) <= pluginBase+workers+20
		}
		if !hosttest.Poll(time.Until(last.Add(900*time.Millisecond)), settled) {
			t.Fatalf("idle spell %d: %d goroutines in the host (%d before), %d in the plugin (%d before) 900 ms after the last request on %d connections",
				spell, goroutines(t, hostPprof), hostBase, goroutines(t, pluginPprof), pluginBase, n)
		}
		for i, c := range cs {
			if r := c.Get("/hello/c"); r.Status != 200 {
				t.Fatalf("idle spell %d, connection %d: %d", spell, i, r.Status)
			}
		}
		last = time.Now()
	}
	for i, c := range cs {
		if !c.Closed(11 * time.Second) {
			t.Fatalf("connection %d not closed", i)
		}
	}
	if d := time.Since(last); d < 7500*time.Millisecond || d > 9500*time.Millisecond {
		t.Errorf("idle connections closed %v after their last request, want KeepAliveTimeout (8 s)", d.Round(time.Millisecond))
	}
	gone := func() bool {
		return goroutines(t, hostPprof) <= hostBase+5 && goroutines(t, pluginPprof) <= pluginBase+workers+5
	}
	if !hosttest.Poll(5*time.Second, gone) {
		t.Errorf("after every connection closed: %d goroutines in the host (%d before), %d in the plugin (%d before)",
			goroutines(t, hostPprof), hostBase, goroutines(t, pluginPprof), pluginBase)
	}
}
