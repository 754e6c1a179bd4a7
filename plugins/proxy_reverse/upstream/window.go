package upstream

import (
	"sync/atomic"
	"time"
)

// The recent-traffic window of a backend address: a ring of Buckets
// buckets of BucketWidth each, every one a request count, an error count
// and a fixed latency histogram. Recording is a few atomic adds into the
// bucket of the current 10 s: no lock, no allocation. A bucket is zeroed by
// the first request that finds it holding an older period; adds racing
// with that zeroing may be lost, which only blurs the numbers at a bucket's
// first instant.
const (
	BucketWidth = 10 * time.Second
	Buckets     = 30 // five minutes
)

// LatencyBounds are the upper bounds of the histogram's bins; a last bin
// takes everything slower.
var LatencyBounds = [...]time.Duration{
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond,
	20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second,
}

// Bins is the number of latency bins.
const Bins = len(LatencyBounds) + 1

type bucket struct {
	epoch    atomic.Int64 // the period (unix time / BucketWidth) it holds
	requests atomic.Uint64
	errors   atomic.Uint64
	lat      [Bins]atomic.Uint64
}

type window struct{ b [Buckets]bucket }

func period(now time.Time) int64 { return now.UnixNano() / int64(BucketWidth) }

// current returns the bucket of now, zeroed if it held an older period.
func (w *window) current(now time.Time) *bucket {
	p := period(now)
	b := &w.b[p%Buckets]
	if old := b.epoch.Load(); old != p && b.epoch.CompareAndSwap(old, p) {
		b.requests.Store(0)
		b.errors.Store(0)
		for i := range b.lat {
			b.lat[i].Store(0)
		}
	}
	return b
}

// answer records an answer head that took took; bad: a 5xx status.
func (w *window) answer(now time.Time, took time.Duration, bad bool) {
	b := w.current(now)
	b.requests.Add(1)
	if bad {
		b.errors.Add(1)
	}
	b.lat[bin(took)].Add(1)
}

// failure records an attempt that failed (no answer, or a cut one).
func (w *window) failure(now time.Time) {
	b := w.current(now)
	b.requests.Add(1)
	b.errors.Add(1)
}

func bin(d time.Duration) int {
	for i, ub := range LatencyBounds {
		if d <= ub {
			return i
		}
	}
	return len(LatencyBounds)
}

// Window is the traffic of an address over a recent span.
type Window struct {
	Span     time.Duration // the time the counts cover
	Requests uint64        // answers and failed attempts
	Errors   uint64        // failed attempts and 5xx answers
	Latency  [Bins]uint64  // answer head latencies, by LatencyBounds bin
}

// sum adds the buckets of the last n periods (the current one included,
// so the span is between n-1 and n periods long).
func (w *window) sum(now time.Time, n int) Window {
	p := period(now)
	n = min(max(n, 1), Buckets)
	out := Window{Span: now.Sub(time.Unix(0, (p-int64(n)+1)*int64(BucketWidth)))}
	for q := p - int64(n) + 1; q <= p; q++ {
		b := &w.b[q%Buckets]
		if b.epoch.Load() != q {
			continue
		}
		out.Requests += b.requests.Load()
		out.Errors += b.errors.Load()
		for i := range b.lat {
			out.Latency[i] += b.lat[i].Load()
		}
	}
	return out
}

// Rate returns requests per second over the span.
func (w Window) Rate() float64 {
	if w.Span <= 0 {
		return 0
	}
	return float64(w.Requests) / w.Span.Seconds()
}

// ErrorRatio returns errors / requests, 0 without requests.
func (w Window) ErrorRatio() float64 {
	if w.Requests == 0 {
		return 0
	}
	return float64(w.Errors) / float64(w.Requests)
}

// Percentile returns the q-quantile (0 < q <= 1) of the answer latencies,
// interpolated linearly inside its bin; 0 without answers. The last bin
// reports its lower bound.
func (w Window) Percentile(q float64) time.Duration {
	var total uint64
	for _, c := range w.Latency {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var seen uint64
	for i, c := range w.Latency {
		if c == 0 || float64(seen+c) < rank {
			seen += c
			continue
		}
		lo := time.Duration(0)
		if i > 0 {
			lo = LatencyBounds[i-1]
		}
		if i == len(LatencyBounds) {
			return lo
		}
		frac := (rank - float64(seen)) / float64(c)
		return lo + time.Duration(frac*float64(LatencyBounds[i]-lo))
	}
	return LatencyBounds[len(LatencyBounds)-1]
}
