package main

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/capuchin/capuchin/api"
)

// timeLayout is Monkey's (and Apache's) access-log time.
const timeLayout = "02/Jan/2006:15:04:05 -0700"

// appendLine appends rec's access-log line, newline included:
//
//	IP - [dd/Mon/YYYY:HH:MM:SS +zzzz] METHOD URI HTTP/1.x STATUS LENGTH
//
// The time is when the request started, in local time. Bytes that could
// break the line (controls, spaces, non-ASCII) are written as \xHH.
func appendLine(b []byte, rec *api.Record) []byte {
	b = appendAddr(b, rec.Remote.Addr())
	b = append(b, " - ["...)
	t := rec.Start
	if t.IsZero() {
		t = time.Now()
	}
	b = t.Local().AppendFormat(b, timeLayout)
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

func appendAddr(b []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(b, '-')
	}
	return a.Unmap().AppendTo(b)
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
