package integration

import (
	"net"
	"syscall"
	"testing"
	"time"
)

// TestDeferAccept: by default (DeferAccept on) the kernel holds a new
// connection until its first bytes come: 300 ms after its connect the host
// has not accepted it, and it is served once its request comes. One that
// closes without a byte is accepted when it closes, and one that never
// sends is accepted all the same, after about a second, and closed at
// Timeout: nothing is lost. After a reload with DeferAccept off, the host
// accepts a new connection at once, before its first byte.
func TestDeferAccept(t *testing.T) {
	s := newSite(t)
	s.Server = []string{"MetricsURL /metrics", "Timeout 1", "KeepAliveTimeout 30"}
	p := s.Start()
	c := dial(t, s.Addr()) // the scrapes' connection
	base := accepted(t, c)

	silent := dial(t, s.Addr())
	time.Sleep(300 * time.Millisecond)
	if got := accepted(t, c); got != base {
		t.Fatalf("a connection that sent nothing was accepted (%v accepted, want %v)", got, base)
	}
	if r := silent.Get("/index.html"); r.Status != 200 {
		t.Fatalf("request on a held connection: %d", r.Status)
	}
	waitAccepted(t, c, base+1, "the connection that sent its request")

	closer, err := net.Dial("tcp", s.Addr())
	must(t, err)
	closer.Close()
	waitAccepted(t, c, base+2, "a connection closed without a byte")

	start := time.Now()
	mute := dial(t, s.Addr())
	if !mute.Closed(6 * time.Second) {
		t.Fatal("a connection that never sends is still open after 6 s")
	}
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Errorf("a connection that never sends closed after %v: held about 1 s, then Timeout 1 s", d.Round(time.Millisecond))
	}
	waitAccepted(t, c, base+3, "a connection that never sends")

	s.Server = append(s.Server, "DeferAccept off")
	s.WriteConf()
	p.Signal(syscall.SIGHUP)
	if !p.WaitLog("configuration reloaded") {
		t.Fatalf("no reload in log:\n%s", p.Log())
	}
	dial(t, s.Addr())
	waitAccepted(t, c, base+4, "with DeferAccept off, a connection that sent nothing")
}

// accepted scrapes capuchin_connections_accepted_total on c.
func accepted(t *testing.T, c *client) float64 {
	t.Helper()
	return sample(scrapeFams(t, c)["capuchin_connections_accepted_total"], nil)
}

// waitAccepted waits up to 500 ms for the host to count n accepted
// connections.
func waitAccepted(t *testing.T, c *client, n float64, what string) {
	t.Helper()
	got := 0.0
	for deadline := time.Now().Add(500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got = accepted(t, c); got == n {
			return
		}
	}
	t.Fatalf("%s: %v connections accepted, want %v", what, got, n)
}

// TestDeferAcceptShutdown: a connection the kernel still holds for its
// first bytes when the host shuts down was never the host's; its client
// is not left waiting on a request it sends then: the kernel resets it.
func TestDeferAcceptShutdown(t *testing.T) {
	s := newSite(t)
	p := s.Start()
	held := dial(t, s.Addr())
	time.Sleep(200 * time.Millisecond)
	p.Signal(syscall.SIGTERM)
	if err, ok := p.Wait(5 * time.Second); !ok || err != nil {
		t.Fatalf("exit: %v (exited: %v)\n%s", err, ok, p.Log())
	}
	held.SendQuiet("GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
	if !held.Closed(2 * time.Second) {
		t.Fatal("a request sent on a connection held at shutdown was neither reset nor closed within 2 s")
	}
}
