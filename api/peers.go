package api

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/capuchin/capuchin/internal/contract"
	"github.com/capuchin/capuchin/internal/transport"
)

// Stage 20 under a lease (docs/plugin-contract.md): a stage-20 plugin that
// sees every request would end every lease, since each request would have
// to go through the host. Instead, the host passes the lease holder and
// each such plugin the two ends of a framed socket (peer calls), and the
// lease names them (Lease.Peers): the holder's SDK asks them about each
// request it serves, in load order, with the same events, verdicts,
// deadlines and failure policies as the host. A peer the SDK cannot reach
// (its socket has not come, or its process ended) sends the request back
// to the host, which knows whether that plugin is restarting.

// peerWait bounds the wait for a peer socket that the host sends just
// before the event naming it.
const peerWait = time.Second

// errPeerGone is a call that reached no peer: the host takes the request.
var errPeerGone = errors.New("api: the stage-20 plugin's socket is closed")

// errPeerLate is a call whose reply did not come within the deadline.
var errPeerLate = errors.New("api: the stage-20 plugin missed its deadline")

// peerSet holds the lease holder's ends of the peer sockets, by tag.
type peerSet struct {
	mu sync.Mutex
	m  map[uint64]*peerClient
}

// get returns the client of the socket tagged ch, waiting for the socket
// (at most peerWait) the first time; nil when it does not come.
func (ps *peerSet) get(rt *runtime, ch uint64) *peerClient {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if pc, ok := ps.m[ch]; ok {
		return pc
	}
	if ps.m == nil {
		ps.m = map[uint64]*peerClient{}
	}
	var pc *peerClient // stays nil (a dead entry) when the socket does not come
	if rt.fds != nil {
		if c, err := rt.fds.Wait(ch, peerWait); err == nil {
			pc = newPeerClient(c)
		} else {
			Logger().Warn("a stage-20 plugin's socket did not come; its requests go to the host", "channel", ch, "error", err)
		}
	}
	ps.m[ch] = pc
	return pc
}

// peerClient calls one stage-20 plugin: events go out batched as on the
// host's framed socket, and one goroutine routes the replies.
type peerClient struct {
	f *transport.HostFrames

	mu      sync.Mutex
	waiters map[uint64]chan *transport.Reply
	next    uint64
	gone    bool
	pool    sync.Pool // chan *transport.Reply, buffered 1
}

func newPeerClient(c net.Conn) *peerClient {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil
	}
	pc := &peerClient{f: transport.CallerFrames(uc), waiters: map[uint64]chan *transport.Reply{}}
	pc.pool.New = func() any { return make(chan *transport.Reply, 1) }
	go pc.demux() // ends when the peer's process ends (or the host's copy closes)
	return pc
}

// demux routes replies to their callers until the socket ends, then fails
// every call in flight.
func (pc *peerClient) demux() {
	for {
		r := new(transport.Reply)
		if err := pc.f.Recv(r); err != nil {
			break
		}
		pc.mu.Lock()
		ch := pc.waiters[r.ID]
		delete(pc.waiters, r.ID)
		pc.mu.Unlock()
		if ch != nil && !r.Interim {
			ch <- r
		}
	}
	pc.mu.Lock()
	pc.gone = true
	for id, ch := range pc.waiters {
		delete(pc.waiters, id)
		ch <- nil
	}
	pc.mu.Unlock()
	pc.f.Close()
}

// call sends ev and waits at most d for the reply. errPeerGone: nothing
// was sent; errPeerLate, or errPeerGone after the send: the policy applies.
func (pc *peerClient) call(ev *transport.Event, d time.Duration, t *time.Timer) (*transport.Reply, bool, error) {
	ch := pc.pool.Get().(chan *transport.Reply)
	pc.mu.Lock()
	if pc.gone {
		pc.mu.Unlock()
		return nil, false, errPeerGone
	}
	pc.next++
	ev.ID = pc.next
	pc.waiters[ev.ID] = ch
	pc.mu.Unlock()
	if err := pc.f.Send(ev); err != nil {
		pc.forget(ev.ID)
		return nil, false, errPeerGone
	}
	t.Reset(d)
	select {
	case r := <-ch:
		t.Stop()
		pc.pool.Put(ch)
		if r == nil {
			return nil, true, errPeerGone
		}
		return r, true, nil
	case <-t.C:
		if pc.forget(ev.ID) {
			pc.pool.Put(ch) // nobody will send on it now
		}
		return nil, true, errPeerLate
	}
}

// forget drops a waiter; false if the reply was already routed to it.
func (pc *peerClient) forget(id uint64) bool {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	_, ok := pc.waiters[id]
	delete(pc.waiters, id)
	return ok
}

// peerOutcome is what the lease's peers decided about a request.
type peerOutcome struct {
	verdict Verdict // Continue, Close or Respond
	reply   *Reply  // for Respond
	toHost  bool    // a peer could not be asked: give the request back
}

// askPeers runs stage 20 at the lease's peers for the request whose head
// is head, in order, until one closes or responds (the host's rules:
// pluginhost.Host.Request).
func (rt *runtime) askPeers(c *Conn, cs *connState, ev *transport.Event, head string) peerOutcome {
	if len(ev.Lease.Peers) == 0 {
		return peerOutcome{}
	}
	pev := transport.Event{Kind: transport.EventRequest, Conn: *c, Head: []byte(head), VHost: ev.VHost}
	for i := range ev.Lease.Peers {
		p := &ev.Lease.Peers[i]
		pc := rt.peers.get(rt, p.Channel)
		if pc == nil {
			return peerOutcome{toHost: true}
		}
		r, sent, err := pc.call(&pev, peerDeadline(p), cs.peerTimer())
		switch {
		case err != nil && !sent:
			return peerOutcome{toHost: true}
		case err != nil || r.Err != "":
			if p.Policy != contract.FailOpen {
				return peerOutcome{verdict: Respond, reply: contract.Unavailable()}
			}
		case r.Verdict == Close:
			return peerOutcome{verdict: Close}
		case r.Verdict == Respond:
			out := r.Reply
			return peerOutcome{verdict: Respond, reply: &out}
		}
	}
	return peerOutcome{}
}

// peerDeadline is a peer's stage-20 deadline (the host's default when it
// declared none).
func peerDeadline(p *contract.Peer) time.Duration {
	if p.Deadline > 0 {
		return p.Deadline
	}
	return contract.DefaultFastDeadline
}

// peerTimer returns the connection's timer for peer calls, stopped.
func (cs *connState) peerTimer() *time.Timer {
	if cs.ptimer == nil {
		cs.ptimer = time.NewTimer(time.Hour)
		cs.ptimer.Stop()
	}
	return cs.ptimer
}

// servePeer answers the stage-20 events of a lease holder on a socket the
// host passed (tagged transport.PeerServe), until it closes.
func (rt *runtime) servePeer(_ uint64, c net.Conn) {
	uc, ok := c.(*net.UnixConn)
	if !ok || rt.request == nil {
		c.Close()
		return
	}
	f := transport.ServingFrames(uc)
	go func() { // ends when the lease holder's end closes
		_ = rt.serveCalls(f, transport.EventRequest)
		f.Close()
	}()
}
