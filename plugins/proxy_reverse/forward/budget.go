package forward

import (
	"sync"
	"sync/atomic"
	"time"
)

// Budget is an entry's retry budget (RetryBudget P% [min=N]; Envoy's
// retry budget, Finagle's RetryBudget): every path that sends a request a
// second time, to the same server or the next one, asks Allow first, so
// that retries stay at most P% of the requests of the last
// budgetWindow, plus N in any one second. A backend that fails every
// request then sees at most (1 + P/100) times the requests plus N per
// second, not one attempt per server of the entry per request.
//
// Requests are counted per second in a ring of budgetWindow buckets with
// atomic adds (the hot path); Allow, on the retry path only, takes a
// mutex so that its check and its count are one step. A nil *Budget
// allows every retry. Safe for concurrent use.
type Budget struct {
	ratio  float64 // retries allowed per request
	minSec int64   // retries allowed in any second
	now    func() time.Time

	buckets [budgetWindow]budgetBucket

	mu      sync.Mutex // serialises Allow
	allowed atomic.Uint64
	denied  atomic.Uint64
}

// budgetWindow is the span, in seconds, over which requests and retries
// are counted (Finagle's default ttl).
const budgetWindow = 10

// budgetBucket counts one second's requests (sec, requests: atomic adds
// from any goroutine) and retries (retrySec, retries: changed under
// Budget.mu only). The two are emptied apart, each by its own writers: a
// Request that emptied the bucket for a new second while Allow counted
// retries in it could empty the retries after them, and the retries
// allowed meanwhile would be forgotten while their requests still count.
type budgetBucket struct {
	sec      atomic.Int64 // the Unix second whose requests it counts
	requests atomic.Int64
	retrySec atomic.Int64 // the Unix second whose retries it counts
	retries  atomic.Int64
}

// NewBudget returns a budget of percent retries per 100 requests and
// minPerSec retries in any second; nil when percent is 0 (no budget).
// now nil means time.Now.
func NewBudget(percent float64, minPerSec int, now func() time.Time) *Budget {
	if percent <= 0 {
		return nil
	}
	if now == nil {
		now = time.Now
	}
	return &Budget{ratio: percent / 100, minSec: int64(minPerSec), now: now}
}

// bucket returns the bucket of second sec, its requests emptied if they
// were an older second's. Two callers racing over a stale bucket may lose
// a request: the budget then allows fewer retries, never more.
func (b *Budget) bucket(sec int64) *budgetBucket {
	k := &b.buckets[uint64(sec)%budgetWindow]
	if old := k.sec.Load(); old != sec && k.sec.CompareAndSwap(old, sec) {
		k.requests.Store(0)
	}
	return k
}

// retryBucket returns the bucket of second sec with its retries emptied
// if they were an older second's. Only under b.mu.
func (b *Budget) retryBucket(sec int64) *budgetBucket {
	k := b.bucket(sec)
	if k.retrySec.Load() != sec {
		k.retrySec.Store(sec)
		k.retries.Store(0)
	}
	return k
}

// Request counts one client request. It does not allocate or block.
func (b *Budget) Request() {
	if b != nil {
		b.bucket(b.now().Unix()).requests.Add(1)
	}
}

// Allow reports whether one more retry is within the budget, and counts
// it when it is.
func (b *Budget) Allow() bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	sec := b.now().Unix()
	cur := b.retryBucket(sec)
	requests, retries := b.window(sec)
	if cur.retries.Load() >= b.minSec && float64(retries+1) > b.ratio*float64(requests) {
		b.denied.Add(1)
		return false
	}
	cur.retries.Add(1)
	b.allowed.Add(1)
	return true
}

// BudgetStats is a snapshot of a budget's counters.
type BudgetStats struct {
	Requests int64  // client requests in the current window
	Retries  int64  // retries allowed in the current window
	Allowed  uint64 // retries allowed since start
	Denied   uint64 // retries refused since start
}

// Stats returns the budget's counters; zero for a nil budget.
func (b *Budget) Stats() BudgetStats {
	if b == nil {
		return BudgetStats{}
	}
	st := BudgetStats{Allowed: b.allowed.Load(), Denied: b.denied.Load()}
	st.Requests, st.Retries = b.window(b.now().Unix())
	return st
}

// window sums the requests and retries of the budgetWindow seconds up to
// sec; buckets of older (or, after a clock step back, later) seconds do
// not count.
func (b *Budget) window(sec int64) (requests, retries int64) {
	in := func(s int64) bool { return s > sec-budgetWindow && s <= sec }
	for i := range b.buckets {
		k := &b.buckets[i]
		if in(k.sec.Load()) {
			requests += k.requests.Load()
		}
		if in(k.retrySec.Load()) {
			retries += k.retries.Load()
		}
	}
	return requests, retries
}
