package balance

import "testing"

func TestLockingRoundRobin(t *testing.T) {
	for _, tc := range []struct {
		name  string
		s     *list
		calls int
		want  string
	}{
		{"rotation", servers(3), 4, "[[0 1 2] [1 2 0] [2 0 1] [0 1 2]]"},
		{"two", servers(2), 3, "[[0 1] [1 0] [0 1]]"},
		{"empty", servers(0), 1, "[[]]"},
	} {
		if got := str(orders(t, &LockingRoundRobin{}, tc.s, Request{}, tc.calls)); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	// The same sequence as the lockless one.
	if a, b := str(orders(t, &LockingRoundRobin{}, servers(5), Request{}, 12)),
		str(orders(t, &RoundRobin{}, servers(5), Request{}, 12)); a != b {
		t.Errorf("locking %s, lockless %s", a, b)
	}
}
