package forward

import (
	"testing"
	"time"
)

// The budget allows min retries in any second, and beyond them retries up
// to its share of the window's requests; old seconds leave the window.
func TestBudget(t *testing.T) {
	now := time.Unix(1000, 0)
	b := NewBudget(20, 3, func() time.Time { return now })
	allow := func(n int) (got int) {
		for i := 0; i < n; i++ {
			if b.Allow() {
				got++
			}
		}
		return got
	}
	if got := allow(10); got != 3 {
		t.Fatalf("no requests: %d retries allowed, want the minimum 3", got)
	}
	for i := 0; i < 100; i++ {
		b.Request()
	}
	if got := allow(50); got != 17 { // 20% of 100 = 20, 3 already spent
		t.Fatalf("100 requests: %d more retries allowed, want 17", got)
	}
	now = now.Add(time.Second)
	if got := allow(10); got != 3 {
		t.Fatalf("next second: %d retries allowed, want the minimum 3", got)
	}
	now = now.Add(9 * time.Second) // the first second's requests leave the window
	for i := 0; i < 10; i++ {
		b.Request()
	}
	if got := allow(10); got != 3 {
		t.Fatalf("after the window: %d retries allowed, want 3", got)
	}
	st := b.Stats()
	if st.Allowed != 3+17+3+3 || st.Denied != 7+33+7+7 || st.Requests != 10 || st.Retries != 6 {
		t.Fatalf("stats %+v", st)
	}
	if NewBudget(0, 3, nil) != nil {
		t.Fatal("RetryBudget off gives a budget")
	}
	var none *Budget
	none.Request()
	if !none.Allow() || none.Stats() != (BudgetStats{}) {
		t.Fatal("a nil budget refuses")
	}
}

// A budget stays within (ratio × requests + min × seconds) under
// concurrent use, and counting a request does not allocate.
func TestBudgetConcurrent(t *testing.T) {
	b := NewBudget(10, 2, nil)
	start := time.Now()
	done := make(chan int)
	for g := 0; g < 4; g++ {
		go func() {
			n := 0
			for i := 0; i < 500; i++ {
				b.Request()
				if b.Allow() {
					n++
				}
			}
			done <- n
		}()
	}
	total := 0
	for g := 0; g < 4; g++ {
		total += <-done
	}
	secs := int(time.Since(start)/time.Second) + 2
	if limit := 2000/10 + 2*secs; total > limit {
		t.Fatalf("%d retries allowed for 2000 requests, limit %d", total, limit)
	}
	if a := testing.AllocsPerRun(100, b.Request); a != 0 {
		t.Fatalf("Request allocates %v", a)
	}
}
