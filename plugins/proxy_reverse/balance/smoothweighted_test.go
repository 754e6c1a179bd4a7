package balance

import "testing"

// firstSeq returns the first slot of calls successive orders.
func firstSeq(t *testing.T, p Policy, s Slots, calls int) []int {
	var out []int
	for _, o := range orders(t, p, s, Request{}, calls) {
		out = append(out, o[0])
	}
	return out
}

func TestSmoothWeighted(t *testing.T) {
	for _, tc := range []struct {
		name  string
		s     *list
		calls int
		want  string
	}{
		{"nginx's example 5,1,1", weights(5, 1, 1), 14, "[0 0 1 0 2 0 0 0 0 1 0 2 0 0]"},
		{"3,1: no burst", weights(3, 1), 8, "[0 0 1 0 0 0 1 0]"},
		{"equal weights are round robin", weights(1, 1, 1), 4, "[0 1 2 0]"},
		{"weights reduced by their gcd", weights(2, 4), 6, "[1 0 1 1 0 1]"},
		{"heavy last", weights(1, 1, 4), 6, "[2 0 2 1 2 2]"},
		{"one", weights(9), 2, "[0 0]"},
	} {
		if got := str(firstSeq(t, &SmoothWeighted{}, tc.s, tc.calls)); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	if got := str(orders(t, &SmoothWeighted{}, weights(5, 1, 1), Request{}, 3)); got != "[[0 1 2] [0 1 2] [1 2 0]]" {
		t.Errorf("fail-over orders %s", got)
	}
	if got := str(orders(t, &SmoothWeighted{}, weights(), Request{}, 1)); got != "[[]]" {
		t.Errorf("empty: %s", got)
	}
}

// Over whole periods every slot gets exactly its share, and the heavy one
// never runs longer than nginx lets it (across the end of a period too:
// 5,1,1 is a a b a c a a, then a a again).
func TestSmoothWeightedShares(t *testing.T) {
	for _, tc := range []struct {
		w      []int
		maxRun int
	}{
		{[]int{5, 1, 1}, 4}, {[]int{3, 1}, 3}, {[]int{10, 1}, 10}, {[]int{256, 255, 3}, 2},
	} {
		total := 0
		for _, w := range tc.w {
			total += w
		}
		seq := firstSeq(t, &SmoothWeighted{}, weights(tc.w...), 3*total)
		count, run, longest := map[int]int{}, 0, 0
		for i, v := range seq {
			count[v]++
			if run++; i > 0 && v != seq[i-1] {
				run = 1
			}
			longest = max(longest, run)
		}
		for i, w := range tc.w {
			if count[i] != 3*w {
				t.Errorf("weights %v: %v", tc.w, count)
			}
		}
		if longest > tc.maxRun {
			t.Errorf("weights %v: a run of %d, want at most %d", tc.w, longest, tc.maxRun)
		}
	}
}
