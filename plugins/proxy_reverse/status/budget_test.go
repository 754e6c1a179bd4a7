package status

import (
	"strings"
	"testing"
	"time"
)

// An entry's stickiness and retry budget show on both renderings; an entry
// without them shows neither.
func TestEntryBudgetAndSticky(t *testing.T) {
	p := &Page{Time: time.Unix(0, 0), Entries: []Entry{
		{Where: "a:1", Sticky: "cookie route", RetryBudget: &Budget{Percent: 20, MinPerSec: 3,
			WindowRequests: 100, WindowRetries: 7, Allowed: 9, Denied: 4}},
		{Where: "a:9"},
	}}
	html := string(HTML(p))
	first, second, _ := strings.Cut(html, "a:9")
	for _, want := range []string{"Sticky cookie route", "RetryBudget 20% min=3: 7 retries for 100 requests in 10 s, 9 allowed, 4 denied"} {
		if !strings.Contains(first, want) || strings.Contains(second, want[:10]) {
			t.Errorf("HTML lacks %q for the first entry only:\n%s", want, html)
		}
	}
	js := string(JSON(p))
	for _, want := range []string{`"sticky": "cookie route"`, `"retries_allowed": 9`, `"retries_denied": 4`, `"window_requests": 100`} {
		if strings.Count(js, want) != 1 {
			t.Errorf("JSON lacks %q once:\n%s", want, js)
		}
	}
}
