package transport

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/contract"
	pb "github.com/capuchin/capuchin/proto/capuchin/v1"
)

func manifestToPB(m Manifest) *pb.Manifest {
	out := &pb.Manifest{Name: m.Name, Version: m.Version, Reconfigurable: m.Reconfigurable, Claims: claimsToPB(&m.Claims),
		FramedCalls: m.FramedCalls, PeerCalls: m.PeerCalls, LeaseReports: m.LeaseReports, LeaseRecords: m.LeaseRecords}
	if m.RequestFilter != nil {
		out.RequestFilter = claimsToPB(m.RequestFilter)
	}
	if m.ConnectFilter != nil {
		out.ConnectFilter = &pb.Networks{Cidr: make([]string, len(*m.ConnectFilter))}
		for i, p := range *m.ConnectFilter {
			out.ConnectFilter.Cidr[i] = p.String()
		}
	}
	for _, s := range m.Stages {
		out.Stages = append(out.Stages, &pb.StageSpec{
			Stage: int32(s.Stage), DeadlineNs: int64(s.Deadline), Policy: policyToPB(s.Policy),
		})
	}
	return out
}

// manifestFromPB converts a manifest; a network that does not parse is an
// error (the host refuses the plugin).
func manifestFromPB(p *pb.Manifest) (Manifest, error) {
	m := Manifest{Name: p.GetName(), Version: p.GetVersion(), Reconfigurable: p.GetReconfigurable(),
		FramedCalls: p.GetFramedCalls(), PeerCalls: p.GetPeerCalls(), LeaseReports: p.GetLeaseReports(),
		LeaseRecords: p.GetLeaseRecords()}
	if c := p.GetClaims(); c != nil {
		m.Claims = claimsFromPB(c)
	}
	if c := p.GetRequestFilter(); c != nil {
		f := claimsFromPB(c)
		m.RequestFilter = &f
	}
	if n := p.GetConnectFilter(); n != nil {
		nets := make(contract.Networks, 0, len(n.Cidr))
		for _, s := range n.Cidr {
			pr, err := netip.ParsePrefix(s)
			if err != nil {
				return m, fmt.Errorf("manifest: connect filter: bad network %q", s)
			}
			nets = append(nets, pr.Masked())
		}
		m.ConnectFilter = &nets
	}
	for _, s := range p.GetStages() {
		m.Stages = append(m.Stages, StageSpec{Stage: contract.Stage(s.Stage), Limits: contract.Limits{
			Deadline: time.Duration(s.DeadlineNs), Policy: policyFromPB(s.Policy),
		}})
	}
	return m, nil
}

func claimsToPB(c *contract.Claims) *pb.Claims {
	return &pb.Claims{PathRegex: c.Paths, Hosts: c.Hosts, Methods: c.Methods}
}

func claimsFromPB(c *pb.Claims) contract.Claims {
	return contract.Claims{Paths: c.PathRegex, Hosts: c.Hosts, Methods: c.Methods}
}

func connToPB(c *contract.Conn) *pb.Conn {
	p := &pb.Conn{Id: c.ID, Remote: contract.AddrString(c.Remote), Local: contract.AddrString(c.Local)}
	if t := &c.TLS; t.On() {
		p.Tls = &pb.TLS{Version: uint32(t.Version), ServerName: bytesOf(t.ServerName),
			ClientCert: t.ClientCert, ClientSubject: bytesOf(t.ClientSubject)}
	}
	return p
}

func connFromPB(c *pb.Conn) contract.Conn {
	out := contract.Conn{ID: c.GetId(), Remote: addrFromPB(c.GetRemote()), Local: addrFromPB(c.GetLocal())}
	if t := c.GetTls(); t != nil && t.GetVersion() != 0 && t.GetVersion() <= 0xffff {
		out.TLS = contract.TLS{Version: uint16(t.GetVersion()), ServerName: string(t.GetServerName()),
			ClientCert: t.GetClientCert(), ClientSubject: string(t.GetClientSubject())}
	}
	return out
}

// addrFromPB reads an ip:port; anything else is no address.
func addrFromPB(s string) netip.AddrPort {
	a, _ := netip.ParseAddrPort(s)
	return a
}

func leaseToPB(l *contract.Lease) *pb.Lease {
	out := &pb.Lease{MaxRequests: clampUint32(l.MaxRequests), IdleTimeoutNs: int64(l.IdleTimeout), Records: l.Records,
		PeerTimes: l.PeerTimes, Served: clampUint32(l.Served), ReportCounts: l.ReportCounts}
	for i := range l.GiveBack {
		out.GiveBack = append(out.GiveBack, claimsToPB(&l.GiveBack[i]))
	}
	if len(l.ErrorPages) > 0 {
		out.ErrorPages = make(map[int32]string, len(l.ErrorPages))
		for st, p := range l.ErrorPages {
			out.ErrorPages[int32(st)] = p
		}
	}
	for _, p := range l.Peers {
		out.Peers = append(out.Peers, &pb.Peer{Name: p.Name, Socket: p.Socket,
			DeadlineNs: int64(p.Deadline), Policy: policyToPB(p.Policy)})
	}
	return out
}

func leaseFromPB(l *pb.Lease) contract.Lease {
	if l == nil {
		return contract.Lease{}
	}
	out := contract.Lease{MaxRequests: int(l.MaxRequests), IdleTimeout: time.Duration(l.IdleTimeoutNs), Records: l.Records,
		PeerTimes: l.PeerTimes, Served: int(l.Served), ReportCounts: l.ReportCounts}
	for _, c := range l.GiveBack {
		out.GiveBack = append(out.GiveBack, claimsFromPB(c))
	}
	if len(l.ErrorPages) > 0 {
		out.ErrorPages = make(map[int]string, len(l.ErrorPages))
		for st, p := range l.ErrorPages {
			out.ErrorPages[int(st)] = p
		}
	}
	for _, p := range l.Peers {
		out.Peers = append(out.Peers, contract.Peer{Name: p.GetName(), Socket: p.GetSocket(),
			Limits: contract.Limits{Deadline: time.Duration(p.GetDeadlineNs()), Policy: policyFromPB(p.GetPolicy())}})
	}
	return out
}

// clampUint32 fits a count into the wire's uint32.
func clampUint32(n int) uint32 {
	switch {
	case n <= 0:
		return 0
	case uint64(n) > math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(n)
}

func eventToPB(e *Event) *pb.Event {
	out := &pb.Event{
		Id: e.ID, Kind: eventKindToPB(e.Kind), Conn: connToPB(&e.Conn), Head: e.Head,
		Vhost: e.VHost, Buffered: e.Buffered, MaxBody: e.MaxBody, KeepAlive: e.KeepAlive, Server: e.Server,
		TimeoutNs: int64(e.Timeout), MaxHead: int64(e.MaxHead),
	}
	if e.Kind == EventHandle {
		out.Lease = leaseToPB(&e.Lease)
	}
	return out
}

func eventFromPB(p *pb.Event, e *Event) {
	*e = Event{
		ID: p.Id, Kind: eventKindFromPB(p.Kind), Conn: connFromPB(p.Conn), Head: p.Head,
		VHost: p.Vhost, Buffered: p.Buffered, MaxBody: p.MaxBody, KeepAlive: p.KeepAlive, Server: p.Server,
		Timeout: time.Duration(p.TimeoutNs), MaxHead: int(p.MaxHead),
		Lease: leaseFromPB(p.Lease),
	}
}

// replyToPB converts r but its records (Records), made valid UTF-8 first
// (see validStrings).
func replyToPB(r *Reply) *pb.Reply {
	validStrings(r)
	out := &pb.Reply{
		Id: r.ID, Verdict: verdictToPB(r.Verdict), Status: int32(r.Status), Body: r.Body,
		BytesIn: r.BytesIn, BytesOut: r.BytesOut, Leftover: r.Leftover, Close: r.Close, Error: r.Err,
		Leased: clampUint32(r.Leased), Interim: r.Interim, Unbounded: r.Unbounded, Upstream: upstreamToPB(&r.Upstream),
		IdleNs: int64(r.Idle), HeadOut: r.HeadOut, Released: r.Released,
	}
	for _, f := range r.Header {
		out.Header = append(out.Header, &pb.Field{Name: f.Name, Value: f.Value})
	}
	if r.Leased > 0 {
		out.LeasedClasses = classesToPB(&r.Classes)
	}
	if r.PeerClasses != (contract.Classes{}) {
		out.PeerClasses = classesToPB(&r.PeerClasses)
	}
	for _, ts := range r.PeerTimes {
		pt := &pb.PeerTimes{Micros: make([]uint32, len(ts))}
		for i, d := range ts {
			pt.Micros[i] = clampUint32(int(d / time.Microsecond))
		}
		out.PeerTimes = append(out.PeerTimes, pt)
	}
	return out
}

func classesToPB(c *contract.Classes) []uint32 {
	out := make([]uint32, len(c))
	for i, n := range c {
		out[i] = clampUint32(n)
	}
	return out
}

func classesFromPB(p []uint32, c *contract.Classes) {
	for i, n := range p[:min(len(p), len(c))] {
		c[i] = int(n)
	}
}

// replyFromPB converts p but its records (Records).
func replyFromPB(p *pb.Reply, r *Reply) {
	*r = Reply{
		ID: p.Id, Verdict: verdictFromPB(p.Verdict),
		Reply:   contract.Reply{Status: int(p.Status), Body: p.Body},
		BytesIn: p.BytesIn, BytesOut: p.BytesOut, Leftover: p.Leftover, Close: p.Close, Err: p.Error,
		Leased: int(p.Leased), Interim: p.Interim, Unbounded: p.Unbounded, Upstream: upstreamFromPB(p.Upstream),
		Idle: time.Duration(p.IdleNs), HeadOut: p.HeadOut, Released: p.Released,
	}
	if len(p.Header) > 0 {
		r.Header = make(http1.Header, len(p.Header))
		for i, f := range p.Header {
			r.Header[i] = http1.Field{Name: f.Name, Value: f.Value}
		}
	}
	classesFromPB(p.LeasedClasses, &r.Classes)
	classesFromPB(p.PeerClasses, &r.PeerClasses)
	for _, pt := range p.PeerTimes {
		ts := make([]time.Duration, len(pt.GetMicros()))
		for i, us := range pt.GetMicros() {
			ts[i] = time.Duration(us) * time.Microsecond
		}
		r.PeerTimes = append(r.PeerTimes, ts)
	}
}

// upstreamToPB converts a backend exchange; nil when there was none.
func upstreamToPB(u *contract.Upstream) *pb.Upstream {
	if !u.Forwarded() {
		return nil
	}
	return &pb.Upstream{Addr: u.Addr, Status: int32(u.Status), DurationNs: int64(u.Duration)}
}

func upstreamFromPB(p *pb.Upstream) contract.Upstream {
	return contract.Upstream{Addr: p.GetAddr(), Status: int(p.GetStatus()), Duration: time.Duration(p.GetDurationNs())}
}

func recordFromPB(p *pb.Record) contract.Record {
	return contract.Record{
		ConnID: p.GetConnId(), Remote: addrFromPB(p.GetRemote()), VHost: p.GetVhost(), Method: p.GetMethod(),
		Target: p.GetTarget(), Proto: p.GetProto(), Status: int(p.GetStatus()), Bytes: p.GetBytes(), HeadBytes: p.GetHeadBytes(),
		Start: time.Unix(0, p.GetStartUnixNs()), Duration: time.Duration(p.GetDurationNs()),
		Referer: string(p.GetReferer()), UserAgent: string(p.GetUserAgent()), Upstream: upstreamFromPB(p.GetUpstream()),
	}
}

// noteFromPB converts a note the generated code decoded.
func noteFromPB(p *pb.Note) Note {
	n := Note{Kind: noteKindFromPB(p.Kind)}
	if p.Record != nil {
		n.Record = recordFromPB(p.Record)
	}
	if p.Conn != nil {
		n.Conn = connFromPB(p.Conn)
	}
	return n
}

// bytesOf is s as bytes for a message about to be encoded, without a
// copy: encoding only reads them. The contract's fields that may hold any
// bytes a client sent (a Referer, a User-Agent, an SNI) are bytes, since
// a string field that is not UTF-8 fails to encode (and the whole message
// with it).
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// validStrings makes the string fields of r that a plugin fills and that
// may carry what a client sent (its error message, its header fields)
// valid UTF-8 (contract.ValidUTF8): not UTF-8, the whole reply would fail to
// encode and be lost. A header with a field to mend is copied first (it
// may be shared, as a plugin's prepared reply's is).
func validStrings(r *Reply) {
	r.Err = contract.ValidUTF8(r.Err)
	for i, f := range r.Header {
		if utf8.ValidString(f.Name) && utf8.ValidString(f.Value) {
			continue
		}
		h := slices.Clone(r.Header)
		for j := i; j < len(h); j++ {
			h[j].Name, h[j].Value = contract.ValidUTF8(h[j].Name), contract.ValidUTF8(h[j].Value)
		}
		r.Header = h
		return
	}
}
