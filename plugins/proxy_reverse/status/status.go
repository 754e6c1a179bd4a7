// Package status renders the proxy's statistics page (StatisticsURL): every
// entry with its balancer, rules and health check, and every server with
// its state in colour and words (up, down by check, offline by passive
// high availability, slow start), its recent request rate, error rate and
// latency percentiles, its last health check, and its connections in use
// and pooled. HTML by default (self-contained: inline CSS that folds the
// tables into cards on a phone, and a small inline script that refreshes
// the page in place), JSON with ?format=json.
package status

import (
	"encoding/json"
	"time"
)

// Page is a snapshot of the proxy.
type Page struct {
	Time    time.Time `json:"time"`
	Entries []Entry   `json:"entries"`
}

// Entry is one [PROXY_ENTRY].
type Entry struct {
	Where          string   `json:"where"`
	Balancer       string   `json:"balancer"`
	Match          []string `json:"match"`
	AttemptsCount  int      `json:"attempts_count"`
	OfflineTimeout string   `json:"offline_timeout"`
	Sticky         string   `json:"sticky,omitempty"` // "cookie NAME" when the entry is sticky
	RetryBudget    *Budget  `json:"retry_budget,omitempty"`
	HealthCheck    string   `json:"health_check,omitempty"` // the check, e.g. "GET /health status=200-399 inter=2s ..."
	SlowStart      string   `json:"slow_start,omitempty"`
	Servers        []Server `json:"servers"`
}

// Budget is an entry's retry budget (RetryBudget) and its counters.
type Budget struct {
	Percent        float64 `json:"percent"`
	MinPerSec      int     `json:"min_per_sec"`
	WindowRequests int64   `json:"window_requests"` // client requests of the last 10 s
	WindowRetries  int64   `json:"window_retries"`  // retries allowed in the last 10 s
	Allowed        uint64  `json:"retries_allowed"` // since start
	Denied         uint64  `json:"retries_denied"`  // since start
}

// Server is one backend address.
type Server struct {
	Name string `json:"name"`
	Addr string `json:"addr"`
	// State is "online" or "offline" (skipped: down by its check, or
	// offline by passive HA); Status says which, in one word.
	State        string     `json:"state"`
	Status       string     `json:"status"`      // "up", "down", "offline" or "slowstart"
	StatusText   string     `json:"status_text"` // the status in words, with its reason
	OfflineUntil *time.Time `json:"offline_until,omitempty"`
	Share        float64    `json:"share"`  // slow-start share of traffic, 0-1 (1: full)
	Weight       int        `json:"weight"` // its slots in the ServerList, each counting its weight=N
	Active       int64      `json:"active_conns"`
	Idle         int        `json:"idle_conns"`
	Requests     uint64     `json:"requests"`
	Failures     uint64     `json:"failures"`
	Stray        uint64     `json:"stray_closed"` // pooled connections closed for bytes or EOF while idle
	Retries      uint64     `json:"retries"`      // requests sent again after a failure on this server before any answer
	Tunnels      uint64     `json:"tunnels"`      // upgraded (WebSocket) tunnels opened; not in the response times
	Consecutive  int        `json:"consecutive_failures"`
	LastMinute   Traffic    `json:"last_1m"`
	LastFive     Traffic    `json:"last_5m"`
	Check        *Check     `json:"check,omitempty"` // nil when the entry has no health check
}

// Traffic is a server's recent traffic over Span seconds.
type Traffic struct {
	Span       float64 `json:"span_s"`
	Requests   uint64  `json:"requests"`
	Errors     uint64  `json:"errors"` // failed attempts and 5xx answers
	Rate       float64 `json:"rate_per_s"`
	ErrorRatio float64 `json:"error_ratio"`
	P50        float64 `json:"p50_ms"` // answer head latency percentiles
	P90        float64 `json:"p90_ms"`
	P99        float64 `json:"p99_ms"`
}

// Check is a server's active health check.
type Check struct {
	Down   bool       `json:"down"`
	Run    int        `json:"run"` // >0: consecutive good checks, <0: consecutive bad ones
	Rise   int        `json:"rise"`
	Fall   int        `json:"fall"`
	Checks uint64     `json:"checks"`
	Failed uint64     `json:"failed"`
	LastAt *time.Time `json:"last_at,omitempty"`
	LastOK bool       `json:"last_ok"`
	Reason string     `json:"last_reason,omitempty"`
	TookMS float64    `json:"last_took_ms"`
}

// JSON renders the page as JSON.
func JSON(p *Page) []byte {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil { // cannot happen with these types
		return []byte("{}")
	}
	return append(b, '\n')
}
