package hosttest

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// DNS is a small authoritative DNS server on 127.0.0.1 (UDP) for tests of
// discovery: it answers SRV and A/AAAA questions from records the test sets
// and changes, NXDOMAIN for names it has none of. Close (also at cleanup)
// stops it.
type DNS struct {
	Addr    string // 127.0.0.1:port
	Queries atomic.Int64

	srv  *dns.Server
	done chan struct{} // closed when the serving goroutine ends
	mu   sync.Mutex
	srvs map[string][]dns.SRV // by lower-case FQDN
	ips  map[string][]netip.Addr
	once sync.Once
}

// SRV is one SRV record to serve.
type SRV struct {
	Target           string
	Port             uint16
	Priority, Weight uint16
}

// NewDNS starts a server.
func NewDNS(t testing.TB) *DNS {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	Must(t, err)
	d := &DNS{Addr: pc.LocalAddr().String(), srvs: map[string][]dns.SRV{}, ips: map[string][]netip.Addr{},
		done: make(chan struct{})}
	started := make(chan struct{})
	d.srv = &dns.Server{PacketConn: pc, Handler: d, NotifyStartedFunc: func() { close(started) }}
	go func() { // ends at Shutdown (Close)
		defer close(d.done)
		_ = d.srv.ActivateAndServe()
	}()
	<-started
	t.Cleanup(d.Close)
	return d
}

// Close stops the server and waits for it.
func (d *DNS) Close() {
	d.once.Do(func() {
		_ = d.srv.Shutdown()
		<-d.done
	})
}

// SetSRV replaces the SRV records of name (none: NXDOMAIN).
func (d *DNS) SetSRV(name string, recs ...SRV) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []dns.SRV
	for _, r := range recs {
		out = append(out, dns.SRV{Target: dns.Fqdn(r.Target), Port: r.Port, Priority: r.Priority, Weight: r.Weight})
	}
	d.srvs[key(name)] = out
}

// SetIP replaces the addresses of name.
func (d *DNS) SetIP(name string, addrs ...netip.Addr) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ips[key(name)] = addrs
}

func key(name string) string { return strings.ToLower(dns.Fqdn(name)) }

// ServeDNS implements dns.Handler.
func (d *DNS) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	d.Queries.Add(1)
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	if len(q.Question) == 1 {
		m.Answer, m.Rcode = d.answer(q.Question[0])
	}
	_ = w.WriteMsg(m)
}

func (d *DNS) answer(qn dns.Question) ([]dns.RR, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := key(qn.Name)
	srvs, hasSRV := d.srvs[k]
	ips, hasIP := d.ips[k]
	if !hasSRV && !hasIP {
		return nil, dns.RcodeNameError
	}
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: qn.Name, Rrtype: t, Class: dns.ClassINET, Ttl: 1}
	}
	var out []dns.RR
	switch qn.Qtype {
	case dns.TypeSRV:
		for _, r := range srvs {
			r.Hdr = hdr(dns.TypeSRV)
			out = append(out, &r)
		}
	case dns.TypeA, dns.TypeAAAA:
		for _, a := range ips {
			switch {
			case a.Is4() && qn.Qtype == dns.TypeA:
				out = append(out, &dns.A{Hdr: hdr(dns.TypeA), A: a.AsSlice()})
			case a.Is6() && qn.Qtype == dns.TypeAAAA:
				out = append(out, &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: a.AsSlice()})
			}
		}
	}
	return out, dns.RcodeSuccess
}
