package config

import (
	"os"
	"strings"
	"testing"
)

// FuzzParse: any configuration text either builds a configuration whose
// every entry has servers and a balancer, or fails with an error naming
// the file (and the line, where the fault is on one); no text panics.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"../testdata/proxy_reverse.conf", "../../../conf/proxy_reverse.conf"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(string(b))
		}
	}
	for _, src := range []string{
		"[PROXY_ENTRY]\n    ServerList 127.0.0.1:8080 127.0.0.1:8081:3\n    Match ^/api/ /x$\n    Balancer least_connections\n",
		"[PROXY_DEFAULTS]\n    Timeout 1.5s\n[PROXY_ENTRY]\n    ServerList [::1]:80\n    Balancer hash header X-Key\n    HealthCheck /health 2s\n    HealthStatus 200-299\n",
		"[PROXY_ENTRY]\n    ServerList https://a:443\n    Balancer sticky cookie SID\n    Retries 3\n    Match (\n",
		"[PROXY_ENTRY]\n    ServerList a:1\n    Balancer naive\n    ConnectTimeout 0\n    MaxIdleConns -1\n",
	} {
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src string) {
		c, err := Parse("p.conf", strings.NewReader(src))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "p.conf") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for i, e := range c.Entries {
			if len(e.Servers) == 0 {
				t.Fatalf("entry %d has no server: %+v", i, e)
			}
		}
	})
}
