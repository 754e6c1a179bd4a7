package static

import (
	"strconv"
	"time"

	"github.com/capuchin/capuchin/api/http1"
)

// contentType returns the type for the file name: MIME by its extension,
// compared in lower case, else DefaultMIME.
func (h *Handler) contentType(name string) string {
	name = baseName(name)
	dot := -1
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '.' {
			dot = i
			break
		}
	}
	ext := name[dot+1:]
	if dot < 0 || ext == "" || len(ext) > 16 {
		return h.DefaultMIME
	}
	var low [16]byte
	for i := 0; i < len(ext); i++ {
		c := ext[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		low[i] = c
	}
	if t, ok := h.MIME[string(low[:len(ext)])]; ok {
		return t
	}
	return h.DefaultMIME
}

// appendHTTPDate appends Unix time sec in IMF-fixdate form.
func appendHTTPDate(b []byte, sec int64) []byte {
	return time.Unix(sec, 0).UTC().AppendFormat(b, http1.TimeFormat)
}

// appendUnsatisfied appends "bytes */size".
func appendUnsatisfied(b []byte, size int64) []byte {
	return appendInt(append(b, "bytes */"...), size)
}

// appendContentRange appends "bytes first-last/size".
func appendContentRange(b []byte, off, n, size int64) []byte {
	b = append(b, "bytes "...)
	b = appendInt(b, off)
	b = append(b, '-')
	b = appendInt(b, off+n-1)
	b = append(b, '/')
	return appendInt(b, size)
}

func appendInt(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }
