package balance

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/capuchin/capuchin/api/http1"
)

func head(path string, fields ...string) *http1.Request {
	r := &http1.Request{Path: path}
	for i := 0; i+1 < len(fields); i += 2 {
		r.Header = append(r.Header, http1.Field{Name: fields[i], Value: fields[i+1]})
	}
	return r
}

// Which part of the request is the key: two requests hash alike exactly
// when their keys are equal; a missing header or cookie falls back to the
// client address.
func TestConsistentHashKey(t *testing.T) {
	c1, c2 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	for _, tc := range []struct {
		name   string
		key    HashKey
		a, b   Request
		sameAs bool
	}{
		{"client: same address", HashKey{}, Request{Client: c1, Head: head("/a")}, Request{Client: c1, Head: head("/b")}, true},
		{"client: other address", HashKey{}, Request{Client: c1}, Request{Client: c2}, false},
		{"path: same path, other clients", HashKey{Kind: KeyPath}, Request{Client: c1, Head: head("/a")}, Request{Client: c2, Head: head("/a")}, true},
		{"path: other path", HashKey{Kind: KeyPath}, Request{Client: c1, Head: head("/a")}, Request{Client: c1, Head: head("/b")}, false},
		{"header: same value, any case of name", HashKey{Kind: KeyHeader, Name: "X-User"},
			Request{Client: c1, Head: head("/", "X-User", "ann")}, Request{Client: c2, Head: head("/x", "x-user", "ann")}, true},
		{"header: other value", HashKey{Kind: KeyHeader, Name: "X-User"},
			Request{Client: c1, Head: head("/", "X-User", "ann")}, Request{Client: c1, Head: head("/", "X-User", "bob")}, false},
		{"header missing: the client", HashKey{Kind: KeyHeader, Name: "X-User"},
			Request{Client: c1, Head: head("/")}, Request{Client: c1}, true},
		{"cookie: same value among others", HashKey{Kind: KeyCookie, Name: "sid"},
			Request{Client: c1, Head: head("/", "Cookie", "a=1; sid=42")}, Request{Client: c2, Head: head("/", "Cookie", "x=y", "cookie", `sid="42";b=2`)}, true},
		{"cookie: other value", HashKey{Kind: KeyCookie, Name: "sid"},
			Request{Client: c1, Head: head("/", "Cookie", "sid=42")}, Request{Client: c1, Head: head("/", "Cookie", "sid=43")}, false},
		{"cookie names are case-sensitive", HashKey{Kind: KeyCookie, Name: "sid"},
			Request{Client: c1, Head: head("/", "Cookie", "SID=42")}, Request{Client: c1}, true},
		{"cookie missing: the client", HashKey{Kind: KeyCookie, Name: "sid"},
			Request{Client: c1, Head: head("/", "Cookie", "a=1")}, Request{Client: c1, Head: head("/b")}, true},
	} {
		if same := tc.key.hash(tc.a) == tc.key.hash(tc.b); same != tc.sameAs {
			t.Errorf("%s: same hash %v, want %v", tc.name, same, tc.sameAs)
		}
	}
}

func TestConsistentHashName(t *testing.T) {
	for _, tc := range []struct{ args, want string }{
		{"", "consistent-hash client"}, {"path", "consistent-hash path"},
		{"header X-User", "consistent-hash header X-User"}, {"Cookie sid", "consistent-hash cookie sid"},
	} {
		s, err := Parse("consistent-hash " + tc.args)
		if err != nil {
			t.Fatal(err)
		}
		if p, _ := s.New(); p.Name() != tc.want {
			t.Errorf("%q: %s, want %s", tc.args, p.Name(), tc.want)
		}
	}
}

const keys = 10000

// owners returns, for each of the 10,000 keys user-0 ... user-9999, the
// address its order puts first and second.
func owners(s *list) (first, second []netip.AddrPort) {
	pk := (&ConsistentHash{Key: HashKey{Kind: KeyHeader, Name: "X-User"}}).Picker(s)
	buf := make([]int, 0, s.Len())
	for i := 0; i < keys; i++ {
		buf = pk.Order(buf, Request{Head: head("/", "X-User", fmt.Sprint("user-", i))})
		first = append(first, s.Addr(buf[0]))
		if len(buf) > 1 {
			second = append(second, s.Addr(buf[1]))
		}
	}
	return first, second
}

// Removing one of N servers moves about 1/N of 10,000 keys and no other;
// a removed (or down) server's keys go to their next server on the ring,
// spread over all the others.
func TestConsistentHashRemoval(t *testing.T) {
	const n = 10
	ten := servers(n)
	before, next := owners(ten)
	share := map[netip.AddrPort]int{}
	for _, a := range before {
		share[a]++
	}
	for a, c := range share {
		if c < keys/n/2 || c > keys/n*3/2 {
			t.Errorf("server %v holds %d of %d keys over %d servers", a, c, keys, n)
		}
	}
	gone := ten.addrs[3]
	nine := &list{addrs: slices.Delete(slices.Clone(ten.addrs), 3, 4), active: make([]int64, n-1), weight: ten.weight[1:]}
	after, _ := owners(nine)
	moved, to := 0, map[netip.AddrPort]int{}
	for k := range before {
		switch {
		case before[k] != gone && after[k] != before[k]:
			t.Fatalf("key %d moved from %v to %v though %v was removed", k, before[k], after[k], gone)
		case before[k] == gone:
			moved++
			to[after[k]]++
			if after[k] != next[k] {
				t.Fatalf("key %d: fail-over to %v, after removal on %v", k, next[k], after[k])
			}
		}
	}
	t.Logf("removing 1 of %d servers moved %d of %d keys, to %d servers", n, moved, keys, len(to))
	if moved > keys/n*3/2 || len(to) != n-1 {
		t.Errorf("removing 1 of %d servers moved %d of %d keys to %d servers, want all %d others", n, moved, keys, len(to), n-1)
	}
	for a, c := range to {
		if c > 3*moved/(n-1) {
			t.Errorf("%v took %d of the removed server's %d keys", a, c, moved)
		}
	}
}

// Adding an 11th server moves about 1/11 of the keys, all to it.
func TestConsistentHashAddition(t *testing.T) {
	const n = 10
	all := servers(n + 1)
	before, _ := owners(&list{addrs: all.addrs[:n], active: all.active[:n], weight: all.weight[:n]})
	grown, _ := owners(all)
	added := 0
	for k := range before {
		if grown[k] != before[k] {
			added++
			if grown[k] != all.addrs[n] {
				t.Fatalf("adding %v moved key %d from %v to %v", all.addrs[n], k, before[k], grown[k])
			}
		}
	}
	t.Logf("adding an 11th server moved %d of %d keys", added, keys)
	if added == 0 || added > keys/(n+1)*3/2 {
		t.Errorf("adding an 11th server moved %d of %d keys", added, keys)
	}
}

// weight=N is N times the points: N times the keys.
func TestConsistentHashWeights(t *testing.T) {
	for _, tc := range []struct {
		name   string
		s      *list
		lo, hi map[int]int // per slot, of 10,000 keys
	}{
		{"1:3", weights(1, 3), map[int]int{0: 1800, 1: 6800}, map[int]int{0: 3200, 1: 8200}},
		{"1:1:2", weights(1, 1, 2), map[int]int{0: 1800, 1: 1800, 2: 4000}, map[int]int{0: 3200, 1: 3200, 2: 6000}},
		{"repetition counts too", func() *list {
			l := servers(2)
			l.add(l.addrs[0], 1)
			return l
		}(), map[int]int{0: 2500, 1: 2500, 2: 2500}, map[int]int{0: 4200, 1: 4200, 2: 4200}},
	} {
		count := map[int]int{}
		pk := (&ConsistentHash{Key: HashKey{Kind: KeyPath}}).Picker(tc.s)
		for i := 0; i < keys; i++ {
			count[pk.Order(nil, Request{Head: head(fmt.Sprint("/p/", i))})[0]]++
		}
		for slot := range tc.lo {
			if count[slot] < tc.lo[slot] || count[slot] > tc.hi[slot] {
				t.Errorf("%s: %v, slot %d outside %d..%d", tc.name, count, slot, tc.lo[slot], tc.hi[slot])
			}
		}
	}
}

// A huge list is scaled down to maxRingPoints and still orders every slot.
func TestConsistentHashBigList(t *testing.T) {
	s := servers(1000)
	for i := range s.weight {
		s.weight[i] = 256
	}
	r := (&ConsistentHash{}).Picker(s).(*ring)
	if len(r.points) > maxRingPoints+s.Len() || len(r.points) < maxRingPoints/2 {
		t.Fatalf("%d points", len(r.points))
	}
	checkPermutation(t, r.Order(nil, request()), 1000)
}
