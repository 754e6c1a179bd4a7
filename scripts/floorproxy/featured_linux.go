package main

import (
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/claim"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/forward"
	"github.com/prometheus/client_golang/prometheus"
)

// serveFeatured is serveRaw with the per-request work of Capuchin's
// proxy (the features), none of the SDK's structure: for each request the
// head copied into a string and parsed in full, the lease's checks (the
// first request's Host, the claim filter of the bench's rules), a
// balancer's turn, the pool's check of a reused backend connection
// (Capuchin's own, upstream.IdleCheck), a coarse backend read deadline,
// the request head rewritten by the proxy's own builder (hop-by-hop
// fields dropped, X-Forwarded-*), the answer's head by its own (Date,
// Server, Connection), three clock reads, the health counters, the
// status class and the response-time histogram. It keeps its buffers
// per connection (an idle connection holds 16 KiB, where Capuchin's hold
// none) and has no stage deadline, idle deadline, plugin calls or
// records. Beside `raw` it says what the features cost; beside Capuchin,
// what the SDK's and the forwarder's structure cost.
func serveFeatured(ln net.Listener, r *router) error {
	f, err := claim.Compile([]string{"^/api/", "^/big/"}, nil, nil)
	if err != nil {
		return err
	}
	sh := &featShared{filter: f, rtime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rtime", Buckets: prometheus.DefBuckets})}
	return acceptRaw(ln, r, sh)
}

// featShared is what the featured loop's connections share: the claim
// filter, the Date clock, and the counters a proxy keeps.
type featShared struct {
	filter  *claim.Filter
	clock   http1.Clock
	turn    atomic.Uint64 // the balancer's
	sent    atomic.Uint64 // requests sent to backends
	classes [6]atomic.Uint64
	rtime   prometheus.Histogram
}

// featured is the per-request work of one connection of serveFeatured.
type featured struct {
	sh     *featShared
	client netip.AddrPort
	host   string // the first request's: a lease serves no other
	req    http1.Request
	out    []byte // the request head sent to the backend
	answer []byte // the answer sent to the client
}

// newFeatured is the featured work of the client connection c.
func newFeatured(sh *featShared, c net.Conn) *featured {
	f := &featured{sh: sh, out: make([]byte, 0, 4096), answer: make([]byte, 0, 8192)}
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		f.client = a.AddrPort()
	}
	return f
}

// serve relays one request as rawClient.serve does, with the features.
func (f *featured) serve(r *router, fd uintptr, head []byte) bool {
	start := time.Now()
	req := &f.req
	if http1.ParseRequest(string(head[:len(head)-2]), nil, req) != nil || req.HasBody() {
		return false
	}
	if f.host == "" {
		f.host = req.Host
	}
	if !http1.EqualFold(req.Host, f.host) || !f.sh.filter.Match(req) {
		return false
	}
	f.sh.turn.Add(1)
	g := r.pick(head)
	up, err := reuseOrDial(g, newRawUpstream)
	if err != nil {
		return false
	}
	switch {
	case !up.reused: // a new connection: checked from its next request on
		up.check.Init(up.c, up.c)
		up.reused = true
	case up.check.Stray(up.readBy):
		up.c.Close()
		return false // (the client's connection closes too)
	}
	f.sh.sent.Add(1)
	if up.readBy.Sub(start) < 45*time.Second { // moved only when a quarter of it is spent
		up.readBy = start.Add(time.Minute)
		up.c.SetReadDeadline(up.readBy)
	}
	f.out = forward.AppendRequestHead(f.out[:0], req, f.client, false, g.addrs[0], false, nil)
	ans, err := up.exchange(f.out)
	if err != nil {
		up.c.Close()
		return false
	}
	return f.answered(g, up, fd, start, ans)
}

// answered counts the answer ans of up and relays it to the client fd
// with the proxy's head.
func (f *featured) answered(g *pool, up *rawUpstream, fd uintptr, start time.Time, ans []byte) bool {
	now := time.Now()
	resp := &up.ans.resp
	f.sh.rtime.Observe(now.Sub(start).Seconds())
	f.sh.classes[min(resp.Status/100, 5)].Add(1)
	h := http1.ResponseHead{Date: f.sh.clock.DateAt(now), Server: "capuchin", Method: f.req.Method, Minor: f.req.Minor}
	f.answer, _ = forward.AppendResponseHead(f.answer[:0], resp, &h, nil)
	f.answer = append(f.answer, ans[up.ans.hl:]...)
	ok := writeAll(int(fd), f.answer) == nil
	g.put(up)
	_ = time.Since(start) // the record's duration
	return ok
}
