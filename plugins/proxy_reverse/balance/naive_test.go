package balance

import (
	"testing"
	"time"
)

func TestNaive(t *testing.T) {
	at := func(ms int64) func() time.Time { return func() time.Time { return time.UnixMilli(ms) } }
	for _, tc := range []struct {
		name string
		now  int64
		s    *list
		want string
	}{
		{"at 0ms", 0, servers(3), "[[0 1 2]]"},
		{"at 7ms", 7, servers(3), "[[1 2 0]]"},
		{"at 8ms", 8, servers(3), "[[2 0 1]]"},
		{"at 5ms of 5", 5, servers(5), "[[0 1 2 3 4]]"},
		{"empty", 3, servers(0), "[[]]"},
	} {
		if got := str(orders(t, &Naive{Now: at(tc.now)}, tc.s, Request{}, 1)); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
