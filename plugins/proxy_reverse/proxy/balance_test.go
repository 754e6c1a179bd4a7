package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func TestRoundRobinSequence(t *testing.T) {
	for _, lb := range []string{"Round-Robin", "Locking-Round-Robin"} {
		t.Run(lb, func(t *testing.T) {
			checkLeaks(t)
			a, b, c := namedBackend(t, "A"), namedBackend(t, "B"), namedBackend(t, "C")
			p := newProxy(t, conf("[PROXY_ENTRY]\n ServerList %s %s %s\n LoadBalancer %s\n Match ^/\n",
				hostPort(a), hostPort(b), hostPort(c), lb))
			cl := dial(t, startHarness(t, p))
			var got string
			for i := 0; i < 7; i++ {
				status, body := cl.get("/x")
				if status != 200 {
					t.Fatalf("status %d", status)
				}
				got += body
			}
			if got != "ABCABCA" {
				t.Fatalf("sequence %q, want ABCABCA", got)
			}
		})
	}
}

func TestWeightedByRepetition(t *testing.T) {
	checkLeaks(t)
	a, b := namedBackend(t, "A"), namedBackend(t, "B")
	p := newProxy(t, conf("[PROXY_ENTRY]\n ServerList %s %s %s\n LoadBalancer RoundRobin\n Match ^/\n",
		hostPort(a), hostPort(a), hostPort(b)))
	cl := dial(t, startHarness(t, p))
	count := map[string]int{}
	for i := 0; i < 300; i++ {
		_, body := cl.get("/")
		count[body]++
	}
	if count["A"] != 200 || count["B"] != 100 {
		t.Fatalf("distribution %v, want A:200 B:100", count)
	}
}

func TestFirstAliveAndNaive(t *testing.T) {
	checkLeaks(t)
	a, b := namedBackend(t, "A"), namedBackend(t, "B")
	p := newProxy(t, conf("[PROXY_ENTRY]\n ServerList %s %s\n LoadBalancer First-Alive\n Match ^/fa\n"+
		"[PROXY_ENTRY]\n ServerList %s %s\n LoadBalancer naive\n Match ^/naive\n",
		hostPort(a), hostPort(b), hostPort(a), hostPort(b)))
	cl := dial(t, startHarness(t, p))
	for i := 0; i < 20; i++ {
		if _, body := cl.get("/fa"); body != "A" {
			t.Fatalf("first-alive sent request %d to %s", i, body)
		}
		if status, body := cl.get("/naive"); status != 200 || (body != "A" && body != "B") {
			t.Fatalf("naive: %d %q", status, body)
		}
	}
}

// Least connections steers away from a backend busy with a slow request.
func TestLeastConnectionsAvoidsSlowBackend(t *testing.T) {
	checkLeaks(t)
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	var slowHits, fastHits int
	var mu sync.Mutex
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		slowHits++
		mu.Unlock()
		entered <- struct{}{}
		<-release
		io.WriteString(w, "slow")
	}))
	defer slow.Close()
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		fastHits++
		mu.Unlock()
		io.WriteString(w, "fast")
	}))
	defer fast.Close()
	p := newProxy(t, conf("[PROXY_ENTRY]\n ServerList %s %s\n LoadBalancer Least-Connections\n Match ^/\n",
		hostPort(slow), hostPort(fast)))
	h := startHarness(t, p)
	c1 := dial(t, h)
	c1.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n") // ties go to the first server: slow
	<-entered
	c2 := dial(t, h)
	for i := 0; i < 20; i++ {
		if _, body := c2.get("/"); body != "fast" {
			t.Fatalf("request %d went to %q while slow was busy", i, body)
		}
	}
	close(release)
	if _, body := c1.read("GET"); body != "slow" {
		t.Fatalf("first request answered by %q", body)
	}
	if slowHits != 1 || fastHits != 20 {
		t.Fatalf("slow %d fast %d", slowHits, fastHits)
	}
}

func TestSourceHash(t *testing.T) {
	checkLeaks(t)
	a, b, c := namedBackend(t, "A"), namedBackend(t, "B"), namedBackend(t, "C")
	p := newProxy(t, conf("[PROXY_ENTRY]\n ServerList %s %s %s\n LoadBalancer Source-Hash\n Match ^/\n",
		hostPort(a), hostPort(b), hostPort(c)))
	cl := dial(t, startHarness(t, p))
	spread := map[string]int{}
	for i := 1; i <= 60; i++ {
		ip := conf("10.0.%d.%d", i/7, i)
		_, first := cl.get("/", "X-Test-Client: "+ip+"\r\n")
		for j := 0; j < 3; j++ {
			if _, again := cl.get("/", "X-Test-Client: "+ip+"\r\n"); again != first {
				t.Fatalf("client %s went to %s then %s", ip, first, again)
			}
		}
		spread[first]++
	}
	if len(spread) != 3 {
		t.Fatalf("60 clients spread over %v", spread)
	}
	for name, n := range spread {
		if n < 8 {
			t.Fatalf("backend %s got only %d of 60 clients: %v", name, n, spread)
		}
	}
	if !strings.Contains(p.Snapshot().Entries[0].Balancer, "sourcehash") {
		t.Fatal("balancer name")
	}
}
