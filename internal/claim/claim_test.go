package claim

import (
	"testing"

	"github.com/capuchin/capuchin/api/http1"
)

func TestMatch(t *testing.T) {
	f, err := Compile([]string{"^/api/", `\.php$`}, []string{"Example.COM"}, []string{"GET", "POST"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		method, path, host string
		want               bool
	}{
		{"GET", "/api/x", "example.com", true},
		{"POST", "/a/b.php", "EXAMPLE.com:8080", true},
		{"PUT", "/api/x", "example.com", false},
		{"GET", "/static/x", "example.com", false},
		{"GET", "/api/x", "other.com", false},
		{"GET", "/API/x", "example.com", false}, // regexps are case-sensitive unless (?i)
	}
	for _, c := range cases {
		req := &http1.Request{Method: c.method, Path: c.path, Host: c.host}
		if got := f.Match(req); got != c.want {
			t.Errorf("%s %s %s: %v, want %v", c.method, c.host, c.path, got, c.want)
		}
	}
	if !(&Filter{}).Match(&http1.Request{Method: "DELETE", Path: "/"}) {
		t.Error("the zero filter must match everything")
	}
	if _, err := Compile([]string{"("}, nil, nil); err == nil {
		t.Error("bad regexp accepted")
	}
	if stripPort("[::1]") != "[::1]" || stripPort("[::1]:80") != "[::1]" || stripPort("h:1") != "h" {
		t.Error("stripPort")
	}
}
