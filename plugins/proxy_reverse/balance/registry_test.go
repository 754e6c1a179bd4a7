package balance

import (
	"strings"
	"testing"
)

func TestParseSpellings(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []string
	}{
		{"naive", []string{"naive", "Naive", "NAIVE"}},
		{"first-alive", []string{"first-alive", "First-Alive", "FirstAlive", "first_alive", "First Alive"}},
		{"roundrobin", []string{"roundrobin", "Round-Robin", "Lockless-Round-Robin", "round_robin",
			"Weighted-Round-Robin", "Lockless Weighted Round Robin"}},
		{"lockingroundrobin", []string{"Locking-Round-Robin", "LockedRoundRobin"}},
		{"leastconnections", []string{"Least-Connections", "least-connection", "leastconn", "Least Connections"}},
		{"sourcehash", []string{"Source-Hash", "source_hash"}},
		{"power-of-two", []string{"Power-Of-Two", "PowerOfTwo", "p2c", "power-of-two-choices"}},
		{"consistent-hash", []string{"Consistent-Hash", "consistent-hash header X-User", "Ring-Hash cookie sid",
			"Consistent Hash path", "ketama client"}},
		{"smooth-weighted-round-robin", []string{"Smooth-Weighted-Round-Robin", "swrr", "Smooth-Round-Robin"}},
	} {
		for _, v := range tc.values {
			s, err := Parse(v)
			if err != nil || s.Name() != tc.name {
				t.Errorf("%q: %v %v, want %s", v, s.Name(), err, tc.name)
			}
			if p, err := s.New(); err != nil || !strings.HasPrefix(p.Name(), tc.name) {
				t.Errorf("%q: policy %v %v", v, p, err)
			}
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ value, want string }{
		{"fastest", `unknown balancer "fastest" (want consistent-hash [client | path | header NAME | cookie NAME] (or ring-hash, ketama), first-alive, leastconnections (or least-connections, least-connection, leastconn), lockingroundrobin (or locking-round-robin, locked-round-robin), naive, power-of-two (or power-of-two-choices, p2c), roundrobin (or round-robin, lockless-round-robin, weighted-round-robin, lockless-weighted-round-robin), smooth-weighted-round-robin (or smooth-round-robin, swrr), sourcehash (or source-hash))`},
		{"", `unknown balancer ""`},
		{"round robin now", `roundrobin: takes no arguments, got "now"`},
		{"consistent-hash header", `consistent-hash: want client, path, header NAME or cookie NAME, got "header"`},
		{"consistent-hash cookie a=b", `consistent-hash: want client, path, header NAME or cookie NAME, got "cookie a=b"`},
		{"consistent-hash path /x", `consistent-hash: want client, path`},
		{"consistent-hash query", `consistent-hash: want client, path`},
	} {
		_, err := Parse(tc.value)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %s", tc.value, err, tc.want)
		}
	}
}

// One default: the zero Spec is Default, and Default is registered.
func TestDefault(t *testing.T) {
	var zero Spec
	p, err := zero.New()
	if err != nil || zero.Name() != Default || p.Name() != Default || zero.String() != Default {
		t.Fatalf("zero Spec: %s %v %v", zero.Name(), p, err)
	}
	if s, err := Parse(Default); err != nil || s.Name() != zero.Name() {
		t.Fatalf("Default %q does not parse: %v", Default, err)
	}
}

// Every name is registered once, with its policy's own name.
func TestRegistry(t *testing.T) {
	names := map[string]bool{}
	for _, in := range infos {
		if names[in.Name] {
			t.Errorf("%s registered twice", in.Name)
		}
		names[in.Name] = true
		p, err := in.New(nil)
		if err != nil || !strings.HasPrefix(p.Name(), in.Name) {
			t.Errorf("%s: builds %v %v", in.Name, p, err)
		}
		for _, a := range append(in.Aliases, in.Name) {
			if registry[normalize(a)] != in {
				t.Errorf("%s: alias %q resolves to %v", in.Name, a, registry[normalize(a)])
			}
		}
	}
	if len(names) != 9 {
		t.Errorf("%d balancers registered: %v", len(names), names)
	}
	if got := WeightedNames(); got != "consistent-hash, smooth-weighted-round-robin" {
		t.Errorf("weighted: %s", got)
	}
	s, _ := Parse("Consistent-Hash header X-User")
	if s.String() != "consistent-hash header X-User" || !s.Weighted() {
		t.Errorf("spec %s weighted=%v", s, s.Weighted())
	}
}
