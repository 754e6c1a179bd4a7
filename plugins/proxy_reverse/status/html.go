package status

import (
	"fmt"
	"html"
	"strconv"
	"strings"
	"time"
)

// Refresh is how often the page's script reloads its content in place.
const Refresh = 5 * time.Second

// stateWords are the badge and the legend of each Status.
var stateWords = map[string]string{"up": "UP", "down": "DOWN", "offline": "OFFLINE", "slowstart": "SLOW START"}

// style is the whole stylesheet: a table on wide screens, one card per
// server below 720px. Colours: up green, down red, offline amber, slow
// start blue, with the word always beside the colour.
const style = `*{box-sizing:border-box}
body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f4f5f7;color:#1f2328}
header{display:flex;flex-wrap:wrap;align-items:baseline;gap:.3em 1em;padding:.8em 1em;background:#24292f;color:#fff}
header h1{margin:0;font-size:1.25em}header .time{opacity:.8;font-size:.9em}
main{padding:.8em;max-width:1400px;margin:auto}
.tiles{display:flex;flex-wrap:wrap;gap:.5em;margin-bottom:.8em}
.tile{flex:1 1 8em;padding:.6em .8em;border-radius:6px;background:#fff;border-left:6px solid #8c959f}
.tile b{display:block;font-size:1.6em}
.entry{background:#fff;border-radius:6px;padding:.6em .8em;margin-bottom:.8em;box-shadow:0 1px 2px #0002}
.entry h2{margin:.1em 0;font-size:1.1em}.entry h2 small{font-weight:normal;color:#57606a;overflow-wrap:anywhere}
.meta{margin:.2em 0 .6em;color:#57606a}.meta code{background:#f0f2f4;padding:0 .3em;border-radius:3px}
table{border-collapse:collapse;width:100%}
th{text-align:left;font-weight:600;color:#57606a;border-bottom:2px solid #d0d7de;padding:.3em .5em;white-space:nowrap}
td{padding:.35em .5em;border-bottom:1px solid #eaeef2;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.up td:first-child{border-left:5px solid #1a7f37}tr.down td:first-child{border-left:5px solid #cf222e}
tr.offline td:first-child{border-left:5px solid #d4a72c}tr.slowstart td:first-child{border-left:5px solid #0969da}
tr.down{background:#ffebe9}tr.offline{background:#fff8c5}tr.slowstart{background:#ddf4ff}
.badge{display:inline-block;padding:.05em .5em;border-radius:1em;color:#fff;font-weight:700;font-size:.85em;white-space:nowrap}
.b-up{background:#1a7f37}.b-down{background:#cf222e}.b-offline{background:#9a6700}.b-slowstart{background:#0969da}
.t-up{border-color:#1a7f37}.t-down{border-color:#cf222e}.t-offline{border-color:#d4a72c}.t-slowstart{border-color:#0969da}
.why{color:#57606a;font-size:.9em}.bad{color:#cf222e;font-weight:600}.ok{color:#1a7f37}
small{color:#57606a}
@media (max-width:720px){
thead{display:none}table,tbody,tr,td{display:block;width:100%}
tr{margin:.5em 0;border-radius:6px;border:1px solid #d0d7de;border-left-width:6px}
tr.up{border-left-color:#1a7f37}tr.down{border-left-color:#cf222e}tr.offline{border-left-color:#d4a72c}tr.slowstart{border-left-color:#0969da}
tr td:first-child{border-left:0!important}
td{display:flex;justify-content:space-between;align-items:baseline;gap:1em;border:0;padding:.25em .6em}
td::before{content:attr(data-label);flex:0 0 auto;color:#57606a;font-weight:600}
td .v{text-align:right;min-width:0;overflow-wrap:anywhere}td.num{white-space:normal}
.tile{flex:1 1 40%}.meta{overflow-wrap:anywhere}}
`

// script refreshes the page in place: it fetches the page again and swaps
// its content, so scrolling and zoom stay; if fetching fails the page
// says so and keeps trying.
const script = `(function(){var n=0;function tick(){fetch(location.pathname,{cache:"no-store"})
.then(function(r){if(!r.ok)throw r.status;return r.text()})
.then(function(t){var m=new DOMParser().parseFromString(t,"text/html").getElementById("page");
if(m){document.getElementById("page").replaceWith(m);document.body.setAttribute("data-refreshed",++n)}})
.catch(function(){var e=document.querySelector(".time");if(e)e.textContent+=" (refresh failed)"})
.finally(function(){setTimeout(tick,` + "%d" + `)})}setTimeout(tick,` + "%d" + `)})();`

// HTML renders the page as a self-contained HTML document.
func HTML(p *Page) []byte {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n" +
		"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n" +
		"<title>proxy_reverse status</title>\n<style>" + style + "</style>\n" +
		"<noscript><meta http-equiv=\"refresh\" content=\"" + strconv.Itoa(int(Refresh/time.Second)) + "\"></noscript>\n" +
		"</head>\n<body>\n<div id=\"page\">\n<header><h1>proxy_reverse status</h1><span class=\"time\">")
	b.WriteString(p.Time.UTC().Format("2006-01-02 15:04:05 UTC"))
	b.WriteString(" &middot; refreshes every " + Refresh.String() + "</span></header>\n<main>\n")
	writeTiles(&b, p)
	for i, e := range p.Entries {
		writeEntry(&b, i, e)
	}
	b.WriteString("</main>\n</div>\n<script>")
	ms := int(Refresh / time.Millisecond)
	fmt.Fprintf(&b, script, ms, ms)
	b.WriteString("</script>\n</body></html>\n")
	return []byte(b.String())
}

// writeTiles writes the count of servers in each state, across entries.
func writeTiles(b *strings.Builder, p *Page) {
	count := map[string]int{}
	for _, e := range p.Entries {
		for _, s := range e.Servers {
			count[s.Status]++
		}
	}
	b.WriteString("<div class=\"tiles\">")
	for _, st := range []string{"up", "down", "offline", "slowstart"} {
		fmt.Fprintf(b, "<div class=\"tile t-%s\" id=\"count-%s\"><b>%d</b>%s</div>", st, st, count[st], strings.ToLower(stateWords[st]))
	}
	b.WriteString("</div>\n")
}

func writeEntry(b *strings.Builder, i int, e Entry) {
	fmt.Fprintf(b, "<section class=\"entry\" id=\"entry-%d\"><h2>Entry %d <small>%s</small></h2>\n<p class=\"meta\">", i+1, i+1, esc(e.Where))
	b.WriteString("balancer <code>" + esc(e.Balancer) + "</code> &middot; match <code>" +
		strings.Join(escAll(e.Match), "</code> <code>") + "</code> &middot; AttemptsCount " +
		strconv.Itoa(e.AttemptsCount) + ", OfflineTimeOut " + esc(e.OfflineTimeout))
	if e.HealthCheck != "" {
		b.WriteString(" &middot; check <code>" + esc(e.HealthCheck) + "</code>")
	}
	if e.SlowStart != "" {
		b.WriteString(" &middot; slow start " + esc(e.SlowStart))
	}
	writeEntryExtras(b, e)
	b.WriteString("</p>\n<table>\n<thead><tr><th>server</th><th>state</th><th>req/s 1m</th><th>errors 1m</th>" +
		"<th>latency 1m p50 / p90 / p99</th><th>last check</th><th>conns in use</th><th>pooled</th>" +
		"<th>requests</th><th>failures</th><th>retries</th><th>weight</th></tr></thead>\n<tbody>\n")
	for _, s := range e.Servers {
		writeServerRow(b, s)
	}
	b.WriteString("</tbody></table></section>\n")
}

func writeServerRow(b *strings.Builder, s Server) {
	m := s.LastMinute
	fmt.Fprintf(b, "<tr class=\"%s\" data-addr=\"%s\" data-status=\"%s\">", esc(s.Status), esc(s.Addr), esc(s.Status))
	name := "<b>" + esc(s.Name) + "</b>"
	if s.Name != s.Addr {
		name += "<br><small>" + esc(s.Addr) + "</small>"
	}
	cell(b, "server", "", name)
	cell(b, "state", "state", "<span class=\"badge b-"+esc(s.Status)+"\">"+stateWords[s.Status]+
		"</span><br><span class=\"why\">"+esc(s.StatusText)+"</span>")
	cell(b, "req/s 1m", "num rate", fmt.Sprintf("%.2f<br><small>%d req</small>", m.Rate, m.Requests))
	errCls := ""
	if m.Errors > 0 {
		errCls = " bad"
	}
	cell(b, "errors 1m", "num errors"+errCls, fmt.Sprintf("%.1f%%<br><small>%d err</small>", 100*m.ErrorRatio, m.Errors))
	cell(b, "latency p50/p90/p99", "num latency", latency(m))
	cell(b, "last check", "check", checkCell(s.Check))
	for _, c := range []struct {
		label, cls string
		n          uint64
	}{{"conns in use", "active", uint64(s.Active)}, {"pooled", "idle", uint64(s.Idle)},
		{"requests", "requests", s.Requests}, {"failures", "failures", s.Failures}, {"retries", "retries", s.Retries},
		{"weight", "weight", uint64(s.Weight)}} {
		cell(b, c.label, "num "+c.cls, strconv.FormatUint(c.n, 10))
	}
	b.WriteString("</tr>\n")
}

// cell writes a td; inner is HTML already escaped.
func cell(b *strings.Builder, label, class, inner string) {
	b.WriteString("<td data-label=\"" + label + "\"")
	if class != "" {
		b.WriteString(" class=\"" + class + "\"")
	}
	b.WriteString("><div class=\"v\">" + inner + "</div></td>")
}

func latency(m Traffic) string {
	if m.Requests == 0 || m.P50 == 0 && m.P99 == 0 {
		return "&ndash;"
	}
	return ms(m.P50) + " / " + ms(m.P90) + " / " + ms(m.P99)
}

// ms formats milliseconds with a unit, e.g. "3.2 ms" or "1.50 s".
func ms(v float64) string {
	switch {
	case v >= 1000:
		return strconv.FormatFloat(v/1000, 'f', 2, 64) + " s"
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 0, 64) + " ms"
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " ms"
}

func checkCell(c *Check) string {
	if c == nil {
		return "<small>no check</small>"
	}
	if c.LastAt == nil {
		return "<small>pending</small>"
	}
	cls, word := "ok", "passed"
	if !c.LastOK {
		cls, word = "bad", "failed"
	}
	return fmt.Sprintf("<span class=\"%s\">%s</span>: %s<br><small>%s, %s; %d checks, %d failed</small>",
		cls, word, esc(c.Reason), c.LastAt.UTC().Format("15:04:05"), ms(c.TookMS), c.Checks, c.Failed)
}

func esc(s string) string { return html.EscapeString(s) }

func escAll(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = esc(s)
	}
	return out
}

// writeEntryExtras writes the entry's stickiness and retry budget.
func writeEntryExtras(b *strings.Builder, e Entry) {
	if e.Sticky != "" {
		b.WriteString(" &middot; Sticky " + esc(e.Sticky))
	}
	if r := e.RetryBudget; r != nil {
		b.WriteString(" &middot; RetryBudget " + strconv.FormatFloat(r.Percent, 'g', -1, 64) + "% min=" +
			strconv.Itoa(r.MinPerSec) + ": " + strconv.FormatInt(r.WindowRetries, 10) + " retries for " +
			strconv.FormatInt(r.WindowRequests, 10) + " requests in 10 s, " + strconv.FormatUint(r.Allowed, 10) +
			" allowed, " + strconv.FormatUint(r.Denied, 10) + " denied since start")
	}
}
