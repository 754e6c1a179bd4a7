package balance

import "testing"

// draws returns a Rand that yields v in turn.
func draws(v ...uint64) func() uint64 {
	i := 0
	return func() uint64 { i++; return v[(i-1)%len(v)] }
}

func TestPowerOfTwo(t *testing.T) {
	for _, tc := range []struct {
		name  string
		s     *list
		draws []uint64
		want  string
	}{
		{"tie: the first drawn", loads(0, 0, 0), []uint64{0, 0}, "[[0 1 2]]"},
		{"second drawn is less loaded", loads(5, 0, 0), []uint64{0, 0}, "[[1 0 2]]"},
		{"first drawn is less loaded", loads(0, 5, 0), []uint64{0, 0}, "[[0 1 2]]"},
		{"second draw skips the first", loads(0, 0, 0), []uint64{2, 1}, "[[2 1 0]]"},
		{"second draw below the first", loads(3, 2, 1, 0), []uint64{3, 0}, "[[3 0 1 2]]"},
		{"rest in turn after the pair", loads(0, 0, 0, 0, 0), []uint64{1, 3}, "[[1 4 0 2 3]]"},
		{"two", loads(1, 0), []uint64{0, 0}, "[[1 0]]"},
		{"one", loads(7), nil, "[[0]]"},
		{"empty", loads(), nil, "[[]]"},
	} {
		p := &PowerOfTwo{Rand: draws(append(tc.draws, 0)...)}
		if got := str(orders(t, p, tc.s, Request{}, 1)); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// With the real generator: a server busier than every other one is never
// first, and idle servers share the traffic evenly.
func TestPowerOfTwoRandom(t *testing.T) {
	for _, tc := range []struct {
		name     string
		s        *list
		min, max map[int]int
	}{
		{"busiest never first", loads(9, 0, 0, 0), map[int]int{1: 800, 2: 800, 3: 800}, map[int]int{0: 0}},
		{"idle share evenly", loads(0, 0, 0), map[int]int{0: 800, 1: 800, 2: 800}, map[int]int{0: 1200, 1: 1200, 2: 1200}},
		{"two busy, one idle", loads(4, 4, 0), map[int]int{2: 1700}, map[int]int{2: 3000}},
	} {
		count := firsts(t, &PowerOfTwo{}, tc.s, Request{}, 3000)
		for slot, lo := range tc.min {
			if count[slot] < lo {
				t.Errorf("%s: %v, want slot %d at least %d", tc.name, count, slot, lo)
			}
		}
		for slot, hi := range tc.max {
			if count[slot] > hi {
				t.Errorf("%s: %v, want slot %d at most %d", tc.name, count, slot, hi)
			}
		}
	}
}
