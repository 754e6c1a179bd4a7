package http1

import (
	"path"
	"regexp"
	"strings"
)

// CleanPath is path.Clean of a decoded request path that keeps a trailing
// slash: "//a/./b/../c/" is "/a/c/".
func CleanPath(p string) string {
	c := path.Clean("/" + p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// UncleanPath is a path regexp (for a filter's Claims.Paths) that matches
// every path CleanPath changes: one not starting with "/", or holding "//",
// "/./" or "/../", or ending in "/." or "/..". A stage-20 hook that tests
// paths with MatchPath declares it next to its own patterns, so that no
// spelling of a path slips past its filter.
const UncleanPath = `^[^/]|^$|//|/\.\.?(/|$)`

// MatchPath reports whether re matches the decoded path p or its cleaned
// form, so that a rule cannot be slipped past by spelling the same path
// differently ("//secret", "/x/../secret"). A nil re matches nothing.
func MatchPath(re *regexp.Regexp, p string) bool {
	if re == nil {
		return false
	}
	if re.MatchString(p) {
		return true
	}
	c := CleanPath(p)
	return c != p && re.MatchString(c)
}
