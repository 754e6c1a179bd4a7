package balance

import (
	"testing"
)

func TestFirstAlive(t *testing.T) {
	for _, tc := range []struct {
		name  string
		s     *list
		calls int
		want  string
	}{
		{"always the first", servers(3), 3, "[[0 1 2] [0 1 2] [0 1 2]]"},
		{"load does not matter", loads(9, 0), 2, "[[0 1] [0 1]]"},
		{"one", servers(1), 1, "[[0]]"},
		{"empty", servers(0), 1, "[[]]"},
	} {
		if got := str(orders(t, FirstAlive{}, tc.s, Request{}, tc.calls)); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
