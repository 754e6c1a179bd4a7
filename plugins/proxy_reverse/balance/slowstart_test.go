package balance

import (
	"fmt"
	"testing"
	"time"
)

type fixedShares []float64

func (f fixedShares) Share(i int, _ time.Time) float64 { return f[i] }

// uniform returns a generator of the given uniform draws in [0,1).
func uniform(v ...float64) func() uint64 {
	i := 0
	return func() uint64 {
		d := v[i%len(v)]
		i++
		return uint64(d*(1<<53)) << 11
	}
}

func TestSlowStartDemotes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		shares fixedShares
		draws  []float64
		want   string
	}{
		{"full shares keep the order", fixedShares{1, 1, 1}, []float64{0.99}, "[0 1 2]"},
		{"a draw above the share demotes", fixedShares{0.3, 1, 1}, []float64{0.5}, "[1 2 0]"},
		{"a draw below the share keeps", fixedShares{0.3, 1, 1}, []float64{0.1}, "[0 1 2]"},
		{"two demoted keep their order", fixedShares{0.1, 0.1, 1}, []float64{0.9, 0.9}, "[2 0 1]"},
		{"only the ramping one moves", fixedShares{1, 0.2, 1}, []float64{0.9}, "[0 2 1]"},
	} {
		pk := SlowStart(firstPicker{len(tc.shares)}, tc.shares, uniform(tc.draws...))
		if got := fmt.Sprint(pk.Order(nil, Request{})); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// Over many requests a ramping server comes first in proportion to its
// share, and Order allocates nothing.
func TestSlowStartProportion(t *testing.T) {
	pk := SlowStart((&RoundRobin{}).Picker(servers(2)), fixedShares{0.25, 1}, nil)
	first := 0
	dst := make([]int, 0, 2)
	for i := 0; i < 20000; i++ {
		if dst = pk.Order(dst, Request{}); dst[0] == 0 {
			first++
		}
	}
	// Round robin puts slot 0 first half the time; a quarter of those stay.
	if got := float64(first) / 20000; got < 0.11 || got > 0.14 {
		t.Fatalf("slot 0 first in %.3f of orders, want about 0.125", got)
	}
	if n := testing.AllocsPerRun(100, func() { dst = pk.Order(dst, Request{}) }); n != 0 {
		t.Fatalf("Order allocates %v times", n)
	}
}

type firstPicker struct{ n int }

func (p firstPicker) Order(dst []int, _ Request) []int { return rotate(dst, p.n, 0) }
