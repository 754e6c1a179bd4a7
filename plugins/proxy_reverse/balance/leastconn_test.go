package balance

import "testing"

func TestLeastConn(t *testing.T) {
	for _, tc := range []struct {
		name  string
		s     *list
		calls int
		want  string
	}{
		{"by load", loads(5, 0, 2), 1, "[[1 2 0]]"},
		{"ties rotate", loads(1, 0, 0), 3, "[[1 2 0] [1 2 0] [2 1 0]]"},
		{"all idle", loads(0, 0, 0), 3, "[[0 1 2] [1 2 0] [2 0 1]]"},
		{"one", loads(4), 1, "[[0]]"},
		{"empty", loads(), 1, "[[]]"},
	} {
		if got := str(orders(t, &LeastConn{}, tc.s, Request{}, tc.calls)); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// The picker reads the live counts: the same picker follows the load.
func TestLeastConnLive(t *testing.T) {
	s := loads(0, 3)
	pk := (&LeastConn{}).Picker(s)
	if o := pk.Order(nil, Request{}); o[0] != 0 {
		t.Fatalf("%v", o)
	}
	s.active[0], s.active[1] = 4, 1
	if o := pk.Order(nil, Request{}); o[0] != 1 {
		t.Fatalf("after the load changed: %v", o)
	}
}
