package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/contract"
	"github.com/capuchin/capuchin/internal/recordwire"
	pb "github.com/capuchin/capuchin/proto/capuchin/v1"
)

// echo is the plugin side of the wire test: it answers each event with the
// verdict whose name the event's VHost carries, so that both ends pick
// verdicts by name, and sends back what it received.
type echo struct {
	notes chan []Note
}

func (echo) Describe() Manifest {
	m := Manifest{Name: "echo", Version: "1", Claims: contract.Claims{Paths: []string{"^/x"}, Methods: []string{"GET"}},
		RequestFilter: &contract.Claims{Paths: []string{"^/private"}, Hosts: []string{"h"}},
		ConnectFilter: &contract.Networks{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")},
		FramedCalls:   true, PeerCalls: true, LeaseReports: true}
	p := contract.FailClosed
	for s := contract.StageConnect; s.Valid(); s = s.Next() {
		m.Stages = append(m.Stages, StageSpec{Stage: s, Limits: contract.Limits{Deadline: time.Duration(s) * time.Millisecond, Policy: p}})
		p = 1 - p
	}
	return m
}

func (echo) Configure(string) error { return nil }

func (echo) Calls(s PluginCalls) error {
	for {
		var ev Event
		if err := s.Recv(&ev); err != nil {
			return nil
		}
		v := contract.Invalid
		for x := contract.Continue; x.Valid(); x++ {
			if x.String() == ev.VHost {
				v = x
			}
		}
		r := &Reply{ID: ev.ID, Verdict: v, Reply: contract.Reply{Status: 201, Header: http1.Header{{Name: "X-Kind", Value: ev.VHost}}},
			Leased: ev.Lease.MaxRequests, Classes: contract.Classes{1, 0, 7, 0, 2, 1}, Records: recordsOf(contract.Record{ConnID: ev.Conn.ID, Remote: ev.Conn.Remote, Method: "GET", Bytes: 90, HeadBytes: 80}),
			BytesOut: 300, HeadOut: 200, Idle: time.Second, Close: true, Released: true,
			Upstream: contract.Upstream{Addr: "127.0.0.1:8080", Status: 502, Duration: time.Second}}
		if len(ev.Lease.GiveBack) > 0 { // the give-back filters come back as the body
			r.Body = []byte(strings.Join(ev.Lease.GiveBack[0].Paths, ","))
		}
		for st, p := range ev.Lease.ErrorPages { // the error pages as fields
			r.Header = append(r.Header, http1.Field{Name: "X-Page", Value: fmt.Sprint(st, " ", p)})
		}
		for _, p := range ev.Lease.Peers { // and the peers as fields
			r.Header = append(r.Header, http1.Field{Name: "X-Peer", Value: fmt.Sprint(p.Name, " ", p.Socket, " ", p.Deadline, " ", p.Policy)})
		}
		if ev.Lease.PeerTimes { // peer call times asked for: some come back
			r.PeerClasses = contract.Classes{1, 0, 0, 0, 2, 0}
			r.PeerTimes = [][]time.Duration{{3 * time.Microsecond, 1500 * time.Microsecond}, nil}
		}
		if err := s.Send(r); err != nil {
			return err
		}
	}
}

func (e echo) Notify(notes []Note) { e.notes <- append([]Note(nil), notes...) }

func (echo) Metrics() (Metrics, error) {
	return Metrics{ContentType: "text/plain; version=0.0.4", Data: []byte("x_total 3\n")}, nil
}

func (echo) Reopen() error { return errors.New("cannot reopen /var/log/x") }

// dialEcho serves echo over gRPC on 127.0.0.1 and returns the host's
// client for it; cleanup stops both.
func dialEcho(t *testing.T, e echo) *Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewGRPCServer(nil)
	if err := (&GRPCPlugin{Impl: e}).GRPCServer(nil, srv); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = srv.Serve(ln) }()
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close(); srv.Stop(); wg.Wait() })
	raw, err := (&GRPCPlugin{}).GRPCClient(context.Background(), nil, cc)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(*Client)
}

// TestWireRoundTrip runs the host's client against a plugin-side server
// over real gRPC: every verdict, chosen by name on the plugin's side,
// arrives as the same verdict on the host's; every stage and policy of the
// manifest, the connection's addresses and TLS facts, the lease and the records survive
// the trip.
func TestWireRoundTrip(t *testing.T) {
	e := echo{notes: make(chan []Note, 1)}
	c := dialEcho(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	m, err := c.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := e.Describe(); !reflect.DeepEqual(m, want) {
		t.Errorf("manifest:\n got %+v\nwant %+v", m, want)
	}

	calls, err := c.Calls(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkCalls(t, calls)
	_ = calls.CloseSend()

	ns, err := c.Notify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn := wireConn()
	rec := contract.Record{ConnID: 7, Remote: conn.Remote, VHost: "v", Method: "GET", Target: "/x", Proto: "HTTP/1.1",
		Status: 200, Bytes: 99, Start: time.Unix(1700000000, 5), Duration: time.Millisecond,
		Referer: "http://a/", UserAgent: "curl/8", Upstream: contract.Upstream{Addr: "127.0.0.1:81", Status: 200, Duration: 2 * time.Millisecond}}
	sent := []Note{{Kind: NoteDone, Record: rec}, {Kind: NoteClosed, Conn: conn}}
	// The record goes as a lease's holder encodes it, without the
	// connection's fields, which the host appends.
	plugins := rec
	plugins.ConnID, plugins.Remote, plugins.VHost = 0, netip.AddrPort{}, ""
	rs := recordsOf(plugins)
	rs.SetConn(rec.ConnID, rec.Remote, rec.VHost)
	var nb NoteBatch
	nb.AddRecords(&rs)
	if err := nb.AddClosed(&conn); err != nil {
		t.Fatal(err)
	}
	if err := ns.Send(&nb); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-e.notes:
		if !reflect.DeepEqual(got, sent) {
			t.Errorf("notes:\n got %+v\nwant %+v", got, sent)
		}
	case <-ctx.Done():
		t.Fatal("no notes arrived")
	}
	if err := ns.Close(); err != nil {
		t.Error(err)
	}
	if m, err := c.Metrics(ctx); err != nil || m.ContentType != "text/plain; version=0.0.4" || string(m.Data) != "x_total 3\n" {
		t.Errorf("metrics: %+v, %v", m, err)
	}
	if err := c.Reopen(ctx); err == nil || !strings.Contains(err.Error(), "cannot reopen /var/log/x") {
		t.Errorf("reopen: %v", err)
	}
}

// A record that came on the gRPC Calls stream goes on without the fields
// the proto does not define: the host checks what it passes on, and a
// group there (which protobufjs refuses past 100 levels) would not pass.
func TestRecordsFromPBUnknown(t *testing.T) {
	p := &pb.Record{Method: "GET", Upstream: &pb.Upstream{Addr: "a:1"}}
	group := protowire.AppendTag(protowire.AppendTag(nil, 20, protowire.StartGroupType), 20, protowire.EndGroupType)
	p.ProtoReflect().SetUnknown(group)
	p.Upstream.ProtoReflect().SetUnknown(group)
	var rs recordwire.Records
	if err := recordsFromPB([]*pb.Record{p}, &rs); err != nil {
		t.Fatal(err)
	}
	got, err := rs.Decode()
	if err != nil || len(got) != 1 || got[0].Method != "GET" || got[0].Upstream.Addr != "a:1" {
		t.Fatalf("%+v, %v", got, err)
	}
	var scratch []byte
	reply := append(protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 5), rs.Wire()...)
	if _, taken, err := recordwire.SplitReply(reply, &scratch); err != nil || taken.Len() != 1 {
		t.Fatalf("the host refuses the record: %v", err)
	}
}

// recordsOf encodes rs as a lease's holder does.
func recordsOf(rs ...contract.Record) recordwire.Records {
	var out recordwire.Records
	for i := range rs {
		out.Append(&rs[i])
	}
	return out
}

// checkCalls sends an event per verdict on calls and checks each reply.
func checkCalls(t *testing.T, calls CallConn) {
	t.Helper()
	conn := wireConn()
	lease := contract.Lease{MaxRequests: 9, IdleTimeout: 3 * time.Second, Records: true,
		GiveBack: []contract.Claims{{Paths: []string{"^/a", "^/b"}}},
		Peers: []contract.Peer{{Name: "auth", Socket: "/run/x/1.auth", Limits: contract.Limits{Deadline: time.Second, Policy: contract.FailOpen}},
			{Name: "waf", Socket: "/run/x/2.waf"}},
		ErrorPages: map[int]string{418: "/srv/www/teapot.html"}, PeerTimes: true, Served: 41, ReportCounts: true}
	for v := contract.Continue; v.Valid(); v++ {
		ev := &Event{ID: uint64(v) + 1, Kind: EventHandle, Conn: conn, VHost: v.String(), Lease: lease}
		if err := calls.Send(ev); err != nil {
			t.Fatal(err)
		}
		var r Reply
		if err := calls.Recv(&r); err != nil {
			t.Fatal(err)
		}
		if r.ID != ev.ID || r.Verdict != v || r.Status != 201 || r.Header.Get("X-Kind") != v.String() {
			t.Errorf("asked for %v, got reply %d verdict %v status %d header %v", v, r.ID, r.Verdict, r.Status, r.Header)
		}
		if got, want := fmt.Sprint(r.Header[1:]), "[{X-Page 418 /srv/www/teapot.html} {X-Peer auth /run/x/1.auth 1s fail-open} {X-Peer waf /run/x/2.waf 0s fail-closed}]"; got != want {
			t.Errorf("peers lost on the way:\n got %s\nwant %s", got, want)
		}
		if string(r.Body) != "^/a,^/b" {
			t.Errorf("give-back filters lost on the way: %q", r.Body)
		}
		if r.BytesOut != 300 || r.HeadOut != 200 || r.Idle != time.Second || !r.Close || !r.Released {
			t.Errorf("bytes out, heads, idle time, close or release lost on the way: %d %d %v %v %v", r.BytesOut, r.HeadOut, r.Idle, r.Close, r.Released)
		}
		if r.Classes != (contract.Classes{1, 0, 7, 0, 2, 1}) || r.PeerClasses != (contract.Classes{1, 0, 0, 0, 2, 0}) {
			t.Errorf("leased status classes lost on the way: %v, %v", r.Classes, r.PeerClasses)
		}
		if len(r.PeerTimes) != 2 || !slices.Equal(r.PeerTimes[0], []time.Duration{3 * time.Microsecond, 1500 * time.Microsecond}) ||
			len(r.PeerTimes[1]) != 0 {
			t.Errorf("peer call times lost on the way (or the lease's ask for them): %v", r.PeerTimes)
		}
		recs, err := r.Records.Decode()
		if err != nil || r.Leased != lease.MaxRequests || len(recs) != 1 || recs[0].ConnID != conn.ID || recs[0].Remote != conn.Remote ||
			recs[0].Bytes != 90 || recs[0].HeadBytes != 80 {
			t.Errorf("lease or records lost on the way: leased %d, records %+v, %v", r.Leased, recs, err)
		}
		if want := (contract.Upstream{Addr: "127.0.0.1:8080", Status: 502, Duration: time.Second}); r.Upstream != want {
			t.Errorf("upstream lost on the way: got %+v, want %+v", r.Upstream, want)
		}
	}
}

// wireConn is the connection the wire tests send: addresses and TLS facts.
func wireConn() contract.Conn {
	return contract.Conn{ID: 7, Remote: netip.MustParseAddrPort("[2001:db8::1]:4000"), Local: netip.MustParseAddrPort("127.0.0.1:80"),
		TLS: contract.TLS{Version: 0x0304, ServerName: "a.example", ClientCert: true, ClientSubject: "CN=client,O=Test"}}
}
