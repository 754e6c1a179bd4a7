package pluginhost

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/capuchin/capuchin/internal/contract"
	"github.com/capuchin/capuchin/internal/transport"
)

// Peer calls (docs/plugin-contract.md, "Stage 20 under a lease"): a
// stage-20 plugin that sees every request and declares peer_calls does
// not end leases. The host links the lease holder's process to it with a
// framed socketpair, passing one end to each on their descriptor sockets,
// and names it in the lease (Lease.Peers); the holder then asks it about
// every leased request itself. One pair serves every lease between two
// processes; a process that ends closes its ends, and the next lease gets
// a new pair to its successor.

// peerSendWait bounds the wait for room in a descriptor socket.
const peerSendWait = time.Second

// peerLinks are the pairs between running processes, and the peer terms
// last built for a holder.
type peerLinks struct {
	mu    sync.Mutex
	next  uint64
	pairs map[[2]*instance]uint64 // (holder, peer) -> pair number
	last  peerTerms
}

// peerTerms is a holder's Lease.Peers for one set of peer processes.
type peerTerms struct {
	snap   *snapshot // the terms (deadline, policy) are the snapshot's
	holder *instance
	peers  []*instance
	terms  []contract.Peer // shared by every lease: never modified
}

// terms returns the Lease.Peers for a lease held by holder; false when one
// of the peers is down or cannot be linked (the host then grants no lease
// and runs stage 20 itself).
func (l *peerLinks) terms(s *snapshot, holder *plugin) ([]contract.Peer, bool) {
	peers := s.peers
	hin := holder.inst.Load()
	if hin == nil {
		return nil, false
	}
	ins := make([]*instance, len(peers))
	for i, p := range peers {
		if ins[i] = p.inst.Load(); ins[i] == nil {
			return nil, false
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last.snap == s && l.last.holder == hin && slices.Equal(l.last.peers, ins) {
		return l.last.terms, true
	}
	terms := make([]contract.Peer, len(peers))
	for i, p := range peers {
		n, err := l.link(hin, ins[i])
		if err != nil {
			p.log.Warn("cannot link to the lease holder; leases are off until it can", "holder", holder.spec.Name, "error", err)
			return nil, false
		}
		t := p.termsAt(contract.StageRequest)
		terms[i] = contract.Peer{Name: p.spec.Name, Channel: transport.PeerCall | n,
			Limits: contract.Limits{Deadline: t.deadline, Policy: policyOf(t)}}
	}
	l.last = peerTerms{snap: s, holder: hin, peers: ins, terms: terms}
	return terms, true
}

// link returns the number of the pair between holder and peer, passing a
// new pair's ends to both first. Pairs of processes that ended are
// forgotten.
func (l *peerLinks) link(holder, peer *instance) (uint64, error) {
	key := [2]*instance{holder, peer}
	if n, ok := l.pairs[key]; ok && !holder.ended() && !peer.ended() {
		return n, nil
	}
	for k := range l.pairs {
		if k[0].ended() || k[1].ended() {
			delete(l.pairs, k)
		}
	}
	if holder.fds == nil || peer.fds == nil {
		return 0, fmt.Errorf("no descriptor socket")
	}
	serve, call, err := transport.SocketPair("peer-serve", "peer-call")
	if err != nil {
		return 0, err
	}
	defer serve.Close() // the plugins hold their own copies once sent
	defer call.Close()
	l.next++
	n := l.next
	if err := sendEnd(peer, transport.PeerServe|n, serve); err != nil {
		return 0, err
	}
	if err := sendEnd(holder, transport.PeerCall|n, call); err != nil {
		return 0, err // the peer's end sees EOF when ours closes
	}
	if l.pairs == nil {
		l.pairs = map[[2]*instance]uint64{}
	}
	l.pairs[key] = n
	return n, nil
}

// sendEnd passes one end of a peer pair to in.
func sendEnd(in *instance, tag uint64, f *os.File) error {
	if err := in.fds.Send(tag, f, time.Now().Add(peerSendWait)); err != nil {
		return fmt.Errorf("peer socket: %w", err)
	}
	return nil
}

// policyOf is the policy of terms t.
func policyOf(t *terms) contract.Policy {
	if t.failOpen {
		return contract.FailOpen
	}
	return contract.FailClosed
}
