// Package forward sends one client request to a backend of an entry and
// relays the answer: it picks servers in the balancer's order with fail-over
// and high availability, rewrites the heads (hop-by-hop fields removed,
// X-Forwarded-* added), streams bodies both ways without buffering them
// whole, relays 1xx answers, tunnels upgraded connections and answers
// 502/503/504 with a short page when no backend can answer.
//
// All framing goes through api/http1: ReadResponse, Body, ChunkedWriter and
// the error page helpers.
package forward

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/capuchin/capuchin/api"
	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/balance"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/upstream"
)

// Forwarder forwards requests. One is shared by all entries and requests;
// the zero value works.
type Forwarder struct {
	clock   http1.Clock // Date of error pages and of answers that have none
	bufs    sync.Pool   // *[]byte copy buffers of uploads
	states  sync.Pool   // *exchange, with its copy buffer
	writers sync.Pool   // *bufio.Writer client outputs (exchange.out)
	live    inflight    // the exchanges in progress, aborted when their context ends
}

// Close stops watching the context of the requests (see inflight); the
// requests still in progress finish as usual. Call it when the Forwarder
// is no longer used.
func (f *Forwarder) Close() { f.live.close() }

// Request is one client request to forward.
type Request struct {
	Conn      net.Conn
	BR        *bufio.Reader // over Conn, holding the bytes after the head
	Req       *http1.Request
	Client    netip.AddrPort
	TLS       bool   // the client connection is TLS: X-Forwarded-Proto: https
	KeepAlive bool   // false: the connection closes after this request
	Server    string // the Server field of answers that have none (the host's)
	// MaxBody is the host's request body limit (MaxRequestSize); a body
	// that grows past it, chunked included, gets 413. 0: no limit.
	MaxBody int64
	// KeepUnderscores forwards fields whose names contain '_'; without it
	// they are dropped (some backends read '_' as '-', so "X_Forwarded_For"
	// could pass for a field the proxy sets).
	KeepUnderscores bool
	// ClientTimeout is the host's Timeout: it bounds each write to the
	// client (a client that stops reading), and each wait for body bytes
	// when the entry sets no ClientBodyTimeout. 0 means
	// fallbackClientTimeout.
	ClientTimeout time.Duration
	// Deadlines, when set, holds the request's deadlines on the host side
	// (see Deadlines). Nil: the stage deadline is never lifted, and each
	// request starts with no client write deadline known.
	Deadlines Deadlines
	LongAfter time.Duration // 0: only tunnels lift the deadline
	// Start is when the request began (api.Request.Start); zero: Forward
	// reads the clock.
	Start time.Time
	// Budget is the entry's retry budget (budget.go); nil: none.
	Budget *Budget
	// Sticky, when set, names in a cookie the server that answered
	// (balance.Sticky); the picker already put the cookie's server first.
	Sticky *balance.Sticky
	// Forwarded, when set, adds an RFC 7239 Forwarded field (forwarded.go).
	Forwarded *Forwarded
}

// Deadlines is the host side of a request's deadlines: an *api.Request (an
// interface, so that passing one allocates nothing).
type Deadlines interface {
	// ClearDeadline lifts the host's stage deadline from the request
	// (api.Request.ClearDeadline): called when the request turns out to
	// be a tunnel, or a transfer still moving after LongAfter.
	ClearDeadline() bool
	// SetWriteDeadline and WriteDeadline set the client connection's
	// write deadline and keep it across the connection's requests, so
	// that it moves only when near (countWriter), not on every request.
	SetWriteDeadline(time.Time) error
	WriteDeadline() time.Time
}

// fallbackClientTimeout stands for the host's Timeout when the host gives
// none: its default.
const fallbackClientTimeout = 15 * time.Second

// Result reports what happened.
type Result struct {
	Status   int
	BytesIn  int64 // request body bytes read from the client
	BytesOut int64 // bytes written to the client, heads included
	HeadOut  int64 // of BytesOut, the answer heads (1xx included)
	Close    bool  // the client connection must close now
	Err      error // why the request failed, if it did

	// Upstream is the backend exchange, for the access log: the address of
	// the last server tried (none: no server was tried), its answer's status
	// (0: none) and the time from the attempt's start to the end of its
	// answer.
	Upstream api.Upstream
}

const copyBufSize = 32 << 10

// Errors reported in Result.Err.
var (
	ErrNoServer    = errors.New("no backend server address is known")
	ErrAllOffline  = errors.New("every server of the entry is offline")
	ErrUnreachable = errors.New("no backend server could be reached")
	ErrBudget      = errors.New("retry budget exhausted")
)

// Forward forwards r to a server of slots, trying them in the order pk
// gives (pk is the balancer's picker built for slots).
func (f *Forwarder) Forward(ctx context.Context, slots *upstream.Slots, pk balance.Picker, r *Request) Result {
	x := f.getExchange(r)
	defer f.putExchange(x)
	linked, stop := f.live.watch(ctx, x)
	defer unwatch(x, linked, stop)
	x.pick = balance.Request{Client: r.Client.Addr(), Head: r.Req}
	r.Sticky.Read(&x.pick)
	x.order = pk.Order(x.order, x.pick)
	x.order = slots.AppendBackups(x.order) // SRV backups, tried last
	r.Budget.Request()
	x.now = x.began // nothing waited since
	x.forward(ctx, slots)
	return x.result()
}

// forward tries the servers of slots in x.order until one answers, with
// fail-over as the retry budget allows; when none does, it answers the
// client with an error page.
func (x *exchange) forward(ctx context.Context, slots *upstream.Slots) {
	offline := 0
	var lastErr error
	var failed *upstream.Server // the server the last attempt failed on
	for _, i := range x.order {
		s := slots.Servers[i]
		if slices.Contains(x.tried, s) {
			continue
		}
		x.tried = append(x.tried, s)
		if !s.Available(x.now) {
			offline++
			continue
		}
		if failed != nil { // a fail-over is a retry: the budget's to allow
			if !x.r.Budget.Allow() {
				lastErr = errors.Join(ErrBudget, lastErr)
				break
			}
			failed.Retried() // passed on to s
		}
		done, err := x.try(ctx, s)
		if done {
			return
		}
		failed, lastErr = s, err
		x.now = time.Now() // the attempt may have waited
	}
	x.noServer(len(x.tried), offline, lastErr)
}

// noServer answers a request no server answered: tried servers, of which
// offline were skipped, the last attempt failing with lastErr.
func (x *exchange) noServer(tried, offline int, lastErr error) {
	switch {
	case tried == 0:
		x.fail(502, ErrNoServer, "no backend server is known for this path")
	case offline == tried:
		x.fail(503, ErrAllOffline, "every backend server is offline; try again later")
	default:
		x.fail(502, errors.Join(ErrUnreachable, lastErr), "no backend server could be reached")
	}
}

// try forwards the request to s: a pooled connection when there is one,
// else a new one. It reports done=false when the request may go to the
// next server: it was never sent (no connection), or a new connection
// failed before any answer byte (see backendError); the server is then
// counted as retried when a next server takes the request.
func (x *exchange) try(ctx context.Context, s *upstream.Server) (bool, error) {
	x.upAddr, x.upStatus, x.upStart = s.Address(), 0, x.now
	for {
		x.sent = x.now
		bc := s.Get(x.now)
		if bc == nil {
			var err error
			if bc, err = s.Dial(ctx); err != nil {
				if ctx.Err() == nil {
					s.FailedAs(time.Now(), upstream.FailConnect)
				}
				return false, err
			}
			x.sent = time.Now() // after the connect (and TLS handshake)
		}
		switch x.exchange(bc) {
		case outcomeDone:
			return true, nil
		case outcomeNext:
			err := x.err
			x.err = nil
			return false, err
		}
		x.now = time.Now() // again on a new connection: the last one may have waited
	}
}
