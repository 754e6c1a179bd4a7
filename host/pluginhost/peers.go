package pluginhost

import (
	"slices"
	"sync"
	"time"

	"github.com/capuchin/capuchin/internal/contract"
)

// Peer calls (docs/plugin-contract.md, "Stage 20 under a lease"): a
// stage-20 plugin that sees every request and declares peer_calls does
// not end leases. It listens on its peer socket (a Unix socket at a path
// the host gives each plugin process, CAPUCHIN_PEER_SOCKET), the lease
// names it (Lease.Peers), and the holder asks it about every leased
// request itself. A process that ends takes its socket with it; the next
// lease names its successor's.

// peerTerms is the Lease.Peers of one snapshot's peer processes, built
// once and shared by every lease (never modified).
type peerTerms struct {
	mu    sync.Mutex
	snap  *snapshot
	ins   []*instance
	built []contract.Peer
}

// terms returns the Lease.Peers of s's peers; false when one of them is
// down (the host then grants no lease and runs stage 20 itself).
func (pt *peerTerms) terms(s *snapshot) ([]contract.Peer, bool) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if pt.current(s) {
		return pt.built, true
	}
	ins := make([]*instance, len(s.peers))
	for i, p := range s.peers {
		if ins[i] = p.inst.Load(); ins[i] == nil || ins[i].peerSock == "" {
			return nil, false
		}
	}
	terms := make([]contract.Peer, len(s.peers))
	for i, p := range s.peers {
		t := p.termsAt(contract.StageRequest)
		terms[i] = contract.Peer{Name: p.spec.Name, Socket: ins[i].peerSock,
			Limits: contract.Limits{Deadline: t.deadline, Policy: policyOf(t)}}
	}
	pt.snap, pt.ins, pt.built = s, ins, terms
	return terms, true
}

// current reports whether the terms built last are s's, for the peer
// processes running now.
func (pt *peerTerms) current(s *snapshot) bool {
	if pt.snap != s {
		return false
	}
	for i, p := range s.peers {
		if p.inst.Load() != pt.ins[i] {
			return false
		}
	}
	return true
}

// drainPeerLeases ends the leases that may call p, a stage-20 peer of
// snapshot old being removed, and waits (at most grace) for them to come
// back, so that no leased request is in the middle of a call to p when it
// stops: its calls from the host are waited for in the same way (stop).
func (h *Host) drainPeerLeases(old *snapshot, p *plugin, grace time.Duration) {
	if !slices.Contains(old.peers, p) || len(old.handle) == 0 {
		return
	}
	in, ids := h.revokeAll(old.handle[0])
	for end := time.Now().Add(grace); h.leases.holdsAny(in, ids) && time.Now().Before(end); {
		time.Sleep(5 * time.Millisecond)
	}
}

// policyOf is the policy of terms t.
func policyOf(t *terms) contract.Policy {
	if t.failOpen {
		return contract.FailOpen
	}
	return contract.FailClosed
}
