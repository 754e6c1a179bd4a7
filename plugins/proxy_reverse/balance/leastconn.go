package balance

import "sync/atomic"

const leastConnName = "leastconnections"

func init() {
	register(Info{Name: leastConnName, Aliases: []string{"least-connections", "least-connection", "leastconn"},
		New: func(args []string) (Policy, error) { return &LeastConn{}, noArgs(args) }})
}

// LeastConn tries the slot whose server has the fewest requests in flight
// first, then the others by increasing load. Ties go round robin, so equally
// loaded servers share the traffic (a repeated server wins ties more often).
type LeastConn struct {
	next atomic.Uint64
}

// Name implements Policy.
func (*LeastConn) Name() string { return leastConnName }

// Picker implements Policy.
func (p *LeastConn) Picker(s Slots) Picker { return leastConnPicker{&p.next, s} }

type leastConnPicker struct {
	next *atomic.Uint64
	s    Slots
}

func (p leastConnPicker) Order(dst []int, _ Request) []int {
	s := p.s
	n := s.Len()
	if n == 0 {
		return dst[:0]
	}
	dst = rotate(dst, n, int((p.next.Add(1)-1)%uint64(n)))
	// Insertion sort by load: stable, so the rotation breaks ties, and
	// allocation-free; n is a ServerList's length.
	for i := 1; i < n; i++ {
		v, load := dst[i], s.Active(dst[i])
		j := i
		for j > 0 && s.Active(dst[j-1]) > load {
			dst[j] = dst[j-1]
			j--
		}
		dst[j] = v
	}
	return dst
}
