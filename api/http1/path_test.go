package http1

import (
	"regexp"
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
