package forward

import (
	"net/netip"

	"github.com/capuchin/capuchin/api/http1"
)

// Forwarded is an entry's RFC 7239 Forwarded field (Forwarded on), sent
// beside X-Forwarded-*: one element per proxy,
//
//	Forwarded: for=192.0.2.7;host=example.com;proto=http;by=_edge
//
// with for= the client's address (IPv6 quoted and bracketed:
// for="[2001:db8::1]"), host= the request's Host (quoted when it holds a
// port), proto= the client connection's scheme and by= ForwardedBy when
// set.
//
// The trust rule: the Forwarded field a request arrives with is kept, and
// the proxy's element appended to it, only when the client's address (the
// TCP peer, not anything the request says) is in ForwardedTrust, that is
// when the client is itself a proxy the operator runs; from any other
// client it is dropped and replaced, so a backend can believe every
// element but those before the last trusted hop. Without Forwarded on, the
// field passes through untouched as any other.
type Forwarded struct {
	By    string         // the by= node, already in its RFC 7239 form; "" for none
	Trust []netip.Prefix // clients whose Forwarded field is kept
}

func (fw *Forwarded) trusts(client netip.Addr) bool {
	client = client.Unmap()
	for _, p := range fw.Trust {
		if p.Contains(client) {
			return true
		}
	}
	return false
}

// appendForwarded appends the Forwarded field: incoming (the trusted
// client's field, "" when none or untrusted), then this proxy's element.
func (fw *Forwarded) appendField(b []byte, incoming string, client netip.Addr, host string, secure bool) []byte {
	b = append(b, "Forwarded: "...)
	if incoming != "" {
		b = append(b, incoming...)
		b = append(b, ", "...)
	}
	b = append(b, "for="...)
	if client = client.Unmap(); client.Is6() {
		b = append(b, `"[`...)
		b = client.AppendTo(b)
		b = append(b, `]"`...)
	} else {
		b = client.AppendTo(b)
	}
	if host != "" {
		b = append(b, ";host="...)
		b = appendParamValue(b, host)
	}
	if secure {
		b = append(b, ";proto=https"...)
	} else {
		b = append(b, ";proto=http"...)
	}
	if fw.By != "" {
		b = append(b, ";by="...)
		b = append(b, fw.By...)
	}
	return append(b, "\r\n"...)
}

// appendParamValue appends v as a token, or as a quoted-string when it
// holds anything else (a host:port's ':').
func appendParamValue(b []byte, v string) []byte {
	if http1.IsToken(v) {
		return append(b, v...)
	}
	b = append(b, '"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b = append(b, '\\')
		}
		b = append(b, v[i])
	}
	return append(b, '"')
}
