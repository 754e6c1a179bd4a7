package http1

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

func TestMatchPath(t *testing.T) {
	re := regexp.MustCompile(`(?i)^/private(/|$)`)
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"/private", true}, {"/PRIVATE/x", true}, {"//private/x", true}, {"/x/../private", true},
		{"/./private/", true}, {"/public", false}, {"/privateer", false}, {"/x/private", false},
	} {
		if got := MatchPath(re, tc.path); got != tc.want {
			t.Errorf("MatchPath(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
	if MatchPath(nil, "/private") {
		t.Error("a nil pattern matched")
	}
	if got := CleanPath("//a/./b/../c/"); got != "/a/c/" {
		t.Errorf("CleanPath: %q", got)
	}
}

// TestUncleanPath: UncleanPath matches exactly the paths CleanPath changes,
// over hand-picked and random spellings.
func TestUncleanPath(t *testing.T) {
	re := regexp.MustCompile(UncleanPath)
	paths := []string{"", "/", "//", "/.", "/..", "/a", "/a/", "/a/.", "/a/..", "/a//b", "/a/./b", "/a/../b",
		"a", "./a", "/.a", "/..a", "/a./", "/a../b", "/.../"}
	rng := rand.New(rand.NewPCG(5, 6))
	segs := []string{"", ".", "..", "...", "a", ".b", "c.", "d..e"}
	for range 20000 {
		parts := make([]string, 1+rng.IntN(5))
		for i := range parts {
			parts[i] = segs[rng.IntN(len(segs))]
		}
		p := strings.Join(parts, "/")
		paths = append(paths, p, "/"+p)
	}
	for _, p := range paths {
		if changed := CleanPath(p) != p; re.MatchString(p) != changed {
			t.Fatalf("%q: UncleanPath matches %v, CleanPath changes it %v", p, re.MatchString(p), changed)
		}
	}
}
