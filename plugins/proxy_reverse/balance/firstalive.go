package balance

const firstAliveName = "first-alive"

func init() {
	register(Info{Name: firstAliveName,
		New: func(args []string) (Policy, error) { return FirstAlive{}, noArgs(args) }})
}

// FirstAlive always starts at the first slot: the first server that is up
// gets every request (active/passive fail-over).
type FirstAlive struct{}

// Name implements Policy.
func (FirstAlive) Name() string { return firstAliveName }

// Picker implements Policy.
func (FirstAlive) Picker(s Slots) Picker { return firstAlivePicker(s.Len()) }

type firstAlivePicker int

func (n firstAlivePicker) Order(dst []int, _ Request) []int { return rotate(dst, int(n), 0) }
