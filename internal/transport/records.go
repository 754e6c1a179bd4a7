package transport

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/capuchin/capuchin/internal/contract"
	"github.com/capuchin/capuchin/internal/recordwire"
	pb "github.com/capuchin/capuchin/proto/capuchin/v1"
)

// The records of a reply on the gRPC Calls stream, which the generated
// code encodes and decodes whole, and records decoded for a test.

// DecodeRecords returns rs decoded, with their connection's fields.
func DecodeRecords(rs *recordwire.Records) ([]contract.Record, error) {
	var b pb.NoteBatch
	if err := proto.Unmarshal(rs.AppendNotes(nil), &b); err != nil {
		return nil, fmt.Errorf("records: %w", err)
	}
	out := make([]contract.Record, 0, len(b.Notes))
	for _, n := range b.Notes {
		out = append(out, recordFromPB(n.Record))
	}
	return out, nil
}

// recordsToPB decodes rs for a reply's generated message.
func recordsToPB(rs *recordwire.Records) []*pb.Record {
	var out []*pb.Record
	rs.Each(func(rec []byte) bool {
		p := new(pb.Record)
		if proto.Unmarshal(rec, p) == nil { // (Records.Append wrote it)
			out = append(out, p)
		}
		return true
	})
	return out
}

// recordsFromPB encodes the records of a reply's generated message into rs.
func recordsFromPB(ps []*pb.Record, rs *recordwire.Records) error {
	var b []byte
	for _, p := range ps {
		var err error
		if b, err = proto.Marshal(p); err == nil {
			err = rs.AppendEncoded(b)
		}
		if err != nil {
			return fmt.Errorf("records: %w", err)
		}
	}
	return nil
}
