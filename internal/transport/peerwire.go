package transport

import (
	"fmt"
	"net"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/contract"
	"github.com/capuchin/capuchin/internal/recordwire"
	pb "github.com/capuchin/capuchin/proto/capuchin/v1"
)

// Peer calls (stage 20 under a lease) carry the framed calls' frames and
// messages, EventBatch and ReplyBatch, on a lease holder's connection to a
// stage-20 plugin's peer socket. Both ends here write and read the few
// fields a stage-20 call uses with protowire instead of the generated
// code, and encode or decode only once what a connection's calls repeat
// (its Conn and virtual host): the generated code's reflection and the
// messages it allocates cost more than the rest of a call. The bytes are
// the proto's messages all the same; fields this file does not know are
// skipped, as the generated code would keep them unread.

// Field numbers (proto/capuchin/v1/plugin.proto).
const (
	fBatchItem = 1 // EventBatch.events, ReplyBatch.replies

	fEventID        = 1
	fEventKind      = 2
	fEventConn      = 3
	fEventHead      = 4
	fEventVHost     = 5
	fEventBuffered  = 6
	fEventMaxBody   = 7
	fEventKeepAlive = 8
	fEventLease     = 9
	fEventServer    = 10
	fEventTimeout   = 11
	fEventMaxHead   = 12

	fReplyID      = 1
	fReplyVerdict = 2
	fReplyStatus  = 3
	fReplyHeader  = 4
	fReplyBody    = 5
	fReplyError   = 11
	fReplyInterim = 13

	fFieldName  = 1
	fFieldValue = 2
)

// --- the lease holder's end -------------------------------------------------

// PeerCaller is a lease holder's end of its connection to a peer socket:
// Send from any goroutine (calls made together share a frame, as on the
// host's framed socket), Recv from the one reading goroutine.
type PeerCaller struct {
	batchReader
}

// NewPeerCaller wraps c, a connection to a stage-20 plugin's peer socket.
func NewPeerCaller(c *net.UnixConn) *PeerCaller {
	return &PeerCaller{batchReader{framer: newFramer(c)}}
}

// PeerEvent is what the stage-20 events of one connection share, encoded
// once: the event kind, the Conn and the virtual host.
type PeerEvent []byte

// NewPeerEvent encodes the shared part of c's stage-20 events.
func NewPeerEvent(c *contract.Conn, vhost string) (PeerEvent, error) {
	b, err := proto.Marshal(&pb.Event{Kind: pb.Event_KIND_REQUEST, Conn: connToPB(c), Vhost: vhost})
	if err != nil {
		return nil, fmt.Errorf("peer calls: encode: %w", err)
	}
	return b, nil
}

// Send queues the stage-20 event id with the request head head (without
// its final CRLF) for the next frame; an error means nothing was queued.
func (p *PeerCaller) Send(id uint64, ev PeerEvent, head string) error {
	size := protowire.SizeTag(fEventID) + protowire.SizeVarint(id) + len(ev) +
		protowire.SizeTag(fEventHead) + protowire.SizeBytes(len(head))
	if size > maxMessage {
		return fmt.Errorf("peer calls: an event of %d bytes exceeds %d", size, maxMessage)
	}
	fw := p.w
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if err := fw.room(size); err != nil {
		return err
	}
	b := fw.item(size)
	b = protowire.AppendTag(b, fEventID, protowire.VarintType)
	b = protowire.AppendVarint(b, id)
	b = append(b, ev...)
	b = protowire.AppendTag(b, fEventHead, protowire.BytesType)
	fw.pending = protowire.AppendString(b, head)
	fw.wake()
	return nil
}

// PeerReply is a peer's reply to a stage-20 event.
type PeerReply struct {
	ID      uint64
	Verdict contract.Verdict
	Reply   contract.Reply // with Respond (Header and Body are the reply's own)
	Interim bool
	Err     string
}

// Recv reads the next reply, reading a frame when the last is used up.
func (p *PeerCaller) Recv(r *PeerReply) error {
	m, _, err := p.item()
	if err != nil {
		return err
	}
	return parsePeerReply(m, r)
}

// batchReader takes the items of framed batches (an EventBatch's events, a
// ReplyBatch's replies) one at a time, other fields skipped.
type batchReader struct {
	framer
	frame, body []byte // the current frame, and what is left of it
}

// item returns the next item, reading a frame when the last is used up;
// fresh says that a frame was read for it (b.frame).
func (b *batchReader) item() (m []byte, fresh bool, err error) {
	for {
		if len(b.body) == 0 {
			if b.frame, err = b.next(); err != nil {
				return nil, false, err
			}
			b.body, fresh = b.frame, true
			continue
		}
		m, ok, err := nextItem(&b.body)
		if err != nil || ok {
			return m, fresh, err
		}
	}
}

// nextItem takes the next field off a batch's body: ok with the bytes of
// a field 1 (an event, a reply or a note), not ok for a field of another number
// (skipped); an error for bytes that are no protobuf message.
func nextItem(body *[]byte) ([]byte, bool, error) {
	num, typ, n := recordwire.ConsumeField(*body)
	if n < 0 {
		return nil, false, badWire(n)
	}
	field := (*body)[:n]
	*body = (*body)[n:]
	if num != fBatchItem || typ != protowire.BytesType {
		return nil, false, nil
	}
	_, _, t := protowire.ConsumeTag(field)
	m, _ := protowire.ConsumeBytes(field[t:])
	return m, true, nil
}

// parsePeerReply decodes a Reply's stage-20 fields into r.
func parsePeerReply(m []byte, r *PeerReply) error {
	*r = PeerReply{}
	for len(m) > 0 {
		num, typ, n := protowire.ConsumeTag(m)
		if n < 0 {
			return badWire(n)
		}
		m = m[n:]
		var err error
		switch {
		case typ == protowire.VarintType && (num == fReplyID || num == fReplyVerdict || num == fReplyStatus || num == fReplyInterim):
			var v uint64
			v, n = protowire.ConsumeVarint(m)
			r.setVarint(num, v)
		case typ == protowire.BytesType && (num == fReplyHeader || num == fReplyBody || num == fReplyError):
			var v []byte
			v, n = protowire.ConsumeBytes(m)
			if n >= 0 {
				err = r.setBytes(num, v)
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, m)
		}
		if n < 0 {
			return badWire(n)
		}
		if err != nil {
			return err
		}
		m = m[n:]
	}
	return nil
}

func (r *PeerReply) setVarint(num protowire.Number, v uint64) {
	switch num {
	case fReplyID:
		r.ID = v
	case fReplyVerdict:
		r.Verdict = verdictFromPB(pb.Verdict(int32(v)))
	case fReplyStatus:
		r.Reply.Status = int(int32(v))
	case fReplyInterim:
		r.Interim = v != 0
	}
}

func (r *PeerReply) setBytes(num protowire.Number, v []byte) error {
	switch num {
	case fReplyHeader:
		f, err := parseField(v)
		if err != nil {
			return err
		}
		r.Reply.Header = append(r.Reply.Header, f)
	case fReplyBody:
		r.Reply.Body = append(r.Reply.Body[:0], v...) // the last one wins; the frame's buffer is reused
	case fReplyError:
		if !utf8.Valid(v) {
			return fmt.Errorf("%w: a reply's error is not UTF-8", ErrFrame)
		}
		r.Err = string(v)
	}
	return nil
}

// parseField decodes a Field.
func parseField(m []byte) (http1.Field, error) {
	var f http1.Field
	for len(m) > 0 {
		num, typ, n := protowire.ConsumeTag(m)
		if n < 0 {
			return f, badWire(n)
		}
		m = m[n:]
		if typ != protowire.BytesType || num != fFieldName && num != fFieldValue {
			if n = protowire.ConsumeFieldValue(num, typ, m); n < 0 {
				return f, badWire(n)
			}
			m = m[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(m)
		if n < 0 {
			return f, badWire(n)
		}
		if !utf8.Valid(v) {
			return f, fmt.Errorf("%w: a reply's header field is not UTF-8", ErrFrame)
		}
		if num == fFieldName {
			f.Name = string(v)
		} else {
			f.Value = string(v)
		}
		m = m[n:]
	}
	return f, nil
}

// badWire is the error of protowire's negative length n.
func badWire(n int) error { return fmt.Errorf("%w: %v", ErrFrame, protowire.ParseError(n)) }

// item starts a field-1 message of size bytes in the pending frame (fw.mu
// held) and returns the frame to append the message to.
func (fw *frameWriter) item(size int) []byte {
	b := fw.pending
	if len(b) == 0 {
		b = append(b, 0, 0, 0, 0)
	}
	b = protowire.AppendTag(b, fBatchItem, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(size))
}
