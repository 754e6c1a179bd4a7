package static

import "github.com/capuchin/capuchin/api/http1"

// rangeKind is the outcome of reading a Range field.
type rangeKind uint8

const (
	rangeNone          rangeKind = iota // no usable Range: send the whole file
	rangeOne                            // one satisfiable range
	rangeUnsatisfiable                  // 416
)

// parseRange reads a Range field for a file of size bytes. Only a single
// byte range is served; a malformed field and a list of several ranges are
// ignored (the whole file is sent, which RFC 9110 §14.2 allows).
func parseRange(v string, size int64) (kind rangeKind, off, n int64) {
	if len(v) < 6 || !http1.EqualFold(v[:6], "bytes=") {
		return rangeNone, 0, 0
	}
	spec, count := "", 0
	http1.ForEachToken(v[6:], func(tok string) {
		spec = tok
		count++
	})
	if count != 1 {
		return rangeNone, 0, 0
	}
	return parseSpec(spec, size)
}

// parseSpec reads one range-spec: "a-b", "a-" or "-n".
func parseSpec(spec string, size int64) (rangeKind, int64, int64) {
	dash := -1
	for i := 0; i < len(spec); i++ {
		if spec[i] == '-' {
			dash = i
			break
		}
	}
	if dash < 0 {
		return rangeNone, 0, 0
	}
	first, last := spec[:dash], spec[dash+1:]
	if first == "" { // suffix range: the last n bytes
		n, ok := parseNum(last)
		switch {
		case !ok:
			return rangeNone, 0, 0
		case n == 0 || size == 0:
			return rangeUnsatisfiable, 0, 0
		case n > size:
			n = size
		}
		return rangeOne, size - n, n
	}
	a, ok := parseNum(first)
	if !ok {
		return rangeNone, 0, 0
	}
	b := size - 1
	if last != "" {
		if b2, ok := parseNum(last); !ok || b2 < a {
			return rangeNone, 0, 0
		} else if b2 < b {
			b = b2
		}
	}
	if a >= size {
		return rangeUnsatisfiable, 0, 0
	}
	return rangeOne, a, b - a + 1
}

// parseNum parses 1*DIGIT of at most 18 digits.
func parseNum(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
