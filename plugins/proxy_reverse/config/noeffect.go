package config

import (
	"slices"

	"github.com/capuchin/capuchin/api/conf"
)

// A key that only means something together with another (HealthStatus with
// an HTTP HealthCheck, ForwardedTrust with Forwarded on, TLSCA with an
// https:// server...) is an error at its line where it would have no
// effect, rather than silently ignored:
//
//   - set in a [PROXY_ENTRY], when that entry lacks what it needs;
//   - set in [PROXY_DEFAULTS], when no entry that takes it from there
//     (does not set its own) has what it needs.
//
// A value that turns the feature off (SlowStart 0) is always accepted.

// dependent is a rule: keys (lower case, as section.at records them) need
// ok of the merged entry; without it they have no effect, as what says.
type dependent struct {
	keys []string
	ok   func(e *Entry) bool
	what string
}

var dependents = []dependent{
	{[]string{"healthinterval", "healthtimeout", "healthrise", "healthfall"},
		func(e *Entry) bool { return e.Health != nil }, "without a HealthCheck"},
	{[]string{"healthstatus"}, httpCheck, "without an HTTP HealthCheck (a tcp check reads no answer)"},
	{[]string{"healthbody"}, bodyCheck, "without an HTTP HealthCheck whose answer has a body (not tcp, not HEAD)"},
	{[]string{"slowstart"}, func(e *Entry) bool { return e.Health != nil || e.AttemptsCount > 0 },
		"without a HealthCheck or AttemptsCount above 0 (no server is ever down, so none recovers)"},
	{[]string{"offlinetimeout"}, func(e *Entry) bool { return e.AttemptsCount > 0 },
		"with AttemptsCount 0 (no server goes offline)"},
	{[]string{"forwardedby", "forwardedtrust"}, func(e *Entry) bool { return e.Forwarded },
		"without Forwarded on"},
	{tlsKeys, func(e *Entry) bool { return slices.ContainsFunc(e.Servers, func(s Server) bool { return s.TLS }) },
		"without an https:// server in ServerList"},
	{[]string{"idletimeout"}, func(e *Entry) bool { return e.MaxIdleConns != 0 },
		"with MaxIdleConns 0 (no connection is pooled)"},
	{[]string{"resolver", "resolveinterval"}, resolves,
		"when ServerList has only IP addresses (no host name or srv:// item to resolve)"},
}

func httpCheck(e *Entry) bool { return e.Health != nil && e.Health.readsStatus() }

func bodyCheck(e *Entry) bool { return e.Health != nil && e.Health.readsBody() }

func resolves(e *Entry) bool {
	return slices.ContainsFunc(e.Servers, func(s Server) bool {
		_, ip := s.IP()
		return s.SRV || !ip
	})
}

// turnsOff reports whether key's value in s switches its feature off.
func (s *section) turnsOff(key string) bool {
	d, ok := s.durs[key]
	return ok && d == 0 && key == "slowstart"
}

// checkEntryEffect returns an error at the first key of the entry's own
// section that has no effect in e.
func checkEntryEffect(s *section, e *Entry) error {
	for _, r := range dependents {
		for _, k := range r.keys {
			if at, set := s.at[k]; set && !s.turnsOff(k) && !r.ok(e) {
				return noEffect(at, r.what, "")
			}
		}
	}
	return nil
}

// checkDefaultsEffect returns an error at the first key of [PROXY_DEFAULTS]
// that no entry taking it from there puts to use.
func checkDefaultsEffect(d *section, secs []*section, entries []*Entry) error {
	for _, r := range dependents {
		for _, k := range r.keys {
			at, set := d.at[k]
			if !set || d.turnsOff(k) || usedFromDefaults(k, r, secs, entries) {
				continue
			}
			return noEffect(at, r.what, " in every [PROXY_ENTRY] that does not set its own")
		}
	}
	return nil
}

func usedFromDefaults(key string, r dependent, secs []*section, entries []*Entry) bool {
	for i, e := range entries {
		if _, own := secs[i].at[key]; !own && r.ok(e) {
			return true
		}
	}
	return false
}

func noEffect(at conf.Entry, what, where string) error {
	return at.Errorf("has no effect %s%s", what, where)
}
