package transport

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	gproto "google.golang.org/protobuf/proto"

	"github.com/capuchin/capuchin/internal/contract"
	"github.com/capuchin/capuchin/internal/recordwire"
	pb "github.com/capuchin/capuchin/proto/capuchin/v1"
)

// NoteBatch is a NoteBatch message for the Notify stream, encoded as notes
// are added: a lease's records as they came (recordwire), the rest
// through the generated types.
type NoteBatch struct {
	b []byte
	n int
}

// Len is the number of notes added.
func (nb *NoteBatch) Len() int { return nb.n }

// AddClosed adds a stage-50 note: c closed.
func (nb *NoteBatch) AddClosed(c *contract.Conn) error {
	p := &pb.Note{Kind: pb.Note_KIND_CLOSED, Conn: connToPB(c)}
	b := protowire.AppendTag(nb.b, fBatchItem, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(gproto.Size(p)))
	b, err := gproto.MarshalOptions{UseCachedSize: true}.MarshalAppend(b, p)
	if err != nil {
		return fmt.Errorf("note: %w", err)
	}
	nb.b = b
	nb.n++
	return nil
}

// AddRecords adds a stage-40 note for each of rs's records, with rs's
// connection fields (Records.SetConn).
func (nb *NoteBatch) AddRecords(rs *recordwire.Records) {
	nb.b = rs.AppendNotes(nb.b)
	nb.n += rs.Len()
}

// rawMessage is a message already encoded, which rawCodec sends as it is.
type rawMessage struct{ buf mem.Buffer }

// rawCodec is gRPC's protobuf codec, and sends a rawMessage's bytes as
// they are; its name is the protobuf codec's, so the plugin decodes what
// it sends as any other message.
type rawCodec struct{ encoding.CodecV2 }

func (c rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if r, ok := v.(*rawMessage); ok {
		return mem.BufferSlice{r.buf}, nil
	}
	return c.CodecV2.Marshal(v)
}

func newRawCodec() rawCodec { return rawCodec{encoding.GetCodecV2(proto.Name)} }
