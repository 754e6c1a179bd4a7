package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// formatSite runs the host with proxy_reverse (^/api/ to a real backend)
// and the logger writing format; it returns the site, the host, the log's
// path and the backend's address.
func formatSite(t *testing.T, format string) (*hosttest.Site, *hosttest.Proc, string, string) {
	t.Helper()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, "from the backend")
	}))
	t.Cleanup(be.Close)
	s := hosttest.NewSite(t, bin)
	s.Load("proxy_reverse", "logger")
	s.WriteFile("proxy_reverse.conf", "[PROXY_ENTRY]\n    Match ^/api/\n    ServerList "+be.Listener.Addr().String()+"\n")
	logPath := filepath.Join(t.TempDir(), "access.log")
	s.WriteFile("logger.conf", "[LOGGER]\n    AccessLog "+logPath+"\n    FlushInterval 50\n    Format "+format+"\n")
	return s, s.Start(), logPath, be.Listener.Addr().String()
}

// formatTraffic sends, with a Referer and a User-Agent: a static request on
// its own connection, then three proxied requests on one kept-alive
// connection (the second and third are served under a lease: their records
// come from the SDK, the first's from the host). It returns the targets in
// the order their lines are written.
func formatTraffic(t *testing.T, addr string) []string {
	t.Helper()
	fields := func(target string) string {
		return fmt.Sprintf("Referer: http://ref.example/%s\r\nUser-Agent: tester \"%s\"\r\n", target[1:], target)
	}
	if st := get(t, hosttest.Dial(t, addr), "/index.html", fields("/index.html"), true); st != 200 {
		t.Fatalf("static: %d", st)
	}
	pc := hosttest.Dial(t, addr)
	targets := []string{"/index.html", "/api/1", "/api/2", "/api/3"}
	for i, tg := range targets[1:] {
		if st := get(t, pc, tg, fields(tg), i == 2); st != 202 {
			t.Fatalf("proxied %s: %d", tg, st)
		}
	}
	return targets
}

// get sends a GET of target with fields (each ending in CRLF) on c, with
// Connection: close when it is the connection's last, and returns the
// answer's status.
func get(t *testing.T, c *hosttest.Client, target, fields string, last bool) int {
	t.Helper()
	if last {
		fields += "Connection: close\r\n"
	}
	fmt.Fprintf(c.C, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n", target, fields)
	return c.MustRead("GET").Status
}

// TestFormatsThroughHost checks each format's lines for a static and for
// proxied requests (handed over and leased) through the real host and
// proxy: Referer, User-Agent, request time, the backend exchange, and the
// body's bytes without the head (nginx's $body_bytes_sent: 15 for
// index.html, 16 for the backend's answer).
func TestFormatsThroughHost(t *testing.T) {
	stamp := `\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]`
	for _, format := range []string{"combined", "combined_upstream", "json"} {
		t.Run(format, func(t *testing.T) {
			s, _, logPath, backend := formatSite(t, format)
			targets := formatTraffic(t, s.Addr())
			lines := waitLines(t, logPath, len(targets))
			if len(lines) != len(targets) {
				t.Fatalf("want %d lines, got %q", len(targets), lines)
			}
			for i, tg := range targets {
				proxied := strings.HasPrefix(tg, "/api/")
				status := map[bool]string{false: "200", true: "202"}[proxied]
				body := map[bool]string{false: "15", true: "16"}[proxied]
				combined := `^127\.0\.0\.1 - - ` + stamp + ` "GET ` + regexp.QuoteMeta(tg) + ` HTTP/1\.1" ` + status + ` ` + body + ` ` +
					`"http://ref\.example/` + regexp.QuoteMeta(tg[1:]) + `" "tester \\x22` + regexp.QuoteMeta(tg) + `\\x22"`
				switch format {
				case "combined":
					mustMatch(t, lines[i], combined+`$`)
				case "combined_upstream":
					up := ` uaddr=- ustatus=- urt=-$`
					if proxied {
						up = ` uaddr="` + regexp.QuoteMeta(backend) + `" ustatus=202 urt=\d+\.\d{3}$`
					}
					mustMatch(t, lines[i], combined+` rt=\d+\.\d{3}`+up)
				case "json":
					checkJSON(t, lines[i], tg, status, body, proxied, backend)
				}
			}
		})
	}
}

func mustMatch(t *testing.T, line, re string) {
	t.Helper()
	if !regexp.MustCompile(re).MatchString(line) {
		t.Errorf("line %q\ndoes not match %s", line, re)
	}
}

func checkJSON(t *testing.T, line, target, status, body string, proxied bool, backend string) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	ok := m["request_uri"] == target && fmt.Sprint(m["status"]) == status && m["remote_addr"] == "127.0.0.1" &&
		m["http_referer"] == "http://ref.example/"+target[1:] && m["http_user_agent"] == `tester "`+target+`"` &&
		m["request_method"] == "GET" && m["server_protocol"] == "HTTP/1.1" &&
		fmt.Sprint(m["body_bytes_sent"]) == body && m["bytes_sent"].(float64) > m["body_bytes_sent"].(float64)
	if rt, isNum := m["request_time"].(float64); !isNum || rt < 0 {
		ok = false
	}
	if _, has := m["upstream_addr"]; has != proxied {
		ok = false
	}
	if proxied {
		ut, isNum := m["upstream_response_time"].(float64)
		ok = ok && m["upstream_addr"] == backend && m["upstream_status"] == 202.0 && isNum && ut >= 0
	}
	if !ok {
		t.Errorf("JSON line %s: wrong or missing fields (target %s, proxied %v, backend %s)", line, target, proxied, backend)
	}
}

// TestRotationBySIGUSR1ToHost: the log is renamed, SIGUSR1 goes to the
// host (not the plugin), and the next lines go to a new file at the path.
func TestRotationBySIGUSR1ToHost(t *testing.T) {
	s, p, logPath, _ := formatSite(t, "json")
	exchange(t, s.Addr(), "GET", "/one")
	waitLines(t, logPath, 1)
	hosttest.Must(t, os.Rename(logPath, logPath+".1"))
	p.Signal(syscall.SIGUSR1)
	if !p.WaitLog("plugins reopened their files") || !strings.Contains(p.Log(), "access log reopened") {
		t.Fatalf("no reopen in the log:\n%s", p.Log())
	}
	if _, err := os.Stat(logPath); err != nil {
		t.Fatalf("the log was not recreated by the time the host said so: %v", err)
	}
	exchange(t, s.Addr(), "GET", "/two")
	if l := waitLines(t, logPath, 1); len(l) != 1 || !strings.Contains(l[0], `"request_uri":"/two"`) {
		t.Fatalf("after reopen: %q", l)
	}
	if b, _ := os.ReadFile(logPath + ".1"); strings.Count(string(b), "\n") != 1 || !strings.Contains(string(b), `"request_uri":"/one"`) {
		t.Fatalf("rotated file: %q", b)
	}
	if strings.Contains(p.Log(), "reopen failed") {
		t.Errorf("a plugin failed to reopen:\n%s", p.Log())
	}
}

// TestRequestTimeUnderLease: each request's logged time is its own, with
// pauses between the requests of one kept-alive connection. The first
// request of a lease is answered by the plugin and logged by the host;
// its time must end with its answer, not with the lease (nginx's
// $request_time).
func TestRequestTimeUnderLease(t *testing.T) {
	s, _, logPath, _ := formatSite(t, "json")
	c := hosttest.Dial(t, s.Addr())
	const n, pause = 3, 700 * time.Millisecond
	for i := range n {
		if i > 0 {
			time.Sleep(pause)
		}
		if st := get(t, c, fmt.Sprintf("/api/%d", i), "", i == n-1); st != 202 {
			t.Fatalf("request %d: %d", i, st)
		}
	}
	for _, l := range waitLines(t, logPath, n) {
		var m map[string]any
		hosttest.Must(t, json.Unmarshal([]byte(l), &m))
		if rt, _ := m["request_time"].(float64); rt > 0.3 {
			t.Errorf("%s: request_time %.3f s: more than the request took (the pauses are %v)", m["request_uri"], rt, pause)
		}
	}
}

// TestBytesNotUTF8Logged: a User-Agent or Referer that is not UTF-8 (an
// HTTP field value may hold any octet but controls) is answered and logged
// as sent, escaped \xHH, for a request the host answered, a plugin's
// hand-over and a request served under its lease alike. Before, such a
// value failed to encode: the record's batch broke the host's stream to
// the logger, which was restarted and lost what was queued, and the
// lease's reply was lost with the connection waiting on it.
func TestBytesNotUTF8Logged(t *testing.T) {
	s, p, logPath, _ := formatSite(t, "combined")
	c := hosttest.Dial(t, s.Addr())
	c.C.SetDeadline(time.Now().Add(5 * time.Second))
	reqs := []struct{ target, field string }{
		{"/index.html", "User-Agent: a\xff\xfeb"},
		{"/api/1", "User-Agent: c\xc3\x28d"},
		{"/api/2", "Referer: http://ref.example/\xe2\x82"},
		{"/api/3", "User-Agent: plain"},
	}
	for i, r := range reqs {
		if st := get(t, c, r.target, r.field+"\r\n", i == len(reqs)-1); st/100 != 2 {
			t.Fatalf("%s: %d", r.target, st)
		}
	}
	lines := waitLines(t, logPath, len(reqs))
	want := []string{`"-" "a\xff\xfeb"`, `"-" "c\xc3(d"`, `"http://ref.example/\xe2\x82" "-"`, `"-" "plain"`}
	for i, l := range lines {
		if i < len(want) && (!strings.Contains(l, reqs[i].target+" ") || !strings.HasSuffix(l, want[i])) {
			t.Errorf("line %d: %q, want %s ending %s", i, l, reqs[i].target, want[i])
		}
	}
	if strings.Contains(p.Log(), "restarting") {
		t.Errorf("a plugin was restarted:\n%s", p.Log())
	}
}
