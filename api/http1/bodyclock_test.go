package http1

import (
	"testing"
	"time"
)

func TestBodyClock(t *testing.T) {
	t0 := time.Unix(1000, 0)
	c := BodyClock{Timeout: 2 * time.Second, MinRate: 500}
	for _, tc := range []struct {
		at    time.Duration // since the first read
		total int64
		want  time.Duration // deadline, since the first read
	}{
		{0, 0, 2 * time.Second},                  // the grace
		{time.Second, 0, 2 * time.Second},        // nothing came: no more time
		{time.Second, 1000, 3 * time.Second},     // 1000 bytes earn 2 s, capped at now+Timeout
		{5 * time.Second, 1000, 4 * time.Second}, // trickling: the rate, not now+Timeout
	} {
		if got := c.Deadline(t0.Add(tc.at), tc.total).Sub(t0); got != tc.want {
			t.Errorf("at %v after %d bytes: deadline %v, want %v", tc.at, tc.total, got, tc.want)
		}
	}
	if d := (&BodyClock{}).Deadline(t0, 0); !d.IsZero() {
		t.Errorf("zero clock: %v", d)
	}
}
