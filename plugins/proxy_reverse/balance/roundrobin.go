package balance

import "sync/atomic"

const roundRobinName = "roundrobin"

func init() {
	register(Info{Name: roundRobinName,
		Aliases: []string{"round-robin", "lockless-round-robin", "weighted-round-robin", "lockless-weighted-round-robin"},
		New:     func(args []string) (Policy, error) { return &RoundRobin{}, noArgs(args) }})
}

// RoundRobin is Monkey's lockless round robin: a shared cursor advanced with
// one atomic add per request, so concurrent requests never wait on each
// other. Repeated servers in the ServerList get proportionally more turns.
type RoundRobin struct {
	next atomic.Uint64
}

// Name implements Policy.
func (*RoundRobin) Name() string { return roundRobinName }

// Picker implements Policy.
func (p *RoundRobin) Picker(s Slots) Picker { return roundRobinPicker{&p.next, s.Len()} }

type roundRobinPicker struct {
	next *atomic.Uint64
	n    int
}

func (p roundRobinPicker) Order(dst []int, _ Request) []int {
	if p.n == 0 {
		return dst[:0]
	}
	start := (p.next.Add(1) - 1) % uint64(p.n)
	return rotate(dst, p.n, int(start))
}
