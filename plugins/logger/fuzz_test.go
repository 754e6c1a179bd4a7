package main

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/capuchin/capuchin/api"
)

// FuzzFormats: whatever a client puts in a request's fields, every format
// writes one line (a forged newline or control byte would let a client
// write log lines of its own): the text formats in printable ASCII with
// their quotes balanced, the JSON format as one object holding the values.
func FuzzFormats(f *testing.F) {
	f.Add("GET", "/a?b=c", "HTTP/1.1", "example.com", "http://r/", "curl/8", "127.0.0.1:8080")
	f.Add("G\"ET", "/x y\n\\é", "HTTP/1.1\r\n", "", "\x00\x7f\xff", "a\"b\\c\u2028", "")
	f.Fuzz(func(t *testing.T, method, target, proto, vhost, referer, ua, upstream string) {
		rec := api.Record{Remote: netip.MustParseAddrPort("192.0.2.1:5000"), VHost: vhost, Method: method,
			Target: target, Proto: proto, Status: 200, Bytes: 10, Start: time.Unix(1e9, 0), Duration: time.Millisecond,
			Referer: referer, UserAgent: ua, Upstream: api.Upstream{Addr: upstream, Status: 502}}
		quotes := map[string]int{"combined": 6, "combined_upstream": 6}
		if rec.Upstream.Forwarded() {
			quotes["combined_upstream"] = 8
		}
		for name, format := range formats {
			line := format(nil, &rec)
			if bytes.IndexByte(line, '\n') != len(line)-1 {
				t.Fatalf("%s: %q is not one line", name, line)
			}
			if name == "json" {
				jsonHolds(t, line, &rec)
				continue
			}
			for _, c := range line[:len(line)-1] {
				if c < ' ' || c >= 0x7f {
					t.Fatalf("%s: byte %#x in %q", name, c, line)
				}
			}
			if n, ok := quotes[name]; ok && bytes.Count(line, []byte(`"`)) != n {
				t.Fatalf("%s: %d quotes in %q, want %d", name, bytes.Count(line, []byte(`"`)), line, n)
			}
		}
	})
}

// jsonHolds checks line is one JSON object with rec's values (those that
// are UTF-8: others are written with U+FFFD in place of the bad bytes).
func jsonHolds(t *testing.T, line []byte, rec *api.Record) {
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("json: %q: %v", line, err)
	}
	for field, want := range map[string]string{"request_method": rec.Method, "request_uri": rec.Target,
		"server_protocol": rec.Proto, "http_referer": rec.Referer, "http_user_agent": rec.UserAgent} {
		if got, ok := m[field]; utf8.ValidString(want) && ok && got != want {
			t.Fatalf("json: %s is %q, want %q, in %q", field, got, want, line)
		}
	}
}
