package balance

import "time"

const naiveName = "naive"

func init() {
	register(Info{Name: naiveName,
		New: func(args []string) (Policy, error) { return &Naive{Now: time.Now}, noArgs(args) }})
}

// Naive starts at a time-derived slot and tries the others in turn, as
// Monkey's naive balancer did.
type Naive struct {
	Now func() time.Time
}

// Name implements Policy.
func (*Naive) Name() string { return naiveName }

// Picker implements Policy.
func (p *Naive) Picker(s Slots) Picker { return naivePicker{p.Now, s.Len()} }

type naivePicker struct {
	now func() time.Time
	n   int
}

func (p naivePicker) Order(dst []int, _ Request) []int {
	if p.n == 0 {
		return dst[:0]
	}
	ms := p.now().UnixNano() / int64(time.Millisecond)
	return rotate(dst, p.n, int(uint64(ms)%uint64(p.n)))
}
