package balance

import "sync"

const lockingRoundRobinName = "lockingroundrobin"

func init() {
	register(Info{Name: lockingRoundRobinName, Aliases: []string{"locking-round-robin", "locked-round-robin"},
		New: func(args []string) (Policy, error) { return &LockingRoundRobin{}, noArgs(args) }})
}

// LockingRoundRobin is round robin with its cursor under a mutex (Monkey's
// lockingroundrobin). It hands out exactly the same sequence as RoundRobin.
type LockingRoundRobin struct {
	mu   sync.Mutex
	next int
}

// Name implements Policy.
func (*LockingRoundRobin) Name() string { return lockingRoundRobinName }

// Picker implements Policy.
func (p *LockingRoundRobin) Picker(s Slots) Picker { return lockingPicker{p, s.Len()} }

type lockingPicker struct {
	p *LockingRoundRobin
	n int
}

func (l lockingPicker) Order(dst []int, _ Request) []int {
	if l.n == 0 {
		return dst[:0]
	}
	p := l.p
	p.mu.Lock()
	if p.next >= l.n {
		p.next = 0
	}
	start := p.next
	p.next++
	p.mu.Unlock()
	return rotate(dst, l.n, start)
}
