package claim

import (
	"regexp"
	"testing"
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
	}
	paths := []string{"", "/", "/api", "/api/", "/api/x", "/API/x", "/Api/v1/x", "/x/api/", "/static/a",
		"/\u017ftatic/a", "/\u212Ait", "/kit", "/KIT", "/café", "/CAFÉ", "/a", "/b"}
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
	if _, err := CompilePath("^(/api"); err == nil {
		t.Error("a rule that does not compile was taken")
	}
}
