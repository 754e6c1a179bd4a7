package transport

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/capuchin/capuchin/internal/recordwire"
	pb "github.com/capuchin/capuchin/proto/capuchin/v1"
)

// The records of a reply on the gRPC Calls stream, which the generated
// code encodes and decodes whole.

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

// recordsFromPB encodes the records of a reply's generated message into
// rs, without the fields the proto does not define (which the host would
// otherwise pass on as they came).
func recordsFromPB(ps []*pb.Record, rs *recordwire.Records) error {
	var b []byte
	for _, p := range ps {
		p.ProtoReflect().SetUnknown(nil)
		if u := p.GetUpstream(); u != nil {
			u.ProtoReflect().SetUnknown(nil)
		}
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
