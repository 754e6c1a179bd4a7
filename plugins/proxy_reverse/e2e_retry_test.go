package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// Issue 13: sticky sessions by cookie, the retry budget, the Forwarded
// field and DNS SRV discovery, through the real host and plugin.

// stickyGet fetches url with the cookie (if any) and returns the backend
// and the sticky cookie the answer sets ("" when none).
func stickyGet(t *testing.T, c *http.Client, url, cookie string) (string, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	hosttest.Must(t, err)
	if cookie != "" {
		req.Header.Set("Cookie", "other=1; "+cookie)
	}
	resp, err := c.Do(req)
	hosttest.Must(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	hosttest.Must(t, err)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d %q", url, resp.StatusCode, body)
	}
	set := ""
	for _, v := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(v, "route=") {
			if !strings.HasSuffix(v, "; Path=/; HttpOnly") || strings.Contains(v, "127.0.0.1") {
				t.Fatalf("Set-Cookie %q", v)
			}
			set, _, _ = strings.Cut(v, ";")
		}
	}
	return string(body), set
}

// Sticky cookie over Round-Robin: a new client gets a cookie naming the
// server that answered, and its requests with it stay there over fresh and
// kept-alive connections while others rotate; when that server stops, the
// request fails over and gets a new cookie, which then sticks.
func TestE2EStickyCookie(t *testing.T) {
	hosttest.CheckLeaks(t)
	bs := namedBackends(t, 3)
	s, _ := startProxy(t, entryConf("Round-Robin", addrs(bs...), "Sticky cookie route"))
	kept, fresh := client(t, true, ""), client(t, false, "")
	first, cookie := stickyGet(t, kept, s.URL("/api/a"), "")
	if cookie == "" {
		t.Fatal("no sticky cookie set for a new client")
	}
	for i := 0; i < 12; i++ {
		c := []*http.Client{kept, fresh}[i%2]
		got, set := stickyGet(t, c, s.URL("/api/b"), cookie)
		if got != first || set != "" {
			t.Fatalf("request %d with the cookie went to %s (first %s), set %q", i, got, first, set)
		}
	}
	seen := map[string]bool{}
	for i := 0; i < 6; i++ {
		got, set := stickyGet(t, kept, s.URL("/api/c"), "")
		seen[got] = true
		if set == "" {
			t.Fatalf("a request without the cookie got none")
		}
	}
	if len(seen) != 3 {
		t.Fatalf("requests without the cookie did not rotate: %v", seen)
	}
	if !strings.Contains(statusJSON(t, s), `"sticky": "cookie route"`) {
		t.Fatalf("status page lacks the stickiness: %s", statusJSON(t, s))
	}
	stickyFailover(t, s, kept, bs, first, cookie)
}

func stickyFailover(t *testing.T, s *hosttest.Site, c *http.Client, bs []*named, first, cookie string) {
	t.Helper()
	for _, b := range bs {
		if b.name == first {
			b.Close()
		}
	}
	second, cookie2 := stickyGet(t, c, s.URL("/api/d"), cookie)
	if second == first || cookie2 == "" || cookie2 == cookie {
		t.Fatalf("with %s stopped: answered by %s, new cookie %q (old %q)", first, second, cookie2, cookie)
	}
	for i := 0; i < 6; i++ {
		if got, set := stickyGet(t, c, s.URL("/api/e"), cookie2); got != second || set != "" {
			t.Fatalf("the new cookie: went to %s, want %s (set %q)", got, second, set)
		}
	}
}

// budgetStats reads the entry's retry budget and its servers' failures
// from the status page.
func budgetStats(t *testing.T, s *hosttest.Site, entry int) (allowed, denied, failures uint64) {
	t.Helper()
	var pg struct {
		Entries []struct {
			RetryBudget *struct {
				Allowed uint64 `json:"retries_allowed"`
				Denied  uint64 `json:"retries_denied"`
			} `json:"retry_budget"`
			Servers []struct {
				Failures uint64 `json:"failures"`
			} `json:"servers"`
		} `json:"entries"`
	}
	hosttest.Must(t, json.Unmarshal([]byte(statusJSON(t, s)), &pg))
	e := pg.Entries[entry]
	for _, sv := range e.Servers {
		failures += sv.Failures
	}
	if e.RetryBudget != nil {
		allowed, denied = e.RetryBudget.Allowed, e.RetryBudget.Denied
	}
	return allowed, denied, failures
}

// The retry budget under backends that fail every request: three servers
// refusing connections, HA off so that every request tries them all. With
// RetryBudget 20% min=3, the attempts (each a failure the status page
// counts) stay within (1 + 0.2) × requests + 3 per second; the same
// servers without a budget take three attempts per request.
func TestE2ERetryBudgetRefused(t *testing.T) {
	hosttest.CheckLeaks(t)
	ports := closedPorts(t, 6) // two lists: counters are per address
	dead, dead2 := strings.Join(ports[:3], " "), strings.Join(ports[3:], " ")
	conf := entryConf("Round-Robin", dead, "AttemptsCount 0", "RetryBudget 20% min=3") +
		"[PROXY_ENTRY]\n    Match ^/nobudget/\n    LoadBalancer Round-Robin\n    AttemptsCount 0\n    ServerList " + dead2 + "\n"
	s, _ := startProxy(t, conf)
	c := client(t, true, "")
	const n = 100
	start := time.Now()
	for i := 0; i < n; i++ {
		if st, body := get(t, c, s.URL("/api/x")); st != 502 {
			t.Fatalf("request %d: %d %q", i, st, body)
		}
	}
	secs := uint64(time.Since(start)/time.Second) + 1
	allowed, denied, attempts := budgetStats(t, s, 0)
	if limit := n + n/5 + 3*secs; attempts > limit || attempts != n+allowed {
		t.Fatalf("%d requests made %d attempts (%d retries allowed), limit %d", n, attempts, allowed, limit)
	}
	if denied < n-allowed || allowed < 3 { // a request stops at its first denial
		t.Fatalf("%d retries allowed, %d denied", allowed, denied)
	}
	for i := 0; i < n; i++ {
		get(t, c, s.URL("/nobudget/x"))
	}
	if _, _, attempts := budgetStats(t, s, 1); attempts != 3*n {
		t.Fatalf("without a budget %d requests made %d attempts, want %d", n, attempts, 3*n)
	}
}

// closedPorts returns n distinct 127.0.0.1 addresses nothing listens on.
func closedPorts(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		hosttest.Must(t, err)
		defer ln.Close()
		out = append(out, ln.Addr().String())
	}
	return out
}

// The retry budget under backends that take every request and reset the
// connection before answering: a GET reset before any answer byte on a
// new connection goes to the next server, so without a budget each
// request costs an attempt on every server; with RetryBudget 20% min=3 the
// attempts the backends see stay within (1 + 0.2) × requests + 3 per
// second, one per request plus the retries the budget allowed.
func TestE2ERetryBudgetReset(t *testing.T) {
	hosttest.CheckLeaks(t)
	resetting := func() (*raw, *raw, *raw, string) {
		var bs []*raw
		for i := 0; i < 3; i++ {
			bs = append(bs, newRaw(t, "", func(c net.Conn, br *bufio.Reader) {
				if _, ok := readHead(br); ok {
					c.(*net.TCPConn).SetLinger(0) // RST
				}
			}))
		}
		return bs[0], bs[1], bs[2], bs[0].Addr() + " " + bs[1].Addr() + " " + bs[2].Addr()
	}
	a0, a1, a2, list := resetting()
	b0, b1, b2, list2 := resetting()
	s, _ := startProxy(t, entryConf("Round-Robin", list, "AttemptsCount 0", "RetryBudget 20% min=3")+
		"[PROXY_ENTRY]\n    Match ^/nobudget/\n    LoadBalancer Round-Robin\n    AttemptsCount 0\n    ServerList "+list2+"\n")
	c := client(t, false, "")
	const n = 60
	start := time.Now()
	for i := 0; i < n; i++ {
		if st, body := get(t, c, s.URL("/api/x")); st != 502 {
			t.Fatalf("request %d: %d %q", i, st, body)
		}
	}
	secs := time.Since(start)/time.Second + 1
	seen := a0.Accepts() + a1.Accepts() + a2.Accepts()
	allowed, denied, _ := budgetStats(t, s, 0)
	if limit := int64(n + n/5 + 3*int(secs)); seen > limit || seen != n+int64(allowed) || allowed < 3 || denied == 0 {
		t.Fatalf("%d requests: the backends saw %d attempts, limit %d; %d retries allowed, %d denied",
			n, seen, limit, allowed, denied)
	}
	for i := 0; i < n; i++ {
		get(t, c, s.URL("/nobudget/x"))
	}
	if seen := b0.Accepts() + b1.Accepts() + b2.Accepts(); seen != 3*n {
		t.Fatalf("without a budget %d requests made %d attempts, want %d", n, seen, 3*n)
	}
}

// The Forwarded field beside X-Forwarded-*: for=, host= (quoted with its
// port), proto=, by=; a client outside ForwardedTrust has its field
// replaced, one inside has it kept and appended to.
func TestE2EForwarded(t *testing.T) {
	hosttest.CheckLeaks(t)
	echo := forwardedEcho(t)
	s, _ := startProxy(t, entryConf("Round-Robin", echo.Addr(), "Forwarded on", "ForwardedBy _edge1",
		"ForwardedTrust 127.0.0.2"))
	host := s.Addr()
	for _, tc := range []struct {
		local, want string
	}{
		{"127.0.0.1", `for=127.0.0.1;host="` + host + `";proto=http;by=_edge1` + "\n1.2.3.4, 127.0.0.1"},
		{"127.0.0.2", `for=1.2.3.4, for=127.0.0.2;host="` + host + `";proto=http;by=_edge1` + "\n1.2.3.4, 127.0.0.2"},
	} {
		got := getAs(t, client(t, false, tc.local), s.URL("/api/f"), "Forwarded: for=1.2.3.4", "X-Forwarded-For: 1.2.3.4")
		if got != tc.want {
			t.Errorf("from %s: backend saw %q, want %q", tc.local, got, tc.want)
		}
	}
}

// ServerList srv://NAME through the entry's Resolver, the test's own DNS
// server: the records' ports and weights (Smooth-Weighted-Round-Robin
// follows them); the record of a higher priority value is a backup, used
// only when the preferred servers are down; the proxy follows a change of
// the records within a few ResolveIntervals, without a reload.
func TestE2ESRVDiscovery(t *testing.T) {
	hosttest.CheckLeaks(t)
	bs := namedBackends(t, 3)
	d := hosttest.NewDNS(t)
	port := func(b *named) uint16 { return netip.MustParseAddrPort(b.hostPort()).Port() }
	lo := netip.MustParseAddr("127.0.0.1")
	d.SetIP("node1.test", lo)
	d.SetIP("node2.test", lo)
	d.SetSRV("_http._tcp.api.test",
		hosttest.SRV{Target: "node1.test", Port: port(bs[0]), Priority: 10, Weight: 3},
		hosttest.SRV{Target: "node2.test", Port: port(bs[1]), Priority: 10, Weight: 1},
		hosttest.SRV{Target: "node2.test", Port: port(bs[2]), Priority: 20, Weight: 1}) // backup
	s, _ := startProxy(t, entryConf("Smooth-Weighted-Round-Robin", "srv://_http._tcp.api.test",
		"Resolver "+d.Addr, "ResolveInterval 200ms"))
	c := client(t, true, "")
	if got := counts(sequence(t, c, s.URL("/api/a"), 40)); got["b0"] != 30 || got["b1"] != 10 {
		t.Fatalf("weights 3:1 from the records: %v", got)
	}
	d.SetSRV("_http._tcp.api.test", hosttest.SRV{Target: "node2.test", Port: port(bs[2]), Priority: 1, Weight: 5},
		hosttest.SRV{Target: "node1.test", Port: port(bs[1]), Priority: 2, Weight: 1})
	if !hosttest.Poll(10*time.Second, func() bool { _, body := get(t, c, s.URL("/api/b")); return body == "b2" }) {
		t.Fatal("the proxy did not follow the new SRV records")
	}
	if got := counts(sequence(t, c, s.URL("/api/c"), 20)); got["b2"] != 20 {
		t.Fatalf("after the change: %v", got)
	}
	bs[2].Close() // the preferred server is down: the backup answers
	if got := counts(sequence(t, c, s.URL("/api/d"), 10)); got["b1"] != 10 {
		t.Fatalf("with the preferred server down: %v", got)
	}
	if !strings.Contains(statusJSON(t, s), `"srv://_http._tcp.api.test"`) {
		t.Fatalf("status page: %s", statusJSON(t, s))
	}
}

// The retry budget on the other retry path: a pooled connection the
// backend closes when the next request arrives (it answers only the first
// request of each connection) is retried on a new connection to the same
// server. Every request after the first then wants a retry; with
// RetryBudget 20% min=3 the requests the backend sees stay within
// (1 + 0.2) × requests + 3 per second, and the rest get 502. (Without the
// budget the backend sees two per request.)
func TestE2ERetryBudgetPooled(t *testing.T) {
	hosttest.CheckLeaks(t)
	var seen atomic.Int64
	b := newRaw(t, "", func(c net.Conn, br *bufio.Reader) {
		for i := 0; ; i++ {
			if _, ok := readHead(br); !ok {
				return
			}
			seen.Add(1)
			if i > 0 {
				c.(*net.TCPConn).SetLinger(0)
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	s, _ := startProxy(t, entryConf("Round-Robin", b.Addr(), "AttemptsCount 0", "RetryBudget 20% min=3"))
	c := client(t, true, "")
	const n = 60
	start := time.Now()
	failed := 0
	for i := 0; i < n; i++ {
		switch st, body := get(t, c, s.URL("/api/x")); st {
		case 502:
			failed++
		case 200:
		default:
			t.Fatalf("request %d: %d %q", i, st, body)
		}
	}
	secs := time.Since(start)/time.Second + 1
	allowed, denied, _ := budgetStats(t, s, 0)
	if limit := int64(n + n/5 + 3*int(secs)); seen.Load() > limit || denied == 0 || failed == 0 {
		t.Fatalf("%d requests: backend saw %d, limit %d; %d allowed, %d denied, %d failed",
			n, seen.Load(), limit, allowed, denied, failed)
	}
}

// forwardedEcho is a backend answering with the Forwarded fields it got
// and, on a second line, X-Forwarded-For.
func forwardedEcho(t *testing.T) *raw {
	return newRaw(t, "", func(c net.Conn, br *bufio.Reader) {
		for {
			req, ok := readHead(br)
			if !ok {
				return
			}
			body := strings.Join(req.Header.Values("Forwarded"), " | ") + "\n" + req.Header.Get("X-Forwarded-For")
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		}
	})
}

// A client over TLS: proto=https in the Forwarded element.
func TestE2EForwardedTLS(t *testing.T) {
	hosttest.CheckLeaks(t)
	echo := forwardedEcho(t)
	_, ca, addr := startTLSProxy(t, entryConf("Round-Robin", echo.Addr(), "Forwarded on"))
	c := hosttest.HTTPSClient(ca, "localhost")
	defer c.CloseIdleConnections()
	_, port, _ := net.SplitHostPort(addr)
	st, body := get(t, c, "https://localhost:"+port+"/api/tls")
	if want := `for=127.0.0.1;host="localhost:` + port + `";proto=https` + "\n127.0.0.1"; st != 200 || body != want {
		t.Fatalf("%d %q, want %q", st, body, want)
	}
}
