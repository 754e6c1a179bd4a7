// Package status renders the proxy's statistics page (StatisticsURL): every
// entry with its balancer and rules, and every server with its state
// (online, or offline until when), connections, requests, failures and
// retries.
// HTML by default, JSON with ?format=json.
package status

import (
	"encoding/json"
	"html"
	"strconv"
	"strings"
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
	Servers        []Server `json:"servers"`
}

// Server is one backend address.
type Server struct {
	Name         string     `json:"name"`
	Addr         string     `json:"addr"`
	State        string     `json:"state"` // "online" or "offline"
	OfflineUntil *time.Time `json:"offline_until,omitempty"`
	Weight       int        `json:"weight"` // its slots in the ServerList, each counting its weight=N
	Active       int64      `json:"active_conns"`
	Idle         int        `json:"idle_conns"`
	Requests     uint64     `json:"requests"`
	Failures     uint64     `json:"failures"`
	Stray        uint64     `json:"stray_closed"` // pooled connections closed for bytes or EOF while idle
	Retries      uint64     `json:"retries"`      // requests sent again after a failure on this server before any answer
	Consecutive  int        `json:"consecutive_failures"`
}

// JSON renders the page as JSON.
func JSON(p *Page) []byte {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil { // cannot happen with these types
		return []byte("{}")
	}
	return append(b, '\n')
}

// HTML renders the page as a small HTML document.
func HTML(p *Page) []byte {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html><head><title>proxy_reverse status</title>\n" +
		"<style>table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px}" +
		".offline{color:#b00}</style></head>\n<body><h1>proxy_reverse status</h1>\n<p>")
	b.WriteString(p.Time.UTC().Format(time.RFC3339))
	b.WriteString("</p>\n")
	for i, e := range p.Entries {
		b.WriteString("<h2>Entry " + strconv.Itoa(i+1) + " <small>" + esc(e.Where) + "</small></h2>\n<p>Balancer: ")
		b.WriteString(esc(e.Balancer) + " &middot; Match: <code>" + esc(strings.Join(e.Match, "</code> <code>")))
		b.WriteString("</code> &middot; AttemptsCount " + strconv.Itoa(e.AttemptsCount))
		b.WriteString(" &middot; OfflineTimeOut " + esc(e.OfflineTimeout) + "</p>\n<table>\n")
		b.WriteString("<tr><th>server</th><th>address</th><th>state</th><th>weight</th><th>active</th>" +
			"<th>idle</th><th>requests</th><th>failures</th><th>stray closed</th><th>retries</th></tr>\n")
		for _, s := range e.Servers {
			writeServerRow(&b, s)
		}
		b.WriteString("</table>\n")
	}
	b.WriteString("</body></html>\n")
	return []byte(b.String())
}

func writeServerRow(b *strings.Builder, s Server) {
	state := "online"
	if s.OfflineUntil != nil {
		state = `<span class="offline">offline until ` + s.OfflineUntil.UTC().Format(time.RFC3339) + "</span>"
	}
	b.WriteString("<tr><td>" + esc(s.Name) + "</td><td>" + esc(s.Addr) + "</td><td>" + state + "</td>")
	for _, n := range []int64{int64(s.Weight), s.Active, int64(s.Idle), int64(s.Requests), int64(s.Failures), int64(s.Stray), int64(s.Retries)} {
		b.WriteString("<td>" + strconv.FormatInt(n, 10) + "</td>")
	}
	b.WriteString("</tr>\n")
}

func esc(s string) string { return html.EscapeString(s) }
