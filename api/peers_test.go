package api

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/contract"
	"github.com/capuchin/capuchin/internal/transport"
)

// headerCheck is a stage-20 hook that answers 401 to requests without
// X-Key: k, as auth_header does.
type headerCheck struct{}

func (headerCheck) Info() Info { return Info{Name: "check"} }

func (headerCheck) Request(c *Conn, req *http1.Request, vhost string) (Verdict, *Reply) {
	if s := req.Header.Get("X-Sleep"); s != "" {
		d, _ := time.ParseDuration(s)
		time.Sleep(d)
	}
	if req.Header.Get("X-Key") == "k" {
		return Continue, nil
	}
	return Respond, &Reply{Status: 401, Header: http1.Header{{Name: "X-Why", Value: "no key"}}, Body: []byte("no")}
}

// inlineCheck is headerCheck run inline (InlineRequestHook), which
// panics on a request with X-Panic.
type inlineCheck struct{ headerCheck }

func (inlineCheck) InlineRequest() bool { return true }

func (h inlineCheck) Request(c *Conn, req *http1.Request, vhost string) (Verdict, *Reply) {
	if req.Header.Get("X-Panic") != "" {
		panic("X-Panic")
	}
	return h.headerCheck.Request(c, req, vhost)
}

// peerPair starts a stage-20 plugin's peer socket (in this process) and
// returns a lease holder's peers for one connection.
func peerPair(tb testing.TB, deadline time.Duration) *leasePeers {
	return peerPairOf(tb, headerCheck{}, deadline)
}

// peerPairOf is peerPair with the peer's plugin p.
func peerPairOf(tb testing.TB, p Plugin, deadline time.Duration) *leasePeers {
	tb.Helper()
	sock := filepath.Join(tb.TempDir(), "peer")
	peer := newRuntime(p)
	peer.listenPeers(sock)
	if peer.peerLn == nil {
		tb.Fatal("no peer socket")
	}
	tb.Cleanup(func() { peer.peerLn.Close() })
	holder := newRuntime(headerCheck{})
	c := &Conn{ID: 7, Remote: netip.MustParseAddrPort("192.0.2.1:4000"), Local: netip.MustParseAddrPort("127.0.0.1:80")}
	ev := &transport.Event{VHost: "example.org", Lease: contract.Lease{Peers: []contract.Peer{{Name: "check", Socket: sock,
		Limits: contract.Limits{Deadline: deadline}}}}}
	lp := holder.leasePeers(c, ev)
	tb.Cleanup(func() {
		for _, pc := range lp.clients {
			if pc != nil {
				pc.f.Close()
			}
		}
	})
	return lp
}

// TestPeerAsk: the holder's calls to a peer in this process get each
// verdict with its reply.
func TestPeerAsk(t *testing.T) {
	lp := peerPair(t, time.Second)
	cs := &connState{}
	if po := lp.ask(cs, "GET / HTTP/1.1\r\nHost: example.org\r\nX-Key: k"); po != (peerOutcome{}) {
		t.Fatalf("with the key: %+v, want Continue", po)
	}
	po := lp.ask(cs, "GET / HTTP/1.1\r\nHost: example.org")
	if po.verdict != Respond || po.reply.Status != 401 || string(po.reply.Body) != "no" || po.reply.Header.Get("X-Why") != "no key" {
		t.Fatalf("without the key: %+v", po)
	}
}

// TestPeerInlinePanic: a hook run inline that panics fails its own call
// (fail-closed: 503) and leaves the socket's reader serving: the calls
// after it get their own verdicts.
func TestPeerInlinePanic(t *testing.T) {
	lp := peerPairOf(t, inlineCheck{}, time.Second)
	cs := &connState{}
	if po := lp.ask(cs, "GET / HTTP/1.1\r\nHost: example.org\r\nX-Panic: 1"); po.verdict != Respond || po.reply.Status != 503 {
		t.Fatalf("the panicking call: %+v, want 503", po)
	}
	if po := lp.ask(cs, "GET / HTTP/1.1\r\nHost: example.org\r\nX-Key: k"); po != (peerOutcome{}) {
		t.Fatalf("the call after it: %+v, want Continue", po)
	}
	if po := lp.ask(cs, "GET / HTTP/1.1\r\nHost: example.org"); po.verdict != Respond || po.reply.Status != 401 {
		t.Fatalf("the next: %+v, want 401", po)
	}
}

// TestPeerDeadline: a call past the peer's deadline gets the fail-closed
// answer (503) once the deadline passed, and its late reply, which comes
// while the next call waits, is not taken for that call's: the next
// gets its own, as do calls made at once from other leases meanwhile.
func TestPeerDeadline(t *testing.T) {
	lp := peerPair(t, 400*time.Millisecond)
	cs := &connState{}
	start := time.Now()
	po := lp.ask(cs, "GET / HTTP/1.1\r\nHost: example.org\r\nX-Key: k\r\nX-Sleep: 600ms")
	if po.verdict != Respond || po.reply.Status != 503 {
		t.Fatalf("late call: %+v, want 503", po)
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Fatalf("late call answered after %v, before its 400ms deadline", d)
	}
	other := *lp // another lease of the same connection's peers
	other.wait = peerWait{done: make(chan struct{}, 1)}
	cs2 := &connState{}
	done := make(chan peerOutcome)
	go func() { done <- other.ask(cs2, "GET / HTTP/1.1\r\nHost: example.org") }()
	// Waits past 600 ms, when the late reply (Continue) comes.
	if po := lp.ask(cs, "GET / HTTP/1.1\r\nHost: example.org\r\nX-Sleep: 300ms"); po.verdict != Respond || po.reply.Status != 401 {
		t.Fatalf("the call after the late one: %+v, want its own 401", po)
	}
	if po := <-done; po.verdict != Respond || po.reply.Status != 401 {
		t.Fatalf("another lease's call: %+v, want 401", po)
	}
}

// BenchmarkPeerCall: one stage-20 call through a peer socket, holder and
// peer in this process (allocations of both ends), one at a time or from
// 64 connections at once.
func BenchmarkPeerCall(b *testing.B) {
	const head = "GET /api/x HTTP/1.1\r\nHost: example.org\r\nUser-Agent: wrk\r\nX-Key: k"
	b.Run("serial", func(b *testing.B) {
		lp := peerPair(b, time.Second)
		cs := &connState{}
		b.ReportAllocs()
		for b.Loop() {
			if po := lp.ask(cs, head); po.verdict != Continue || po.toHost {
				b.Fatalf("%+v", po)
			}
		}
	})
	b.Run("64conns", func(b *testing.B) {
		lp := peerPair(b, time.Second)
		b.ReportAllocs()
		b.SetParallelism(64)
		b.RunParallel(func(p *testing.PB) {
			own := *lp // a lease of its own: its own waiter and timer
			own.wait = peerWait{done: make(chan struct{}, 1)}
			cs := &connState{}
			for p.Next() {
				if po := own.ask(cs, head); po.verdict != Continue || po.toHost {
					b.Errorf("%+v", po)
					return
				}
			}
		})
	})
}
