package transport

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/contract"
	pb "github.com/capuchin/capuchin/proto/capuchin/v1"
)

// rawPair connects a framed end (made by mk) and a raw end over a real
// socketpair; the raw end reads and writes frames by hand, as a plugin in
// another language would, with the generated code as the reference.
func rawPair[T interface{ Close() error }](t *testing.T, mk func(*net.UnixConn) T) (T, *net.UnixConn) {
	t.Helper()
	a, b, err := SocketPair("framed", "raw")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := frameConn(a)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := frameConn(b)
	if err != nil {
		t.Fatal(err)
	}
	end := mk(ca)
	t.Cleanup(func() { end.Close(); cb.Close() })
	return end, cb
}

// readFrame reads one frame's body from c.
func readFrame(t *testing.T, c *net.UnixConn) []byte {
	t.Helper()
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// writeFrame writes m as one frame on c.
func writeFrame(t *testing.T, c *net.UnixConn, m proto.Message) {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(binary.BigEndian.AppendUint32(nil, uint32(len(b)))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

// peerConns are the connections the peer-call tests send: IPv4, IPv6 and
// one with TLS.
func peerConns() []contract.Conn {
	tls := wireConn()
	return []contract.Conn{
		{ID: 1, Remote: netip.MustParseAddrPort("192.0.2.7:40000"), Local: netip.MustParseAddrPort("127.0.0.1:8080")},
		{ID: 1 << 40, Remote: netip.MustParseAddrPort("[2001:db8::1]:5"), Local: netip.MustParseAddrPort("[::1]:443")},
		tls,
	}
}

// TestPeerEventsAreTheProtos: the events a lease holder sends are the
// proto's EventBatch, the same message the generated code makes of the
// Event, whatever the connection.
func TestPeerEventsAreTheProtos(t *testing.T) {
	pc, raw := rawPair(t, NewPeerCaller)
	for i, c := range peerConns() {
		ev, err := NewPeerEvent(&c, "example.org")
		if err != nil {
			t.Fatal(err)
		}
		head := "GET /x?" + string(rune('a'+i)) + " HTTP/1.1\r\nHost: example.org"
		if err := pc.Send(uint64(i+1)<<33, ev, head); err != nil {
			t.Fatal(err)
		}
		var got pb.EventBatch
		if err := proto.Unmarshal(readFrame(t, raw), &got); err != nil {
			t.Fatal(err)
		}
		want := eventToPB(&Event{ID: uint64(i+1) << 33, Kind: EventRequest, Conn: c, Head: []byte(head), VHost: "example.org"})
		if len(got.Events) != 1 || !proto.Equal(got.Events[0], want) {
			t.Fatalf("conn %d: sent %v, want %v", i, got.Events, want)
		}
	}
}

// TestPeerFramesReadTheProtos: a peer reads what the generated code
// writes, whole batches of them, with the fields a stage-20 call does not
// use skipped (an event of another kind keeps its kind, to be refused),
// and each connection's Conn decoded as the generated code does.
func TestPeerFramesReadTheProtos(t *testing.T) {
	pf, raw := rawPair(t, NewPeerFrames)
	var evs []*Event
	for i, c := range peerConns() {
		evs = append(evs,
			&Event{ID: uint64(2*i + 1), Kind: EventRequest, Conn: c, Head: []byte("GET / HTTP/1.1"), VHost: "a.example"},
			&Event{ID: uint64(2*i + 2), Kind: EventRequest, Conn: c, Head: []byte("POST /b HTTP/1.1"), VHost: "b.example"})
	}
	evs = append(evs, &Event{ID: 99, Kind: EventHandle, Conn: peerConns()[0], Head: []byte("GET / HTTP/1.1"),
		Buffered: []byte("xyz"), MaxBody: 1 << 20, KeepAlive: true, Server: "capuchin", Timeout: 5e9, MaxHead: 8192,
		Lease: contract.Lease{MaxRequests: 7, Records: true, Peers: []contract.Peer{{Name: "p", Socket: "/s"}}}})
	batch := &pb.EventBatch{}
	for _, e := range evs {
		batch.Events = append(batch.Events, eventToPB(e))
	}
	writeFrame(t, raw, batch)
	for _, e := range evs {
		var got PeerCall
		if err := pf.Recv(&got); err != nil {
			t.Fatal(err)
		}
		var full Event
		eventFromPB(eventToPB(e), &full)
		want := PeerCall{ID: full.ID, Kind: full.Kind, Conn: full.Conn, Head: string(full.Head), VHost: full.VHost}
		if got != want {
			t.Fatalf("event %d:\n got %+v\nwant %+v", e.ID, got, want)
		}
	}
}

// peerReplies are the stage-20 replies of the tests: each verdict, a
// response with fields and a body, an error, a negative status.
func peerReplies() []*Reply {
	return []*Reply{
		{ID: 1},
		{ID: 2, Verdict: contract.Close},
		{ID: 3, Verdict: contract.Respond, Reply: contract.Reply{Status: 401,
			Header: http1.Header{{Name: "WWW-Authenticate", Value: "Bearer"}, {Name: "X-Empty"}, {Value: "no name"}},
			Body:   []byte("<p>no</p>")}},
		{ID: 1 << 50, Verdict: contract.Respond, Reply: contract.Reply{Status: -3}},
		{ID: 5, Err: "plugin panicked: é"},
	}
}

// TestPeerRepliesAreTheProtos: a peer's replies are the proto's
// ReplyBatch, as the generated code makes them; a reply with stage-30
// fields (a panicking handler's Close) too.
func TestPeerRepliesAreTheProtos(t *testing.T) {
	pf, raw := rawPair(t, NewPeerFrames)
	rs := append(peerReplies(), &Reply{ID: 6, Err: "panicked", Close: true})
	for _, r := range rs {
		if err := pf.Send(r); err != nil {
			t.Fatal(err)
		}
		var got pb.ReplyBatch
		if err := proto.Unmarshal(readFrame(t, raw), &got); err != nil {
			t.Fatal(err)
		}
		if want := replyToPB(r); len(got.Replies) != 1 || !proto.Equal(got.Replies[0], want) {
			t.Fatalf("reply %d: sent %v, want %v", r.ID, got.Replies, want)
		}
	}
	// A field value or an error that is not UTF-8 (the generated code
	// refuses such strings) is sent mended, U+FFFD in its place; a shared
	// header is not written to.
	shared := http1.Header{{Name: "A", Value: "ok"}, {Name: "X", Value: "a\xffb"}}
	bad := &Reply{ID: 7, Verdict: contract.Respond, Err: "e\xc3", Reply: contract.Reply{Status: 401, Header: shared}}
	if err := pf.Send(bad); err != nil {
		t.Fatal(err)
	}
	var got pb.ReplyBatch
	if err := proto.Unmarshal(readFrame(t, raw), &got); err != nil {
		t.Fatal(err)
	}
	if h := got.Replies[0].Header; len(h) != 2 || h[1].Value != "a\uFFFDb" || got.Replies[0].Error != "e\uFFFD" || shared[1].Value != "a\xffb" {
		t.Fatalf("mended reply: %v; the shared header now %q", got.Replies[0], shared)
	}
}

// TestPeerCallerReadsTheProtos: a lease holder reads the replies the
// generated code writes, several to a frame, with the fields a stage-20
// reply does not use skipped.
func TestPeerCallerReadsTheProtos(t *testing.T) {
	pc, raw := rawPair(t, NewPeerCaller)
	rs := peerReplies()
	batch := &pb.ReplyBatch{}
	for _, r := range rs {
		batch.Replies = append(batch.Replies, replyToPB(r))
	}
	batch.Replies = append(batch.Replies, replyToPB(&Reply{ID: 8, Interim: true, BytesOut: 9, Leftover: []byte("x"),
		Records: recordsOf(contract.Record{Method: "GET"}), Upstream: contract.Upstream{Addr: "b:1", Status: 200}}))
	writeFrame(t, raw, batch)
	for _, r := range rs {
		var got PeerReply
		if err := pc.Recv(&got); err != nil {
			t.Fatal(err)
		}
		var full Reply
		replyFromPB(replyToPB(r), &full)
		want := PeerReply{ID: full.ID, Verdict: full.Verdict, Reply: full.Reply, Err: full.Err}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("reply %d:\n got %+v\nwant %+v", r.ID, got, want)
		}
	}
	var last PeerReply
	if err := pc.Recv(&last); err != nil || last.ID != 8 || !last.Interim {
		t.Fatalf("the stage-30 reply: %+v %v", last, err)
	}
}

// TestPeerBadFrames: a frame the generated code refuses (bytes that are
// no protobuf message, strings that are not UTF-8) ends the channel with
// ErrFrame on either end, never a panic or a wrong call.
func TestPeerBadFrames(t *testing.T) {
	common := [][]byte{
		{0x0a, 0x05, 0x08},       // an item longer than the frame
		{0x0a, 0x02, 0x08, 0xff}, // a varint cut short
		{0x0f},                   // a tag of wire type 7
	}
	replies := append(common,
		[]byte{0x0a, 0x03, 0x22, 0x01, 0x0a},       // a header field cut short
		[]byte{0x0a, 0x04, 0x5a, 0x02, 0xff, 0xfe}) // an error that is not UTF-8
	events := append(common,
		[]byte{0x0a, 0x04, 0x2a, 0x02, 0xc3, 0x28}, // a vhost that is not UTF-8
		[]byte{0x0a, 0x03, 0x1a, 0x01, 0x12})       // a Conn cut short
	check := func(kind string, body []byte, ref proto.Message, recv func(*net.UnixConn) error) {
		if proto.Unmarshal(body, ref) == nil {
			t.Fatalf("%s % x: the generated code reads it; not a bad frame", kind, body)
		}
		a, b, err := SocketPair("framed", "raw")
		if err != nil {
			t.Fatal(err)
		}
		ca, _ := frameConn(a)
		cb, _ := frameConn(b)
		defer cb.Close()
		if _, err := cb.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)); err != nil {
			t.Fatal(err)
		}
		if err := recv(ca); !errors.Is(err, ErrFrame) {
			t.Errorf("%s % x: %v, want ErrFrame", kind, body, err)
		}
	}
	for _, body := range replies {
		check("replies", body, &pb.ReplyBatch{}, func(c *net.UnixConn) error {
			pc := NewPeerCaller(c)
			defer pc.Close()
			return pc.Recv(new(PeerReply))
		})
	}
	for _, body := range events {
		check("events", body, &pb.EventBatch{}, func(c *net.UnixConn) error {
			pf := NewPeerFrames(c)
			defer pf.Close()
			return pf.Recv(new(PeerCall))
		})
	}
}
