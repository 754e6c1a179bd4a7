package balance

import (
	"fmt"
	"slices"
	"strings"
)

// Default is the balancer of an entry that names none: the name the zero
// Spec stands for.
const Default = "first-alive"

// Info declares a balancer. Each policy's file registers its Info from an
// init function (CoreDNS's plugin registry); nothing else lists names.
type Info struct {
	Name    string   // canonical name, shown on the status page
	Aliases []string // other accepted spellings
	// Args describes the arguments after the name ("" when it takes none),
	// as shown in errors.
	Args string
	// Weighted reports that the policy reads explicit weights (ServerList
	// weight=N); the others weigh by repetition only.
	Weighted bool
	// New checks the arguments and returns a new policy for one entry.
	New func(args []string) (Policy, error)
}

// registry holds every Info by normalised name and alias. It is written
// only by the init functions of this package, read-only afterwards.
var (
	registry = map[string]*Info{}
	infos    []*Info
)

// register adds info under its name and aliases. A clash is a programming
// error of this package, found by its tests.
func register(info Info) {
	in := &info
	for _, n := range append([]string{in.Name}, in.Aliases...) {
		k := normalize(n)
		if prev, ok := registry[k]; ok && prev != in { // an alias may respell the name
			panic(fmt.Sprintf("balance: %q of %s already names %s", n, in.Name, prev.Name))
		}
		registry[k] = in
	}
	infos = append(infos, in)
}

// normalize folds a spelling to lower case without '-', '_' and blanks, so
// "First-Alive", "FirstAlive" and "first_alive" are one name.
func normalize(v string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '-', '_', ' ', '\t':
			return -1
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, v)
}

// Spec is a checked LoadBalancer value: a registered balancer and its
// arguments. The zero Spec is the Default balancer.
type Spec struct {
	info *Info
	args []string
}

// Parse reads a LoadBalancer value: a registered name or alias, in any
// case, with or without '-', '_' or blanks, then the balancer's arguments
// ("Consistent-Hash header X-User", "Least Connections").
func Parse(v string) (Spec, error) {
	f := strings.Fields(v)
	for n := len(f); n > 0; n-- { // the longest run of words that is a name
		info, ok := registry[normalize(strings.Join(f[:n], ""))]
		if !ok {
			continue
		}
		s := Spec{info: info, args: f[n:]}
		if _, err := info.New(s.args); err != nil {
			return Spec{}, fmt.Errorf("%s: %w", info.Name, err)
		}
		return s, nil
	}
	return Spec{}, fmt.Errorf("unknown balancer %q (want %s)", v, Known())
}

// Known lists the registered balancers with their arguments and aliases.
func Known() string {
	list := slices.Clone(infos)
	slices.SortFunc(list, func(a, b *Info) int { return strings.Compare(a.Name, b.Name) })
	var b strings.Builder
	for i, in := range list {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(in.Name)
		if in.Args != "" {
			b.WriteString(" " + in.Args)
		}
		if len(in.Aliases) > 0 {
			b.WriteString(" (or " + strings.Join(in.Aliases, ", ") + ")")
		}
	}
	return b.String()
}

func (s Spec) get() *Info {
	if s.info == nil {
		return registry[normalize(Default)]
	}
	return s.info
}

// Name returns the canonical name of the balancer.
func (s Spec) Name() string { return s.get().Name }

// String returns the name and arguments, as the status page shows them.
func (s Spec) String() string { return strings.Join(append([]string{s.Name()}, s.args...), " ") }

// Weighted reports whether the balancer reads explicit weights.
func (s Spec) Weighted() bool { return s.get().Weighted }

// New returns a new policy for one entry.
func (s Spec) New() (Policy, error) { return s.get().New(s.args) }

// WeightedNames lists the balancers that read explicit weights.
func WeightedNames() string {
	var out []string
	for _, in := range infos {
		if in.Weighted {
			out = append(out, in.Name)
		}
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// noArgs is the argument check of a balancer that takes none.
func noArgs(args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("takes no arguments, got %q", strings.Join(args, " "))
	}
	return nil
}
