package balance

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/capuchin/capuchin/plugins/proxy_reverse/config"
)

// slots is a test server list: loads[i] is slot i's open connections.
type slots []int64

func (s slots) Len() int           { return len(s) }
func (s slots) Active(i int) int64 { return s[i] }
func (s slots) String() string     { return fmt.Sprint([]int64(s)) }
func seq(p Policy, s Slots, n int) (out [][]int) {
	for i := 0; i < n; i++ {
		out = append(out, p.Order(nil, s, netip.Addr{}))
	}
	return out
}

func TestOrders(t *testing.T) {
	at := func(ms int64) func() time.Time { return func() time.Time { return time.UnixMilli(ms) } }
	for _, tc := range []struct {
		name  string
		p     Policy
		s     slots
		calls int
		want  string
	}{
		{"first-alive", FirstAlive{}, slots{0, 0, 0}, 3, "[[0 1 2] [0 1 2] [0 1 2]]"},
		{"naive at 0ms", &Naive{Now: at(0)}, slots{0, 0, 0}, 1, "[[0 1 2]]"},
		{"naive at 7ms", &Naive{Now: at(7)}, slots{0, 0, 0}, 1, "[[1 2 0]]"},
		{"roundrobin", &RoundRobin{}, slots{0, 0, 0}, 4, "[[0 1 2] [1 2 0] [2 0 1] [0 1 2]]"},
		{"lockingroundrobin", &LockingRoundRobin{}, slots{0, 0, 0}, 4, "[[0 1 2] [1 2 0] [2 0 1] [0 1 2]]"},
		{"leastconn by load", &LeastConn{}, slots{5, 0, 2}, 1, "[[1 2 0]]"},
		{"leastconn ties rotate", &LeastConn{}, slots{1, 0, 0}, 3, "[[1 2 0] [1 2 0] [2 1 0]]"},
		{"empty", &RoundRobin{}, slots{}, 1, "[[]]"},
	} {
		if got := fmt.Sprint(seq(tc.p, tc.s, tc.calls)); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// Weight by repetition: slots 0 and 1 hold the same server.
func TestRoundRobinWeights(t *testing.T) {
	for _, p := range []Policy{&RoundRobin{}, &LockingRoundRobin{}} {
		first := map[int]int{}
		for i := 0; i < 300; i++ {
			first[p.Order(nil, slots{0, 0, 0}, netip.Addr{})[0]]++
		}
		if first[0]+first[1] != 200 || first[2] != 100 {
			t.Errorf("%s: %v", p.Name(), first)
		}
	}
}

// Concurrent callers of the lockless cursor still get every slot equally.
func TestRoundRobinConcurrent(t *testing.T) {
	p := &RoundRobin{}
	var mu sync.Mutex
	count := map[int]int{}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				v := p.Order(nil, slots{0, 0, 0}, netip.Addr{})[0]
				mu.Lock()
				count[v]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if count[0] != 400 || count[1] != 400 || count[2] != 400 {
		t.Fatalf("%v", count)
	}
}

func TestSourceHash(t *testing.T) {
	s := slots{0, 0, 0, 0}
	spread := map[int]int{}
	for i := 0; i < 200; i++ {
		a := netip.AddrFrom4([4]byte{192, 168, byte(i / 50), byte(i)})
		o := SourceHash{}.Order(nil, s, a)
		if again := (SourceHash{}).Order(nil, s, a); fmt.Sprint(o) != fmt.Sprint(again) {
			t.Fatalf("%v: %v then %v", a, o, again)
		}
		if o[1] != (o[0]+1)%4 {
			t.Fatalf("fail-over order %v", o)
		}
		spread[o[0]]++
	}
	for i := 0; i < 4; i++ {
		if spread[i] < 25 {
			t.Fatalf("200 clients over 4 slots: %v", spread)
		}
	}
	v4 := netip.MustParseAddr("10.1.2.3")
	if Hash(v4) != Hash(netip.AddrFrom16(v4.As16())) {
		t.Fatal("v4-mapped address hashes differently")
	}
}

func TestNewAndNames(t *testing.T) {
	for b, want := range map[config.Balancer]string{config.Naive: "naive", config.FirstAlive: "first-alive",
		config.RoundRobin: "roundrobin", config.LockingRoundRobin: "lockingroundrobin",
		config.LeastConnections: "leastconnections", config.SourceHash: "sourcehash"} {
		if got := New(b).Name(); got != want || b.String() != want {
			t.Errorf("%v: %s", b, got)
		}
	}
}
