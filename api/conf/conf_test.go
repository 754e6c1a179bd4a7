package conf

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	src := "# comment\n[SERVER]\n    Listen 2001\n\tlisten   [::1]:2001  \n  # indented comment\n\n[HOST]\n    ServerName a b\n    Flag\n"
	f, err := Parse("x.conf", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Sections) != 2 || !f.Sections[0].Is("server") || f.Sections[1].Line != 7 {
		t.Fatalf("sections: %+v", f.Sections)
	}
	e := f.Sections[0].Entries
	if len(e) != 2 || !e[1].Is("LISTEN") || e[1].Value != "[::1]:2001" || e[1].Line != 4 {
		t.Fatalf("entries: %+v", e)
	}
	if v := f.Sections[1].Entries[1]; v.Key != "Flag" || v.Value != "" {
		t.Fatalf("key without value: %+v", v)
	}
}

func TestParseErrors(t *testing.T) {
	cases := map[string]string{
		"Listen 1\n":               "x.conf:1: \"Listen 1\": a key line must be indented",
		"  Listen 1\n":             "x.conf:1: \"Listen 1\" comes before any [SECTION]",
		"[SERVER\n":                "x.conf:1: malformed section header",
		"[]\n":                     "x.conf:1: malformed section header",
		"[A]\n  k v\n[B]x\n":       "x.conf:3: malformed section header",
		"[A]\n  k v\n[[B]]\n  x\n": "x.conf:3: malformed section header",
		"[A]\n  k /e\xff.html\n":   "x.conf:2: \"  k /e\\xff.html\" is not UTF-8 text",
	}
	for src, want := range cases {
		_, err := Parse("x.conf", strings.NewReader(src))
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", src, err, want)
		}
	}
}

func TestTypedValues(t *testing.T) {
	e := Entry{Key: "K", File: "f", Line: 3}
	for v, want := range map[string]bool{"on": true, "Off": false, "yes": true, "0": false} {
		e.Value = v
		if got, err := e.Bool(); err != nil || got != want {
			t.Errorf("Bool(%q) = %v, %v", v, got, err)
		}
	}
	e.Value = "maybe"
	if _, err := e.Bool(); err == nil || err.Error() != `f:3: K: want on or off, got "maybe"` {
		t.Errorf("Bool error: %v", err)
	}
	e.Value = "12"
	if n, err := e.Int(0, 20); n != 12 || err != nil {
		t.Errorf("Int: %d %v", n, err)
	}
	if _, err := e.Int(0, 10); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("Int range: %v", err)
	}
	e.Value = "1x"
	if _, err := e.Int(0, 10); err == nil {
		t.Error("Int accepted 1x")
	}
	e.Value = ""
	if _, err := e.String(); err == nil {
		t.Error("String accepted an empty value")
	}
	if _, err := e.Fields(); err == nil {
		t.Error("Fields accepted an empty value")
	}
}

func TestVisitUnknownKey(t *testing.T) {
	f, err := Parse("x.conf", strings.NewReader("[S]\n  Known 1\n  Other 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	err = f.Sections[0].Visit(map[string]func(Entry) error{"known": func(e Entry) error { got++; return nil }})
	if got != 1 || err == nil || err.Error() != "x.conf:3: Other: unknown key in [S]" {
		t.Fatalf("got %d, %v", got, err)
	}
}

func TestParseFileMissing(t *testing.T) {
	_, err := ParseFile("/nonexistent/capuchin.conf")
	if err == nil || !strings.HasPrefix(err.Error(), "/nonexistent/capuchin.conf: cannot read") {
		t.Fatalf("%v", err)
	}
}

// Regexp compiles case-insensitively and reports a bad expression as the
// user wrote it, without the internal (?i) prefix.
func TestEntryRegexp(t *testing.T) {
	e := Entry{Key: "Match", Value: "^/API/", File: "p.conf", Line: 3}
	re, err := e.Regexp()
	if err != nil || !re.MatchString("/api/x") {
		t.Fatalf("Regexp: %v, matches=%v", err, err == nil && re.MatchString("/api/x"))
	}
	e.Value = "^/api/("
	_, err = e.Regexp()
	if want := `p.conf:3: Match: bad regular expression "^/api/(": missing closing )`; err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

// Path takes an absolute path and refuses what a decoded request path
// cannot equal: a query, a fragment, a percent sign, white space.
func TestEntryPath(t *testing.T) {
	e := Entry{Key: "MetricsURL", Value: "/metrics", File: "p.conf", Line: 4}
	if v, err := e.Path(); err != nil || v != "/metrics" {
		t.Fatalf("Path: %q %v", v, err)
	}
	for _, bad := range []string{"metrics", "/m?x=1", "/m#top", "/m%20x", "/m x", ""} {
		e.Value = bad
		if _, err := e.Path(); err == nil || !strings.HasPrefix(err.Error(), "p.conf:4: MetricsURL: ") {
			t.Errorf("Path(%q): %v", bad, err)
		}
	}
}

// A missing file is named once and unwraps to fs.ErrNotExist.
func TestParseFileMissingUnwraps(t *testing.T) {
	_, err := ParseFile("testdata/none.conf")
	if !errors.Is(err, fs.ErrNotExist) || strings.Count(err.Error(), "none.conf") != 1 {
		t.Fatalf("got %v", err)
	}
}
