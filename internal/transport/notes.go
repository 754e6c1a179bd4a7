package transport

import (
	"fmt"
	"slices"

	"google.golang.org/grpc"
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

// Size is the batch's size in bytes.
func (nb *NoteBatch) Size() int { return len(nb.b) }

// MaxNotes is the largest Notify message a plugin takes (NewGRPCServer):
// a frame's bound, past what a batch of records reaches.
const MaxNotes = maxFrame

// AddClosed adds a stage-50 note: c closed.
func (nb *NoteBatch) AddClosed(c *contract.Conn) error {
	p := &pb.Note{Kind: noteKindToPB(NoteClosed), Conn: connToPB(c)}
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

// rawCodec is gRPC's protobuf codec, which sends a rawMessage's bytes as
// they are and receives a rawRecv's undecoded. Its name is the protobuf
// codec's: forced on a stream (grpc.ForceCodecV2) it makes the content
// type application/grpc+proto, which every gRPC server takes as
// protobuf, so the other end reads what it sends as any other message.
type rawCodec struct{ encoding.CodecV2 }

// Marshal encodes v, or takes a rawMessage's bytes as they are.
func (c rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if r, ok := v.(*rawMessage); ok {
		return mem.BufferSlice{r.buf}, nil
	}
	return c.CodecV2.Marshal(v)
}

// Unmarshal copies a message's bytes into a rawRecv as they came.
func (c rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if r, ok := v.(*rawRecv); ok {
		n := data.Len()
		r.b = slices.Grow(r.b[:0], n)[:n]
		data.CopyTo(r.b)
		return nil
	}
	return c.CodecV2.Unmarshal(data, v)
}

// rawRecv receives a message's bytes undecoded (rawCodec).
type rawRecv struct{ b []byte }

// newRawCodec returns a rawCodec over gRPC's protobuf codec.
func newRawCodec() rawCodec { return rawCodec{encoding.GetCodecV2(proto.Name)} }

// NewGRPCServer is grpc.NewServer with opts, rawCodec, by which the
// Notify stream's receiver decodes its batches itself (decodeNotes), and
// messages of MaxNotes bytes at most.
func NewGRPCServer(opts []grpc.ServerOption) *grpc.Server {
	return grpc.NewServer(append(opts, grpc.ForceServerCodecV2(newRawCodec()), grpc.MaxRecvMsgSize(MaxNotes))...)
}

// decodeNotes appends the notes of b, an encoded NoteBatch, to out: a
// stage-40 record decoded by hand (recordwire.DecodeRecord: one
// allocation a record, where the generated code makes a dozen), anything
// else by the generated code.
func decodeNotes(b []byte, out []Note) ([]Note, error) {
	for len(b) > 0 {
		item, ok, err := nextItem(&b)
		if err != nil {
			return out, fmt.Errorf("notes: %w", err)
		}
		if !ok {
			continue // a field unknown here
		}
		note, err := decodeNote(item)
		if err != nil {
			return out, fmt.Errorf("notes: %w", err)
		}
		out = append(out, note)
	}
	return out, nil
}

// decodeNote decodes one Note: by hand when it is a stage-40 record and
// nothing else (recordwire.DoneRecord), else with the generated code.
func decodeNote(b []byte) (Note, error) {
	if rec, ok := recordwire.DoneRecord(b); ok {
		n := Note{Kind: NoteDone}
		return n, recordwire.DecodeRecord(rec, &n.Record)
	}
	var p pb.Note
	if err := gproto.Unmarshal(b, &p); err != nil {
		return Note{}, err
	}
	return noteFromPB(&p), nil
}
