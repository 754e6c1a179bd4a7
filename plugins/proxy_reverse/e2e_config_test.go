package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// The seed's example configuration, as written in testdata with only the
// addresses replaced by local backends, loads and behaves as described.
func TestE2ESeedExample(t *testing.T) {
	hosttest.CheckLeaks(t)
	text, err := os.ReadFile("testdata/proxy_reverse.conf")
	hosttest.Must(t, err)
	php := namedBackends(t, 2)
	static := []*named{newNamed(t, "s0", ""), newNamed(t, "s1", ""), newNamed(t, "s2", "")}
	w := []*named{newNamed(t, "w0", ""), newNamed(t, "w1", "")}
	conf := string(text)
	for old, b := range map[string]*named{`127\.0\.0\.1:9000\b`: php[0], `127\.0\.0\.1:9001\b`: php[1],
		`127\.0\.0\.1:80\b`: static[0], `127\.0\.0\.1:81\b`: static[1], `127\.0\.0\.1:82\b`: static[2],
		`\b10\.0\.0\.1:80\b`: w[0], `\b10\.0\.0\.2:80\b`: w[1]} {
		re := regexp.MustCompile(old)
		if !re.MatchString(conf) {
			t.Fatalf("testdata has no %s", old)
		}
		conf = re.ReplaceAllString(conf, b.hostPort())
	}
	s, _ := startProxy(t, conf)
	c := client(t, true, "")

	for _, path := range []string{"/index.php", "/a/b.PHP?x=1", "/static/x.php"} {
		for i, g := range sequence(t, c, s.URL(path), 3) {
			if g != "b0" {
				t.Fatalf("%s (%d): %s, want the first .php server", path, i, g)
			}
		}
	}
	cyclic(t, "/static/", sequence(t, c, s.URL("/static/app.css"), 9), []string{"s0", "s1", "s2"})
	count := map[string]int{}
	for _, g := range sequence(t, c, s.URL("/weighted/x"), 30) {
		count[g]++
	}
	if count["w0"] != 20 || count["w1"] != 10 {
		t.Fatalf("weighted example: %v, want w0:20 w1:10", count)
	}
	if st, body := get(t, c, s.URL("/index.html")); st != 200 || body != "<h1>index</h1>\n" {
		t.Fatalf("unmatched path not served statically: %d %q", st, body)
	}
	if st, body := get(t, c, s.URL("/proxy_stats")); st != 200 || !strings.Contains(body, "first-alive") {
		t.Fatalf("status page: %d %q", st, body)
	}
	php[0].Close() // First-Alive fails over to the second .php server
	for i, g := range sequence(t, c, s.URL("/index.php"), 4) {
		if g != "b1" {
			t.Fatalf("after stopping the first .php server, request %d went to %s", i, g)
		}
	}
}

// A bad proxy_reverse.conf stops the host at start-up, naming file:line.
func TestE2EBadConfigRefusesStart(t *testing.T) {
	hosttest.CheckLeaks(t)
	for i, tc := range []struct{ conf, want string }{
		{"[PROXY_ENTRY]\n    Match ^/api/\n    ServerList 127.0.0.1:1\n    LoadBalancer fastest\n", ":4: "},
		{"[PROXY_DEFAULTS]\n    OfflineTimeOut soon\n[PROXY_ENTRY]\n    Match ^/\n    ServerList 127.0.0.1:1\n", ":2: "},
		{"[PROXY_ENTRY]\n    Match ^/api/\n    ServerList 127.0.0.1:1 [::1:80\n", ":3: "},
		{"[PROXY_ENTRY]\n    Match ^/api/\n    ServerList 127.0.0.1:1 weight=2\n    LoadBalancer Round-Robin\n", ":3: ServerList: weight=N"},
	} {
		s := hosttest.NewSite(t, bin)
		s.Load("proxy_reverse")
		s.WriteFile("proxy_reverse.conf", tc.conf)
		t.Logf("case %d", i)
		s.Refused(s.Path("proxy_reverse.conf") + tc.want)
	}
}

// capuchin -t reaches the plugin's configuration: every error start-up
// would stop at is reported as one line "file:line: key: what is wrong"
// (the file named once, regexes as written) with a non-zero exit, and a good
// configuration is valid.
func TestE2EConfigCheckReachesPlugin(t *testing.T) {
	good := "[PROXY_ENTRY]\n    Match ^/api/\n    ServerList 127.0.0.1:1\n"
	for _, tc := range []struct{ conf, want string }{
		{good + "    LoadBalancer Roundrobbin\n", `:4: LoadBalancer: unknown balancer "Roundrobbin"`},
		{"[PROXY_ENTRY]\n    Match ^/api/(\n    ServerList 127.0.0.1:1\n", `:2: Match: bad regular expression "^/api/(": missing closing )`},
		{"[PROXY_DEFAULTS]\n    OfflineTimeOut ten\n" + good, `:2: OfflineTimeOut: want seconds or a duration`},
		{"[PROXY_ENTRYS]\n    Match ^/api/\n", `:1: unknown section [PROXY_ENTRYS]`},
	} {
		s := hosttest.NewSite(t, bin)
		s.Load("proxy_reverse")
		s.WriteFile("proxy_reverse.conf", tc.conf)
		code, out := s.Check()
		want := "capuchin: configuration error: " + s.Path("proxy_reverse.conf") + tc.want
		if code != 1 || !strings.HasPrefix(out, want) || strings.Count(out, "\n") != 1 ||
			strings.Count(out, "proxy_reverse.conf") != 1 || strings.Contains(out, "(?i)") {
			t.Errorf("-t: exit %d, output %q; want exit 1 and one line starting %q", code, out, want)
		}
	}
	s := hosttest.NewSite(t, bin)
	s.Load("proxy_reverse")
	s.WriteFile("proxy_reverse.conf", good)
	if code, out := s.Check(); code != 0 || !strings.Contains(out, "is valid") {
		t.Errorf("-t on a good configuration: exit %d, %q", code, out)
	}
}
