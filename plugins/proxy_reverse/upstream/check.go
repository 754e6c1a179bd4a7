package upstream

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/plugins/proxy_reverse/config"
)

// checkKey names one checker: a backend address and the full description
// of a check (config.HealthCheck.String). Entries that list an address with
// the same check share one checker, so the address is checked once; entries
// with different checks for it each run their own and each sees its own
// check's verdict.
type checkKey struct {
	ap   netip.AddrPort
	spec string
}

// Checker runs one active health check against one address on its own
// goroutine, from the first server that needs it to the release of the
// last (Registry.acquireCheck, releaseCheck). State follows HAProxy: a
// server starts up; Fall consecutive failed checks take it down, Rise
// consecutive good ones bring it back.
type Checker struct {
	key  checkKey
	cfg  config.HealthCheck
	tls  *tls.Config // an HTTP check of an https:// server; nil: plain
	req  []byte      // an HTTP check's request, built once (newRequest)
	h    *Health
	log  hclog.Logger
	refs int // guarded by the registry's mutex

	down   atomic.Bool
	run    atomic.Int32 // >0: consecutive good checks, <0: consecutive bad ones
	checks atomic.Uint64
	failed atomic.Uint64
	last   atomic.Pointer[CheckResult]

	// Goroutine-only: the passive failure last seen and the good checks since.
	badSeen  int64
	cleanRun int

	cancel context.CancelFunc
	done   chan struct{}
}

// CheckResult is the outcome of one check.
type CheckResult struct {
	At     time.Time
	OK     bool
	Reason string // "HTTP 200", "connect: connection refused", "timeout"...
	Took   time.Duration
}

func newChecker(key checkKey, cfg config.HealthCheck, tc *tls.Config, h *Health, log hclog.Logger) *Checker {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Checker{key: key, cfg: cfg, tls: tc, h: h, log: log.With("check", key.ap.String()),
		cancel: cancel, done: make(chan struct{})}
	if !cfg.TCP {
		c.req = c.newRequest()
	}
	go c.loop(ctx)
	return c
}

// stop ends the goroutine and waits for it.
func (c *Checker) stop() {
	c.cancel()
	<-c.done
}

// JitterPercent bounds the random change of each interval between two
// checks of a server: ±10 %, so a run of Rise or Fall checks takes at most
// 10 % longer than configured (HAProxy's spread-checks).
const JitterPercent = 10

// loop checks the server at a random moment of its first interval, then
// every Interval ± JitterPercent, measured from the start of the previous
// check: checkers started together (every server of a new configuration)
// do not probe in lock-step, as HAProxy spreads its first checks.
func (c *Checker) loop(ctx context.Context) {
	defer close(c.done)
	next := time.Now().Add(firstCheckDelay(c.cfg.Interval))
	t := time.NewTimer(time.Until(next))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.record(c.probe(ctx))
		next = nextCheck(next, c.cfg.Interval, time.Now())
		t.Reset(time.Until(next))
	}
}

// firstCheckDelay is a random offset in [0, interval): when the first
// check of a server runs.
func firstCheckDelay(interval time.Duration) time.Duration {
	if interval <= 0 {
		return 0
	}
	return rand.N(interval)
}

// jittered returns interval changed by a random amount within
// ±JitterPercent of it.
func jittered(interval time.Duration) time.Duration {
	span := interval * JitterPercent / 100
	if span <= 0 {
		return interval
	}
	return interval - span + rand.N(2*span+1)
}

// nextCheck returns when the check after the one due at prev starts: a
// jittered interval after prev, or now when a slow check overran it.
func nextCheck(prev time.Time, interval time.Duration, now time.Time) time.Time {
	next := prev.Add(jittered(interval))
	if next.Before(now) {
		return now
	}
	return next
}

// record applies one result: the rise/fall run, the state, and the
// passive state (a run of Rise good checks with no failure of real traffic
// in between brings an offline server back without waiting for traffic to
// probe it).
func (c *Checker) record(r CheckResult) {
	if r.Reason == "" { // stopped mid-check
		return
	}
	c.checks.Add(1)
	c.last.Store(&r)
	run := c.run.Load()
	if !r.OK {
		c.failed.Add(1)
		run = min(run, 0) - 1
		c.run.Store(run)
		if int(-run) >= c.cfg.Fall && !c.down.Swap(true) {
			c.log.Warn("server down by health check", "reason", r.Reason)
		}
		return
	}
	run = max(run, 0) + 1
	c.run.Store(run)
	if int(run) >= c.cfg.Rise && c.down.Load() {
		c.down.Store(false)
		c.h.upSince.Store(r.At.UnixNano())
		c.log.Info("server up by health check", "reason", r.Reason)
	}
	c.revive(r.At)
}

func (c *Checker) revive(now time.Time) {
	// The failures first, then when the last one was: a failure they
	// count has its time stored already (FailedAs), so a run of good
	// checks is never taken for one that came after failures recorded
	// while this check was applied.
	fails := c.h.fails.Load()
	if bad := c.h.lastBad.Load(); bad != c.badSeen {
		c.badSeen, c.cleanRun = bad, 0
	}
	if c.cleanRun++; c.cleanRun >= c.cfg.Rise && fails != 0 {
		c.h.reviveFrom(fails, now)
	}
}

// probe runs one check within the timeout. A check cut short by ctx
// returns an empty Reason.
func (c *Checker) probe(ctx context.Context) CheckResult {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	reason, err := c.exchange(ctx)
	r := CheckResult{At: time.Now(), Took: time.Since(start), OK: err == nil, Reason: reason}
	switch {
	case ctx.Err() == context.Canceled:
		r.Reason = ""
	case err != nil && (ctx.Err() != nil || isTimeout(err)):
		r.Reason = "timeout after " + c.cfg.Timeout.String()
	case err != nil:
		r.Reason = err.Error()
	}
	return r
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// exchange connects and, for an HTTP check, sends the request and judges
// the answer. It returns what was seen ("HTTP 200", "connected") or an
// error saying what was wrong.
func (c *Checker) exchange(ctx context.Context) (string, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", c.key.ap.String())
	if err != nil {
		return "", fmt.Errorf("connect: %w", unwrapOp(err))
	}
	defer func() { nc.Close() }()
	if c.cfg.TCP {
		return "connected", nil
	}
	if c.tls != nil {
		tc, err := clientHandshake(ctx, nc, c.tls)
		if err != nil {
			return "", err
		}
		nc = tc
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := nc.Write(c.req); err != nil {
		return "", fmt.Errorf("send: %w", unwrapOp(err))
	}
	br := bufio.NewReaderSize(nc, 4<<10)
	var resp http1.Response
	if err := http1.ReadResponse(br, nil, &resp); err != nil {
		return "", fmt.Errorf("answer: %w", unwrapOp(err))
	}
	seen := "HTTP " + strconv.Itoa(resp.Status)
	if !c.cfg.OK(resp.Status) {
		return seen, fmt.Errorf("%s, want %s", seen, c.cfg.StatusString())
	}
	if c.cfg.Body == "" {
		return seen, nil
	}
	return seen, c.checkBody(br, &resp)
}

// newRequest builds the check's request head: HTTP/1.1, closing the
// connection.
func (c *Checker) newRequest() []byte {
	host := c.cfg.Host
	if host == "" {
		host = c.key.ap.String()
	}
	b := []byte(c.cfg.Method + " " + c.cfg.Path + " HTTP/1.1\r\n")
	b = http1.AppendField(b, "Host", host)
	b = http1.AppendField(b, "User-Agent", "capuchin-health-check")
	b = http1.AppendField(b, "Accept", "*/*")
	b = http1.AppendField(b, "Connection", "close")
	return append(b, "\r\n"...)
}

func (c *Checker) checkBody(br *bufio.Reader, resp *http1.Response) error {
	var body http1.Body
	body.ResetResponse(br, resp, c.cfg.Method)
	got, err := io.ReadAll(io.LimitReader(&body, config.MaxHealthBody))
	if err != nil {
		return fmt.Errorf("HTTP %d, body: %w", resp.Status, unwrapOp(err))
	}
	if !bytes.Contains(got, []byte(c.cfg.Body)) {
		return fmt.Errorf("HTTP %d, body lacks %q", resp.Status, c.cfg.Body)
	}
	return nil
}

// unwrapOp drops the *net.OpError decoration ("dial tcp 127.0.0.1:1:")
// that repeats the address the status page already shows.
func unwrapOp(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}

// CheckStats is a snapshot of a server's active check.
type CheckStats struct {
	Spec   string // the check, as config.HealthCheck.String
	Down   bool
	Run    int // >0: consecutive good checks, <0: consecutive bad ones
	Rise   int
	Fall   int
	Checks uint64
	Failed uint64
	Last   *CheckResult // nil before the first check ends
}

func (c *Checker) stats() *CheckStats {
	return &CheckStats{Spec: c.key.spec, Down: c.down.Load(), Run: int(c.run.Load()),
		Rise: c.cfg.Rise, Fall: c.cfg.Fall, Checks: c.checks.Load(), Failed: c.failed.Load(), Last: c.last.Load()}
}
