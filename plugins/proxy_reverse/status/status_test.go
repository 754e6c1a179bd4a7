package status

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func page() *Page {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return &Page{Time: at, Entries: []Entry{{Where: "p.conf:3", Balancer: "roundrobin", Match: []string{"^/<api>/"},
		HealthCheck: "GET /health status=200-399", Servers: []Server{
			{Name: "<b>x:1", Addr: "10.0.0.1:1", State: "offline", Status: "down", StatusText: "down by health check: HTTP 503",
				LastMinute: Traffic{Requests: 7, Errors: 2, Rate: 0.5, ErrorRatio: 2.0 / 7, P50: 3, P90: 12, P99: 1500},
				Check:      &Check{Down: true, Checks: 9, Failed: 4, LastAt: &at, Reason: "HTTP 503"}},
			{Name: "10.0.0.2:1", Addr: "10.0.0.2:1", State: "online", Status: "up"},
		}}}}
}

// Names and rules are escaped; states, numbers and checks are shown.
func TestHTML(t *testing.T) {
	out := string(HTML(page()))
	for _, want := range []string{"&lt;b&gt;x:1", "^/&lt;api&gt;/", `class="badge b-down">DOWN<`, `class="badge b-up">UP<`,
		"28.6%", "<small>7 req</small>", "3.0 ms / 12 ms / 1.50 s", "failed</span>: HTTP 503", "9 checks, 4 failed",
		"no check", `id="count-down"><b>1</b>`, `id="count-up"><b>1</b>`, "<table>", "<script>"} {
		if !strings.Contains(out, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if strings.Contains(out, "<b>x:1") || strings.Contains(out, "http://") || strings.Contains(out, "https://") {
		t.Error("unescaped name or external asset")
	}
}

func TestJSONFields(t *testing.T) {
	var got struct {
		Entries []struct {
			HealthCheck string `json:"health_check"`
			Servers     []map[string]any
		}
	}
	if err := json.Unmarshal(JSON(page()), &got); err != nil {
		t.Fatal(err)
	}
	s0, s1 := got.Entries[0].Servers[0], got.Entries[0].Servers[1]
	if s0["status"] != "down" || s0["state"] != "offline" || s0["check"].(map[string]any)["last_reason"] != "HTTP 503" ||
		s0["last_1m"].(map[string]any)["requests"] != 7.0 || got.Entries[0].HealthCheck == "" {
		t.Fatalf("server 0: %v", s0)
	}
	if _, ok := s1["check"]; ok || s1["status"] != "up" {
		t.Fatalf("server 1 without a check: %v", s1)
	}
}
