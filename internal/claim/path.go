package claim

import (
	"regexp"
	"regexp/syntax"

	"github.com/capuchin/capuchin/api/http1"
)

// Path is a compiled path rule: a Go regexp, matched without the regexp
// machine where a plain test does the same: as a literal prefix when it is
// only one ("^/api/", "(?i)^/static/"), the commonest rule, and with
// http1.Unclean when it is http1.UncleanPath, which every hook testing
// paths with http1.MatchPath declares (mandril; auth_header with Match).
type Path struct {
	re      *regexp.Regexp
	prefix  string // the literal, when lit
	fold    bool   // matched case-insensitively (ASCII)
	lit     bool
	unclean bool // the rule is http1.UncleanPath
}

// CompilePath compiles src (Go syntax, unanchored).
func CompilePath(src string) (Path, error) {
	re, err := regexp.Compile(src)
	if err != nil {
		return Path{}, err
	}
	return PathOf(re), nil
}

// PathOf returns the rule re, which regexp.Compile (Perl syntax, not
// POSIX) made.
func PathOf(re *regexp.Regexp) Path {
	p := Path{re: re, unclean: re.String() == http1.UncleanPath}
	p.prefix, p.fold, p.lit = literalPrefix(re.String())
	return p
}

// String returns the rule's source.
func (p Path) String() string { return p.re.String() }

// MatchString reports whether the rule matches s.
func (p Path) MatchString(s string) bool {
	switch {
	case p.unclean:
		return http1.Unclean(s)
	case !p.lit:
		return p.re.MatchString(s)
	case len(s) < len(p.prefix):
		return false
	case p.fold:
		return http1.EqualFold(s[:len(p.prefix)], p.prefix)
	}
	return s[:len(p.prefix)] == p.prefix
}

// literalPrefix reports whether src is "^" then a literal and nothing
// else, and returns the literal and whether it is matched without case.
// Only ASCII literals qualify, and folded ones without k or s: their
// folds beyond ASCII (the Kelvin sign, the long s) are the regexp's to do.
func literalPrefix(src string) (string, bool, bool) {
	re, err := syntax.Parse(src, syntax.Perl)
	if err != nil || re.Op != syntax.OpConcat || len(re.Sub) != 2 {
		return "", false, false
	}
	begin, lit := re.Sub[0], re.Sub[1]
	if begin.Op != syntax.OpBeginText || lit.Op != syntax.OpLiteral {
		return "", false, false
	}
	s, fold := string(lit.Rune), lit.Flags&syntax.FoldCase != 0
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; s[i] >= 0x80 || fold && (c == 'k' || c == 's') {
			return "", false, false
		}
	}
	return s, fold, true
}
