package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// chromium returns the path of a headless-capable Chromium, or skips the
// test. CI installs Debian's package (.ci/run).
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium not installed (Debian: apt-get install chromium); the status page is not checked in a browser")
	return ""
}

// browse runs headless Chromium on url with a fresh profile, plus args
// (--dump-dom, --screenshot=...), and returns its standard output.
func browse(t *testing.T, bin, url string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(append(base, args...), url)...)
	var errOut strings.Builder
	cmd.Stderr = &errOut
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errOut.String())
	}
	return string(out)
}

// row returns the HTML of the status table row of addr in the first
// table that lists it.
func row(t *testing.T, dom, addr string) string {
	t.Helper()
	i := strings.Index(dom, `data-addr="`+addr+`"`)
	if i < 0 {
		t.Fatalf("no row for %s in the page:\n%s", addr, dom)
	}
	end := strings.Index(dom[i:], "</tr>")
	return dom[i : i+end]
}

// cellNum returns the number in the row's cell of class name.
func cellNum(t *testing.T, r, name string) int {
	t.Helper()
	m := regexp.MustCompile(`class="num ` + name + `[^"]*"><div class="v">(\d+)<`).FindStringSubmatch(r)
	if m == nil {
		t.Fatalf("no %s cell in %s", name, r)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// The status page, loaded in headless Chromium, shows each server's state
// in colour and words (up, down by check with its reason, offline by
// passive HA, slow start), numbers that match the traffic sent, the last
// health check, and it refreshes itself in place.
func TestE2EStatusPageInChromium(t *testing.T) {
	bin := chromium(t)
	a, b, c, d := newChecked(t, "a", ""), newChecked(t, "b", ""), newChecked(t, "c", ""), newChecked(t, "d", "")
	dead := deadAddr(t)
	b.sick.Store(true)
	c.sick.Store(true)
	conf := "[PROXY_DEFAULTS]\n    StatisticsURL /proxy_stats\n" +
		"[PROXY_ENTRY]\n    Match ^/api/\n    LoadBalancer Round-Robin\n    ServerList " + addrs2(a, b, c) + "\n" +
		"    HealthCheck GET /health\n    HealthInterval 100ms\n    HealthRise 1\n    HealthFall 1\n    SlowStart 1h\n" +
		"[PROXY_ENTRY]\n    Match ^/old/\n    LoadBalancer First-Alive\n    ServerList " + dead + " " + d.hostPort() + "\n" +
		"    AttemptsCount 1\n    OfflineTimeOut 60\n"
	s, _ := startProxy(t, conf)
	waitStatus(t, s, b.hostPort(), "down")
	waitStatus(t, s, c.hostPort(), "down")
	c.sick.Store(false)
	waitStatus(t, s, c.hostPort(), "slowstart")

	cl := client(t, true, "")
	for i := 0; i < 12; i++ {
		if st, _ := get(t, cl, s.URL("/api/x")); st != 200 {
			t.Fatalf("api request %d: %d", i, st)
		}
	}
	for i := 0; i < 5; i++ { // the first finds dead down (then offline), every one goes to d
		if st, body := get(t, cl, s.URL("/old/x")); st != 200 || body != "d" {
			t.Fatalf("old request %d: %d %q", i, st, body)
		}
	}
	if st, _ := get(t, cl, s.URL("/old/boom")); st != 500 {
		t.Fatalf("boom: %d", st)
	}

	dom := browse(t, bin, s.URL("/proxy_stats"), "--virtual-time-budget=7000", "--dump-dom")
	if !strings.Contains(dom, `data-refreshed="1"`) {
		t.Errorf("the page did not refresh itself within 7 s of virtual time")
	}
	ah, ch := int(a.hits.Load()), int(c.hits.Load())
	if ah+ch != 12 || ah < 8 {
		t.Fatalf("a got %d and c (slow start) %d of 12 requests", ah, ch)
	}
	checkRow(t, dom, a.hostPort(), "up", "UP", ah, ah, 0, "passed</span>: HTTP 200")
	checkRow(t, dom, b.hostPort(), "down", "DOWN", 0, 0, 0, "failed</span>: HTTP 503, want 200-399")
	if r := row(t, dom, b.hostPort()); !strings.Contains(r, "down by health check: HTTP 503, want 200-399") {
		t.Errorf("b's reason missing: %s", r)
	}
	checkRow(t, dom, c.hostPort(), "slowstart", "SLOW START", ch, ch, 0, "passed</span>: HTTP 200")
	checkRow(t, dom, d.hostPort(), "up", "UP", 6, 6, 1, "no check")
	// The dead server's one failed connect: no request sent, one failed attempt.
	r := checkRow(t, dom, dead, "offline", "OFFLINE", 0, 1, 1, "no check")
	if !strings.Contains(r, "offline by passive HA after 1 failure in a row") || cellNum(t, r, "failures") != 1 {
		t.Errorf("dead's row: %s", r)
	}
	if !strings.Contains(row(t, dom, d.hostPort()), "16.7%") {
		t.Errorf("d's error rate (1 of 6) missing: %s", row(t, dom, d.hostPort()))
	}
	for _, want := range []string{`id="count-up"><b>2</b>`, `id="count-down"><b>1</b>`,
		`id="count-offline"><b>1</b>`, `id="count-slowstart"><b>1</b>`, `name="viewport"`} {
		if !strings.Contains(dom, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	screenshots(t, bin, s)
}

// checkRow checks a server's row: its class and badge, the requests it got
// (as the backend counted them) in the last minute and in total, its
// errors and its last check; it returns the row.
func checkRow(t *testing.T, dom, addr, class, badge string, requests, minute, errors int, check string) string {
	t.Helper()
	r := row(t, dom, addr)
	if !strings.Contains(r, `data-status="`+class+`"`) || !strings.Contains(r, `class="badge b-`+class+`">`+badge+`<`) {
		t.Errorf("%s: want state %s (%s): %s", addr, class, badge, r)
	}
	if got := cellNum(t, r, "requests"); got != requests {
		t.Errorf("%s: %d requests shown, the backend got %d", addr, got, requests)
	}
	if !strings.Contains(r, fmt.Sprintf("<small>%d req</small>", minute)) {
		t.Errorf("%s: last minute does not show %d requests: %s", addr, minute, r)
	}
	if !strings.Contains(r, fmt.Sprintf("<small>%d err</small>", errors)) {
		t.Errorf("%s: last minute does not show %d errors: %s", addr, errors, r)
	}
	if !strings.Contains(r, check) {
		t.Errorf("%s: check cell lacks %q: %s", addr, check, r)
	}
	return r
}

func addrs2(bs ...*checked) string {
	var out []string
	for _, b := range bs {
		out = append(out, b.hostPort())
	}
	return strings.Join(out, " ")
}

// screenshots saves the page at desktop and phone sizes, in
// $STATUS_SCREENSHOTS when set (to look at them), else in a temporary
// directory; a screenshot must not be empty.
func screenshots(t *testing.T, bin string, s *hosttest.Site) {
	dir := os.Getenv("STATUS_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	for name, size := range map[string]string{"desktop": "1280,900", "phone": "390,1400"} {
		file := filepath.Join(dir, "status-"+name+".png")
		browse(t, bin, s.URL("/proxy_stats"), "--window-size="+size, "--hide-scrollbars", "--screenshot="+file)
		if fi, err := os.Stat(file); err != nil || fi.Size() < 10<<10 {
			t.Errorf("%s screenshot: %v", name, err)
		}
	}
}
