package api

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/capuchin/capuchin/internal/contract"
	"github.com/capuchin/capuchin/internal/transport"
)

// Stage 20 under a lease (docs/plugin-contract.md): a stage-20 plugin that
// sees every request would end every lease, since each request would have
// to go through the host. Instead, such a plugin listens on a Unix socket
// of its own (its peer socket, at the path the host gives it), the lease
// names it (Lease.Peers), and the holder's SDK asks it about each request
// it serves, in load order, with the same events, verdicts, deadlines and
// failure policies as the host. A peer the SDK cannot reach (its socket
// does not answer, or its process ended) sends the request back to the
// host, which knows whether that plugin is restarting.

// peerDial bounds a connection to a peer socket; a peer that could not be
// reached is tried again after peerRetry.
const (
	peerDial  = time.Second
	peerRetry = time.Second
)

// errPeerGone is a call that reached no peer: the host takes the request.
var errPeerGone = errors.New("api: the stage-20 plugin's socket is closed")

// errPeerLate is a call whose reply did not come within the deadline.
var errPeerLate = errors.New("api: the stage-20 plugin missed its deadline")

// peerSet holds the lease holder's connections to the peer sockets, by
// path: one per peer process, shared by every lease.
type peerSet struct {
	mu sync.Mutex
	m  map[string]*peerClient
}

// get returns a live client of the peer socket at path, connecting the
// first time and after the last connection ended; nil when the socket
// cannot be reached. It dials without the lock, so that a slow peer does
// not hold up the leases calling others.
func (ps *peerSet) get(path string) *peerClient {
	if pc, known := ps.known(path); known {
		return pc
	}
	c, err := net.DialTimeout("unix", path, peerDial)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if pc, known := ps.knownLocked(path); known { // another lease dialled meanwhile
		if err == nil {
			c.Close()
		}
		return pc
	}
	if ps.m == nil {
		ps.m = map[string]*peerClient{}
	}
	if err != nil {
		Logger().Warn("cannot reach a stage-20 plugin's peer socket; its requests go to the host", "socket", path, "error", err)
		pc := &peerClient{failed: time.Now()}
		pc.gone.Store(true)
		ps.m[path] = pc
		return nil
	}
	pc := newPeerClient(c.(*net.UnixConn))
	ps.m[path] = pc
	return pc
}

// known returns the client of path when no dial is due: a live one, or nil
// within peerRetry of a failed dial.
func (ps *peerSet) known(path string) (*peerClient, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.knownLocked(path)
}

func (ps *peerSet) knownLocked(path string) (*peerClient, bool) {
	switch pc := ps.m[path]; {
	case pc != nil && !pc.ended():
		return pc, true
	case pc != nil && time.Since(pc.failed) < peerRetry:
		return nil, true
	}
	return nil, false
}

// peerClient calls one stage-20 plugin: events go out batched as on the
// host's framed socket, and one goroutine routes the replies.
type peerClient struct {
	f    *transport.PeerCaller
	gone atomic.Bool // the connection ended (or never was); set under mu

	mu      sync.Mutex
	waiters map[uint64]*peerWait
	next    uint64
	failed  time.Time // when it could not be made
}

// peerWait is where a call's reply arrives: one per lease (its calls are
// made one at a time), reused from call to call.
type peerWait struct {
	done chan struct{} // buffered 1: the reply is in r
	r    transport.PeerReply
	gone bool // no reply: the connection ended
}

func newPeerClient(c *net.UnixConn) *peerClient {
	pc := &peerClient{f: transport.NewPeerCaller(c), waiters: map[uint64]*peerWait{}}
	go pc.demux() // ends when the peer closes the connection (its process ends)
	return pc
}

// ended reports whether the connection has ended.
func (pc *peerClient) ended() bool { return pc.gone.Load() }

// demux routes replies to their callers until the socket ends, then fails
// every call in flight.
func (pc *peerClient) demux() {
	var r transport.PeerReply
	for {
		if err := pc.f.Recv(&r); err != nil {
			break
		}
		if r.Interim {
			continue // not a stage-20 reply
		}
		pc.mu.Lock()
		w := pc.waiters[r.ID]
		delete(pc.waiters, r.ID)
		pc.mu.Unlock()
		if w != nil {
			w.r, w.gone = r, false
			w.done <- struct{}{}
		}
	}
	pc.mu.Lock()
	pc.gone.Store(true)
	for id, w := range pc.waiters {
		delete(pc.waiters, id)
		w.gone = true
		w.done <- struct{}{}
	}
	pc.mu.Unlock()
	pc.f.Close()
}

// call sends the stage-20 event ev with head and waits at most d for the
// reply, in w. errPeerGone: nothing was sent; errPeerLate, or errPeerGone
// after the send: the policy applies.
func (pc *peerClient) call(w *peerWait, ev transport.PeerEvent, head string, d time.Duration, t *time.Timer) (bool, error) {
	pc.mu.Lock()
	if pc.gone.Load() {
		pc.mu.Unlock()
		return false, errPeerGone
	}
	pc.next++
	id := pc.next
	pc.waiters[id] = w
	pc.mu.Unlock()
	if err := pc.f.Send(id, ev, head); err != nil {
		if !pc.forget(id) {
			<-w.done // routed meanwhile (the connection ended): take it
		}
		return false, errPeerGone
	}
	t.Reset(d)
	select {
	case <-w.done:
		t.Stop()
		if w.gone {
			return true, errPeerGone
		}
		return true, nil
	case <-t.C:
		if !pc.forget(id) {
			<-w.done // routed just now: take it, so that the next call waits for its own
		}
		return true, errPeerLate
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

// leasePeers are a lease's peers, with their clients looked up once for
// the lease, and what the stage-20 events of its requests share but for
// the head.
type leasePeers struct {
	peers   []contract.Peer
	clients []*peerClient // nil: unreachable (the requests go to the host)
	ev      transport.PeerEvent
	wait    peerWait
	times   [][]time.Duration // by peer, the time of each call, when the lease asks (Lease.PeerTimes)
}

// leasePeers looks up the peers of ev's lease; nil when it has none.
func (rt *runtime) leasePeers(c *Conn, ev *transport.Event) *leasePeers {
	if len(ev.Lease.Peers) == 0 {
		return nil
	}
	lp := &leasePeers{peers: ev.Lease.Peers, clients: make([]*peerClient, len(ev.Lease.Peers)),
		wait: peerWait{done: make(chan struct{}, 1)}}
	var err error
	if lp.ev, err = transport.NewPeerEvent(c, ev.VHost); err != nil {
		return lp // no clients: every request goes to the host
	}
	for i := range lp.peers {
		lp.clients[i] = rt.peers.get(lp.peers[i].Socket)
	}
	if ev.Lease.PeerTimes {
		lp.times = make([][]time.Duration, len(lp.peers))
	}
	return lp
}

// report puts the times of the lease's peer calls in its reply, when the
// lease asks for them.
func (lp *leasePeers) report(rep *transport.Reply) {
	if lp != nil && lp.times != nil {
		rep.PeerTimes = lp.times
	}
}

// clearTimes forgets the times reported (see leaseRun.report).
func (lp *leasePeers) clearTimes() {
	if lp == nil {
		return
	}
	for i := range lp.times {
		lp.times[i] = lp.times[i][:0]
	}
}

// ask runs stage 20 at the lease's peers for the request whose head is
// head, in order, until one closes or responds (the host's rules:
// pluginhost.Host.Request). A peer whose connection ended was not asked:
// the request goes back to the host (and the next lease connects anew).
func (lp *leasePeers) ask(cs *connState, head string) peerOutcome {
	if lp == nil {
		return peerOutcome{}
	}
	w := &lp.wait
	for i := range lp.peers {
		p, pc := &lp.peers[i], lp.clients[i]
		if pc == nil {
			return peerOutcome{toHost: true}
		}
		var start time.Time
		if lp.times != nil { // the clock is read only when the times are reported
			start = time.Now()
		}
		sent, err := pc.call(w, lp.ev, head, p.DeadlineAt(contract.StageRequest), cs.peerTimer())
		if sent && lp.times != nil {
			lp.times[i] = append(lp.times[i], time.Since(start))
		}
		switch {
		case err != nil && !sent:
			return peerOutcome{toHost: true}
		case err != nil || w.r.Err != "":
			if p.Policy != contract.FailOpen {
				return peerOutcome{verdict: Respond, reply: contract.Unavailable()}
			}
		case w.r.Verdict == Close:
			return peerOutcome{verdict: Close}
		case w.r.Verdict == Respond:
			out := w.r.Reply
			return peerOutcome{verdict: Respond, reply: &out}
		}
	}
	return peerOutcome{}
}

// peerTimer returns the connection's timer for peer calls, stopped.
func (cs *connState) peerTimer() *time.Timer {
	if cs.ptimer == nil {
		cs.ptimer = time.NewTimer(time.Hour)
		cs.ptimer.Stop()
	}
	return cs.ptimer
}

// listenPeers opens the plugin's peer socket at path, where lease holders
// connect to call its stage-20 hook (peer_calls); a socket it cannot open
// is logged, and the plugin goes without (the host then calls it for
// every request itself).
func (rt *runtime) listenPeers(path string) {
	ln, err := net.Listen("unix", path)
	if err != nil {
		Logger().Warn("no peer socket: a lease holder cannot call this plugin, the host does", "socket", path, "error", err)
		return
	}
	rt.peerLn = ln
	go func() { // ends when the listener fails (the process is ending)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			rt.servePeer(c.(*net.UnixConn))
		}
	}()
}

// servePeer answers a lease holder's stage-20 events on c until it closes.
func (rt *runtime) servePeer(c *net.UnixConn) {
	f := transport.NewPeerFrames(c)
	go func() { // ends when the lease holder closes the connection
		for {
			call := new(transport.PeerCall)
			if err := f.Recv(call); err != nil {
				break
			}
			if call.Kind != transport.EventRequest || rt.request == nil {
				_ = f.Send(&transport.Reply{ID: call.ID, Err: "a peer socket takes stage-20 events only"})
				continue
			}
			rt.workers.run(rt, job{peer: call, pf: f})
		}
		f.Close()
	}()
}

// answerPeer runs the stage-20 hook for a lease holder's call and sends
// the reply; a panicking hook fails the call, as on the host's socket.
func (rt *runtime) answerPeer(call *transport.PeerCall, f *transport.PeerFrames) {
	rep := transport.Reply{ID: call.ID}
	defer func() {
		if v := recover(); v != nil {
			Logger().Error("handler panicked", "stage", transport.EventRequest, "panic", v)
			rep = transport.Reply{ID: call.ID, Err: fmt.Sprint("plugin panicked: ", v)}
		}
		_ = f.Send(&rep) // fails only once the holder's connection ended
	}()
	rt.stageRequest(&call.Conn, call.Head, call.VHost, &rep)
}
