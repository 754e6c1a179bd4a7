package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/hosttest"
)

// Every RFC 9110 token method is forwarded (WebDAV, CalDAV, cache purges,
// QUERY, SSDP's M-SEARCH on a path); a POST or PUT with neither
// Content-Length nor Transfer-Encoding is forwarded with an empty body
// (RFC 9112 §6.3); CONNECT is not tunnelled: the host answers 405.
func TestE2ETokenMethodsForwarded(t *testing.T) {
	b := echoBackend(t)
	s, _ := startProxy(t, entryConf("First-Alive", b.Listener.Addr().String()))
	c := hosttest.Dial(t, s.Addr())
	for _, m := range []string{"PROPFIND", "REPORT", "MKCOL", "PURGE", "SEARCH", "QUERY", "M-SEARCH", "PATCH"} {
		r := c.RoundTrip(m + " /api/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\nhi")
		if want := m + " te=[] len=2 err=<nil> body=hi"; r.Status != 200 || string(r.Body) != want {
			t.Fatalf("%s: %d %q, want 200 %q", m, r.Status, r.Body, want)
		}
	}
	for _, m := range []string{"POST", "PUT"} {
		r := c.RoundTrip(m + " /api/echo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		if want := m + " te=[] len=0 err=<nil> body="; r.Status != 200 || string(r.Body) != want {
			t.Fatalf("%s without a length: %d %q, want 200 %q", m, r.Status, r.Body, want)
		}
		r = c.RoundTrip(m + " /api/headers HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		if !strings.Contains(string(r.Body), "Content-Length: 0") {
			t.Fatalf("%s without a length reached the backend without Content-Length: 0:\n%s", m, r.Body)
		}
	}
	r := c.RoundTrip("CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n")
	if r.Status != 405 {
		t.Fatalf("CONNECT: %d %q, want 405", r.Status, r.Body)
	}
}

// A chunked upload that grows past the host's MaxRequestSize gets 413, as
// a Content-Length one does: the limit cannot be bypassed by framing.
func TestE2EChunkedUploadOverLimit(t *testing.T) {
	b := echoBackend(t)
	s, _ := startProxy(t, entryConf("First-Alive", b.Listener.Addr().String()), "MaxRequestSize 1")
	c := hosttest.Dial(t, s.Addr())
	r := c.RoundTrip("POST /api/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2000\r\n\r\n")
	if r.Status != 413 {
		t.Fatalf("Content-Length over the limit: %d, want 413", r.Status)
	}
	c = hosttest.Dial(t, s.Addr())
	chunk := strings.Repeat("z", 800)
	c.Send("POST /api/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n")
	c.SendQuiet("320\r\n" + chunk + "\r\n320\r\n" + chunk + "\r\n0\r\n\r\n")
	r = c.MustRead("POST")
	if r.Status != 413 || !r.Close {
		t.Fatalf("chunked over the limit: %d close=%v %.80q, want 413 and close", r.Status, r.Close, r.Body)
	}
	c = hosttest.Dial(t, s.Addr())
	r = c.RoundTrip("POST /api/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"320\r\n" + chunk + "\r\n0\r\n\r\n")
	if r.Status != 200 || !strings.Contains(string(r.Body), "len=800") {
		t.Fatalf("chunked within the limit: %d %q", r.Status, r.Body)
	}
}

// Without ClientBodyTimeout, the proxy waits for body bytes as long as the
// host's Timeout says (here 1 s), not a fixed 15 s.
func TestE2EClientBodyTimeoutFollowsHostTimeout(t *testing.T) {
	b := echoBackend(t)
	s, _ := startProxy(t, entryConf("First-Alive", b.Listener.Addr().String(), "ResponseTimeout 30"), "Timeout 1")
	c := hosttest.Dial(t, s.Addr())
	start := time.Now()
	c.Send("POST /api/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n0123456789")
	r := c.MustRead("POST")
	if r.Status != 408 {
		t.Fatalf("stalled upload: %d %q, want 408", r.Status, r.Body)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Fatalf("408 after %v: the host's Timeout of 1 s was not applied", d)
	}
}

// Request fields whose names hold '_' are dropped before forwarding (as
// nginx's underscores_in_headers off: some backends read '_' as '-'), unless
// UnderscoresInHeaders is on.
func TestE2EUnderscoreFieldsDropped(t *testing.T) {
	b := echoBackend(t)
	req := "GET /api/headers HTTP/1.1\r\nHost: 127.0.0.1\r\nContent_Length: 5\r\nX_Forwarded_For: 10.9.9.9\r\nMy_Field: yes\r\nMy-Field: dash\r\n\r\n"
	s, _ := startProxy(t, entryConf("First-Alive", b.Listener.Addr().String()))
	got := strings.ToLower(string(hosttest.Dial(t, s.Addr()).RoundTrip(req).Body))
	if strings.Contains(got, "_") || strings.Contains(got, "10.9.9.9") || !strings.Contains(got, "my-field: dash") {
		t.Fatalf("default: the backend got\n%s", got)
	}
	s, _ = startProxy(t, entryConf("First-Alive", b.Listener.Addr().String(), "UnderscoresInHeaders on"))
	got = strings.ToLower(string(hosttest.Dial(t, s.Addr()).RoundTrip(req).Body))
	if !strings.Contains(got, "my_field: yes") || !strings.Contains(got, "content_length: 5") {
		t.Fatalf("UnderscoresInHeaders on: the backend got\n%s", got)
	}
}

// A backend's chunked answer keeps its trailer (and the Trailer field that
// announces it) on the way to an HTTP/1.1 client; a client's chunked upload
// keeps its trailer on the way to the backend. Framing fields in a trailer
// are not forwarded. An HTTP/1.0 client gets the body without them.
func TestE2ETrailersForwarded(t *testing.T) {
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "X-Checksum")
		w.Header().Set("X-Request-Trailer", r.Trailer.Get("X-Upload-Sum"))
		w.WriteHeader(200)
		w.Write(body)
		w.(http.Flusher).Flush()
		w.Header().Set("X-Checksum", "abc123")
		w.Header().Set(http.TrailerPrefix+"Content-Length", "99")
	}))
	t.Cleanup(b.Close)
	s, _ := startProxy(t, entryConf("First-Alive", b.Listener.Addr().String()))

	resp := new(http1.Response)
	c := hosttest.Dial(t, s.Addr())
	c.Send("POST /api/t HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nTrailer: X-Upload-Sum\r\n\r\n" +
		"5\r\nhello\r\n0\r\nX-Upload-Sum: s1\r\n\r\n")
	hosttest.Must(t, http1.ReadResponse(c.BR, nil, resp))
	var body http1.Body
	body.ResetResponse(c.BR, resp, "POST")
	got, err := io.ReadAll(&body)
	hosttest.Must(t, err)
	if string(got) != "hello" || resp.Header.Get("X-Request-Trailer") != "s1" || resp.Header.Get("Trailer") != "X-Checksum" {
		t.Fatalf("head %v body %q: want the upload's trailer at the backend and Trailer announced", resp.Header, got)
	}
	if tr := body.Trailer(); tr.Get("X-Checksum") != "abc123" || tr.Get("Content-Length") != "" {
		t.Fatalf("trailer %v, want X-Checksum: abc123 and no Content-Length", tr)
	}

	c = hosttest.Dial(t, s.Addr())
	r := c.RoundTrip("GET /api/t HTTP/1.0\r\n\r\n")
	if r.Status != 200 || r.Header.Get("Trailer") != "" || strings.Contains(string(r.Body), "abc123") {
		t.Fatalf("HTTP/1.0 client: %d %v %q", r.Status, r.Header, r.Body)
	}
}

// statusServers returns, per entry of the status page, the servers with
// their state and counters.
func statusServers(t *testing.T, s *hosttest.Site) [][]map[string]any {
	t.Helper()
	var page struct {
		Entries []struct {
			Servers []map[string]any `json:"servers"`
		} `json:"entries"`
	}
	hosttest.Must(t, json.Unmarshal([]byte(statusJSON(t, s)), &page))
	var out [][]map[string]any
	for _, e := range page.Entries {
		out = append(out, e.Servers)
	}
	return out
}

// A dead backend listed in 13 entries is found dead once: health is per
// backend address, shared by every entry that lists it, so after one
// request to the first entry every entry skips it.
func TestE2EHealthSharedAcrossEntries(t *testing.T) {
	live := newNamed(t, "live", "")
	dead := deadAddr(t)
	conf := "[PROXY_DEFAULTS]\n    StatisticsURL /proxy_stats\n    LoadBalancer First-Alive\n" +
		"    AttemptsCount 1\n    OfflineTimeOut 60\n    ServerList " + dead + " " + live.hostPort() + "\n"
	for i := 0; i < 13; i++ {
		conf += fmt.Sprintf("[PROXY_ENTRY]\n    Match ^/e%d/\n", i)
	}
	s, _ := startProxy(t, conf)
	c := client(t, true, "")
	if st, body := get(t, c, s.URL("/e0/x")); st != 200 || body != "live" {
		t.Fatalf("first request: %d %q", st, body)
	}
	for i, servers := range statusServers(t, s) {
		if servers[0]["addr"] != dead || servers[0]["state"] == "online" {
			t.Fatalf("entry %d: %v, want %s offline", i, servers[0], dead)
		}
	}
	for i := 1; i < 13; i++ {
		if st, body := get(t, c, s.URL(fmt.Sprintf("/e%d/x", i))); st != 200 || body != "live" {
			t.Fatalf("entry %d: %d %q", i, st, body)
		}
	}
	for i, servers := range statusServers(t, s) {
		if f := servers[0]["failures"]; f != 1.0 {
			t.Fatalf("entry %d: the dead server failed %v times, want once in all", i, f)
		}
	}
}

// The status page's counters of the servers still configured survive a
// reload that changes proxy_reverse.conf: the host hands the new file to
// the running plugin, which keeps its backend registry. The new entry
// (and its claims) take effect; an address no longer listed is forgotten.
func TestE2EStatusSurvivesReload(t *testing.T) {
	a, b := newNamed(t, "a", ""), newNamed(t, "b", "")
	s, p := startProxy(t, entryConf("First-Alive", a.hostPort()+" "+b.hostPort()))
	c := client(t, false, "")
	for i := 0; i < 3; i++ {
		if st, body := get(t, c, s.URL("/api/x")); st != 200 || body != "a" {
			t.Fatalf("before reload: %d %q", st, body)
		}
	}
	s.WriteFile("proxy_reverse.conf", entryConf("First-Alive", a.hostPort())+
		"[PROXY_ENTRY]\n    Match ^/more/\n    ServerList "+b.hostPort()+"\n")
	p.Signal(syscall.SIGHUP)
	if !p.WaitLog("configuration reloaded") {
		t.Fatalf("no reload:\n%s", p.Log())
	}
	if st, body := get(t, c, s.URL("/more/x")); st != 200 || body != "b" {
		t.Fatalf("the new entry: %d %q", st, body)
	}
	servers := statusServers(t, s)
	if len(servers) != 2 || servers[0][0]["requests"] != 3.0 || servers[1][0]["requests"] != 1.0 {
		t.Fatalf("after reload: %v, want a with its 3 requests and b with 1", servers)
	}
	if !strings.Contains(p.Log(), "reconfigured in place") {
		t.Fatalf("the plugin was not reconfigured in place:\n%s", p.Log())
	}
	// A bad file is refused and the running configuration stays.
	s.WriteFile("proxy_reverse.conf", entryConf("Fastest", a.hostPort()))
	p.Signal(syscall.SIGHUP)
	if !p.WaitLog("reload failed") {
		t.Fatalf("bad reload accepted:\n%s", p.Log())
	}
	if st, body := get(t, c, s.URL("/more/x")); st != 200 || body != "b" {
		t.Fatalf("after a refused reload: %d %q", st, body)
	}
}

// A client that stops reading a proxied answer is given up after the
// host's Timeout (here 1 s), as the host does for static files, not after a
// fixed minute: the connection closes before the whole body arrives.
func TestE2EClientWriteTimeoutFollowsHostTimeout(t *testing.T) {
	const size = 64 << 20
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(size))
		chunk := make([]byte, 64<<10)
		for n := 0; n < size; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(b.Close)
	s, _ := startProxy(t, entryConf("First-Alive", b.Listener.Addr().String()), "Timeout 1")
	c := hosttest.Dial(t, s.Addr())
	c.Send("GET /api/big HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	time.Sleep(5 * time.Second) // not reading: the proxy's writes stall
	r, err := c.Read("GET")
	if err == nil && len(r.Body) == size {
		t.Fatalf("the whole %d-byte body arrived after the client stalled for 5 s", size)
	}
}
