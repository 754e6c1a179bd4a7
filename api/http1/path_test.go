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

// TestUncleanPath: UncleanPath and Unclean match exactly the paths
// CleanPath changes, over hand-picked and random spellings.
func TestUncleanPath(t *testing.T) {
	re := regexp.MustCompile(UncleanPath)
	paths := []string{"", "/", "//", "/.", "/..", "/a", "/a/", "/a/.", "/a/..", "/a//b", "/a/./b", "/a/../b",
		"a", "./a", "/.a", "/..a", "/a./", "/a../b", "/.../", "/a/.../b", "/..", "/./", "\xff/a", "/a/\xff./"}
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
		if changed := CleanPath(p) != p; re.MatchString(p) != changed || Unclean(p) != changed {
			t.Fatalf("%q: UncleanPath matches %v, Unclean says %v, CleanPath changes it %v", p, re.MatchString(p), Unclean(p), changed)
		}
	}
}

// TestCompilePaths: the joined patterns match case-insensitively what any
// one of them matches, no pattern gives nil, a bad one an error; PathFilter
// of the result is the pattern plus UncleanPath.
func TestCompilePaths(t *testing.T) {
	re, err := CompilePaths([]string{`^/a$`, `\.bak$`})
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{"/a": true, "/A": true, "/x.BAK": true, "/ab": false, "/bak": false} {
		if re.MatchString(p) != want {
			t.Errorf("%q: match %v, want %v", p, !want, want)
		}
	}
	if f := PathFilter(re); len(f) != 2 || f[0] != re.String() || f[1] != UncleanPath {
		t.Errorf("PathFilter: %q", f)
	}
	if re, err := CompilePaths(nil); re != nil || err != nil || PathFilter(re) != nil {
		t.Errorf("no patterns: %v %v", re, err)
	}
	if _, err := CompilePaths([]string{`^/ok`, `(unclosed`}); err == nil {
		t.Error("a bad pattern compiled")
	}
}
