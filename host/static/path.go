package static

import (
	"path"
	"strings"
)

// cleanPath turns a percent-decoded request path into a path relative to
// the document root for openat: no leading slash, "." for the root itself.
// A trailing slash is kept, so that opening "file/" fails with ENOTDIR and
// a directory can be told from a request for its index. status is non-zero
// when the path must be refused: 400 for NUL bytes, backslashes or a path
// that does not start with "/", 403 for ".." segments that climb above the
// root.
func cleanPath(p string) (rel string, status int) {
	if p == "" || p[0] != '/' {
		return "", 400
	}
	if strings.IndexByte(p, 0) >= 0 || strings.IndexByte(p, '\\') >= 0 {
		return "", 400
	}
	if !needsClean(p) {
		if len(p) == 1 {
			return ".", 0
		}
		return p[1:], 0
	}
	if escapes(p) {
		return "", 403
	}
	slash := endsInDir(p)
	c := path.Clean(p)
	if c == "/" {
		return ".", 0
	}
	if slash {
		c += "/"
	}
	return c[1:], 0
}

// needsClean reports whether p has empty, "." or ".." segments. p starts
// with "/".
func needsClean(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] != '/' || i+1 == len(p) {
			continue
		}
		switch rest := p[i+1:]; {
		case rest[0] == '/':
			return true
		case rest[0] != '.':
		case len(rest) == 1 || rest[1] == '/':
			return true
		case rest[1] == '.' && (len(rest) == 2 || rest[2] == '/'):
			return true
		}
	}
	return false
}

// escapes reports whether the ".." segments of p climb above its start.
func escapes(p string) bool {
	depth := 0
	for _, seg := range strings.Split(p[1:], "/") {
		switch seg {
		case "", ".":
		case "..":
			if depth == 0 {
				return true
			}
			depth--
		default:
			depth++
		}
	}
	return false
}

// endsInDir reports whether p names a directory explicitly: it ends in
// "/", "/." or "/..".
func endsInDir(p string) bool {
	return strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..")
}

// baseName returns the last segment of rel (without a trailing slash).
func baseName(rel string) string {
	rel = strings.TrimSuffix(rel, "/")
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[i+1:]
	}
	return rel
}

// appendLocation appends the redirect target for directory rel: the path
// with a slash added, percent-encoded where a byte is not safe in a header
// or could change the meaning of the URL, then "?query" when there is one.
// The path starts with exactly one slash, so it is never protocol-relative.
func appendLocation(b []byte, rel, query string) []byte {
	const hex = "0123456789ABCDEF"
	b = append(b, '/')
	for i := 0; i < len(rel); i++ {
		c := rel[i]
		if safePathByte(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
	}
	b = append(b, '/')
	if query != "" {
		b = append(b, '?')
		b = append(b, query...)
	}
	return b
}

func safePathByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("/-._~!$&'()*+,;=:@", c) >= 0
}
