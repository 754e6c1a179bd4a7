package config

import (
	"strings"
	"testing"
	"time"
)

func TestHealthKeysInheritAndDefault(t *testing.T) {
	cfg, err := Parse("p.conf", strings.NewReader(`
[PROXY_DEFAULTS]
    ServerList 127.0.0.1:1
    HealthCheck OPTIONS /healthz api.internal
    HealthStatus 200-299,304 401
    HealthInterval 500ms
    HealthFall 5
    SlowStart 30
[PROXY_ENTRY]
    Match ^/a
[PROXY_ENTRY]
    Match ^/b
    HealthCheck tcp
    HealthRise 4
[PROXY_ENTRY]
    Match ^/c
    HealthBody "status": "ok"
[PROXY_ENTRY]
    Match ^/d
    HealthCheck GET /h
    HealthTimeout 3
    SlowStart 0
`))
	if err != nil {
		t.Fatal(err)
	}
	a, b, c, d := cfg.Entries[0].Health, cfg.Entries[1].Health, cfg.Entries[2].Health, cfg.Entries[3].Health
	if want := `OPTIONS /healthz host=api.internal status=200-299,304,401 inter=500ms timeout=1s rise=2 fall=5`; a.String() != want {
		t.Errorf("inherited check %q, want %q", a, want)
	}
	if !a.OK(304) || !a.OK(401) || a.OK(302) || a.OK(500) {
		t.Errorf("status ranges %+v", a.Status)
	}
	if want := "tcp inter=500ms timeout=1s rise=4 fall=5"; b.String() != want {
		t.Errorf("tcp check %q, want %q", b, want)
	}
	if c.Body != `"status": "ok"` || c.Path != "/healthz" {
		t.Errorf("body check %+v", c)
	}
	if d.Path != "/h" || d.Host != "" || d.Timeout != 3*time.Second || d.Status[0] != (StatusRange{200, 299}) {
		t.Errorf("own check %+v", d)
	}
	if cfg.Entries[0].SlowStart != 30*time.Second || cfg.Entries[3].SlowStart != 0 {
		t.Errorf("slow start %v %v", cfg.Entries[0].SlowStart, cfg.Entries[3].SlowStart)
	}
}

func TestHealthDefaultsWithoutTuning(t *testing.T) {
	cfg, err := Parse("p.conf", strings.NewReader("[PROXY_ENTRY]\n Match ^/\n ServerList 127.0.0.1:1\n HealthCheck GET /\n"+
		"[PROXY_ENTRY]\n Match ^/x\n ServerList 127.0.0.1:1\n"))
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.Entries[0].Health
	if h.Interval != DefaultHealthInterval || h.Timeout != DefaultHealthTimeout || h.Rise != DefaultHealthRise ||
		h.Fall != DefaultHealthFall || !h.OK(200) || !h.OK(399) || h.OK(400) || h.Method != "GET" {
		t.Fatalf("defaults %+v", h)
	}
	if cfg.Entries[1].Health != nil || cfg.Entries[1].SlowStart != DefaultSlowStart {
		t.Fatalf("no check wanted: %+v", cfg.Entries[1])
	}
}

func TestHealthKeyErrors(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"HealthCheck GET", `p.conf:4: HealthCheck: want "tcp" or "METHOD /path [host]"`},
		{"HealthCheck GET health", "want an absolute path"},
		{"HealthCheck G(T /h", "bad method"},
		{"HealthCheck GET /h a/b", "bad host"},
		{"HealthCheck GET /h h x", "want \"tcp\""},
		{"HealthCheck GET /\n    HealthStatus 200-", "bad status range"},
		{"HealthCheck GET /\n    HealthStatus 99", "bad status range"},
		{"HealthCheck GET /\n    HealthStatus 300-200", "bad status range"},
		{"HealthCheck GET /\n    HealthRise 0", "HealthRise and HealthFall must be at least 1"},
		{"HealthCheck GET /\n    HealthInterval 0", "p.conf:5: HealthInterval: must be greater than zero"},
		{"HealthCheck GET /\n    HealthTimeout x", "HealthTimeout: want seconds"},
		{"HealthCheck tcp\n    HealthBody ok", "p.conf:5: HealthBody: has no effect without an HTTP HealthCheck"},
		{"HealthCheck tcp\n    HealthStatus 200", "p.conf:5: HealthStatus: has no effect without an HTTP HealthCheck"},
		{"HealthStatus 200", "p.conf:4: HealthStatus: has no effect without an HTTP HealthCheck"},
		{"HealthCheck HEAD /\n    HealthBody ok", "not HEAD"},
		{"HealthCheck tcp\n    HealthCheck tcp", "given twice"},
		{"SlowStart -1", "SlowStart: want seconds"},
	} {
		_, err := Parse("p.conf", strings.NewReader("[PROXY_ENTRY]\n    Match ^/\n    ServerList 127.0.0.1:1\n    "+tc.body+"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.body, err, tc.want)
		}
	}
}
