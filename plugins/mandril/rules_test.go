package main

import (
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/claim"
)

func writeConf(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "mandril.conf")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRulesAddresses(t *testing.T) {
	r, err := loadRules(writeConf(t, `[MANDRIL]
    DenyIP 192.0.2.7
    DenyIP 10.0.0.0/8 2001:db8::/32
    denyip ::ffff:198.51.100.0/120
    DenyIP ::1
`))
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{
		"192.0.2.7": true, "192.0.2.8": false, "::ffff:192.0.2.7": true,
		"10.1.2.3": true, "11.0.0.1": false, "2001:db8:1::5": true, "2001:db9::1": false,
		"198.51.100.200": true, "198.51.101.1": false, "::1": true, "127.0.0.1": false,
	} {
		if got := r.deniedAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("%s: denied=%v, want %v", addr, got, want)
		}
	}
}

func TestRulesPaths(t *testing.T) {
	r, err := loadRules(writeConf(t, "[MANDRIL]\n    DenyURL ^/secret\n    DenyURL \\.bak$\n"))
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{
		"/secret": true, "/SeCrEt/x": true, "/a/../secret": true, "//secret": true,
		"/./secret/": true, "/index.bak": true, "/index.BAK": true,
		"/public/secret": false, "/index.html": false, "/bak": false, "/": false,
	} {
		if got := r.deniedPath(p); got != want {
			t.Errorf("%s: denied=%v, want %v", p, got, want)
		}
	}
	empty, err := loadRules(writeConf(t, "[MANDRIL]\n"))
	if err != nil || empty.deniedPath("/secret") || empty.deniedAddr(netip.MustParseAddr("127.0.0.1")) {
		t.Fatalf("empty rules deny something (err %v)", err)
	}
}

func TestRulesErrors(t *testing.T) {
	cases := []struct{ text, where string }{
		{"[MANDRIL]\n    DenyIP 300.1.1.1\n", ":2"},
		{"[MANDRIL]\n    DenyIP 10.0.0.0/33\n", ":2"},
		{"[MANDRIL]\n    DenyIP fe80::1%eth0\n", ":2"},
		{"[MANDRIL]\n    DenyIP\n", ":2"},
		{"[MANDRIL]\n    DenyURL ^/ok\n    DenyURL (unclosed\n", ":3"},
		{"[MANDRIL]\n    AllowIP 1.2.3.4\n", ":2"},
		{"# rules\n[RULES]\n    DenyIP 1.2.3.4\n", ":2"},
	}
	for _, c := range cases {
		p := writeConf(t, c.text)
		_, err := loadRules(p)
		if err == nil || !strings.Contains(err.Error(), p+c.where) {
			t.Errorf("%q: error %v, want one at %s%s", c.text, err, p, c.where)
		}
	}
	if _, err := loadRules(filepath.Join(t.TempDir(), "none.conf")); err == nil {
		t.Error("a missing mandril.conf was accepted")
	}
}

// TestFilterCoversDenied checks the host-side stage-20 filter against the
// rules themselves: every path mandril denies must match the filter (a
// miss would let a denied request through uncalled), over hand-picked and
// random spellings of the same paths.
func TestFilterCoversDenied(t *testing.T) {
	r, err := loadRules(writeConf(t, "[MANDRIL]\n    DenyURL ^/private(/|$)\n    DenyURL \\.bak$\n    DenyURL ^/a/b$\n"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := claim.Compile(r.filter(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	match := func(p string) bool { return f.Match(&http1.Request{Method: "GET", Path: p}) }
	paths := []string{"/private", "//private", "/x/../private", "/./private/", "/PRIVATE/x", "/Private",
		"private", "", "/a/./b", "/a//b", "/a/b/.", "/a/c/../b", "/x.BAK", "/public", "/", "/a/b/"}
	rng := rand.New(rand.NewPCG(1, 2))
	segs := []string{"", ".", "..", "private", "PriVate", "a", "b", "x.bak", "x.Bak.", "c"}
	for range 50000 {
		parts := make([]string, 1+rng.IntN(6))
		for i := range parts {
			parts[i] = segs[rng.IntN(len(segs))]
		}
		p := strings.Join(parts, "/")
		paths = append(paths, "/"+p, p)
	}
	denied := 0
	for _, p := range paths {
		if r.deniedPath(p) {
			denied++
			if !match(p) {
				t.Fatalf("%q is denied but the stage-20 filter misses it", p)
			}
		}
	}
	if denied < 100 {
		t.Fatalf("only %d denied paths tried", denied)
	}
	for _, p := range []string{"/public", "/index.html", "/", "/a/b/c"} {
		if match(p) {
			t.Errorf("%q: the filter calls for a path no rule denies", p)
		}
	}
	empty, err := loadRules(writeConf(t, "[MANDRIL]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if f, err := claim.Compile(empty.filter(), nil, nil); err != nil || f.Match(&http1.Request{Path: "//x/../y"}) {
		t.Errorf("without DenyURL the filter must match nothing (err %v)", err)
	}
}
