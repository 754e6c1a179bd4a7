package transport

import (
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/contract"
	pb "github.com/capuchin/capuchin/proto/capuchin/v1"
)

// FuzzPeerReply: the hand-written decoder of a peer's reply never panics,
// and where the generated code reads the bytes as a Reply it reads the
// same stage-20 fields (protobuf's rules: the last of a repeated singular
// field wins, unknown fields are skipped).
func FuzzPeerReply(f *testing.F) {
	for _, r := range []*Reply{
		{ID: 7, Verdict: contract.Respond, Reply: contract.Reply{Status: 401,
			Header: http1.Header{{Name: "WWW-Authenticate", Value: `Bearer realm="x"`}}, Body: []byte("no")}},
		{ID: 1 << 40, Verdict: contract.Continue},
		{ID: 3, Verdict: contract.Close, Err: "late"},
	} {
		b, err := proto.Marshal(replyToPB(r))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(append(b, b...)) // every field twice
	}
	f.Add([]byte{0x2a, 0x01, 'a', 0x2a, 0x01, 'b'}) // body twice
	f.Add([]byte{0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		var got PeerReply
		err := parsePeerReply(b, &got)
		var ref pb.Reply
		if proto.Unmarshal(b, &ref) != nil {
			return // ours may read what it does not use more leniently
		}
		if err != nil {
			t.Fatalf("% x: the generated code reads it, ours: %v", b, err)
		}
		var want Reply
		replyFromPB(&ref, &want)
		w := PeerReply{ID: want.ID, Verdict: want.Verdict, Interim: want.Interim, Err: want.Err,
			Reply: contract.Reply{Status: want.Status, Header: want.Header, Body: want.Body}}
		if !peerReplyEqual(&got, &w) {
			t.Fatalf("% x:\n got %+v\nwant %+v", b, got, w)
		}
	})
}

func peerReplyEqual(a, b *PeerReply) bool {
	return a.ID == b.ID && a.Verdict == b.Verdict && a.Interim == b.Interim && a.Err == b.Err &&
		a.Reply.Status == b.Reply.Status && string(a.Reply.Body) == string(b.Reply.Body) &&
		len(a.Reply.Header) == len(b.Reply.Header) && (len(a.Reply.Header) == 0 || reflect.DeepEqual(a.Reply.Header, b.Reply.Header))
}

// FuzzPeerEvent: the same for the peer's decoder of a stage-20 event.
func FuzzPeerEvent(f *testing.F) {
	conn := wireConn()
	for _, ev := range []*Event{
		{ID: 9, Kind: EventRequest, Conn: conn, Head: []byte("GET / HTTP/1.1\r\nHost: a"), VHost: "default"},
		{ID: 2, Kind: EventConnect, Conn: conn},
	} {
		b, err := proto.Marshal(eventToPB(ev))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(append(b, b...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p PeerFrames
		var got PeerCall
		err := p.parseEvent(b, string(b), &got)
		var ref pb.Event
		if proto.Unmarshal(b, &ref) != nil {
			return
		}
		if err != nil {
			t.Fatalf("% x: the generated code reads it, ours: %v", b, err)
		}
		var want Event
		eventFromPB(&ref, &want)
		if got.ID != want.ID || got.Kind != want.Kind || got.Head != string(want.Head) || got.VHost != want.VHost ||
			!reflect.DeepEqual(got.Conn, want.Conn) {
			t.Fatalf("% x:\n got %+v\nwant %+v", b, got, want)
		}
	})
}
