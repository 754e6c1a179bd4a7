package balance

import (
	"fmt"
	"strings"
	"testing"
)

func stickyCookie(st *Sticky, id uint64) string {
	return fmt.Sprintf("a=1; %s=%016x; b=2", st.Name, id)
}

// The cookie's server comes first, the rest in the inner balancer's order;
// a malformed or an unknown cookie leaves the inner order.
func TestStickyOrder(t *testing.T) {
	st, err := ParseSticky([]string{"cookie", "srv"})
	if err != nil {
		t.Fatal(err)
	}
	s := servers(4)
	s.add(s.addrs[2], 1) // slot 4 repeats server 2
	inner := FirstAlive{}
	base := "[0 1 2 3 4]"
	for _, tc := range []struct {
		name   string
		cookie string
		want   string
	}{
		{"none", "", base},
		{"server 2", stickyCookie(st, StickyID(s.addrs[2])), "[2 0 1 3 4]"},
		{"server 3", stickyCookie(st, StickyID(s.addrs[3])), "[3 0 1 2 4]"},
		{"server 0 already first", stickyCookie(st, StickyID(s.addrs[0])), base},
		{"unknown server", stickyCookie(st, StickyID(servers(9).addrs[8])), base},
		{"upper-case hex", strings.ToUpper(stickyCookie(st, StickyID(s.addrs[3]))), base},
		{"short", "srv=abc", base},
		{"not hex", "srv=zzzzzzzzzzzzzzzz", base},
		{"other cookie name", fmt.Sprintf("SRV=%016x", StickyID(s.addrs[3])), base},
	} {
		var r Request
		if tc.cookie != "" {
			r.Head = head("/", "Cookie", tc.cookie)
		} else {
			r.Head = head("/")
		}
		st.Read(&r)
		pk := st.Wrap(inner.Picker(s), s)
		got := pk.Order(nil, r)
		checkPermutation(t, got, s.Len())
		if str(got) != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, got, tc.want)
		}
	}
}

// Over a round robin, requests with the cookie stick; those without rotate.
func TestStickyOverRoundRobin(t *testing.T) {
	st := &Sticky{Name: "s"}
	s := servers(3)
	pk := st.Wrap((&RoundRobin{}).Picker(s), s)
	with := Request{Head: head("/", "Cookie", stickyCookie(st, StickyID(s.addrs[1])))}
	st.Read(&with)
	firstsWithout := map[int]int{}
	for i := 0; i < 30; i++ {
		if o := pk.Order(nil, with); o[0] != 1 {
			t.Fatalf("request %d with the cookie went to %v", i, o)
		}
		firstsWithout[pk.Order(nil, Request{Head: head("/")})[0]]++
	}
	if len(firstsWithout) != 3 {
		t.Fatalf("without the cookie: %v", firstsWithout)
	}
	concurrent(t, pk)
}

// Server IDs are stable, distinct, and do not show the address.
func TestStickyID(t *testing.T) {
	s := servers(300)
	seen := map[uint64]bool{}
	for _, ap := range s.addrs {
		id := StickyID(ap)
		if seen[id] || id != StickyID(ap) {
			t.Fatalf("ID of %s: %x clashes or varies", ap, id)
		}
		seen[id] = true
	}
	st := &Sticky{Name: "route", Attrs: DefaultStickyAttrs}
	line := string(st.AppendSetCookie(nil, StickyID(s.addrs[0])))
	want := fmt.Sprintf("Set-Cookie: route=%016x; Path=/; HttpOnly\r\n", StickyID(s.addrs[0]))
	if line != want || strings.Contains(line, "10.0.0.1") {
		t.Fatalf("Set-Cookie %q, want %q", line, want)
	}
	if id, ok := st.Value(head("/", "Cookie", "route="+want[len("Set-Cookie: route="):][:16]).Header); !ok ||
		id != StickyID(s.addrs[0]) {
		t.Fatalf("the cookie set does not read back: %x %v", id, ok)
	}
}

func TestParseSticky(t *testing.T) {
	for _, tc := range []struct {
		args  string
		attrs string // "" means an error
	}{
		{"cookie srv", DefaultStickyAttrs},
		{"Cookie srv path=/app max-age=3600 samesite=lax secure httponly",
			"; Path=/app; Max-Age=3600; SameSite=Lax; Secure; HttpOnly"},
		{"cookie srv Domain=example.com", "; Domain=example.com"},
		{"cookie", ""},
		{"header srv", ""},
		{"cookie s;rv", ""},
		{"cookie srv Path=app", ""},
		{"cookie srv Max-Age=-1", ""},
		{"cookie srv SameSite=sometimes", ""},
		{"cookie srv Expires=never", ""},
		{"cookie srv Path=/a;b", ""},
		{"cookie srv Max-Age=0", ""},
		{"cookie srv Max-Age=0 Secure", ""},
		{"cookie srv SameSite=None", ""},
		{"cookie srv SameSite=None Secure", "; SameSite=None; Secure"},
		{"cookie srv Max-Age=00", ""},
		{"cookie srv Path=/a Path=/b", ""},
		{"cookie srv Secure secure", ""},
	} {
		st, err := ParseSticky(strings.Fields(tc.args))
		switch {
		case tc.attrs == "" && err == nil:
			t.Errorf("%q: accepted as %+v", tc.args, st)
		case tc.attrs != "" && err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case tc.attrs != "" && (st.Attrs != tc.attrs || st.Name != "srv"):
			t.Errorf("%q: %+v, want attrs %q", tc.args, st, tc.attrs)
		}
	}
}

// Order with a cookie costs no allocation.
func TestStickyAllocs(t *testing.T) {
	st := &Sticky{Name: "s"}
	s := servers(8)
	pk := st.Wrap((&RoundRobin{}).Picker(s), s)
	r := Request{Head: head("/", "Cookie", stickyCookie(st, StickyID(s.addrs[5])))}
	st.Read(&r)
	dst := make([]int, 0, 8)
	if n := testing.AllocsPerRun(100, func() { dst = pk.Order(dst, r) }); n != 0 {
		t.Fatalf("%v allocations per Order", n)
	}
}

// Read fills in the cookie's server ID and clears what an earlier request
// left; no stickiness (a nil Sticky) or no head reads none.
func TestStickyRead(t *testing.T) {
	st := &Sticky{Name: "s"}
	const id = 0x0123456789abcdef
	r := Request{Head: head("/", "Cookie", stickyCookie(st, id))}
	st.Read(&r)
	if !r.Sticky || r.StickyID != id {
		t.Fatalf("cookie read as %x %v, want %x", r.StickyID, r.Sticky, uint64(id))
	}
	for name, read := range map[string]func(*Request){
		"no cookie": func(r *Request) { r.Head = head("/"); st.Read(r) },
		"no head":   func(r *Request) { r.Head = nil; st.Read(r) },
		"nil":       func(r *Request) { (*Sticky)(nil).Read(r) },
	} {
		r := Request{Head: head("/", "Cookie", stickyCookie(st, id)), StickyID: id, Sticky: true}
		read(&r)
		if r.Sticky || r.StickyID != 0 {
			t.Errorf("%s: read as %x %v, want none", name, r.StickyID, r.Sticky)
		}
	}
}
