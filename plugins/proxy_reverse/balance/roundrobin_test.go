package balance

import (
	"net/netip"
	"sync"
	"testing"
)

func TestRoundRobin(t *testing.T) {
	a, b := netip.MustParseAddrPort("10.0.0.1:80"), netip.MustParseAddrPort("10.0.0.2:80")
	repeated := &list{}
	repeated.add(a, 1)
	repeated.add(a, 1)
	repeated.add(b, 1)
	for _, tc := range []struct {
		name  string
		s     *list
		calls int
		want  string
	}{
		{"rotation", servers(3), 4, "[[0 1 2] [1 2 0] [2 0 1] [0 1 2]]"},
		{"load does not matter", loads(5, 0), 3, "[[0 1] [1 0] [0 1]]"},
		{"weight by repetition", repeated, 3, "[[0 1 2] [1 2 0] [2 0 1]]"},
		{"empty", servers(0), 1, "[[]]"},
	} {
		if got := str(orders(t, &RoundRobin{}, tc.s, Request{}, tc.calls)); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// Concurrent callers of the lockless cursor still get every slot equally.
func TestRoundRobinConcurrent(t *testing.T) {
	pk := (&RoundRobin{}).Picker(servers(3))
	var mu sync.Mutex
	count := map[int]int{}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				v := pk.Order(nil, Request{})[0]
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

// The cursor belongs to the policy: a new picker (after re-resolution)
// goes on where the old one stopped.
func TestRoundRobinCursorSurvivesNewList(t *testing.T) {
	p := &RoundRobin{}
	p.Picker(servers(3)).Order(nil, Request{})
	if got := str(p.Picker(servers(3)).Order(nil, Request{})); got != "[1 2 0]" {
		t.Fatalf("second picker started at %s", got)
	}
}
