package balance

import "sync/atomic"

const smoothWeightedName = "smooth-weighted-round-robin"

func init() {
	register(Info{Name: smoothWeightedName, Aliases: []string{"smooth-round-robin", "swrr"}, Weighted: true,
		New: func(args []string) (Policy, error) { return &SmoothWeighted{}, noArgs(args) }})
}

// SmoothWeighted is nginx's smooth weighted round robin over the explicit
// weights (ServerList 127.0.0.1:8080 weight=3): a server of weight w gets w
// turns in every sum-of-weights requests, spread out rather than in a burst
// (weights 5,1,1 give a a b a c a a, where repetition gives a a a a a b c).
//
// nginx runs the algorithm under a lock on every request. Its output is
// periodic, so here the slow path (Picker) runs it once over one period and
// keeps the schedule, and a request only advances an atomic cursor over it
// (gRPC-Go's weighted round robin does the same with its static
// scheduler). The schedule has at most sum(weights)/gcd(weights) entries;
// weights are at most 256. After the scheduled slot the others follow in
// turn, as in Round-Robin.
type SmoothWeighted struct {
	next atomic.Uint64
}

// Name implements Policy.
func (*SmoothWeighted) Name() string { return smoothWeightedName }

// Picker implements Policy: it computes one period of the schedule.
func (p *SmoothWeighted) Picker(s Slots) Picker {
	return &smoothPicker{next: &p.next, n: s.Len(), schedule: smoothSchedule(s)}
}

type smoothPicker struct {
	next     *atomic.Uint64
	n        int
	schedule []int32
}

func (p *smoothPicker) Order(dst []int, _ Request) []int {
	if p.n == 0 {
		return dst[:0]
	}
	first := int(p.schedule[(p.next.Add(1)-1)%uint64(len(p.schedule))])
	return rotate(dst, p.n, first)
}

// smoothSchedule runs nginx's algorithm for one period: every turn, each
// slot's current weight grows by its weight, the largest (the first on a
// tie) is chosen and loses the total.
func smoothSchedule(s Slots) []int32 {
	n := s.Len()
	w := make([]int, n)
	g, total := 0, 0
	for i := range w {
		w[i] = max(1, s.Weight(i))
		g = gcd(g, w[i])
	}
	for i := range w {
		w[i] /= g
		total += w[i]
	}
	cur := make([]int, n)
	out := make([]int32, 0, total)
	for len(out) < total {
		best := 0
		for i := range cur {
			cur[i] += w[i]
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		out = append(out, int32(best))
	}
	return out
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
