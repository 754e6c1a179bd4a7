package integration

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// openClients dials n connections, sends one GET on each and reads the
// answer; it returns the statuses (0 for a connection closed without one).
// A 503 must say when to retry and carry Date and Server, as every answer.
func openClients(t *testing.T, addr string, n int) ([]*client, map[int]int) {
	t.Helper()
	var cs []*client
	got := map[int]int{}
	for i := 0; i < n; i++ {
		c := dial(t, addr)
		c.Send("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		r, err := c.Read("GET")
		if err != nil {
			got[0]++
			continue
		}
		got[r.Status]++
		cs = append(cs, c)
		if r.Status == 503 && (r.Header.Get("Retry-After") == "" || r.Header.Get("Date") == "" ||
			!strings.HasPrefix(r.Header.Get("Server"), "capuchin") || !r.Close) {
			t.Errorf("503 head: %q", r.Raw)
		}
	}
	return cs, got
}

// MaxConnections: past the cap a connection gets 503 and is closed; the
// kept-alive ones are not disturbed, and a slot freed is used again.
func TestMaxConnectionsSheds(t *testing.T) {
	s := newSite(t)
	s.Server = []string{"MaxConnections 5", "KeepAliveTimeout 30", "MetricsURL /metrics"}
	s.Start()
	first := dial(t, s.Addr())
	openConns(t, first, 1) // the start-up probe's connection is gone: first is the only one
	held, got := openClients(t, s.Addr(), 7)
	if got[200] != 4 || got[503] != 3 {
		t.Fatalf("statuses %v, want 4 x 200 and 3 x 503 beside the first connection", got)
	}
	for _, c := range append(held[:4], first) { // the served ones are still usable
		c.Send("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		if r := c.MustRead("GET"); r.Status != 200 {
			t.Fatalf("kept connection got %d", r.Status)
		}
	}
	held[0].C.Close()
	ok := false
	for deadline := time.Now().Add(5 * time.Second); !ok && time.Now().Before(deadline); {
		_, got = openClients(t, s.Addr(), 1)
		ok = got[200] == 1
		time.Sleep(20 * time.Millisecond)
	}
	if !ok {
		t.Fatal("a freed slot was not used again")
	}
}

// With no MaxConnections the cap comes from the descriptor limit: under a
// limit of 80 descriptors the host sheds instead of failing to accept, and
// serves again once the clients leave.
func TestDescriptorLimitSheds(t *testing.T) {
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("needs prlimit (util-linux)")
	}
	s := newSite(t)
	s.Server = []string{"KeepAliveTimeout 30"}
	s.Prefix = []string{"prlimit", "--nofile=80", "--"}
	p := s.Start()
	held, got := openClients(t, s.Addr(), 100)
	// Shed: 503 while few are being shed, closed at once past that.
	if got[200] == 0 || got[503] == 0 || got[200]+got[503]+got[0] != 100 {
		t.Fatalf("statuses %v, want some 200, the rest 503 or closed", got)
	}
	for _, c := range held {
		c.C.Close()
	}
	ok := false
	for deadline := time.Now().Add(5 * time.Second); !ok && time.Now().Before(deadline); {
		_, got = openClients(t, s.Addr(), 1)
		ok = got[200] == 1
		time.Sleep(20 * time.Millisecond)
	}
	if !ok || strings.Contains(p.Log(), "too many open files") {
		t.Fatalf("not serving after the clients left (%v), or descriptors ran out:\n%s", got, p.Log())
	}
}
