package transport

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/capuchin/capuchin/internal/contract"
	"github.com/capuchin/capuchin/internal/recordwire"
	pb "github.com/capuchin/capuchin/proto/capuchin/v1"
)

// notesSeeds are encoded NoteBatches: records as the host sends them on
// (connection fields appended), with a Closed note, and odd ones.
func notesSeeds() [][]byte {
	rec := contract.Record{Method: "GET", Target: "/a", Proto: "HTTP/1.1", Status: 200, Bytes: 10, HeadBytes: 5,
		Start: time.Unix(1700000000, 1), Duration: time.Millisecond, Referer: "r\xff", UserAgent: "u",
		Upstream: contract.Upstream{Addr: "127.0.0.1:81", Status: 503, Duration: time.Second}}
	rs := recordsOf(rec, contract.Record{ConnID: 9, VHost: "old", Status: -1})
	rs.SetConn(7, netip.MustParseAddrPort("[::1]:80"), "v")
	var nb NoteBatch
	nb.AddRecords(&rs)
	_ = nb.AddClosed(&contract.Conn{ID: 3, Remote: netip.MustParseAddrPort("10.0.0.1:5")})
	up := protowire.AppendBytes(protowire.AppendTag(nil, 13, protowire.BytesType), protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), 200))
	twoUp, _ := proto.Marshal(&pb.Note{Kind: pb.Note_KIND_DONE, Record: &pb.Record{Upstream: &pb.Upstream{Addr: "a:1"}}})
	twoUp = append(twoUp, protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), up)...)
	return [][]byte{nb.b, protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), twoUp),
		protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte{0x12, 0x02, 0x22, 0x00})}
}

// FuzzDecodeNotes: the plugin side's decoder of Notify batches agrees
// with the generated code on every input: the same notes, or both refuse.
func FuzzDecodeNotes(f *testing.F) {
	for _, s := range notesSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeNotes(b, nil)
		var p pb.NoteBatch
		perr := proto.Unmarshal(b, &p)
		if (err == nil) != (perr == nil) {
			t.Fatalf("decodeNotes: %v, generated code: %v", err, perr)
		}
		if err != nil {
			return
		}
		var want []Note
		for _, n := range p.Notes {
			want = append(want, noteFromPB(n))
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded\n%+v\ngenerated code\n%+v", got, want)
		}
	})
}

// FuzzDecodeRecord: recordwire.DecodeRecord agrees with the generated
// code on every serialized Record.
func FuzzDecodeRecord(f *testing.F) {
	rs := recordsOf(contract.Record{Method: "GET", Status: 200, Upstream: contract.Upstream{Addr: "b:1"}})
	rs.Each(func(rec []byte) bool { f.Add(rec); return true })
	f.Add([]byte{0x22, 0x02, 0xc3, 0x28})       // a method that is not UTF-8
	f.Add([]byte{0x38, 0x01, 0x3a, 0x01, 0x41}) // status as a varint, then as bytes (skipped)
	f.Fuzz(func(t *testing.T, b []byte) {
		var got contract.Record
		err := recordwire.DecodeRecord(b, &got)
		var p pb.Record
		perr := proto.Unmarshal(b, &p)
		if (err == nil) != (perr == nil) {
			t.Fatalf("DecodeRecord: %v, generated code: %v", err, perr)
		}
		if want := recordFromPB(&p); err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded\n%+v\ngenerated code\n%+v", got, want)
		}
	})
}
