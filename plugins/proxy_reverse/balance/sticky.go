package balance

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/capuchin/capuchin/api/http1"
)

// Sticky is an entry's cookie stickiness (HAProxy's "cookie NAME insert",
// Traefik's sticky cookie), set by the Sticky key: the proxy names the
// server that answered in a cookie, and a request that carries the cookie
// goes to that server first while it is up; otherwise the entry's balancer
// chooses and the answer carries a new cookie.
//
// The cookie's value is the server's ID: 16 hex digits of a hash of its
// address and port, opaque to clients (it does not show the address) yet
// stable across restarts, reloads and re-resolution, so sessions survive
// them. Sticky wraps any balancer (Wrap), so fail-over is the balancer's.
type Sticky struct {
	Name  string // cookie name
	Attrs string // "; Path=/; HttpOnly": the attributes appended to Set-Cookie
}

// DefaultStickyAttrs are the attributes of a Sticky cookie that names none.
const DefaultStickyAttrs = "; Path=/; HttpOnly"

// ParseSticky reads the Sticky key's value: "cookie NAME [ATTR ...]", where
// an ATTR is Path=P, Domain=D, Max-Age=N, SameSite=Strict|Lax|None,
// Secure or HttpOnly (RFC 6265 §4.1). Without attributes the cookie gets
// DefaultStickyAttrs.
func ParseSticky(args []string) (*Sticky, error) {
	if len(args) < 2 || !strings.EqualFold(args[0], "cookie") {
		return nil, fmt.Errorf("want cookie NAME [Path=P Domain=D Max-Age=N SameSite=S Secure HttpOnly], got %q",
			strings.Join(args, " "))
	}
	if !http1.IsToken(args[1]) {
		return nil, fmt.Errorf("bad cookie name %q", args[1])
	}
	st := &Sticky{Name: args[1], Attrs: DefaultStickyAttrs}
	if len(args) == 2 {
		return st, nil
	}
	var b strings.Builder
	seen := map[string]bool{}
	for _, a := range args[2:] {
		attr, err := stickyAttr(a)
		if err != nil {
			return nil, err
		}
		name, _, _ := strings.Cut(attr, "=")
		if seen[name] {
			return nil, fmt.Errorf("cookie attribute %s given twice", name)
		}
		seen[name] = true
		b.WriteString("; " + attr)
	}
	st.Attrs = b.String()
	return st, stickyEffective(st.Attrs, seen)
}

// stickyEffective refuses attributes that would make browsers drop the
// cookie, so that stickiness would silently never happen (Max-Age=0 is
// refused by stickyAttr).
func stickyEffective(attrs string, seen map[string]bool) error {
	if strings.Contains(attrs, "SameSite=None") && !seen["Secure"] {
		return fmt.Errorf("SameSite=None without Secure: browsers reject such a cookie, so no request would stick")
	}
	return nil
}

// stickyAttr checks one cookie attribute and returns it in its canonical
// spelling.
func stickyAttr(a string) (string, error) {
	name, v, hasV := strings.Cut(a, "=")
	bad := fmt.Errorf("bad cookie attribute %q: want Path=P, Domain=D, Max-Age=N, "+
		"SameSite=Strict|Lax|None, Secure or HttpOnly", a)
	switch n := strings.ToLower(name); {
	case !hasV && (n == "secure" || n == "httponly"):
		return map[string]string{"secure": "Secure", "httponly": "HttpOnly"}[n], nil
	case n == "path" && strings.HasPrefix(v, "/") && cookieSafe(v):
		return "Path=" + v, nil
	case n == "domain" && v != "" && cookieSafe(v):
		return "Domain=" + v, nil
	case n == "max-age":
		sec, err := strconv.Atoi(v)
		if err == nil && sec == 0 {
			return "", fmt.Errorf("Max-Age=0 deletes the cookie at once: no request would stick")
		}
		if err == nil && sec > 0 {
			return "Max-Age=" + v, nil
		}
	case n == "samesite":
		for _, s := range []string{"Strict", "Lax", "None"} {
			if strings.EqualFold(v, s) {
				return "SameSite=" + s, nil
			}
		}
	}
	return "", bad
}

// cookieSafe reports whether v may stand in an attribute value: no
// controls, blanks or ';'.
func cookieSafe(v string) bool {
	return !strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == ';' || r == 0x7f })
}

// StickyID returns the cookie value naming the server at ap.
func StickyID(ap netip.AddrPort) uint64 { return pointHash(ap, 0, 0) ^ 0x5354494b /* "STIK" */ }

// AppendSetCookie appends the Set-Cookie field naming id.
func (st *Sticky) AppendSetCookie(b []byte, id uint64) []byte {
	b = append(b, "Set-Cookie: "...)
	b = append(b, st.Name...)
	b = append(b, '=')
	b = appendHex16(b, id)
	b = append(b, st.Attrs...)
	return append(b, "\r\n"...)
}

// Value returns the server ID the request's cookie names, if it carries a
// well-formed one. It does not allocate.
func (st *Sticky) Value(h http1.Header) (uint64, bool) {
	v, ok := cookie(h, st.Name)
	if !ok || len(v) != 16 {
		return 0, false
	}
	var id uint64
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			return 0, false
		}
		id = id<<4 | uint64(c)
	}
	return id, true
}

// Read sets r.StickyID and r.Sticky from the cookie of r.Head: the one
// parse of the cookie per request, which the picker and the answer's
// Set-Cookie share. A nil st (no stickiness) or a missing head sets none.
func (st *Sticky) Read(r *Request) {
	r.StickyID, r.Sticky = 0, false
	if st != nil && r.Head != nil {
		r.StickyID, r.Sticky = st.Value(r.Head.Header)
	}
}

func appendHex16(b []byte, id uint64) []byte {
	const digits = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		b = append(b, digits[id>>uint(shift)&0xf])
	}
	return b
}

// Wrap returns a picker that puts first the slot of the server the
// request's cookie names (Request.StickyID, see Read), then the other
// slots in inner's order. A cookie naming no server of s (an old or
// forged one) leaves inner's order as is.
func (st *Sticky) Wrap(inner Picker, s Slots) Picker {
	ids := make([]stickySlot, 0, s.Len())
	for i := 0; i < s.Len(); i++ {
		id := StickyID(s.Addr(i))
		if !slices.ContainsFunc(ids, func(x stickySlot) bool { return x.id == id }) {
			ids = append(ids, stickySlot{id, i})
		}
	}
	slices.SortFunc(ids, func(a, b stickySlot) int { return cmp.Compare(a.id, b.id) })
	return &stickyPicker{st: st, inner: inner, ids: ids}
}

type stickySlot struct {
	id   uint64
	slot int
}

type stickyPicker struct {
	st    *Sticky
	inner Picker
	ids   []stickySlot // sorted by id, each server once
}

// Order implements Picker.
func (p *stickyPicker) Order(dst []int, r Request) []int {
	dst = p.inner.Order(dst, r)
	if !r.Sticky {
		return dst
	}
	i, found := slices.BinarySearchFunc(p.ids, r.StickyID, func(x stickySlot, id uint64) int { return cmp.Compare(x.id, id) })
	if !found {
		return dst
	}
	slot := p.ids[i].slot
	if j := slices.Index(dst, slot); j > 0 { // move it to the front, keeping the rest in order
		copy(dst[1:j+1], dst[:j])
		dst[0] = slot
	}
	return dst
}
