package main

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/capuchin/capuchin/api"
)

// timeLayout is Monkey's, Apache's and nginx's access-log time ($time_local).
const timeLayout = "02/Jan/2006:15:04:05 -0700"

// formatter appends one record's line, newline included.
type formatter func(b []byte, rec *api.Record) []byte

// formats are the values of the Format key: the one list of them.
var formats = map[string]formatter{
	"monkey":            appendMonkey,
	"combined":          appendCombined,
	"combined_upstream": appendCombinedUpstream,
	"json":              appendJSON,
}

// lookupFormat returns the formatter of the lower-case name.
func lookupFormat(name string) (formatter, error) {
	if f, ok := formats[name]; ok {
		return f, nil
	}
	return nil, fmt.Errorf("unknown format %q (want %s)", name, formatNames())
}

// formatNames lists the keys of formats, sorted, for error messages:
// "combined, combined_upstream, json or monkey".
func formatNames() string {
	names := slices.Sorted(maps.Keys(formats))
	last := len(names) - 1
	return strings.Join(names[:last], ", ") + " or " + names[last]
}

// appendMonkey appends rec's line in Monkey's format:
//
//	IP - [dd/Mon/YYYY:HH:MM:SS +zzzz] METHOD URI HTTP/1.x STATUS LENGTH
//
// The time is when the request started, in local time. Bytes that could
// break the line (controls, spaces, non-ASCII) are written as \xHH.
func appendMonkey(b []byte, rec *api.Record) []byte {
	b = appendAddr(b, rec.Remote.Addr())
	b = append(b, " - ["...)
	b = startTime(rec).AppendFormat(b, timeLayout)
	b = append(b, "] "...)
	b = appendSafe(b, rec.Method)
	b = append(b, ' ')
	b = appendSafe(b, rec.Target)
	b = append(b, ' ')
	b = appendSafe(b, rec.Proto)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(rec.Status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, rec.Bytes, 10)
	return append(b, '\n')
}

// appendCombined appends rec's line in nginx's (and Apache's) combined
// format:
//
//	IP - - [dd/Mon/YYYY:HH:MM:SS +zzzz] "METHOD URI HTTP/1.x" STATUS LENGTH "REFERER" "USER-AGENT"
//
// LENGTH is the response body's bytes sent, heads not included (nginx's
// $body_bytes_sent, which its combined format logs).
// Inside quotes, '"', '\' and bytes outside printable ASCII are written as
// \xHH, as nginx does; an empty field is "-".
func appendCombined(b []byte, rec *api.Record) []byte {
	b = appendCommon(b, rec)
	return append(b, '\n')
}

// appendCombinedUpstream appends the combined line followed by the request
// time and, for a forwarded request, the backend's address, status and
// response time (in seconds, with milliseconds), each "-" when unknown:
//
//	... "USER-AGENT" rt=0.012 uaddr="127.0.0.1:8080" ustatus=200 urt=0.010
func appendCombinedUpstream(b []byte, rec *api.Record) []byte {
	b = appendCommon(b, rec)
	b = append(b, " rt="...)
	b = appendSeconds(b, rec.Duration)
	u := &rec.Upstream
	b = append(b, " uaddr="...)
	if !u.Forwarded() {
		return append(b, "- ustatus=- urt=-\n"...)
	}
	b = appendQuoted(b, u.Addr)
	b = append(b, " ustatus="...)
	b = appendStatus(b, u.Status)
	b = append(b, " urt="...)
	b = appendSeconds(b, u.Duration)
	return append(b, '\n')
}

func appendCommon(b []byte, rec *api.Record) []byte {
	b = appendAddr(b, rec.Remote.Addr())
	b = append(b, " - - ["...)
	b = startTime(rec).AppendFormat(b, timeLayout)
	b = append(b, "] "...)
	b = appendRequestLine(b, rec)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(rec.Status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, bodyBytes(rec), 10)
	b = append(b, ' ')
	b = appendQuoted(b, rec.Referer)
	b = append(b, ' ')
	return appendQuoted(b, rec.UserAgent)
}

// appendRequestLine appends "METHOD URI HTTP/1.x" quoted, or "-" for a
// request the host refused before its request line parsed (as nginx logs
// one).
func appendRequestLine(b []byte, rec *api.Record) []byte {
	if rec.Method == "" {
		return append(b, `"-"`...)
	}
	b = append(b, '"')
	b = appendEscaped(b, rec.Method)
	b = append(b, ' ')
	b = appendEscaped(b, rec.Target)
	b = append(b, ' ')
	b = appendEscaped(b, rec.Proto)
	return append(b, '"')
}

// bodyBytes is the response body's bytes sent: all bytes but the heads.
func bodyBytes(rec *api.Record) int64 { return max(rec.Bytes-rec.HeadBytes, 0) }

// appendJSON appends rec as one JSON object on one line. Fields are named
// after the nginx variables of the same meaning ($remote_addr,
// $bytes_sent...), as nginx users name them in their JSON log_format; time
// is ISO 8601 with milliseconds. Times are in seconds; the upstream fields
// are there only for a forwarded request (upstream_status 0: the backend
// sent no answer).
//
//	{"time":"2024-03-05T07:08:09.123+01:00","remote_addr":"127.0.0.1","server_name":"example.com",
//	 "request_method":"GET","request_uri":"/api/x","server_protocol":"HTTP/1.1","status":200,
//	 "bytes_sent":312,"body_bytes_sent":120,"request_time":0.012,"http_referer":"","http_user_agent":"curl/8.5.0",
//	 "upstream_addr":"127.0.0.1:8080","upstream_status":200,"upstream_response_time":0.010}
func appendJSON(b []byte, rec *api.Record) []byte {
	b = append(b, `{"time":"`...)
	b = startTime(rec).AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, `","remote_addr":"`...)
	if a := rec.Remote.Addr(); a.IsValid() {
		b = a.Unmap().AppendTo(b)
	}
	b = append(b, '"')
	b = appendJSONField(b, "server_name", rec.VHost)
	b = appendJSONField(b, "request_method", rec.Method)
	b = appendJSONField(b, "request_uri", rec.Target)
	b = appendJSONField(b, "server_protocol", rec.Proto)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(rec.Status), 10)
	b = append(b, `,"bytes_sent":`...)
	b = strconv.AppendInt(b, rec.Bytes, 10)
	b = append(b, `,"body_bytes_sent":`...)
	b = strconv.AppendInt(b, bodyBytes(rec), 10)
	b = append(b, `,"request_time":`...)
	b = appendSeconds(b, rec.Duration)
	b = appendJSONField(b, "http_referer", rec.Referer)
	b = appendJSONField(b, "http_user_agent", rec.UserAgent)
	if u := &rec.Upstream; u.Forwarded() {
		b = appendJSONField(b, "upstream_addr", u.Addr)
		b = append(b, `,"upstream_status":`...)
		b = strconv.AppendInt(b, int64(u.Status), 10)
		b = append(b, `,"upstream_response_time":`...)
		b = appendSeconds(b, u.Duration)
	}
	return append(b, "}\n"...)
}

// startTime is when the request started, in local time (now if unknown).
func startTime(rec *api.Record) time.Time {
	if rec.Start.IsZero() {
		return time.Now()
	}
	return rec.Start.Local()
}

func appendAddr(b []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(b, '-')
	}
	return a.Unmap().AppendTo(b)
}

// appendSeconds appends d in seconds with milliseconds, as nginx's
// $request_time: 0.012.
func appendSeconds(b []byte, d time.Duration) []byte {
	return strconv.AppendFloat(b, max(d, 0).Seconds(), 'f', 3, 64)
}

func appendStatus(b []byte, st int) []byte {
	if st == 0 {
		return append(b, '-')
	}
	return strconv.AppendInt(b, int64(st), 10)
}

const hexDigits = "0123456789abcdef"

// appendSafe appends s, escaping bytes outside printable ASCII and
// spaces; an empty s is "-".
func appendSafe(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c > ' ' && c < 0x7f && c != '\\' {
			b = append(b, c)
			continue
		}
		b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&15])
	}
	return b
}

// appendQuoted appends s in double quotes, escaped as appendEscaped; an
// empty s is "-" (quoted, as nginx writes an absent Referer).
func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	if s == "" {
		b = append(b, '-')
	} else {
		b = appendEscaped(b, s)
	}
	return append(b, '"')
}

// appendEscaped appends s with '"', '\' and bytes outside printable ASCII
// (space included in it) written as \xHH, as nginx escapes its variables.
func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= ' ' && c < 0x7f && c != '"' && c != '\\' {
			b = append(b, c)
			continue
		}
		b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&15])
	}
	return b
}

// appendJSONField appends ,"name":"value" with value as a JSON string.
func appendJSONField(b []byte, name, value string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, `":"`...)
	return append(appendJSONString(b, value), '"')
}

// appendJSONString appends s escaped for a JSON string (RFC 8259): '"',
// '\' and control bytes escaped, invalid UTF-8 replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < ' ' || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return b
}
