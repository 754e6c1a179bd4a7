package main

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/balance"
)

// cyclic checks that got follows order cyclically from some start.
func cyclic(t *testing.T, what string, got, order []string) {
	t.Helper()
	for start := range order {
		ok := true
		for i, g := range got {
			ok = ok && g == order[(start+i)%len(order)]
		}
		if ok {
			return
		}
	}
	t.Fatalf("%s: sequence %v does not cycle through %v", what, got, order)
}

// Every balancer on one host, one entry each, over the same backends.
func TestE2EBalancers(t *testing.T) {
	hosttest.CheckLeaks(t)
	bs := namedBackends(t, 3)
	entry := func(match, lb, servers string) string {
		return "[PROXY_ENTRY]\n    Match " + match + "\n    LoadBalancer " + lb + "\n    ServerList " + servers + "\n"
	}
	s, _ := startProxy(t, entryConf("Round-Robin", addrs(bs...))+
		entry("^/locking/", "Locking-Round-Robin", addrs(bs...))+
		entry("^/weighted/", "Round-Robin", addrs(bs[0], bs[0], bs[1]))+
		entry("^/least/", "Least-Connections", addrs(bs[0], bs[1]))+
		entry("^/hash/", "Source-Hash", addrs(bs...))+
		entry("^/first/", "First-Alive", addrs(bs...))+
		entry("^/naive/", "Naive", addrs(bs...)))
	t.Run("RoundRobin", func(t *testing.T) { roundRobin(t, s) })
	t.Run("Weighted", func(t *testing.T) { weighted(t, s) })
	t.Run("LeastConnections", func(t *testing.T) { leastConnections(t, s, bs[0], bs[1]) })
	t.Run("SourceHash", func(t *testing.T) { sourceHash(t, s, bs) })
	t.Run("FirstAliveAndNaive", func(t *testing.T) { firstAliveAndNaive(t, s) })
}

// Round robin (lockless and locking): the exact rotation over 3 backends,
// with a connection per request and on one kept-alive (leased) connection.
func roundRobin(t *testing.T, s *hosttest.Site) {
	for _, path := range []string{"/api/x", "/locking/x"} {
		fresh := sequence(t, client(t, false, ""), s.URL(path), 9)
		cyclic(t, path+" fresh connections", fresh, []string{"b0", "b1", "b2"})
		if fresh[0] != "b0" {
			t.Fatalf("%s: first request went to %s, want b0", path, fresh[0])
		}
		kept := sequence(t, client(t, true, ""), s.URL(path), 9)
		cyclic(t, path+" one kept-alive connection", kept, []string{"b0", "b1", "b2"})
	}
}

// Weight by repetition: ServerList a a b gives a two requests in three.
func weighted(t *testing.T, s *hosttest.Site) {
	got := sequence(t, client(t, true, ""), s.URL("/weighted/w"), 300)
	count := map[string]int{}
	for _, g := range got {
		count[g]++
	}
	if count["b0"] != 200 || count["b1"] != 100 {
		t.Fatalf("ServerList a a b over 300 requests: %v, want b0:200 b1:100", count)
	}
	cyclic(t, "weighted", got[:30], []string{"b0", "b0", "b1"})
}

// Least connections: while a request is held on one backend, every other
// request goes to the other one.
func leastConnections(t *testing.T, s *hosttest.Site, b0, b1 *named) {
	h0, h1 := b0.hits.Load(), b1.hits.Load()
	held := make(chan string, 1)
	go func() { // ends when the backend is released below
		resp, err := client(t, false, "").Get(s.URL("/least/hold"))
		if err != nil {
			held <- "error: " + err.Error()
			return
		}
		resp.Body.Close()
		held <- resp.Header.Get("X-Backend")
	}()
	if !hosttest.Poll(5*time.Second, func() bool { return b0.hits.Load()-h0+b1.hits.Load()-h1 == 1 }) {
		t.Fatal("held request did not reach a backend")
	}
	slow, fast := b0, b1
	if b1.hits.Load() > h1 {
		slow, fast = b1, b0
	}
	got := sequence(t, client(t, true, ""), s.URL("/least/quick"), 20)
	for i, g := range got {
		if g != fast.name {
			t.Fatalf("request %d went to %s while %s had a request in progress", i, g, slow.name)
		}
	}
	slow.Release()
	if h := <-held; h != slow.name {
		t.Fatalf("held request answered by %q", h)
	}
	// Both idle again: ties are shared.
	count := map[string]int{}
	for _, g := range sequence(t, client(t, true, ""), s.URL("/least/quick"), 10) {
		count[g]++
	}
	if count["b0"] == 0 || count["b1"] == 0 {
		t.Fatalf("idle backends not shared: %v", count)
	}
}

// Source hash: each client address sticks to the backend its hash selects.
func sourceHash(t *testing.T, s *hosttest.Site, bs []*named) {
	seen := map[string]bool{}
	for i := 2; i < 10; i++ {
		ip := fmt.Sprintf("127.0.0.%d", i)
		want := bs[balance.Hash(netip.MustParseAddr(ip))%3].name
		for j, keep := range []bool{false, true} {
			for _, g := range sequence(t, client(t, keep, ip), s.URL("/hash/h"), 4) {
				if g != want {
					t.Fatalf("client %s (pass %d) went to %s, want %s", ip, j, g, want)
				}
			}
		}
		seen[want] = true
	}
	if len(seen) < 2 {
		t.Fatalf("8 clients all hashed to one backend: %v", seen)
	}
}

// First-Alive sends everything to the first server while it is up; Naive
// reaches every server.
func firstAliveAndNaive(t *testing.T, s *hosttest.Site) {
	for _, keep := range []bool{false, true} {
		for i, g := range sequence(t, client(t, keep, ""), s.URL("/first/f"), 10) {
			if g != "b0" {
				t.Fatalf("first-alive request %d went to %s", i, g)
			}
		}
	}
	seen := map[string]int{}
	c := client(t, false, "")
	for i := 0; i < 60 && len(seen) < 3; i++ {
		_, g := get(t, c, s.URL("/naive/x"))
		seen[g]++
		time.Sleep(time.Millisecond) // the naive start slot follows the clock in ms
	}
	if len(seen) != 3 {
		t.Fatalf("naive reached %v, want all 3 backends", seen)
	}
}

// Failover: a stopped backend's share goes to the others, requests keep
// succeeding; when it is back (same port) it gets traffic again.
func TestE2EFailoverAndRecovery(t *testing.T) {
	hosttest.CheckLeaks(t)
	bs := namedBackends(t, 2)
	b2 := newNamed(t, "b2", "")
	addr2 := b2.hostPort()
	s, _ := startProxy(t, entryConf("Round-Robin", addrs(bs...)+" "+addr2, "OfflineTimeOut 300ms"))
	c := client(t, true, "")
	sequence(t, c, s.URL("/api/a"), 3)
	b2.Close()
	for i, g := range sequence(t, c, s.URL("/api/b"), 12) {
		if g == "b2" {
			t.Fatalf("request %d answered by the stopped backend", i)
		}
	}
	newNamed(t, "b2", addr2)
	if !hosttest.Poll(5*time.Second, func() bool {
		_, g := get(t, c, s.URL("/api/c"))
		return g == "b2"
	}) {
		t.Fatal("restarted backend gets no traffic")
	}
	count := map[string]int{}
	for _, g := range sequence(t, c, s.URL("/api/d"), 30) {
		count[g]++
	}
	if count["b0"] != 10 || count["b1"] != 10 || count["b2"] != 10 {
		t.Fatalf("after recovery: %v, want 10 each", count)
	}
}

// HA: after AttemptsCount failed connects a server gets no connect attempt
// until OfflineTimeOut has passed; then one probe with a good answer brings
// it back.
func TestE2EHighAvailabilitySkipsOfflineServer(t *testing.T) {
	hosttest.CheckLeaks(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	hosttest.Must(t, err)
	deadAddr := l.Addr().String()
	l.Close()
	good := newNamed(t, "good", "")
	const offline = 2 * time.Second
	s, _ := startProxy(t, entryConf("First-Alive", deadAddr+" "+good.hostPort(),
		"AttemptsCount 2", fmt.Sprintf("OfflineTimeOut %v", offline)))
	c := client(t, true, "")
	sequence(t, c, s.URL("/api/1"), 2) // two refused connects: offline now
	failedAt := time.Now()
	back := newRaw(t, deadAddr, func(c net.Conn, br *bufio.Reader) {
		for {
			if _, ok := readHead(br); !ok {
				return
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nback")
		}
	})
	for i, g := range sequence(t, c, s.URL("/api/2"), 10) {
		if g != "good" {
			t.Fatalf("request %d went to %q while the first server is offline", i, g)
		}
	}
	if !strings.Contains(statusJSON(t, s), `"offline"`) {
		t.Fatalf("status page does not show the server offline: %s", statusJSON(t, s))
	}
	if n := back.Accepts(); n != 0 {
		t.Fatalf("offline server got %d connect attempts", n)
	}
	time.Sleep(time.Until(failedAt.Add(offline + 100*time.Millisecond)))
	for i, g := range sequence(t, c, s.URL("/api/3"), 5) {
		if g != "back" {
			t.Fatalf("request %d after OfflineTimeOut went to %q, want the probed server", i, g)
		}
	}
	if n := back.Accepts(); n != 1 {
		t.Fatalf("%d connections to the recovered server, want 1 (pooled)", n)
	}
}
