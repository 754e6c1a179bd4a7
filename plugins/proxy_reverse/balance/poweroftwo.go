package balance

import "math/rand/v2"

const powerOfTwoName = "power-of-two"

func init() {
	register(Info{Name: powerOfTwoName, Aliases: []string{"power-of-two-choices", "p2c"},
		New: func(args []string) (Policy, error) { return &PowerOfTwo{}, noArgs(args) }})
}

// PowerOfTwo is "the power of two random choices" (Envoy's and Traefik's
// default for uneven backends): it draws two different slots at random and
// tries first the one whose server has fewer requests in flight (the first
// drawn on a tie), then the other, then the rest in turn. Unlike
// Least-Connections it needs no scan of every server, and concurrent
// proxies that see the same counts do not all pile onto the same least
// loaded server.
type PowerOfTwo struct {
	// Rand returns a random number; nil means math/rand/v2's lock-free
	// generator. Tests set it to fix the draws.
	Rand func() uint64
}

// Name implements Policy.
func (*PowerOfTwo) Name() string { return powerOfTwoName }

// Picker implements Policy.
func (p *PowerOfTwo) Picker(s Slots) Picker {
	r := p.Rand
	if r == nil {
		r = rand.Uint64
	}
	return powerOfTwoPicker{r, s}
}

type powerOfTwoPicker struct {
	rand func() uint64
	s    Slots
}

func (p powerOfTwoPicker) Order(dst []int, _ Request) []int {
	n := p.s.Len()
	if n < 2 {
		return rotate(dst, n, 0)
	}
	a := int(p.rand() % uint64(n))
	b := int(p.rand() % uint64(n-1))
	if b >= a { // b is drawn from the n-1 slots other than a
		b++
	}
	if p.s.Active(b) < p.s.Active(a) {
		a, b = b, a
	}
	return appendRest(append(dst[:0], a, b), n, b+1)
}
