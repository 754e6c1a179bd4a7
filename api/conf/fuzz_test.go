package conf

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: any text either parses, into sections and entries that
// print back to text which parses the same, or fails with an *Error
// naming the file and a line of it; nothing panics.
func FuzzParse(f *testing.F) {
	for _, src := range []string{
		"# comment\n[SERVER]\n    Listen 2001\n\tlisten   [::1]:2001  \n  # c\n\n[HOST]\n    ServerName a b\n    Flag\n",
		"[A]\n  k v\n[B]x\n", "[A]\n  k /e\xff.html\n", "  Listen 1\n", "[ A B ]\r\n\tk\tv\r\n",
	} {
		f.Add(src)
	}
	confs, _ := filepath.Glob("../../conf/*.conf")
	for _, p := range confs {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(string(b))
		}
	}
	f.Fuzz(func(t *testing.T, src string) {
		file, err := Parse("x.conf", strings.NewReader(src))
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || ce.File != "x.conf" || ce.Line < 0 || ce.Line > strings.Count(src, "\n")+1 || ce.Msg == "" {
				t.Fatalf("error %v (%#v) names no place in the file", err, ce)
			}
			return
		}
		text := printConf(t, file)
		again, err := Parse("y.conf", strings.NewReader(text))
		if err != nil {
			t.Fatalf("printed back, %q does not parse: %v", text, err)
		}
		if back := printConf(t, again); back != text {
			t.Fatalf("printed back, %q parses as %q", text, back)
		}
	})
}

// printConf writes f as configuration text, checking the shape of each part.
func printConf(t *testing.T, f *File) string {
	var b strings.Builder
	for _, s := range f.Sections {
		if s.Name == "" || strings.TrimSpace(s.Name) != s.Name || strings.ContainsAny(s.Name, "[]") {
			t.Fatalf("section name %q", s.Name)
		}
		b.WriteString("[" + s.Name + "]\n")
		for _, e := range s.Entries {
			if e.Key == "" || strings.ContainsAny(e.Key, " \t\n") || e.Key[0] == '#' || strings.Trim(e.Value, " \t") != e.Value {
				t.Fatalf("entry %q %q", e.Key, e.Value)
			}
			b.WriteString("    " + e.Key + " " + e.Value + "\n")
		}
	}
	return b.String()
}
