package main

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// The balancers added to the seed's (issue 13): distribution and fail-over
// through the real host and plugin.

// getAs fetches url with the given header fields ("Name: value") and
// returns the backend that answered; anything but 200 fails the test.
func getAs(t *testing.T, c *http.Client, url string, fields ...string) string {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	hosttest.Must(t, err)
	for _, f := range fields {
		name, value, _ := strings.Cut(f, ": ")
		req.Header.Add(name, value)
	}
	resp, err := c.Do(req)
	hosttest.Must(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	hosttest.Must(t, err)
	if resp.StatusCode != 200 {
		t.Fatalf("%s %v: %d %q", url, fields, resp.StatusCode, body)
	}
	return string(body)
}

func counts(names []string) map[string]int {
	c := map[string]int{}
	for _, n := range names {
		c[n]++
	}
	return c
}

// Power-Of-Two: idle backends share the traffic; a backend with a request
// in flight loses every draw against an idle one; a stopped backend's
// share goes to the others.
func TestE2EPowerOfTwo(t *testing.T) {
	hosttest.CheckLeaks(t)
	bs := namedBackends(t, 3)
	s, _ := startProxy(t, entryConf("Power-Of-Two", addrs(bs...)))
	c := client(t, true, "")
	if got := counts(sequence(t, c, s.URL("/api/spread"), 90)); got["b0"] < 5 || got["b1"] < 5 || got["b2"] < 5 {
		t.Fatalf("90 requests over 3 idle backends: %v", got)
	}
	before := [3]int64{bs[0].hits.Load(), bs[1].hits.Load(), bs[2].hits.Load()}
	held := make(chan string, 1)
	go func() { // ends when the backend is released below
		resp, err := client(t, false, "").Get(s.URL("/api/hold"))
		if err != nil {
			held <- "error: " + err.Error()
			return
		}
		resp.Body.Close()
		held <- resp.Header.Get("X-Backend")
	}()
	var busy *named
	if !hosttest.Poll(5*time.Second, func() bool {
		for i, b := range bs {
			if b.hits.Load() > before[i] {
				busy = b
			}
		}
		return busy != nil
	}) {
		t.Fatal("held request did not reach a backend")
	}
	got := counts(sequence(t, c, s.URL("/api/quick"), 30))
	if got[busy.name] != 0 || len(got) != 2 {
		t.Fatalf("while %s held a request: %v", busy.name, got)
	}
	busy.Release()
	if h := <-held; h != busy.name {
		t.Fatalf("held request answered by %q", h)
	}
	bs[2].Close()
	if got := counts(sequence(t, c, s.URL("/api/after"), 30)); got["b2"] != 0 || got["b0"] == 0 || got["b1"] == 0 {
		t.Fatalf("with b2 stopped: %v", got)
	}
}

// Consistent-Hash on a header, a cookie, the path and the client address:
// a key sticks to a backend over fresh and kept-alive connections; when
// that backend stops, only its keys move, and they spread over the others;
// when it is back its keys return.
func TestE2EConsistentHash(t *testing.T) {
	hosttest.CheckLeaks(t)
	bs := namedBackends(t, 3)
	entry := func(match, lb string) string {
		return "[PROXY_ENTRY]\n    Match " + match + "\n    LoadBalancer " + lb + "\n    ServerList " + addrs(bs...) + "\n"
	}
	s, _ := startProxy(t, entryConf("Consistent-Hash header X-User", addrs(bs...), "OfflineTimeOut 300ms")+
		entry("^/cookie/", "Consistent-Hash cookie sid")+entry("^/path/", "Consistent-Hash path")+
		entry("^/client/", "Consistent-Hash"))
	fresh, kept := client(t, false, ""), client(t, true, "")
	const users = 60
	owner := map[int]string{}
	for u := 0; u < users; u++ {
		owner[u] = getAs(t, fresh, s.URL("/api/a"), fmt.Sprintf("X-User: user-%d", u))
		for i, c := range []*http.Client{kept, fresh, kept} {
			if g := getAs(t, c, s.URL(fmt.Sprintf("/api/%d", i)), fmt.Sprintf("X-User: user-%d", u)); g != owner[u] {
				t.Fatalf("user-%d went to %s, then to %s", u, owner[u], g)
			}
		}
	}
	if c := counts(slices.Collect(maps.Values(owner))); len(c) != 3 {
		t.Fatalf("%d users over 3 backends: %v", users, c)
	}
	otherKeys(t, s, kept)
	if !strings.Contains(statusJSON(t, s), `"consistent-hash header X-User"`) {
		t.Fatalf("status page lacks the balancer and its key: %s", statusJSON(t, s))
	}
	consistentFailover(t, s, kept, bs[1], owner)
}

// consistentFailover stops b: only its users move, over both other
// backends; when b is back its users return.
func consistentFailover(t *testing.T, s *hosttest.Site, c *http.Client, b *named, owner map[int]string) {
	t.Helper()
	addr := b.hostPort()
	b.Close()
	moved, mine := map[string]int{}, -1
	for u := 0; u < len(owner); u++ {
		g := getAs(t, c, s.URL("/api/b"), fmt.Sprintf("X-User: user-%d", u))
		switch {
		case owner[u] != b.name && g != owner[u]:
			t.Fatalf("user-%d moved from %s to %s though only %s stopped", u, owner[u], g, b.name)
		case owner[u] == b.name:
			moved[g]++
			mine = u
		}
	}
	if len(moved) != 2 {
		t.Fatalf("the stopped backend's users went to %v, want both others", moved)
	}
	newNamed(t, b.name, addr)
	if !hosttest.Poll(5*time.Second, func() bool {
		return getAs(t, c, s.URL("/api/c"), fmt.Sprintf("X-User: user-%d", mine)) == b.name
	}) {
		t.Fatalf("user-%d did not return to the restarted %s", mine, b.name)
	}
}

// otherKeys checks that the cookie, path and client keys stick too and
// spread over more than one backend.
func otherKeys(t *testing.T, s *hosttest.Site, c *http.Client) {
	t.Helper()
	for _, tc := range []struct {
		what string
		get  func(i int) string
	}{
		{"cookie", func(i int) string {
			return getAs(t, c, s.URL("/cookie/x"), fmt.Sprintf("Cookie: theme=dark; sid=s%d", i))
		}},
		{"path", func(i int) string { return getAs(t, c, s.URL(fmt.Sprintf("/path/%d", i))) }},
		{"client", func(i int) string {
			return getAs(t, client(t, false, fmt.Sprintf("127.0.0.%d", i+2)), s.URL("/client/x"))
		}},
	} {
		seen := map[string]bool{}
		for i := 0; i < 20; i++ {
			first := tc.get(i)
			if again := tc.get(i); again != first {
				t.Fatalf("%s key %d went to %s, then to %s", tc.what, i, first, again)
			}
			seen[first] = true
		}
		if len(seen) < 2 {
			t.Fatalf("20 %s keys all went to %v", tc.what, seen)
		}
	}
}

// Smooth weighted round robin: ServerList b0 weight=3 b1 b2 gives b0 three
// requests in five, never two in a row (repetition would give b0 b0 b0 b1
// b2); a stopped backend's turns go to the next one.
func TestE2ESmoothWeighted(t *testing.T) {
	hosttest.CheckLeaks(t)
	bs := namedBackends(t, 3)
	s, _ := startProxy(t, entryConf("Smooth-Weighted-Round-Robin",
		bs[0].hostPort()+" weight=3 "+bs[1].hostPort()+" "+bs[2].hostPort()))
	got := sequence(t, client(t, true, ""), s.URL("/api/w"), 300)
	cyclic(t, "smooth weighted", got[:25], []string{"b0", "b1", "b0", "b2", "b0"})
	if c := counts(got); c["b0"] != 180 || c["b1"] != 60 || c["b2"] != 60 {
		t.Fatalf("300 requests with weights 3,1,1: %v", c)
	}
	if page := statusJSON(t, s); !strings.Contains(page, `"weight": 3`) || strings.Count(page, `"weight": 1`) != 2 {
		t.Fatalf("status page weights: %s", page)
	}
	fresh := sequence(t, client(t, false, ""), s.URL("/api/f"), 10)
	cyclic(t, "smooth weighted, fresh connections", fresh, []string{"b0", "b1", "b0", "b2", "b0"})
	bs[1].Close()
	after := counts(sequence(t, client(t, true, ""), s.URL("/api/x"), 50))
	if after["b1"] != 0 || after["b0"] != 30 || after["b2"] != 20 {
		t.Fatalf("with b1 stopped, 50 requests: %v, want b0:30 b2:20", after)
	}
}
