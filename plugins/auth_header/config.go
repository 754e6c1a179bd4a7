package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"regexp"

	"github.com/capuchin/capuchin/api/conf"
	"github.com/capuchin/capuchin/api/http1"
)

// Defaults of the keys that have one.
const (
	defaultHeader    = "Authorization"
	defaultChallenge = `Bearer realm="capuchin"`
)

// rules are what auth_header checks. They are read-only after loadRules,
// so concurrent calls need no lock.
type rules struct {
	header    string              // the request field that carries the token
	tokens    [][sha256.Size]byte // SHA-256 of every accepted value
	match     *regexp.Regexp      // every Match as one alternation; nil: every path
	challenge string              // WWW-Authenticate of the 401 answer
}

// loadRules reads the [AUTH_HEADER] section of the file at path. The file
// must exist and name at least one Token; every error names file and line.
func loadRules(path string) (*rules, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth_header needs its tokens in %s: %w", path, err)
	}
	defer fh.Close()
	f, err := conf.Parse(path, fh)
	if err != nil {
		return nil, err
	}
	r := &rules{header: defaultHeader, challenge: defaultChallenge}
	var paths []string
	for _, s := range f.Sections {
		if !s.Is("AUTH_HEADER") {
			return nil, s.Errorf("unknown section [%s] (want [AUTH_HEADER])", s.Name)
		}
		if err := s.Visit(r.keys(&paths)); err != nil {
			return nil, err
		}
	}
	if len(r.tokens) == 0 {
		return nil, fmt.Errorf("%s: no Token: auth_header would refuse every request it checks", path)
	}
	if r.match, err = http1.CompilePaths(paths); err != nil {
		return nil, fmt.Errorf("%s: Match patterns together: %w", path, err)
	}
	return r, nil
}

// keys is the table of known keys; Match patterns are added to paths.
func (r *rules) keys(paths *[]string) map[string]func(conf.Entry) error {
	return map[string]func(conf.Entry) error{
		"header": func(e conf.Entry) error {
			v, err := e.String()
			if err == nil && !http1.IsToken(v) {
				err = e.Errorf("bad field name %q", v)
			}
			r.header = v
			return err
		},
		"token": func(e conf.Entry) error {
			v, err := e.String()
			r.tokens = append(r.tokens, sha256.Sum256([]byte(v)))
			return err
		},
		"match": func(e conf.Entry) error {
			_, err := e.Regexp()
			*paths = append(*paths, e.Value)
			return err
		},
		"challenge": func(e conf.Entry) (err error) {
			r.challenge, err = e.String()
			return err
		},
	}
}

// guarded reports whether the decoded path p, or its cleaned form
// ("//a/./b/../c" is "/a/c"), matches a Match pattern (every path does
// when there is none): a request cannot slip past a rule by spelling the
// same path differently.
func (r *rules) guarded(p string) bool {
	return r.match == nil || http1.MatchPath(r.match, p)
}
