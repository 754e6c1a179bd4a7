package balance

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/capuchin/capuchin/api/http1"
)

// list is a test server list: slot i is server addrs[i] with active[i]
// requests in flight and weight weight[i].
type list struct {
	addrs  []netip.AddrPort
	active []int64
	weight []int
}

func (l *list) Len() int                  { return len(l.addrs) }
func (l *list) Active(i int) int64        { return l.active[i] }
func (l *list) Weight(i int) int          { return l.weight[i] }
func (l *list) Addr(i int) netip.AddrPort { return l.addrs[i] }

// servers returns n idle servers 10.0.<i/250>.<i%250+1>:80 of weight 1.
func servers(n int) *list {
	l := &list{}
	for i := 0; i < n; i++ {
		l.add(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i / 250), byte(i%250 + 1)}), 80), 1)
	}
	return l
}

func (l *list) add(ap netip.AddrPort, w int) {
	l.addrs, l.active, l.weight = append(l.addrs, ap), append(l.active, 0), append(l.weight, w)
}

// loads returns idle servers whose in-flight counts are given.
func loads(a ...int64) *list {
	l := servers(len(a))
	copy(l.active, a)
	return l
}

// weights returns servers of the given weights.
func weights(w ...int) *list {
	l := servers(len(w))
	copy(l.weight, w)
	return l
}

// orders builds a picker of p over s and returns calls orders for r,
// checking that each is a permutation of the slots.
func orders(t *testing.T, p Policy, s Slots, r Request, calls int) [][]int {
	t.Helper()
	pk := p.Picker(s)
	var out [][]int
	for i := 0; i < calls; i++ {
		o := pk.Order(nil, r)
		checkPermutation(t, o, s.Len())
		out = append(out, o)
	}
	return out
}

func checkPermutation(t *testing.T, o []int, n int) {
	t.Helper()
	s := slices.Clone(o)
	slices.Sort(s)
	for i := range s {
		if s[i] != i || len(s) != n {
			t.Fatalf("order %v is not a permutation of %d slots", o, n)
		}
	}
	if len(s) != n {
		t.Fatalf("order %v is not a permutation of %d slots", o, n)
	}
}

// firsts counts, over calls orders, how often each slot comes first.
func firsts(t *testing.T, p Policy, s Slots, r Request, calls int) map[int]int {
	t.Helper()
	count := map[int]int{}
	for _, o := range orders(t, p, s, r, calls) {
		count[o[0]]++
	}
	return count
}

func str(v any) string { return fmt.Sprint(v) }

// A request with a path, a header and cookies, for the keyed policies.
func request() Request {
	return Request{Client: netip.MustParseAddr("192.0.2.7"), Head: &http1.Request{Path: "/a/b",
		Header: http1.Header{{Name: "X-User", Value: "alice"}, {Name: "Cookie", Value: "a=1; sid=xyz"}}}}
}

// Every registered policy: a permutation for every list size, the same
// picker shared by concurrent requests, and no allocation per request.
func TestEveryPolicy(t *testing.T) {
	for _, in := range infos {
		for _, args := range argsOf(in) {
			p, err := in.New(args)
			if err != nil {
				t.Fatalf("%s %v: %v", in.Name, args, err)
			}
			for _, n := range []int{0, 1, 2, 3, 7, 20} {
				orders(t, p, servers(n), request(), 10)
			}
			concurrent(t, p.Picker(servers(5)))
			pk, buf, r := p.Picker(weights(1, 2, 3, 1, 1)), make([]int, 0, 16), request()
			if a := testing.AllocsPerRun(200, func() { buf = pk.Order(buf, r) }); a != 0 {
				t.Errorf("%s %v: %v allocations per Order", in.Name, args, a)
			}
		}
	}
}

func argsOf(in *Info) [][]string {
	if in.Args == "" {
		return [][]string{nil}
	}
	return [][]string{nil, {"path"}, {"header", "X-User"}, {"cookie", "sid"}}
}

func concurrent(t *testing.T, pk Picker) {
	t.Helper()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []int
			for i := 0; i < 200; i++ {
				buf = pk.Order(buf, request())
			}
		}()
	}
	wg.Wait()
}
