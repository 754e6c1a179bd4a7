// Package conf reads configuration files in the Monkey format, used by the
// Capuchin host and by plugins alike:
//
//	# a comment
//	[SERVER]
//	    Listen 2001
//	    KeepAlive on
//
// A section starts with "[NAME]" at column 0; its entries are indented
// "Key value" lines (key and value separated by spaces or tabs; the value is
// the rest of the line, trimmed). Keys are case-insensitive and may repeat.
// Blank lines and lines whose first non-blank character is '#' are ignored.
// Every error names the file and the line.
package conf

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Error is a configuration error at a place in a file.
type Error struct {
	File string
	Line int
	Msg  string
	Err  error // the underlying error, if any (errors.Is(err, fs.ErrNotExist))
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

func (e *Error) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Msg
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// File is a parsed configuration file.
type File struct {
	Path     string
	Sections []*Section
}

// Section is one "[NAME]" block.
type Section struct {
	Name    string // as written, without brackets
	File    string
	Line    int
	Entries []Entry
}

// Entry is one "Key value" line.
type Entry struct {
	Key   string // as written
	Value string
	File  string
	Line  int
}

// ParseFile reads and parses the file at path.
func ParseFile(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{File: path, Msg: "cannot read: " + errText(err), Err: err}
	}
	defer f.Close()
	return Parse(path, f)
}

func errText(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}

// Parse parses configuration text read from r; path names it in errors.
func Parse(path string, r io.Reader) (*File, error) {
	out := &File{Path: path}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var cur *Section
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \t\r")
		trimmed := strings.TrimLeft(line, " \t")
		switch {
		case trimmed == "" || trimmed[0] == '#':
		case !utf8.ValidString(line):
			// Values go to plugins, and to the host's events, as protobuf
			// strings, which must be UTF-8: a site's error page at such a
			// path failed every lease of the site.
			return nil, &Error{File: path, Line: n, Msg: fmt.Sprintf("%q is not UTF-8 text", line)}
		case line[0] == '[':
			s, err := parseSection(path, n, line)
			if err != nil {
				return nil, err
			}
			cur = s
			out.Sections = append(out.Sections, s)
		case line[0] != ' ' && line[0] != '\t':
			return nil, &Error{File: path, Line: n, Msg: fmt.Sprintf("%q: a key line must be indented under a [SECTION]", trimmed)}
		case cur == nil:
			return nil, &Error{File: path, Line: n, Msg: fmt.Sprintf("%q comes before any [SECTION]", trimmed)}
		default:
			cur.Entries = append(cur.Entries, parseEntry(path, n, trimmed))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, &Error{File: path, Msg: "cannot read: " + err.Error()}
	}
	return out, nil
}

func parseSection(path string, n int, line string) (*Section, error) {
	if !strings.HasSuffix(line, "]") || len(line) < 3 {
		return nil, &Error{File: path, Line: n, Msg: fmt.Sprintf("malformed section header %q", line)}
	}
	name := strings.TrimSpace(line[1 : len(line)-1])
	if name == "" || strings.ContainsAny(name, "[]") {
		return nil, &Error{File: path, Line: n, Msg: fmt.Sprintf("malformed section header %q", line)}
	}
	return &Section{Name: name, File: path, Line: n}, nil
}

func parseEntry(path string, n int, s string) Entry {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return Entry{Key: s, File: path, Line: n}
	}
	return Entry{Key: s[:i], Value: strings.TrimSpace(s[i:]), File: path, Line: n}
}

// Is reports whether the section is named name (case-insensitive).
func (s *Section) Is(name string) bool { return strings.EqualFold(s.Name, name) }

// Errorf returns an error at the section's header line.
func (s *Section) Errorf(format string, args ...any) error {
	return &Error{File: s.File, Line: s.Line, Msg: fmt.Sprintf(format, args...)}
}

// Errorf returns an error at the entry's line, prefixed with its key.
func (e Entry) Errorf(format string, args ...any) error {
	return &Error{File: e.File, Line: e.Line, Msg: e.Key + ": " + fmt.Sprintf(format, args...)}
}

// Is reports whether the entry's key is key (case-insensitive).
func (e Entry) Is(key string) bool { return strings.EqualFold(e.Key, key) }

// String returns the value, or an error when it is empty.
func (e Entry) String() (string, error) {
	if e.Value == "" {
		return "", e.Errorf("missing value")
	}
	return e.Value, nil
}

// Path reads a URL path: it starts with / and has no query, fragment,
// percent sign or white space, since paths are compared with a request's
// percent-decoded path.
func (e Entry) Path() (string, error) {
	v, err := e.String()
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(v, "/") || strings.ContainsAny(v, "?#% \t") {
		return "", e.Errorf("want a path starting with / (no query, fragment or %%), got %q", v)
	}
	return v, nil
}

// Bool reads on/off (also yes/no, true/false, 1/0).
func (e Entry) Bool() (bool, error) {
	switch strings.ToLower(e.Value) {
	case "on", "yes", "true", "1":
		return true, nil
	case "off", "no", "false", "0":
		return false, nil
	}
	return false, e.Errorf("want on or off, got %q", e.Value)
}

// Int reads a decimal integer within [min, max].
func (e Entry) Int(min, max int) (int, error) {
	n, err := strconv.Atoi(e.Value)
	if err != nil {
		return 0, e.Errorf("want a whole number, got %q", e.Value)
	}
	if n < min || n > max {
		return 0, e.Errorf("%d is out of range [%d, %d]", n, min, max)
	}
	return n, nil
}

// Regexp compiles the value as a Go regular expression that matches
// case-insensitively. The error names the expression as written.
func (e Entry) Regexp() (*regexp.Regexp, error) {
	src, err := e.String()
	if err != nil {
		return nil, err
	}
	re, err := regexp.Compile("(?i)" + src)
	if err != nil {
		msg := err.Error()
		var se *syntax.Error
		if errors.As(err, &se) {
			msg = se.Code.String()
		}
		return nil, e.Errorf("bad regular expression %q: %s", src, msg)
	}
	return re, nil
}

// Fields splits the value at spaces and tabs; an empty value is an error.
func (e Entry) Fields() ([]string, error) {
	f := strings.Fields(e.Value)
	if len(f) == 0 {
		return nil, e.Errorf("missing value")
	}
	return f, nil
}

// Visit calls fn for each entry; fn's key table decides what is known.
// An entry whose key is not in handlers is an "unknown key" error.
func (s *Section) Visit(handlers map[string]func(Entry) error) error {
	for _, e := range s.Entries {
		h, ok := handlers[strings.ToLower(e.Key)]
		if !ok {
			return e.Errorf("unknown key in [%s]", s.Name)
		}
		if err := h(e); err != nil {
			return err
		}
	}
	return nil
}
