package proxy

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/capuchin/capuchin/plugins/proxy_reverse/upstream"
)

// A reconfiguration that keeps a check keeps its checker and its state (a
// down server stays down, checked once); closing the last engine stops
// every checker and its goroutine.
func TestHealthCheckAcrossReconfiguration(t *testing.T) {
	var sick atomic.Bool
	var checks atomic.Int64
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			checks.Add(1)
			if sick.Load() {
				w.WriteHeader(503)
			}
			return
		}
		w.Write([]byte("B"))
	}))
	defer b.Close()
	checkLeaks(t)
	reg := upstream.NewRegistry()
	text := conf("[PROXY_DEFAULTS]\n HealthCheck GET /health\n HealthInterval 20ms\n HealthFall 1\n StatisticsURL /s\n"+
		"[PROXY_ENTRY]\n ServerList %s\n Match ^/a\n[PROXY_ENTRY]\n ServerList %s\n Match ^/b\n", hostPort(b), hostPort(b))
	p1 := newProxy(t, text, WithRegistry(reg))
	sick.Store(true)
	waitDown := func(p *Proxy) bool {
		for i := 0; i < 250; i++ {
			if p.Snapshot().Entries[1].Servers[0].Status == "down" {
				return true
			}
			time.Sleep(20 * time.Millisecond)
		}
		return false
	}
	if !waitDown(p1) || reg.Checks() != 1 {
		t.Fatalf("down %v, %d checkers for one address and check", waitDown(p1), reg.Checks())
	}
	p2 := newProxy(t, text, WithRegistry(reg))
	p1.Close()
	if s := p2.Snapshot().Entries[0].Servers[0]; s.Status != "down" || s.Check.Checks < 1 || reg.Checks() != 1 {
		t.Fatalf("after reconfiguration: %+v, %d checkers", s, reg.Checks())
	}
	p2.Close()
	if n := reg.Checks(); n != 0 {
		t.Fatalf("%d checkers after Close", n)
	}
	// A check already on the wire when Close cut it short may still reach
	// the backend's handler: let it land, then no new one may come.
	time.Sleep(50 * time.Millisecond)
	seen := checks.Load()
	time.Sleep(150 * time.Millisecond)
	if checks.Load() != seen {
		t.Fatal("checks go on after Close")
	}
}
