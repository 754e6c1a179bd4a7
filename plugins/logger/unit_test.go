package main

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/capuchin/capuchin/api"
	"github.com/capuchin/capuchin/internal/hosttest"
)

func TestAppendLine(t *testing.T) {
	start := time.Date(2024, time.March, 5, 7, 8, 9, 0, time.FixedZone("X", -(4*3600+30*60)))
	stamp := start.Local().Format(timeLayout)
	cases := []struct {
		rec  api.Record
		want string
	}{
		{api.Record{Remote: netip.MustParseAddrPort("192.0.2.1:5000"), Method: "GET", Target: "/a?b=c",
			Proto: "HTTP/1.1", Status: 200, Bytes: 1234, Start: start},
			"192.0.2.1 - [" + stamp + "] GET /a?b=c HTTP/1.1 200 1234\n"},
		{api.Record{Remote: netip.MustParseAddrPort("[::ffff:10.0.0.1]:1"), Method: "HEAD", Target: "/",
			Proto: "HTTP/1.0", Status: 304, Start: start},
			"10.0.0.1 - [" + stamp + "] HEAD / HTTP/1.0 304 0\n"},
		{api.Record{Remote: netip.MustParseAddrPort("[2001:db8::1]:80"), Method: "GET", Target: "/x y\n\\é",
			Proto: "HTTP/1.1", Status: 404, Bytes: 5, Start: start},
			"2001:db8::1 - [" + stamp + "] GET /x\\x20y\\x0a\\x5c\\xc3\\xa9 HTTP/1.1 404 5\n"},
		{api.Record{Status: 400, Start: start}, "- - [" + stamp + "] - - - 400 0\n"},
	}
	for _, c := range cases {
		if got := string(appendMonkey(nil, &c.rec)); got != c.want {
			t.Errorf("got  %q\nwant %q", got, c.want)
		}
	}
}

func TestAppendLineAllocs(t *testing.T) {
	rec := api.Record{Remote: netip.MustParseAddrPort("192.0.2.1:5000"), Method: "GET", Target: "/index.html",
		Proto: "HTTP/1.1", Status: 200, Bytes: 1234, Start: time.Now(), Referer: "http://a/", UserAgent: "curl/8",
		Upstream: api.Upstream{Addr: "127.0.0.1:8080", Status: 200, Duration: time.Millisecond}}
	buf := make([]byte, 0, 1024)
	for name, f := range formats {
		if n := testing.AllocsPerRun(100, func() { buf = f(buf[:0], &rec) }); n != 0 {
			t.Errorf("format %s allocates %v times per line", name, n)
		}
	}
}

// TestFormats checks the combined, combined_upstream and JSON lines of a
// static and a proxied record, escapes included; every JSON line must
// parse as one object with the record's values.
func TestFormats(t *testing.T) {
	start := time.Date(2024, time.March, 5, 7, 8, 9, 123e6, time.UTC)
	stamp := start.Local().Format(timeLayout)
	static := api.Record{Remote: netip.MustParseAddrPort("192.0.2.1:5000"), VHost: "example.com", Method: "GET",
		Target: "/a?b=c", Proto: "HTTP/1.1", Status: 200, Bytes: 1234, Start: start, Duration: 12500 * time.Microsecond,
		UserAgent: "Mozilla/5.0 (X11) \"q\"\x01"}
	proxied := static
	proxied.Referer, proxied.Target = "http://example.com/é", "/api/x"
	proxied.Upstream = api.Upstream{Addr: "127.0.0.1:8080", Status: 503, Duration: 7 * time.Millisecond}
	ua := `"Mozilla/5.0 (X11) \x22q\x22\x01"`
	for _, c := range []struct {
		f    formatter
		rec  *api.Record
		want string
	}{
		{appendCombined, &static, `192.0.2.1 - - [` + stamp + `] "GET /a?b=c HTTP/1.1" 200 1234 "-" ` + ua + "\n"},
		{appendCombined, &proxied, `192.0.2.1 - - [` + stamp + `] "GET /api/x HTTP/1.1" 200 1234 "http://example.com/\xc3\xa9" ` + ua + "\n"},
		{appendCombinedUpstream, &static, `192.0.2.1 - - [` + stamp + `] "GET /a?b=c HTTP/1.1" 200 1234 "-" ` + ua + " rt=0.013 uaddr=- ustatus=- urt=-\n"},
		{appendCombinedUpstream, &proxied, `192.0.2.1 - - [` + stamp + `] "GET /api/x HTTP/1.1" 200 1234 "http://example.com/\xc3\xa9" ` + ua +
			` rt=0.013 uaddr="127.0.0.1:8080" ustatus=503 urt=0.007` + "\n"},
	} {
		if got := string(c.f(nil, c.rec)); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
	}
	for _, r := range []*api.Record{&static, &proxied} {
		line := appendJSON(nil, r)
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil || line[len(line)-1] != '\n' || bytes.Count(line, []byte("\n")) != 1 {
			t.Fatalf("JSON line %q: %v", line, err)
		}
		if m["http_user_agent"] != r.UserAgent || m["http_referer"] != r.Referer || m["request_uri"] != r.Target ||
			m["status"] != 200.0 || m["request_time"] != 0.013 || m["remote_addr"] != "192.0.2.1" ||
			m["server_name"] != "example.com" || m["request_method"] != "GET" || m["server_protocol"] != "HTTP/1.1" ||
			m["bytes_sent"] != 1234.0 {
			t.Errorf("JSON %s lost values of %+v", line, r)
		}
		if tm, err := time.Parse(time.RFC3339Nano, m["time"].(string)); err != nil || !tm.Equal(start) {
			t.Errorf("JSON time %v: %v", m["time"], err)
		}
		_, has := m["upstream_addr"]
		if has != r.Upstream.Forwarded() || has && (m["upstream_addr"] != "127.0.0.1:8080" || m["upstream_status"] != 503.0 || m["upstream_response_time"] != 0.007) {
			t.Errorf("JSON upstream fields of %s", line)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	c, err := loadConfig(filepath.Join(dir, "conf", "logger.conf"))
	if err != nil || c.Path != filepath.Join(dir, "logs", "access.log") || c.Interval != time.Second || c.Buffer != 64<<10 || c.Format != "monkey" {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	p := filepath.Join(dir, "logger.conf")
	write := func(s string) { hosttest.Must(t, os.WriteFile(p, []byte(s), 0o644)) }
	write("[LOGGER]\n    AccessLog my/access.log\n    FlushInterval 250\n    BufferSize 8\n")
	c, err = loadConfig(p)
	if err != nil || c.Path != filepath.Join(dir, "my", "access.log") || c.Interval != 250*time.Millisecond || c.Buffer != 8<<10 {
		t.Fatalf("set: %+v %v", c, err)
	}
	write("[LOGGER]\n    AccessLog /var/log/x.log\n    Format JSON\n")
	if c, err = loadConfig(p); err != nil || c.Path != "/var/log/x.log" || c.Format != "json" {
		t.Fatalf("absolute, json: %+v %v", c, err)
	}
	for text, where := range map[string]string{
		"[LOGGER]\n    FlushInterval 0\n":       ":2",
		"[LOGGER]\n    FlushInterval soon\n":    ":2",
		"[LOGGER]\n\n    BufferSize -1\n":       ":3",
		"[LOGGER]\n    AccessLog\n":             ":2",
		"[LOGGER]\n    Format apache\n":         ":2",
		"[LOGGER]\n    ErrorLog /tmp/e.log\n":   ":2",
		"# x\n[SERVER]\n    AccessLog /a.log\n": ":2",
	} {
		write(text)
		if _, err := loadConfig(p); err == nil || !strings.Contains(err.Error(), p+where) {
			t.Errorf("%q: error %v, want one at %s", text, err, where)
		}
	}
}

func testSink(t *testing.T, interval time.Duration, buffer int) (*sink, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "logs", "access.log")
	s, err := openSink(config{Path: path, Interval: interval, Buffer: buffer, Format: "monkey"}, hclog.NewNullLogger())
	hosttest.Must(t, err)
	t.Cleanup(s.Close)
	return s, path
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	hosttest.Must(t, err)
	return string(b)
}

// waitLines polls path until it holds n lines (at most 5 s).
func waitLines(t *testing.T, path string, n int) []string {
	t.Helper()
	var lines []string
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(path)
		if lines = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"); len(b) > 0 && len(lines) >= n {
			return lines
		}
	}
	t.Fatalf("%s: want %d lines, have %q", path, n, lines)
	return nil
}

func rec(target string) *api.Record {
	return &api.Record{Remote: netip.MustParseAddrPort("127.0.0.1:1"), Method: "GET", Target: target,
		Proto: "HTTP/1.1", Status: 200, Bytes: 10, Start: time.Now()}
}

func TestSinkFlushesOnCloseOnly(t *testing.T) {
	hosttest.CheckLeaks(t)
	s, path := testSink(t, time.Hour, 64<<10)
	for i := 0; i < 10; i++ {
		s.Add(rec("/x"))
	}
	if got := readFile(t, path); got != "" {
		t.Fatalf("written before the interval and below the buffer size: %q", got)
	}
	s.Close()
	s.Close() // twice is fine
	if n := strings.Count(readFile(t, path), "\n"); n != 10 {
		t.Fatalf("%d lines after Close, want 10", n)
	}
}

func TestSinkFlushesOnInterval(t *testing.T) {
	hosttest.CheckLeaks(t)
	s, path := testSink(t, 20*time.Millisecond, 64<<10)
	s.Add(rec("/one"))
	if l := waitLines(t, path, 1); !strings.Contains(l[0], " /one ") {
		t.Fatalf("line %q", l[0])
	}
}

func TestSinkFlushesWhenFull(t *testing.T) {
	hosttest.CheckLeaks(t)
	s, path := testSink(t, time.Hour, 1<<10)
	line := len(appendMonkey(nil, rec("/full")))
	n := (1<<10)/line + 1
	for i := 0; i < n; i++ {
		s.Add(rec("/full"))
	}
	waitLines(t, path, n)
}

func TestSinkReopen(t *testing.T) {
	hosttest.CheckLeaks(t)
	s, path := testSink(t, time.Hour, 64<<10)
	s.Add(rec("/before"))
	hosttest.Must(t, s.Reopen())
	waitLines(t, path, 1)
	hosttest.Must(t, os.Rename(path, path+".1"))
	hosttest.Must(t, s.Reopen())
	if _, err := os.Stat(path); err != nil {
		t.Fatal("the log was not recreated by Reopen")
	}
	s.Add(rec("/after"))
	s.Close()
	if old, cur := readFile(t, path+".1"), readFile(t, path); !strings.Contains(old, "/before") || strings.Contains(old, "/after") || !strings.Contains(cur, "/after") {
		t.Fatalf("rotated %q, current %q", old, cur)
	}
}

// With one processor, a burst of notifications gives the writer no turn
// until the scheduler preempts the notifications' goroutine: the records
// wait for it rather than being dropped as if the file could not keep up
// (an access log lost lines of 256 busy connections so).
func TestSinkWaitsForItsWriter(t *testing.T) {
	hosttest.CheckLeaks(t)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	s, path := testSink(t, time.Hour, 1<<10)
	const n = 50000
	for i := 0; i < n; i++ {
		s.Add(rec("/burst"))
	}
	s.Close()
	if got := strings.Count(readFile(t, path), "\n"); got != n {
		t.Fatalf("%d lines written, want %d", got, n)
	}
}

func TestSinkDropsInsteadOfBlocking(t *testing.T) {
	s := &sink{limit: 100, kick: make(chan struct{}, 1), format: appendMonkey} // no writer: nothing drains
	for i := 0; i < 100; i++ {
		s.Add(rec("/drop"))
	}
	if s.dropped == 0 || len(s.buf) > maxBacklog*s.limit+200 {
		t.Fatalf("dropped %d, buffered %d bytes", s.dropped, len(s.buf))
	}
}
