package config

import (
	"strings"
	"testing"
)

// A key that has no effect where it is set is an error at its line: in an
// entry lacking what the key needs, or in [PROXY_DEFAULTS] when no entry
// taking it from there has it.
func TestKeysWithoutEffect(t *testing.T) {
	const entry = "[PROXY_ENTRY]\n    Match ^/\n    ServerList 127.0.0.1:1\n"
	for _, tc := range []struct{ conf, want string }{
		{"[PROXY_DEFAULTS]\n    HealthStatus 200-299\n" + entry,
			"p.conf:2: HealthStatus: has no effect without an HTTP HealthCheck (a tcp check reads no answer) in every [PROXY_ENTRY]"},
		{"[PROXY_DEFAULTS]\n    HealthInterval 5s\n" + entry, "p.conf:2: HealthInterval: has no effect without a HealthCheck"},
		{"[PROXY_DEFAULTS]\n    HealthBody ok\n" + entry + "    HealthCheck HEAD /\n", "p.conf:2: HealthBody: has no effect"},
		{"[PROXY_DEFAULTS]\n    HealthStatus 200\n" + entry + "    HealthCheck tcp\n", "p.conf:2: HealthStatus: has no effect"},
		// Every entry with a check sets its own: the default is dead.
		{"[PROXY_DEFAULTS]\n    HealthFall 2\n" + entry + "    HealthCheck tcp\n    HealthFall 4\n", "p.conf:2: HealthFall: has no effect"},
		{entry + "    HealthRise 3\n", "p.conf:4: HealthRise: has no effect without a HealthCheck"},
		{entry + "    HealthTimeout 3\n", "p.conf:4: HealthTimeout: has no effect without a HealthCheck"},
		{entry + "    HealthCheck HEAD /\n    HealthBody ok\n", "p.conf:5: HealthBody: has no effect"},
		{entry + "    AttemptsCount 0\n    SlowStart 10\n", "p.conf:5: SlowStart: has no effect without a HealthCheck or AttemptsCount above 0"},
		{entry + "    AttemptsCount 0\n    OfflineTimeOut 10\n", "p.conf:5: OfflineTimeOut: has no effect with AttemptsCount 0"},
		{entry + "    ForwardedTrust 10.0.0.0/8\n", "p.conf:4: ForwardedTrust: has no effect without Forwarded on"},
		{entry + "    Forwarded off\n    ForwardedBy _edge\n", "p.conf:5: ForwardedBy: has no effect without Forwarded on"},
		{"[PROXY_DEFAULTS]\n    ForwardedBy _edge\n" + entry, "p.conf:2: ForwardedBy: has no effect without Forwarded on"},
		{entry + "    TLSServerName api\n", "p.conf:4: TLSServerName: has no effect without an https:// server"},
		{"[PROXY_DEFAULTS]\n    TLSCA /nonexistent.pem\n" + entry, "p.conf:2: TLSCA: has no effect without an https:// server"},
		{entry + "    MaxIdleConns 0\n    IdleTimeout 5\n", "p.conf:5: IdleTimeout: has no effect with MaxIdleConns 0"},
		{entry + "    Resolver 127.0.0.1:53\n", "p.conf:4: Resolver: has no effect when ServerList has only IP addresses"},
		{entry + "    ResolveInterval 5\n", "p.conf:4: ResolveInterval: has no effect when ServerList"},
	} {
		_, err := Parse("p.conf", strings.NewReader(tc.conf))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.conf, err, tc.want)
		}
	}
}

// The same keys where they have an effect, or where their value turns
// their feature off, load; a default used by one entry of several is fine.
func TestKeysWithEffect(t *testing.T) {
	cfg, err := Parse("p.conf", strings.NewReader(`[PROXY_DEFAULTS]
    ServerList 127.0.0.1:1
    HealthStatus 200-299
    HealthBody ok
    HealthInterval 5s
    SlowStart 10
    OfflineTimeOut 20
    ForwardedTrust 10.0.0.0/8
    Resolver 127.0.0.1:53
    IdleTimeout 5
[PROXY_ENTRY]
    Match ^/a
    HealthCheck GET /health
[PROXY_ENTRY]
    Match ^/b
    HealthCheck tcp
    AttemptsCount 0
    SlowStart 0
    MaxIdleConns 0
[PROXY_ENTRY]
    Match ^/c
    ServerList api.internal:80
    Forwarded on
`))
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.Entries[0], cfg.Entries[1]
	if a.Health.Body != "ok" || a.Health.StatusString() != "200-299" || b.Health.Body != "" ||
		b.Health.String() != "tcp inter=5s timeout=1s rise=2 fall=3" || b.SlowStart != 0 || a.SlowStart.Seconds() != 10 {
		t.Fatalf("a %+v\nb %+v", a.Health, b.Health)
	}
}
