package config

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestSeedExampleLoads(t *testing.T) {
	cfg, err := Load("../testdata/proxy_reverse.conf")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.StatisticsURL != "/proxy_stats" || len(cfg.Entries) != 3 {
		t.Fatalf("%+v", cfg)
	}
	php, static, weighted := cfg.Entries[0], cfg.Entries[1], cfg.Entries[2]
	if php.Balancer.Name() != "first-alive" || php.Servers[1].String() != "127.0.0.1:9001" ||
		php.AttemptsCount != 3 || php.OfflineTimeout != 30*time.Second {
		t.Fatalf("php entry %+v", php)
	}
	if static.Balancer.Name() != "roundrobin" || len(static.Servers) != 3 || !static.MatchPath("/STATIC/x.css") ||
		static.MatchPath("/x/static") {
		t.Fatalf("static entry %+v", static)
	}
	for path, want := range map[string]bool{"/index.php": true, "/a.PHP": true, "/x.php/y": true, "/php": true, "/xphp": true, "/ph.p": false, "/a.html": false} {
		if php.MatchPath(path) != want {
			t.Errorf("/*.php on %q: want %v", path, want)
		}
	}
	if len(weighted.Servers) != 3 || weighted.Servers[0] != weighted.Servers[1] {
		t.Fatalf("weighted entry %+v", weighted.Servers)
	}
	if php.ConnectTimeout != DefaultConnectTimeout || php.ResponseTimeout != DefaultResponseTimeout ||
		php.IdleTimeout != DefaultIdleTimeout || php.MaxIdleConns != DefaultMaxIdleConns ||
		php.ClientBodyTimeout != DefaultClientBodyTimeout || php.ResolveInterval != DefaultResolveInterval {
		t.Fatalf("defaults not applied: %+v", php)
	}
}

func TestInheritanceAndDefaults(t *testing.T) {
	cfg, err := Parse("p.conf", strings.NewReader(`
[PROXY_ENTRY]
    Match ^/a
[PROXY_DEFAULTS]
    ServerList [::1]:8080 backend.internal:81 10.0.0.1:80
    LoadBalance least-connections
    ConnectTimeout 250ms
    ClientBodyTimeout 2
    AttemptsCount 0
[PROXY_ENTRY]
    Match ^/b
    Match ^/c
    ServerList 127.0.0.1:1
    AttemptsCount 1
    OfflineTimeOut 2
`))
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.Entries[0], cfg.Entries[1]
	if len(a.Servers) != 3 || a.Servers[0].Host != "::1" || a.Servers[0].String() != "[::1]:8080" ||
		a.Servers[1].Host != "backend.internal" || a.Balancer.Name() != "leastconnections" ||
		a.ConnectTimeout != 250*time.Millisecond || a.AttemptsCount != 0 {
		t.Fatalf("entry a %+v", a)
	}
	if len(b.Servers) != 1 || b.Balancer.Name() != "leastconnections" || len(b.Match) != 2 || !b.MatchPath("/C") ||
		b.OfflineTimeout != 2*time.Second || a.OfflineTimeout != DefaultOfflineTimeout ||
		b.ClientBodyTimeout != 2*time.Second {
		t.Fatalf("entry b %+v", b)
	}
	if cfg.StatisticsURL != "" {
		t.Fatal("no status page expected")
	}
}

// The parser asks the balance registry (its spellings are tested there);
// both key spellings, arguments, and one default.
func TestBalancerKey(t *testing.T) {
	for _, tc := range []struct{ value, want string }{
		{"", "first-alive"},
		{"LoadBalancer Round-Robin", "roundrobin"},
		{"LoadBalance least connections", "leastconnections"},
		{"loadbalancer Consistent-Hash header X-User", "consistent-hash header X-User"},
		{"LoadBalancer Power-Of-Two", "power-of-two"},
		{"LoadBalancer Smooth-Weighted-Round-Robin", "smooth-weighted-round-robin"},
	} {
		cfg, err := Parse("p.conf", strings.NewReader("[PROXY_ENTRY]\n ServerList 127.0.0.1:1\n Match /\n "+tc.value+"\n"))
		if err != nil {
			t.Fatalf("%q: %v", tc.value, err)
		}
		p, err := cfg.Entries[0].Balancer.New()
		if err != nil || p.Name() != tc.want {
			t.Errorf("%q: %v %v, want %s", tc.value, p.Name(), err, tc.want)
		}
	}
}

func TestServerWeights(t *testing.T) {
	cfg, err := Parse("p.conf", strings.NewReader(`
[PROXY_DEFAULTS]
    ServerList 127.0.0.1:1 weight=3 127.0.0.1:2
    ServerList [::1]:3 WEIGHT=256
    LoadBalancer Smooth-Weighted-Round-Robin
[PROXY_ENTRY]
    Match ^/a
[PROXY_ENTRY]
    Match ^/b
    LoadBalancer Consistent-Hash
[PROXY_ENTRY]
    Match ^/c
    LoadBalancer Round-Robin
    ServerList 127.0.0.1:4 weight=1 127.0.0.1:4
`))
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, s := range cfg.Entries[0].Servers {
		got = append(got, s.Weight)
	}
	if fmt.Sprint(got) != "[3 0 256]" || len(cfg.Entries[1].Servers) != 3 || len(cfg.Entries[2].Servers) != 2 {
		t.Fatalf("weights %v, entries %+v", got, cfg.Entries)
	}
}

func TestErrorsNameFileAndLine(t *testing.T) {
	head := "[PROXY_ENTRY]\n    Match /\n    ServerList 127.0.0.1:1\n"
	for _, tc := range []struct{ line, want string }{
		{"    LoadBalancer fastest", "p.conf:4: LoadBalancer: unknown balancer \"fastest\" (want consistent-hash "},
		{"    LoadBalancer round-robin fast", "p.conf:4: LoadBalancer: roundrobin: takes no arguments, got \"fast\""},
		{"    LoadBalancer consistent-hash header", "p.conf:4: LoadBalancer: consistent-hash: want client, path, header NAME or cookie NAME"},
		{"    ServerList 127.0.0.1:1 weight=0", "p.conf:4: ServerList: bad weight \"weight=0\": want 1-256"},
		{"    ServerList 127.0.0.1:1 weight=257", "p.conf:4: ServerList: bad weight"},
		{"    ServerList 127.0.0.1:1 weight=x", "p.conf:4: ServerList: bad weight"},
		{"    ServerList weight=2 127.0.0.1:1", "p.conf:4: ServerList: \"weight=2\" must follow a server"},
		{"    ServerList 127.0.0.1:1 weight=2 weight=3", "p.conf:4: ServerList: \"weight=3\" must follow a server"},
		{"    ServerList 127.0.0.1:2 weight=2", "p.conf:4: ServerList: weight=N is read by consistent-hash, smooth-weighted-round-robin only, not by first-alive (the balancer of the entry at p.conf:1); list a server N times instead"},
		{"    LoadBalancer", "p.conf:4: LoadBalancer: missing value"},
		{"    ServerList 127.0.0.1", "p.conf:4: ServerList: bad server"},
		{"    ServerList 127.0.0.1:0", "p.conf:4: ServerList: bad port"},
		{"    ServerList 127.0.0.1:70000", "p.conf:4: ServerList: bad port"},
		{"    ServerList ::1:80", "p.conf:4: ServerList: bad server"},
		{"    ServerList [fe80::1%eth0]:80", "p.conf:4: ServerList: bad address"},
		{"    ServerList bad_host!:80", "p.conf:4: ServerList: bad host"},
		{"    ServerList", "p.conf:4: ServerList: missing value"},
		{"    Match ^/api/(", "p.conf:4: Match: bad regular expression \"^/api/(\": missing closing )\n"},
		{"    AttemptsCount -1", "p.conf:4: AttemptsCount: -1 is out of range"},
		{"    AttemptsCount many", "p.conf:4: AttemptsCount: want a whole number"},
		{"    OfflineTimeOut soon", "p.conf:4: OfflineTimeOut: want seconds or a duration"},
		{"    OfflineTimeOut -3", "p.conf:4: OfflineTimeOut: want seconds >= 0"},
		{"    ConnectTimeout 0", "p.conf:4: ConnectTimeout: must be greater than zero"},
		{"    ResponseTimeout 1x", "p.conf:4: ResponseTimeout: want seconds"},
		{"    IdleTimeout -1s", "p.conf:4: IdleTimeout: want seconds"},
		{"    ResolveInterval 0s", "p.conf:4: ResolveInterval: must be greater than zero"},
		{"    ClientBodyTimeout 0", "p.conf:4: ClientBodyTimeout: must be greater than zero"},
		{"    UnderscoresInHeaders maybe", "p.conf:4: UnderscoresInHeaders: want on or off"},
		{"    MaxIdleConns lots", "p.conf:4: MaxIdleConns: want a whole number"},
		{"    StatisticsURL /stats", "p.conf:4: StatisticsURL: only allowed in [PROXY_DEFAULTS]"},
		{"    Proxy on", "p.conf:4: Proxy: unknown key in [PROXY_ENTRY]"},
		{"    LoadBalancer naive\n    LoadBalance naive", "p.conf:5: LoadBalance: given twice in this section (first at line 4)"},
		{"[PROXY_DEFAULTS]\n    StatisticsURL stats", "p.conf:5: StatisticsURL: want a path starting with /"},
		{"[PROXY_DEFAULTS]\n    StatisticsURL /st%61ts", "p.conf:5: StatisticsURL: want a path starting with /"},
		{"[PROXY_DEFAULTS]\n[PROXY_DEFAULTS]", "p.conf:5: [PROXY_DEFAULTS] given twice (first at line 4)"},
		{"[PROXY]", "p.conf:4: unknown section [PROXY]"},
		{"[PROXY_ENTRY]\n    Match /x", "p.conf:4: [PROXY_ENTRY] has no ServerList"},
		{"[PROXY_DEFAULTS]\n    ServerList 127.0.0.1:2 weight=2\n[PROXY_ENTRY]\n    Match /x\n    LoadBalancer Least-Connections",
			"p.conf:5: ServerList: weight=N is read by consistent-hash, smooth-weighted-round-robin only, not by leastconnections (the balancer of the entry at p.conf:6)"},
		{"[PROXY_ENTRY]\n    ServerList 127.0.0.1:2", "p.conf:4: [PROXY_ENTRY] has no Match rule"},
	} {
		_, err := Parse("p.conf", strings.NewReader(head+tc.line+"\n"))
		// A trailing newline in want asks for the whole message.
		if err == nil || !strings.HasPrefix(err.Error()+"\n", tc.want) {
			t.Errorf("%q: got %v, want prefix %q", tc.line, err, tc.want)
		}
	}
	// The file is named once: "testdata/missing.conf: cannot read: ...".
	if _, err := Load("testdata/missing.conf"); err == nil || strings.Count(err.Error(), "missing.conf") != 1 {
		t.Errorf("missing file: %v", err)
	}
}

// The configuration examples of the plugin's README parse (a comment must
// have its own line: the format has no trailing comments).
func TestREADMEExamples(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(b), "```")
	n := 0
	for i := 1; i < len(blocks); i += 2 {
		text := strings.TrimPrefix(blocks[i], "\n")
		if !strings.Contains(text, "[PROXY_ENTRY]") {
			continue
		}
		n++
		if _, err := Parse("README.md", strings.NewReader(text)); err != nil {
			t.Errorf("example %d: %v", n, err)
		}
	}
	if n < 2 {
		t.Fatalf("%d examples found", n)
	}
}
