package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/capuchin/capuchin/internal/hosttest"
)

// clocked is a backend that notes when each health check reaches it and
// answers it 200, or 503 while sick.
type clocked struct {
	*httptest.Server
	sick atomic.Bool
	mu   sync.Mutex
	at   []time.Time
}

func newClocked(t *testing.T) *clocked {
	b := &clocked{}
	b.Server = httptest.NewServer(b)
	t.Cleanup(b.Close)
	return b
}

func (b *clocked) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/health" {
		b.mu.Lock()
		b.at = append(b.at, time.Now())
		b.mu.Unlock()
		if b.sick.Load() {
			w.WriteHeader(503)
		}
	}
}

func (b *clocked) checks() []time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.at)
}

// Active checks of many servers are spread (HAProxy's spread-checks): the
// first check of each server comes at a random moment of its first
// interval, not all at once, and each interval varies by up to ±10 %, so
// the checks do not tick in lock-step; a server's checks still come about
// every interval, so a server that fails its checks is down within Fall
// jittered intervals.
func TestE2EHealthChecksSpread(t *testing.T) {
	const n, interval, fall = 8, 400 * time.Millisecond, 2
	var bs []*clocked
	var list []string
	for i := 0; i < n; i++ {
		bs = append(bs, newClocked(t))
		list = append(list, bs[i].Listener.Addr().String())
	}
	s, _ := startProxy(t, entryConf("Round-Robin", strings.Join(list, " "), "HealthCheck GET /health",
		fmt.Sprintf("HealthInterval %s", interval), "HealthTimeout 1s", fmt.Sprintf("HealthFall %d", fall)))
	hosttest.Poll(10*time.Second, func() bool { return len(bs[n-1].checks()) >= 6 && len(bs[0].checks()) >= 6 })
	var firsts []time.Time
	var gaps []time.Duration
	// The k-th check after the first comes k intervals ±10 % after it,
	// give or take the scheduler's lateness of either: each check is
	// scheduled from the previous one's due time, so lateness does not add up.
	const slack = 150 * time.Millisecond
	for _, b := range bs {
		at := b.checks()
		if len(at) < 4 {
			t.Fatalf("%s: %d checks in %v", b.Listener.Addr(), len(at), time.Since(at[0]))
		}
		firsts = append(firsts, at[0])
		for k := 1; k < len(at); k++ {
			gaps = append(gaps, at[k].Sub(at[k-1]))
			lo, hi := time.Duration(k)*interval*9/10-slack, time.Duration(k)*interval*11/10+slack
			if el := at[k].Sub(at[0]); el < lo || el > hi {
				t.Fatalf("%s: check %d came %v after the first, want %v to %v", b.Listener.Addr(), k, el, lo, hi)
			}
		}
	}
	spread := slices.MaxFunc(firsts, time.Time.Compare).Sub(slices.MinFunc(firsts, time.Time.Compare))
	t.Logf("first checks spread over %v; gaps %v", spread, gaps)
	if spread < interval/8 { // 8 random offsets: below 1/8 of the interval once in 250000 runs
		t.Fatalf("the first checks of %d servers came within %v of each other: not spread over the %v interval",
			n, spread, interval)
	}
	jittered := 0
	for _, g := range gaps {
		if d := (g - interval).Abs(); d > 3*time.Millisecond {
			jittered++
		}
	}
	if jittered < len(gaps)/2 {
		t.Fatalf("only %d of %d gaps between checks differ from the interval: no jitter", jittered, len(gaps))
	}
	sickDown(t, s, bs, fall*interval*11/10+time.Second)
}

// sickDown makes every backend fail its checks and checks that each is
// down by its health check within bound.
func sickDown(t *testing.T, s *hosttest.Site, bs []*clocked, bound time.Duration) {
	t.Helper()
	start := time.Now()
	for _, b := range bs {
		b.sick.Store(true)
	}
	for _, b := range bs {
		waitStatus(t, s, b.Listener.Addr().String(), "down")
	}
	if took := time.Since(start); took > bound {
		t.Fatalf("every server down after %v, want within %v (Fall jittered intervals and a check timeout)", took, bound)
	}
}
