package forward

import (
	"bufio"
	"net/netip"
	"strings"
	"testing"

	"github.com/capuchin/capuchin/api/http1"
)

// The Forwarded field: for= (IPv6 quoted and bracketed), host= (quoted
// with a port), proto=, by=; an incoming field kept only from a trusted
// client; off leaves an incoming field untouched.
func TestForwardedField(t *testing.T) {
	trust := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct {
		name, in, client string
		fw               *Forwarded
		want             string // the Forwarded lines of the head sent
		secure           bool   // the client connection is TLS
	}{
		{"v4", "Host: example.com\r\n", "192.0.2.7:1", &Forwarded{},
			"Forwarded: for=192.0.2.7;host=example.com;proto=http\r\n", false},
		{"v4-mapped and host with port", "Host: example.com:8080\r\n", "[::ffff:192.0.2.7]:1", &Forwarded{By: "_edge"},
			"Forwarded: for=192.0.2.7;host=\"example.com:8080\";proto=http;by=_edge\r\n", false},
		{"v6", "Host: a\r\n", "[2001:db8::1]:1", &Forwarded{By: `"[2001:db8::2]"`},
			"Forwarded: for=\"[2001:db8::1]\";host=a;proto=http;by=\"[2001:db8::2]\"\r\n", false},
		{"untrusted client's field replaced", "Host: a\r\nForwarded: for=1.2.3.4\r\n", "192.0.2.7:1",
			&Forwarded{Trust: trust}, "Forwarded: for=192.0.2.7;host=a;proto=http\r\n", false},
		{"trusted client's fields appended to", "Host: a\r\nForwarded: for=1.2.3.4\r\nforwarded: for=5.6.7.8;proto=https\r\n",
			"10.1.1.1:1", &Forwarded{Trust: trust},
			"Forwarded: for=1.2.3.4, for=5.6.7.8;proto=https, for=10.1.1.1;host=a;proto=http\r\n", false},
		{"TLS client", "Host: a\r\n", "192.0.2.7:1", &Forwarded{},
			"Forwarded: for=192.0.2.7;host=a;proto=https\r\n", true},
		{"off: passed through", "Host: a\r\nForwarded: for=1.2.3.4\r\n", "192.0.2.7:1", nil,
			"Forwarded: for=1.2.3.4\r\n", false},
		{"off: none added", "Host: a\r\n", "192.0.2.7:1", nil, "", false},
	} {
		var req http1.Request
		in := "GET / HTTP/1.1\r\n" + tc.in + "\r\n"
		if err := http1.ReadRequest(bufio.NewReader(strings.NewReader(in)), nil, &req); err != nil {
			t.Fatal(err)
		}
		head := string(AppendRequestHead(nil, &req, netip.MustParseAddrPort(tc.client), tc.secure, "b:80", false, tc.fw))
		var got string
		for _, l := range strings.SplitAfter(head, "\r\n") {
			if strings.HasPrefix(strings.ToLower(l), "forwarded:") {
				got += l
			}
		}
		if got != tc.want {
			t.Errorf("%s: %q, want %q\n(head %q)", tc.name, got, tc.want, head)
		}
	}
}

// The trust rule matches the client's address, IPv4-mapped IPv6 as IPv4,
// against ForwardedTrust (as config parses "10.0.0.0/8 ::1").
func TestForwardedTrusts(t *testing.T) {
	fw := &Forwarded{Trust: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}}
	for addr, want := range map[string]bool{"10.9.8.7": true, "::1": true, "::ffff:10.0.0.1": true, "11.0.0.1": false, "::2": false} {
		if got := fw.trusts(netip.MustParseAddr(addr)); got != want {
			t.Errorf("trusts(%s) = %v", addr, got)
		}
	}
}
