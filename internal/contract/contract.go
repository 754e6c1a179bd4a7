// Package contract declares, once, the stage contract that the host and the
// plugin SDK share: Monkey's stage numbers, the verdicts a stage answers
// with, the failure policies, and the values that travel with a stage —
// Conn, Reply, Record, Claims, Limits and Lease. The SDK re-exports the
// author-facing ones as aliases (api.Verdict, api.Conn, ...), the host's
// stage package builds on them, and internal/transport converts them to and
// from the generated gRPC types by name. Nothing here knows about gRPC.
package contract

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/capuchin/capuchin/api/http1"
)

// Stage is one of Monkey's numbered stages.
type Stage int

// The stages, numbered as in Monkey.
const (
	StageConnect Stage = 10 // a connection was accepted, before any byte is read
	StageRequest Stage = 20 // a request head was read and the virtual host chosen
	StageHandle  Stage = 30 // content handler
	StageDone    Stage = 40 // the response is complete (notification)
	StageClosed  Stage = 50 // the connection closed (notification)
)

// NumStages is the number of stages; a stage's Index is below it.
const NumStages = 5

// Valid reports whether s is one of the stages.
func (s Stage) Valid() bool { return s >= StageConnect && s <= StageClosed && s%10 == 0 }

// Index is the position of a valid stage among the stages in order (0 to
// NumStages-1), for tables indexed by stage.
func (s Stage) Index() int { return int(s)/10 - 1 }

// Next is the stage after s; past StageClosed it is not Valid. Walk every
// stage with: for s := StageConnect; s.Valid(); s = s.Next().
func (s Stage) Next() Stage { return s + 10 }

// String returns the stage's name.
func (s Stage) String() string {
	switch s {
	case StageConnect:
		return "connect"
	case StageRequest:
		return "request"
	case StageHandle:
		return "handle"
	case StageDone:
		return "done"
	case StageClosed:
		return "closed"
	}
	return fmt.Sprintf("stage(%d)", int(s))
}

// Verdict is a stage's answer.
type Verdict uint8

// The verdicts. Invalid is none of them: what the transport makes of a
// verdict it does not know.
const (
	Continue Verdict = iota // stages 10, 20: go on
	Close                   // close the connection (stage 30: after an error page)
	Respond                 // stage 20: send the Reply and skip stage 30
	Decline                 // stage 30: not mine (Monkey's NOT_ME); the next handler runs
	Handled                 // stage 30: the response was written by the handler
	numVerdicts

	Invalid Verdict = 255
)

// Valid reports whether v is one of the verdicts (not Invalid). Walk every
// verdict with: for v := Continue; v.Valid(); v++.
func (v Verdict) Valid() bool { return v < numVerdicts }

// String returns the verdict's name.
func (v Verdict) String() string {
	switch v {
	case Continue:
		return "continue"
	case Close:
		return "close"
	case Respond:
		return "respond"
	case Decline:
		return "decline"
	case Handled:
		return "handled"
	}
	return fmt.Sprintf("verdict(%d)", uint8(v))
}

// Policy is what the host does when a plugin fails to answer in time or is
// down.
type Policy uint8

const (
	// FailClosed (the default): stage 10 closes the connection, stages 20
	// and 30 answer 503.
	FailClosed Policy = iota
	// FailOpen acts as if the plugin had said Continue (10, 20) or
	// Decline (30).
	FailOpen
	numPolicies
)

// Valid reports whether p is one of the policies. Walk every policy with:
// for p := FailClosed; p.Valid(); p++.
func (p Policy) Valid() bool { return p < numPolicies }

// String returns the policy's name.
func (p Policy) String() string {
	switch p {
	case FailClosed:
		return "fail-closed"
	case FailOpen:
		return "fail-open"
	}
	return fmt.Sprintf("policy(%d)", uint8(p))
}

// The host's deadlines for a stage whose plugin declares none.
const (
	DefaultFastDeadline   = time.Second      // stages 10 and 20
	DefaultHandleDeadline = 60 * time.Second // stage 30
)

// Limits are the terms of one blocking stage.
type Limits struct {
	Deadline time.Duration // 0: the host default (1 s for 10 and 20, 60 s for 30)
	Policy   Policy
}

// DeadlineAt is l's deadline at stage s, the host's default when l sets none.
func (l Limits) DeadlineAt(s Stage) time.Duration {
	switch {
	case l.Deadline > 0:
		return l.Deadline
	case s == StageHandle:
		return DefaultHandleDeadline
	}
	return DefaultFastDeadline
}

// Conn describes a client connection.
type Conn struct {
	ID     uint64
	Remote netip.AddrPort
	Local  netip.AddrPort
	TLS    TLS // zero on a plain connection
}

// TLS describes the TLS session of a client connection, as negotiated
// before stage 10. Its zero value is a plain (not TLS) connection.
type TLS struct {
	Version       uint16 // crypto/tls numbering: tls.VersionTLS12, tls.VersionTLS13
	ServerName    string // SNI as the client sent it; empty when it sent none
	ClientCert    bool   // the client presented a certificate
	ClientSubject string // its subject in RFC 2253 form
}

// On reports whether the connection is TLS.
func (t *TLS) On() bool { return t.Version != 0 }

// VersionName names the version: "TLS1.2", "TLS1.3", or "" when plain.
func (t *TLS) VersionName() string {
	switch {
	case t.Version == 0:
		return ""
	case t.Version >= 0x0301 && t.Version <= 0x0304:
		return fmt.Sprintf("TLS1.%d", t.Version-0x0301)
	}
	return fmt.Sprintf("TLS(0x%04x)", t.Version)
}

// Scheme is "https" on a TLS connection, else "http".
func (c *Conn) Scheme() string {
	if c.TLS.On() {
		return "https"
	}
	return "http"
}

// Reply is the response a stage-20 plugin asks the host to send.
type Reply struct {
	Status int
	Header http1.Header
	Body   []byte
}

// Unavailable is the reply in place of a fail-closed stage-20 plugin that
// is down, failed or late: 503 with the short error page.
func Unavailable() *Reply {
	return &Reply{
		Status: 503,
		Header: http1.Header{{Name: "Content-Type", Value: "text/html; charset=utf-8"}},
		Body:   http1.ErrorPage(503, ""),
	}
}

// Claims is a stage-30 claim filter, evaluated by the host (and by the SDK
// under a lease): the handler is called only for requests that match every
// non-empty list.
type Claims struct {
	Paths   []string // Go regexps, unanchored, against the percent-decoded path
	Hosts   []string // host names, case-insensitive; the port is ignored
	Methods []string // exact methods, e.g. "GET"
}

// Networks is a stage-10 filter, evaluated by the host: the hook is called
// only for clients whose address (an IPv4-mapped address counts as IPv4)
// is in one of the networks. An empty list matches no connection.
type Networks []netip.Prefix

// Contains reports whether a is in one of the networks.
func (n Networks) Contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range n {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Record describes one finished request, for stage 40.
type Record struct {
	ConnID uint64
	Remote netip.AddrPort
	VHost  string
	Method string
	Target string
	Proto  string
	Status int
	Bytes  int64 // response bytes written, head included
	// HeadBytes are the bytes of Bytes that were response heads (1xx
	// included): Bytes - HeadBytes is the body (nginx's $body_bytes_sent).
	HeadBytes int64
	Start     time.Time
	Duration  time.Duration

	Referer   string   // the request's Referer field, "" when none
	UserAgent string   // the request's User-Agent field, "" when none
	Upstream  Upstream // the backend exchange, when a handler forwarded the request
}

// ValidUTF8 is s with its bytes that are not UTF-8 replaced (U+FFFD): a
// string field of the contract's messages that is not UTF-8 fails to
// encode, or to decode, and the whole message with it.
func ValidUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// AddrString is an address as the contract's messages carry it: ip:port,
// "" for none.
func AddrString(a netip.AddrPort) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// Upstream is what a stage-30 handler that forwarded a request reports of
// the backend exchange, for the access log. The zero value: not forwarded.
type Upstream struct {
	Addr     string        // the backend's address, host:port (the last one tried)
	Status   int           // its response status; 0 when it sent none
	Duration time.Duration // from the exchange's start to the end of the backend's response
}

// Classes counts requests by the class of their status: [0] none sent (or
// one outside 100-599), [1] 1xx, ... [5] 5xx.
type Classes [6]int

// ClassOf is the index in Classes of a request answered with status.
func ClassOf(status int) int {
	if i := status / 100; i >= 1 && i <= 5 {
		return i
	}
	return 0
}

// Add counts one request answered with status.
func (c *Classes) Add(status int) { c[ClassOf(status)]++ }

// Forwarded reports whether u describes a backend exchange.
func (u *Upstream) Forwarded() bool { return u.Addr != "" }

// LeaseRecordBatch is how many leased requests' counts and records come
// back at least at once: a lease that reports them (Lease.ReportCounts)
// reports once it holds as many records, and the host bounds a lease
// whose requests it counts or logs at as many requests when the holder
// does not report them.
const LeaseRecordBatch = 128

// Lease lets a stage-30 handler serve the requests that follow on the
// connection itself, while they match its claim filter and the same Host:
// MaxRequests in all (the first included; 1 is the plain hand-over), each
// awaited at most IdleTimeout. The handler gives the connection back with
// the first request it will not serve. It reports how many requests it
// served after the first, by status class, and with Records a stage-40
// Record for each of them. GiveBack are the
// stage-20 filters of the plugins that hook stage 20: a request one of them
// matches goes back to the host, which runs stage 20 for it. Peers are the
// stage-20 plugins that see every request and take calls from the lease
// holder: it asks each, in order, about every request it serves.
type Lease struct {
	MaxRequests int
	IdleTimeout time.Duration
	Records     bool
	GiveBack    []Claims
	Peers       []Peer
	// ErrorPages are the site's error pages (status -> file), for the
	// error pages the holder sends in the host's place.
	ErrorPages map[int]string
	// PeerTimes asks the holder to report the time of each peer call.
	PeerTimes bool
	// Served is how many requests the connection served before this
	// hand-over's request (0: a new connection).
	Served int
	// ReportCounts asks the holder to report the counts of the requests
	// it serves as it goes (in interim replies: transport.Reply), not only
	// when the lease ends, and their records with Records, at least every
	// LeaseRecordBatch records: the host counts requests (MetricsURL) or
	// logs them.
	ReportCounts bool
}

// Peer is a stage-20 plugin that a lease holder calls itself, on a
// connection to the plugin's peer socket (a Unix socket at the path
// Socket), under the plugin's stage-20 Limits.
type Peer struct {
	Name   string
	Socket string
	Limits
}
