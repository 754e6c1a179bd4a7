package clock

import (
	"testing"
	"time"
)

// TestFrom checks that From agrees with time.Now: later than a reading
// taken before it, earlier than one taken after, on both clocks, and that
// it keeps a monotonic reading (so durations from it stay monotonic).
func TestFrom(t *testing.T) {
	base := time.Now()
	time.Sleep(2 * time.Millisecond)
	before := time.Now()
	got := From(base)
	after := time.Now()
	if got.Before(before) || got.After(after) {
		t.Fatalf("From = %v, want within [%v, %v]", got, before, after)
	}
	// Round(0) strips the monotonic reading: the wall clocks must agree too
	// (allowing for a clock step: none is expected within the test).
	wall := got.Round(0)
	if d := wall.Sub(before.Round(0)); d < -time.Millisecond || wall.Sub(after.Round(0)) > time.Millisecond {
		t.Fatalf("wall clock %v not near [%v, %v] (%v)", wall, before.Round(0), after.Round(0), d)
	}
	if got.String() == wall.String() {
		t.Fatalf("From(%v) = %v has no monotonic reading", base, got)
	}
	if el := got.Sub(base); el < 2*time.Millisecond {
		t.Fatalf("elapsed since base %v, want at least 2ms", el)
	}
}

// TestFromZero checks that a zero base reads the clock in full.
func TestFromZero(t *testing.T) {
	before := time.Now()
	got := From(time.Time{})
	if got.Before(before) || time.Since(got) > time.Second {
		t.Fatalf("From(zero) = %v, want about %v", got, before)
	}
}
