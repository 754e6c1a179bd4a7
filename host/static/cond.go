package static

import (
	"strconv"
	"time"

	"github.com/capuchin/capuchin/api/http1"
)

// appendETag appends the strong entity tag of a file: "size-mtime" with both
// numbers in hex, the modification time in nanoseconds, quotes included.
func appendETag(b []byte, size, mtimeNanos int64) []byte {
	b = append(b, '"')
	b = strconv.AppendInt(b, size, 16)
	b = append(b, '-')
	b = strconv.AppendInt(b, mtimeNanos, 16)
	return append(b, '"')
}

// matchETag reports whether the If-Match / If-None-Match list v matches
// etag (quoted). "*" matches any current representation. weak selects weak
// comparison (W/ prefixes ignored); strong comparison never matches a weak
// tag. A malformed list matches nothing from the fault on.
func matchETag(v, etag string, weak bool) bool {
	for {
		v = skipListSep(v)
		if v == "" {
			return false
		}
		if v[0] == '*' {
			return true
		}
		isWeak := len(v) > 2 && v[0] == 'W' && v[1] == '/'
		if isWeak {
			v = v[2:]
		}
		if v == "" || v[0] != '"' {
			return false
		}
		end := 1
		for end < len(v) && v[end] != '"' {
			end++
		}
		if end == len(v) {
			return false
		}
		tag := v[:end+1]
		v = v[end+1:]
		if tag == etag && (weak || !isWeak) {
			return true
		}
	}
}

func skipListSep(v string) string {
	for v != "" && (v[0] == ' ' || v[0] == '\t' || v[0] == ',') {
		v = v[1:]
	}
	return v
}

// parseHTTPDate parses an HTTP-date (RFC 9110 §5.6.7) into Unix seconds:
// IMF-fixdate without allocating, and the two obsolete forms.
func parseHTTPDate(s string) (int64, bool) {
	if t, ok := parseIMFFixdate(s); ok {
		return t, true
	}
	for _, layout := range [...]string{time.RFC850, time.ANSIC} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Unix(), true
		}
	}
	return 0, false
}

// parseIMFFixdate parses "Sun, 06 Nov 1994 08:49:37 GMT".
func parseIMFFixdate(s string) (int64, bool) {
	if len(s) != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' ||
		s[16] != ' ' || s[19] != ':' || s[22] != ':' || s[25:] != " GMT" {
		return 0, false
	}
	month := 0
	for i := 0; i < 12; i++ {
		if s[8:11] == monthNames[3*i:3*i+3] {
			month = i + 1
		}
	}
	day, ok1 := digits(s[5:7])
	year, ok2 := digits(s[12:16])
	hh, ok3 := digits(s[17:19])
	mm, ok4 := digits(s[20:22])
	ss, ok5 := digits(s[23:25])
	if month == 0 || !(ok1 && ok2 && ok3 && ok4 && ok5) || day < 1 || day > 31 ||
		hh > 23 || mm > 59 || ss > 60 {
		return 0, false
	}
	return time.Date(year, time.Month(month), day, hh, mm, ss, 0, time.UTC).Unix(), true
}

const monthNames = "JanFebMarAprMayJunJulAugSepOctNovDec"

func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// validators are a file's entity tag and modification time.
type validators struct {
	etag  string // quoted, strong
	mtime int64  // Unix seconds, as sent in Last-Modified
}

// check evaluates the preconditions of RFC 9110 §13.2.2 for GET and HEAD:
// 412 when If-Match or If-Unmodified-Since fails, 304 when If-None-Match or
// If-Modified-Since says the client's copy is current, else 0.
func (v *validators) check(hdr http1.Header) int {
	if im := hdr.Get("If-Match"); im != "" {
		if !matchETag(im, v.etag, false) {
			return 412
		}
	} else if ius := hdr.Get("If-Unmodified-Since"); ius != "" {
		if t, ok := parseHTTPDate(ius); ok && v.mtime > t {
			return 412
		}
	}
	if inm := hdr.Get("If-None-Match"); inm != "" {
		if matchETag(inm, v.etag, true) {
			return 304
		}
		return 0
	}
	if ims := hdr.Get("If-Modified-Since"); ims != "" {
		if t, ok := parseHTTPDate(ims); ok && v.mtime <= t {
			return 304
		}
	}
	return 0
}

// rangeAllowed evaluates If-Range: a Range applies only when If-Range is
// absent or names the current representation (a strong tag, or exactly the
// Last-Modified date).
func (v *validators) rangeAllowed(hdr http1.Header) bool {
	ir := hdr.Get("If-Range")
	switch {
	case ir == "":
		return true
	case ir[0] == '"':
		return ir == v.etag
	case len(ir) > 1 && ir[0] == 'W' && ir[1] == '/':
		return false
	}
	t, ok := parseHTTPDate(ir)
	return ok && t == v.mtime
}
