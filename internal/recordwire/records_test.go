package recordwire_test

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/capuchin/capuchin/internal/contract"
	"github.com/capuchin/capuchin/internal/recordwire"
	pb "github.com/capuchin/capuchin/proto/capuchin/v1"
)

func full() contract.Record {
	return contract.Record{Method: "GET", Target: "/a?b=c", Proto: "HTTP/1.1", Status: 200, Bytes: 1234, HeadBytes: 200,
		Start: time.Unix(1700000000, 123456789), Duration: 1500 * time.Microsecond,
		Referer: "http://r/\xff", UserAgent: "curl/8\x80", // any octet but controls: bytes on the wire
		Upstream: contract.Upstream{Addr: "127.0.0.1:8081", Status: 502, Duration: time.Millisecond}}
}

// A record encoded by hand decodes with the generated code as it was,
// with the connection's fields the host appends (over any the plugin
// set), and strings that are not UTF-8 mended rather than lost.
func TestRecordsRoundTrip(t *testing.T) {
	remote := netip.MustParseAddrPort("[2001:db8::1]:443")
	a, b, c := full(), contract.Record{Method: "POST", Target: "/"}, full()
	b.ConnID, b.VHost = 99, "plugin's" // the host's fields win
	c.Target, c.Status, c.Upstream = "/\xc3", -1, contract.Upstream{}
	var rs recordwire.Records
	for _, r := range []*contract.Record{&a, &b, &c} {
		rs.Append(r)
	}
	rs.SetConn(7, remote, "example.org")
	got, err := rs.Decode()
	if err != nil {
		t.Fatal(err)
	}
	c.Target = "/\uFFFD"
	for _, w := range []*contract.Record{&a, &b, &c} {
		w.ConnID, w.Remote, w.VHost = 7, remote, "example.org"
	}
	want := []contract.Record{a, b, c}
	for i := range want {
		want[i].Start = time.Unix(0, want[i].Start.UnixNano())
	}
	if rs.Len() != 3 || !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded\n%+v\nwant\n%+v", got, want)
	}
}

// Lengths that take more or fewer bytes than the encoder leaves room for.
func TestRecordsLengths(t *testing.T) {
	for _, n := range []int{0, 100, 20000, 3 << 20} {
		var rs recordwire.Records
		r := contract.Record{Method: "GET", UserAgent: strings.Repeat("u", n), Upstream: contract.Upstream{Addr: strings.Repeat("a", n%200+1)}}
		rs.Append(&r)
		rs.Append(&r)
		got, err := rs.Decode()
		if err != nil || len(got) != 2 || got[1].UserAgent != r.UserAgent || got[1].Upstream.Addr != r.Upstream.Addr {
			t.Fatalf("%d bytes: %d records, %v", n, len(got), err)
		}
	}
}

func TestRecordsSplitAdd(t *testing.T) {
	var rs recordwire.Records
	for i := range 5 {
		rs.Append(&contract.Record{Status: 200 + i})
	}
	rs.SetConn(3, netip.AddrPort{}, "v")
	head, tail := rs.Split(2)
	h, _ := head.Decode()
	tl, _ := tail.Decode()
	if len(h) != 2 || len(tl) != 3 || h[1].Status != 201 || tl[0].Status != 202 || tl[2].ConnID != 3 {
		t.Fatalf("split: %+v | %+v", h, tl)
	}
	head.Add(&tail) // head's memory ends at its last record: tail is not overwritten
	all, _ := head.Decode()
	tl, _ = tail.Decode()
	if len(all) != 5 || all[4].Status != 204 || len(tl) != 3 || tl[0].Status != 202 {
		t.Fatalf("add: %+v | %+v", all, tl)
	}
	if a, b := rs.Split(9); a.Len() != 5 || b.Len() != 0 {
		t.Fatalf("split past the end: %d, %d", a.Len(), b.Len())
	}
}

// SplitReply takes a reply's records apart from its other fields,
// wherever they are, and refuses a record the stage-40 plugins could not
// decode.
func TestSplitReply(t *testing.T) {
	rec, _ := proto.Marshal(&pb.Record{Method: "GET", Status: 200})
	base, _ := proto.Marshal(&pb.Reply{Id: 5, Leased: 2, Interim: true})
	field := protowire.AppendBytes(protowire.AppendTag(nil, 10, protowire.BytesType), rec)
	reply := append(append(append([]byte(nil), field...), base...), field...)
	var scratch []byte
	rest, rs, err := recordwire.SplitReply(reply, &scratch)
	var p pb.Reply
	if err != nil || rs.Len() != 2 || proto.Unmarshal(rest, &p) != nil || p.Id != 5 || p.Leased != 2 || len(p.Records) != 0 {
		t.Fatalf("split: %d records, %+v, %v", rs.Len(), &p, err)
	}
	if rest, rs, err := recordwire.SplitReply(base, &scratch); err != nil || rs.Len() != 0 || &rest[0] != &base[0] {
		t.Fatal("a reply without records is not returned as it is")
	}
	bad := map[string][]byte{
		"string not UTF-8":     protowire.AppendString(protowire.AppendTag(nil, 4, protowire.BytesType), "G\xffT"),
		"upstream not UTF-8":   protowire.AppendBytes(protowire.AppendTag(nil, 13, protowire.BytesType), protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "\xff")),
		"wrong wire type":      protowire.AppendVarint(protowire.AppendTag(nil, 5, protowire.VarintType), 1),
		"cut short":            protowire.AppendTag(nil, 4, protowire.BytesType),
		"upstream not message": protowire.AppendBytes(protowire.AppendTag(nil, 13, protowire.BytesType), []byte{0xff}),
		// An unknown group: Go's decoder skips groups nested 10,000 deep,
		// protobufjs's (a Node plugin's) refuses them past 100.
		"group": protowire.AppendTag(protowire.AppendTag(nil, 20, protowire.StartGroupType), 20, protowire.EndGroupType),
		"group in upstream": protowire.AppendBytes(protowire.AppendTag(nil, 13, protowire.BytesType),
			protowire.AppendTag(protowire.AppendTag(nil, 9, protowire.StartGroupType), 9, protowire.EndGroupType)),
		"field number past the maximum": protowire.AppendVarint(protowire.AppendTag(nil, protowire.MaxValidNumber+1, protowire.VarintType), 1),
	}
	for name, r := range bad {
		f := protowire.AppendBytes(protowire.AppendTag(nil, 10, protowire.BytesType), r)
		if _, _, err := recordwire.SplitReply(append(append([]byte(nil), base...), f...), &scratch); err == nil {
			t.Errorf("%s: accepted", name)
		}
		var rs recordwire.Records
		if rs.AppendEncoded(r) == nil {
			t.Errorf("%s: accepted by AppendEncoded", name)
		}
	}
	if _, _, err := recordwire.SplitReply([]byte{0x52, 0x05, 1}, &scratch); err == nil {
		t.Error("a reply cut short: accepted")
	}
}

// FuzzSplitReply: whatever a plugin sends, the records the host takes
// decode as Notes on the stage-40 plugins' side, and the rest of the
// reply is what it was without them.
func FuzzSplitReply(f *testing.F) {
	rec, _ := proto.Marshal(&pb.Record{Method: "GET", Target: "/", Status: 200, Upstream: &pb.Upstream{Addr: "a:1"}})
	base, _ := proto.Marshal(&pb.Reply{Id: 5, Leased: 2, Interim: true, Header: []*pb.Field{{Name: "a", Value: "b"}}})
	f.Add(base)
	f.Add(append(protowire.AppendBytes(protowire.AppendTag(nil, 10, protowire.BytesType), rec), base...))
	f.Add(protowire.AppendBytes(protowire.AppendTag(nil, 10, protowire.BytesType), []byte{0x22, 0x01, 0xff}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var scratch []byte
		rest, rs, err := recordwire.SplitReply(b, &scratch)
		if err != nil {
			return
		}
		rs.SetConn(1, netip.MustParseAddrPort("127.0.0.1:1"), "v")
		var nb pb.NoteBatch
		if err := proto.Unmarshal(rs.AppendNotes(nil), &nb); err != nil || len(nb.Notes) != rs.Len() {
			t.Fatalf("taken records do not decode: %v (%d notes of %d)", err, len(nb.Notes), rs.Len())
		}
		var whole, split pb.Reply
		if proto.Unmarshal(b, &whole) != nil {
			return // a reply the generated code refuses for its other fields
		}
		if err := proto.Unmarshal(rest, &split); err != nil {
			t.Fatalf("the rest does not decode: %v", err)
		}
		if len(whole.Records) != rs.Len() {
			t.Fatalf("%d records decoded, %d taken", len(whole.Records), rs.Len())
		}
		whole.Records = nil
		whole.ProtoReflect().SetUnknown(nil)
		split.ProtoReflect().SetUnknown(nil)
		if !proto.Equal(&whole, &split) {
			t.Fatalf("the rest differs:\n%v\n%v", &whole, &split)
		}
	})
}
