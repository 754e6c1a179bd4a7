package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

var bin *hosttest.Bin

func TestMain(m *testing.M) {
	os.Exit(hosttest.Main(m.Run, &bin, "./plugins/mandril", "./plugins/proxy_reverse"))
}

// TestDeniedAddressIsClosed denies 127.0.0.1, the tests' own address: the
// host must close every connection without answering.
func TestDeniedAddressIsClosed(t *testing.T) {
	hosttest.CheckLeaks(t)
	s := hosttest.NewSite(t, bin)
	s.Load("mandril")
	s.WriteFile("mandril.conf", "[MANDRIL]\n    DenyIP 192.0.2.1 127.0.0.1\n")
	s.Start()

	c := hosttest.Dial(t, s.Addr())
	if !c.Closed(5 * time.Second) {
		t.Fatal("a connection from a denied address stayed open")
	}
	c = hosttest.Dial(t, s.Addr())
	c.Send("GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	if r, err := c.Read("GET"); err == nil {
		t.Fatalf("a denied address got a response: %d", r.Status)
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	if resp, err := hc.Get(s.URL("/")); err == nil {
		resp.Body.Close()
		t.Fatalf("a denied address got a response: %d", resp.StatusCode)
	}
}

// TestOtherNetworksPassAndURLsAreDenied denies networks that do not hold
// 127.0.0.1 and a few URL patterns.
func TestOtherNetworksPassAndURLsAreDenied(t *testing.T) {
	hosttest.CheckLeaks(t)
	s := hosttest.NewSite(t, bin)
	s.Load("mandril")
	s.WriteFile("mandril.conf", `[MANDRIL]
    DenyIP 127.0.0.2/32 10.0.0.0/8
    DenyIP ::1
    DenyURL ^/secret
    DenyURL \.bak$
`)
	s.WriteFile("www/secret/data.txt", "top secret\n")
	s.WriteFile("www/page.bak", "old\n")
	s.Start()

	c := hosttest.Dial(t, s.Addr())
	for _, tc := range []struct {
		target string
		status int
	}{
		{"/index.html", 200},
		{"/secret/data.txt", 403},
		{"/SECRET/data.txt", 403},
		{"/%73ecret/data.txt", 403},
		{"//secret/data.txt", 403},
		{"/www/../secret/data.txt", 403},
		{"/page.bak", 403},
		{"/page.bak?x=1", 403},
		{"/nothing/secret", 404},
		{"/", 200},
	} {
		c.Send("GET " + tc.target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		r := c.MustRead("GET")
		if r.Status != tc.status {
			t.Fatalf("%s: status %d, want %d", tc.target, r.Status, tc.status)
		}
		if tc.status == 403 && !strings.Contains(string(r.Body), "403 Forbidden") {
			t.Fatalf("%s: 403 page %q", tc.target, r.Body)
		}
		if strings.Contains(string(r.Body), "top secret") {
			t.Fatalf("%s: leaked the file", tc.target)
		}
	}

	hc := &http.Client{Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(s.URL("/secret/data.txt"))
	hosttest.Must(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(body), "denied") {
		t.Fatalf("net/http client: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

// TestMissingConfigStopsStartup: mandril without rules is refused.
func TestMissingConfigStopsStartup(t *testing.T) {
	s := hosttest.NewSite(t, bin)
	s.Load("mandril")
	s.Refused("mandril.conf")
}

// TestDeniedURLsUnderLease loads mandril (as its README configures it)
// before proxy_reverse, so proxied connections are leased to the proxy
// and mandril is asked only about what its stage-20 filter matches. Every
// spelling of a denied path — other case, percent-encoded, "//", "/./",
// "..", alone or pipelined after a proxied request — must still get 403
// and never reach the backend.
func TestDeniedURLsUnderLease(t *testing.T) {
	hosttest.CheckLeaks(t)
	var mu sync.Mutex
	var seen []string
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Path)
		mu.Unlock()
		fmt.Fprintf(w, "backend %s", r.URL.Path)
	}))
	defer b.Close()
	s := hosttest.NewSite(t, bin)
	s.Load("mandril", "proxy_reverse")
	s.WriteFile("mandril.conf", "[MANDRIL]\n    DenyIP 203.0.113.0/24 2001:db8:bad::/48\n    DenyIP 198.51.100.7\n"+
		"    DenyURL ^/private(/|$)\n    DenyURL \\.(bak|old|swp)$\n")
	s.WriteFile("proxy_reverse.conf", "[PROXY_ENTRY]\n    ServerList "+strings.TrimPrefix(b.URL, "http://")+"\n    Match ^/\n")
	s.Start()

	denied := []string{"/private", "/private/x", "//private", "///private/x", "/x/../private", "/x/./../private/y",
		"/./private", "/PRIVATE", "/PrIvAtE/x", "/%70rivate", "/%50RIVATE/x", "/priv%61te", "/x/%2e%2e/private",
		"/a/b.bak", "/a/b.BAK", "/a/b.b%61k", "/a/b.swp", "/a//b.old", "/private/"}
	c := hosttest.Dial(t, s.Addr())
	get := func(p string) string { return "GET " + p + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" }
	for _, d := range denied {
		// One at a time after a proxied request (the connection is leased
		// when the denied one comes), then pipelined behind one.
		c.Send(get("/ok"))
		if r := c.MustRead("GET"); r.Status != 200 || string(r.Body) != "backend /ok" {
			t.Fatalf("/ok: %d %q", r.Status, r.Body)
		}
		c.Send(get(d))
		if r := c.MustRead("GET"); r.Status != 403 {
			t.Fatalf("%s after a proxied request: %d %q", d, r.Status, r.Body)
		}
		c.Send(get("/ok") + get(d) + get("/ok2"))
		for i, want := range []int{200, 403, 200} {
			if r := c.MustRead("GET"); r.Status != want {
				t.Fatalf("%s pipelined, response %d: %d %q", d, i, r.Status, r.Body)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range seen {
		if c := path.Clean("/" + p); strings.HasPrefix(strings.ToLower(c), "/private") || strings.Contains(strings.ToLower(c), ".bak") {
			t.Errorf("the backend saw a denied path %q", p)
		}
	}
	if len(seen) != 3*len(denied) {
		t.Errorf("the backend saw %d requests, want %d", len(seen), 3*len(denied))
	}
}
