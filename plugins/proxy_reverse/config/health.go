package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/capuchin/capuchin/api/conf"
	"github.com/capuchin/capuchin/api/http1"
)

// Defaults of the active health check keys (HAProxy's: inter 2s, rise 2,
// fall 3; its check timeout defaults to inter, ours is shorter so that a
// hung backend is found down within fall × interval).
const (
	DefaultHealthInterval = 2 * time.Second
	DefaultHealthTimeout  = time.Second
	DefaultHealthRise     = 2
	DefaultHealthFall     = 3
	// DefaultSlowStart 0: a recovered server takes its full share at once.
	DefaultSlowStart = 0
)

// DefaultHealthStatus is the status range a check expects by default.
var DefaultHealthStatus = []StatusRange{{200, 399}}

// MaxHealthBody bounds the answer body a check reads when it looks for
// HealthBody.
const MaxHealthBody = 64 << 10

// HealthCheck is an entry's active health check. Its String is its
// identity: entries whose checks print alike share one checker per
// address.
type HealthCheck struct {
	TCP      bool   // a plain TCP connect; the HTTP fields are unused
	Method   string // HTTP method, e.g. GET
	Path     string // request target, e.g. /health
	Host     string // Host field; "" means the server's address
	Status   []StatusRange
	Body     string // substring the answer body must contain; "" none
	Interval time.Duration
	Timeout  time.Duration
	Rise     int // consecutive successes that bring a down server up
	Fall     int // consecutive failures that take an up server down
}

// StatusRange is an inclusive range of status codes.
type StatusRange struct{ Lo, Hi int }

// OK reports whether code is in one of the ranges.
func (c *HealthCheck) OK(code int) bool {
	for _, r := range c.Status {
		if code >= r.Lo && code <= r.Hi {
			return true
		}
	}
	return false
}

// String describes the check completely, e.g.
// "GET /health host=api status=200-399 body=\"ok\" inter=2s timeout=1s rise=2 fall=3".
func (c *HealthCheck) String() string {
	var b strings.Builder
	if c.TCP {
		b.WriteString("tcp")
	} else {
		b.WriteString(c.Method + " " + c.Path)
		if c.Host != "" {
			b.WriteString(" host=" + c.Host)
		}
		b.WriteString(" status=" + formatStatus(c.Status))
		if c.Body != "" {
			b.WriteString(" body=" + strconv.Quote(c.Body))
		}
	}
	fmt.Fprintf(&b, " inter=%s timeout=%s rise=%d fall=%d", c.Interval, c.Timeout, c.Rise, c.Fall)
	return b.String()
}

func formatStatus(rs []StatusRange) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = strconv.Itoa(r.Lo)
		if r.Hi != r.Lo {
			parts[i] += "-" + strconv.Itoa(r.Hi)
		}
	}
	return strings.Join(parts, ",")
}

// healthSection is what one section sets of the check keys.
type healthSection struct {
	check  *HealthCheck // from HealthCheck: kind, method, path, host
	status []StatusRange
	body   *string
}

// setHealthCheck reads "HealthCheck tcp" or "HealthCheck METHOD PATH [HOST]".
func (s *section) setHealthCheck(e conf.Entry, once func(conf.Entry, string) error) error {
	if err := once(e, "healthcheck"); err != nil {
		return err
	}
	f, err := e.Fields()
	if err != nil {
		return err
	}
	if len(f) == 1 && strings.EqualFold(f[0], "tcp") {
		s.health.check = &HealthCheck{TCP: true}
		return nil
	}
	if len(f) < 2 || len(f) > 3 {
		return e.Errorf("want \"tcp\" or \"METHOD /path [host]\", got %q", e.Value)
	}
	c := &HealthCheck{Method: f[0], Path: f[1]}
	if !http1.IsToken(c.Method) {
		return e.Errorf("bad method %q", c.Method)
	}
	if c.Path[0] != '/' || !printable(c.Path) {
		return e.Errorf("want an absolute path like /health, got %q", c.Path)
	}
	if len(f) == 3 {
		if c.Host = f[2]; !printable(c.Host) || strings.ContainsAny(c.Host, "/?#@") {
			return e.Errorf("bad host %q", c.Host)
		}
	}
	s.health.check = c
	return nil
}

// setHealthStatus reads "200-399", "200,204" or "200-299 301 302".
func (s *section) setHealthStatus(e conf.Entry, once func(conf.Entry, string) error) error {
	if err := once(e, "healthstatus"); err != nil {
		return err
	}
	f, err := e.Fields()
	if err != nil {
		return err
	}
	var out []StatusRange
	for _, item := range f {
		for _, part := range strings.Split(item, ",") {
			r, ok := parseStatusRange(part)
			if !ok {
				return e.Errorf("bad status range %q: want codes 100-599 like 200-399 or 200,204", part)
			}
			out = append(out, r)
		}
	}
	s.health.status = out
	return nil
}

func parseStatusRange(v string) (StatusRange, bool) {
	lo, hi, isRange := strings.Cut(v, "-")
	if !isRange {
		hi = lo
	}
	a, err1 := strconv.Atoi(lo)
	b, err2 := strconv.Atoi(hi)
	if err1 != nil || err2 != nil || a < 100 || b > 599 || a > b {
		return StatusRange{}, false
	}
	return StatusRange{a, b}, true
}

// setHealthBody reads the substring an answer body must contain.
func (s *section) setHealthBody(e conf.Entry, once func(conf.Entry, string) error) error {
	if err := once(e, "healthbody"); err != nil {
		return err
	}
	v, err := e.String()
	if err != nil {
		return err
	}
	s.health.body = &v
	return nil
}

func printable(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] == 0x7f {
			return false
		}
	}
	return v != ""
}

// mergeHealth fills e.Health from the entry's section, then the defaults.
// HealthStatus and HealthBody apply only to the HTTP checks that read
// them; where a key has no effect, checkEntryEffect and
// checkDefaultsEffect (noeffect.go) make it an error at its line.
// readsStatus reports whether the check reads an answer's status (an HTTP
// check), readsBody whether it reads its body too (not with HEAD): the
// keys that set them have no effect otherwise (noeffect.go).
func (c *HealthCheck) readsStatus() bool { return !c.TCP }

func (c *HealthCheck) readsBody() bool { return c.readsStatus() && c.Method != "HEAD" }

func mergeHealth(d, s *section, e *Entry) error {
	base := s.health.check
	if base == nil {
		base = d.health.check
	}
	e.SlowStart = durKey(s, d, "slowstart", DefaultSlowStart)
	if base == nil {
		return nil
	}
	c := *base
	c.Status = DefaultHealthStatus
	if c.readsStatus() {
		c.Status = pick(s.health.status, pick(d.health.status, DefaultHealthStatus))
	}
	body := s.health.body
	if body == nil {
		body = d.health.body
	}
	if c.readsBody() && body != nil {
		c.Body = *body
	}
	c.Interval = durKey(s, d, "healthinterval", DefaultHealthInterval)
	c.Timeout = durKey(s, d, "healthtimeout", DefaultHealthTimeout)
	c.Rise = intKey(s, d, "healthrise", DefaultHealthRise)
	c.Fall = intKey(s, d, "healthfall", DefaultHealthFall)
	if c.Rise < 1 || c.Fall < 1 {
		return s.sec.Errorf("HealthRise and HealthFall must be at least 1 (got %d and %d)", c.Rise, c.Fall)
	}
	e.Health = &c
	return nil
}

// StatusString returns the accepted status ranges, e.g. "200-399" or "200,204".
func (c *HealthCheck) StatusString() string { return formatStatus(c.Status) }
