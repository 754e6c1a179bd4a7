package http1

// Field is one header field as it stood in the message: Name keeps its case.
type Field struct {
	Name  string
	Value string
}

// Header is the list of fields of a message head, in wire order.
type Header []Field

// Get returns the value of the first field named name (ASCII case-insensitive),
// or "" if there is none.
func (h Header) Get(name string) string {
	for i := range h {
		if EqualFold(h[i].Name, name) {
			return h[i].Value
		}
	}
	return ""
}

// Has reports whether a field named name is present.
func (h Header) Has(name string) bool {
	for i := range h {
		if EqualFold(h[i].Name, name) {
			return true
		}
	}
	return false
}

// Values calls fn for the value of every field named name, in order.
func (h Header) Values(name string, fn func(v string)) {
	for i := range h {
		if EqualFold(h[i].Name, name) {
			fn(h[i].Value)
		}
	}
}

// EqualFold reports whether a and b are equal under ASCII case folding.
func EqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// ForEachToken calls fn for each comma-separated element of a list-valued
// field (RFC 9110 §5.6.1), trimmed of optional whitespace; empty elements are
// skipped.
func ForEachToken(v string, fn func(tok string)) {
	for len(v) > 0 {
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		tok := trimOWS(v[:i])
		if tok != "" {
			fn(tok)
		}
		if i == len(v) {
			return
		}
		v = v[i+1:]
	}
}

// HasToken reports whether the list-valued string v contains tok (ASCII
// case-insensitive).
func HasToken(v, tok string) bool {
	found := false
	ForEachToken(v, func(t string) {
		if EqualFold(t, tok) {
			found = true
		}
	})
	return found
}

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// tokenChars marks the tchar set of RFC 9110 §5.6.2.
var tokenChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// IsToken reports whether s is a non-empty RFC 9110 token.
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChars[s[i]] {
			return false
		}
	}
	return true
}

// validFieldValue reports whether v holds only field-vchar, SP and HTAB
// (obs-text allowed).
func validFieldValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if badValueChars[v[i]] {
			return false
		}
	}
	return true
}

// badValueChars marks the control bytes other than HTAB.
var badValueChars = func() (t [256]bool) {
	for c := 0; c < ' '; c++ {
		t[c] = c != '\t'
	}
	t[0x7f] = true
	return t
}()
