package claim

import (
	"regexp"
	"testing"

	"github.com/capuchin/capuchin/api/http1"
)

// A rule matches exactly as its regexp does, whether or not it takes the
// literal-prefix path; the path is taken only for "^literal" rules.
func TestPathMatchesAsItsRegexp(t *testing.T) {
	rules := []struct {
		src string
		lit bool
	}{
		{"^/api/", true},
		{"(?i)^/api/", true},
		{"(?i)^/API/v1", true},
		{"^/", true},
		{"(?i)^/static/", false}, // s folds to the long s
		{"(?i)^/kit", false},     // k folds to the Kelvin sign
		{"^/caf\u00e9", false},   // not ASCII
		{"/api/", false},         // unanchored
		{"(?m)^/api/", false},
		{"^/api/$", false},
		{"^/api/.*", false},
		{"^/a|^/b", false},
		{http1.UncleanPath, false},
	}
	paths := []string{"", "/", "/api", "/api/", "/api/x", "/API/x", "/Api/v1/x", "/x/api/", "/static/a",
		"/\u017ftatic/a", "/\u212Ait", "/kit", "/KIT", "/café", "/CAFÉ", "/a", "/b",
		"a", "//a", "/a/./b", "/a/../b", "/a/.", "/a/..", "/a/.b", "/a/..b/", "/a/.../"}
	for _, r := range rules {
		p, err := CompilePath(r.src)
		if err != nil {
			t.Fatal(err)
		}
		if p.lit != r.lit {
			t.Errorf("%q: literal %v, want %v", r.src, p.lit, r.lit)
		}
		re := regexp.MustCompile(r.src)
		for _, s := range paths {
			if got, want := p.MatchString(s), re.MatchString(s); got != want {
				t.Errorf("%q on %q: %v, the regexp says %v", r.src, s, got, want)
			}
		}
	}
	if p, _ := CompilePath(http1.UncleanPath); !p.unclean {
		t.Error("http1.UncleanPath does not take its fast path")
	}
	if _, err := CompilePath("^(/api"); err == nil {
		t.Error("a rule that does not compile was taken")
	}
}

// BenchmarkUncleanRule: http1.UncleanPath as a claim rule (http1.Unclean)
// against its regexp, on a long clean path (go test -bench UncleanRule).
func BenchmarkUncleanRule(b *testing.B) {
	const path = "/static/assets/js/app.min.3f2a9b.js"
	p, _ := CompilePath(http1.UncleanPath)
	re := regexp.MustCompile(http1.UncleanPath)
	b.Run("rule", func(b *testing.B) {
		for b.Loop() {
			p.MatchString(path)
		}
	})
	b.Run("regexp", func(b *testing.B) {
		for b.Loop() {
			re.MatchString(path)
		}
	})
}
