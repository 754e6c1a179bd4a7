package transport

import (
	"fmt"
	"net"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/capuchin/capuchin/internal/contract"
	pb "github.com/capuchin/capuchin/proto/capuchin/v1"
)

// PeerFrames is a stage-20 plugin's end of a lease holder's connection to
// its peer socket (peerwire.go): Recv for one goroutine, Send from any.
type PeerFrames struct {
	batchReader
	text string // the current frame as a string: the events' heads are slices of it

	// The Conns of the events, by their bytes (at most maxPeerConns):
	// every call of a lease repeats its Conn, so it is decoded once.
	conns map[string]contract.Conn
}

// maxPeerConns bounds the decoded Conns a peer connection keeps; past it
// they are dropped and decoded again.
const maxPeerConns = 4096

// NewPeerFrames wraps c, a connection a stage-20 plugin accepted on its
// peer socket.
func NewPeerFrames(c *net.UnixConn) *PeerFrames {
	return &PeerFrames{batchReader: batchReader{framer: newFramer(c)}}
}

// PeerCall is an event as a peer takes it: the fields of a stage-20
// Event (an event of another kind is answered with an error).
type PeerCall struct {
	ID    uint64
	Kind  EventKind
	Conn  contract.Conn
	Head  string // the request head, without its final CRLF
	VHost string
}

// Recv returns the next event, reading a frame when the last is used up.
// The events of a frame share one copy of it: Head and VHost are slices.
func (p *PeerFrames) Recv(c *PeerCall) error {
	m, fresh, err := p.item()
	if err != nil {
		return err
	}
	if fresh {
		p.text = string(p.frame)
	}
	end := len(p.text) - len(p.body) // m ends where the rest of the body begins
	return p.parseEvent(m, p.text[end-len(m):end], c)
}

// parseEvent decodes an Event into c; text is m as a string.
func (p *PeerFrames) parseEvent(m []byte, text string, c *PeerCall) error {
	*c = PeerCall{}
	var conn []byte // the Conn's bytes; several Conn fields merge, as their concatenation does
	for len(m) > 0 {
		num, typ, n := protowire.ConsumeTag(m)
		if n < 0 {
			return badWire(n)
		}
		m, text = m[n:], text[n:]
		switch {
		case typ == protowire.VarintType && (num == fEventID || num == fEventKind):
			var v uint64
			if v, n = protowire.ConsumeVarint(m); num == fEventID {
				c.ID = v
			} else {
				c.Kind = eventKindFromPB(pb.Event_Kind(int32(v)))
			}
		case typ == protowire.BytesType && num == fEventConn:
			var v []byte
			if v, n = protowire.ConsumeBytes(m); n >= 0 {
				conn = appendConn(conn, v)
			}
		case typ == protowire.BytesType && (num == fEventHead || num == fEventVHost):
			var v []byte
			if v, n = protowire.ConsumeBytes(m); n >= 0 {
				if err := p.setString(c, num, text[n-len(v):n]); err != nil {
					return err
				}
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, m)
		}
		if n < 0 {
			return badWire(n)
		}
		m, text = m[n:], text[n:]
	}
	if conn == nil {
		return nil
	}
	return p.setConn(c, conn)
}

// appendConn adds the bytes of a Conn field to those before it: the
// frame's own when it is the first (no copy), a copy of both after.
func appendConn(conn, v []byte) []byte {
	if conn == nil {
		return v
	}
	return append(append(make([]byte, 0, len(conn)+len(v)), conn...), v...)
}

// setString sets the head or the vhost of c; s is in the frame's string.
func (p *PeerFrames) setString(c *PeerCall, num protowire.Number, s string) error {
	switch num {
	case fEventHead:
		c.Head = s
	case fEventVHost:
		if !utf8.ValidString(s) {
			return fmt.Errorf("%w: an event's vhost is not UTF-8", ErrFrame)
		}
		c.VHost = s
	}
	return nil
}

// setConn decodes an event's Conn, or takes it from the Conns decoded
// before.
func (p *PeerFrames) setConn(c *PeerCall, v []byte) error {
	if conn, ok := p.conns[string(v)]; ok { // no copy to look up
		c.Conn = conn
		return nil
	}
	var pc pb.Conn
	if err := proto.Unmarshal(v, &pc); err != nil {
		return fmt.Errorf("%w: %v", ErrFrame, err)
	}
	c.Conn = connFromPB(&pc)
	if len(p.conns) >= maxPeerConns || p.conns == nil {
		p.conns = make(map[string]contract.Conn, 64)
	}
	p.conns[string(v)] = c.Conn
	return nil
}

// Send queues r for the next frame (see HostFrames.Send). A stage-20
// reply is encoded here; anything else (a panicking handler's Close) by
// the generated code.
func (p *PeerFrames) Send(r *Reply) error {
	if !stage20Only(r) {
		return p.w.send(replyToPB(r), r.Records.Wire())
	}
	validStrings(r)
	size, err := peerReplySize(r)
	if err != nil {
		return err
	}
	fw := p.w
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if err := fw.room(size); err != nil {
		return err
	}
	fw.pending = appendPeerReply(fw.item(size), r)
	fw.wake()
	return nil
}

// stage20Only reports whether r sets no field but those of a stage-20
// reply.
func stage20Only(r *Reply) bool {
	return r.BytesIn == 0 && r.BytesOut == 0 && r.HeadOut == 0 && r.Leftover == nil && !r.Close &&
		r.Records.Len() == 0 && r.Leased == 0 && !r.Unbounded && !r.Upstream.Forwarded() && r.Idle == 0
}

// peerReplySize is the encoded size of r's stage-20 fields, its strings
// valid UTF-8 (validStrings: the generated code refuses others); an error
// past maxMessage.
func peerReplySize(r *Reply) (int, error) {
	n := protowire.SizeTag(fReplyID) + protowire.SizeVarint(r.ID)
	if v := verdictToPB(r.Verdict); v != 0 {
		n += protowire.SizeTag(fReplyVerdict) + protowire.SizeVarint(uint64(v))
	}
	if r.Status != 0 {
		n += protowire.SizeTag(fReplyStatus) + protowire.SizeVarint(uint64(int64(int32(r.Status))))
	}
	for _, f := range r.Header {
		n += protowire.SizeTag(fReplyHeader) + protowire.SizeBytes(fieldSize(f.Name, f.Value))
	}
	if len(r.Body) > 0 {
		n += protowire.SizeTag(fReplyBody) + protowire.SizeBytes(len(r.Body))
	}
	if r.Err != "" {
		n += protowire.SizeTag(fReplyError) + protowire.SizeBytes(len(r.Err))
	}
	if r.Interim {
		n += protowire.SizeTag(fReplyInterim) + 1
	}
	if n > maxMessage {
		return 0, fmt.Errorf("peer calls: a reply of %d bytes exceeds %d", n, maxMessage)
	}
	return n, nil
}

// fieldSize is the encoded size of a Field.
func fieldSize(name, value string) int {
	n := 0
	if name != "" {
		n += protowire.SizeTag(fFieldName) + protowire.SizeBytes(len(name))
	}
	if value != "" {
		n += protowire.SizeTag(fFieldValue) + protowire.SizeBytes(len(value))
	}
	return n
}

// appendPeerReply appends r's stage-20 fields, as sized by peerReplySize.
func appendPeerReply(b []byte, r *Reply) []byte {
	b = protowire.AppendTag(b, fReplyID, protowire.VarintType)
	b = protowire.AppendVarint(b, r.ID)
	if v := verdictToPB(r.Verdict); v != 0 {
		b = protowire.AppendTag(b, fReplyVerdict, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(v))
	}
	if r.Status != 0 {
		b = protowire.AppendTag(b, fReplyStatus, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(int64(int32(r.Status))))
	}
	for _, f := range r.Header {
		b = protowire.AppendTag(b, fReplyHeader, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(fieldSize(f.Name, f.Value)))
		if f.Name != "" {
			b = protowire.AppendTag(b, fFieldName, protowire.BytesType)
			b = protowire.AppendString(b, f.Name)
		}
		if f.Value != "" {
			b = protowire.AppendTag(b, fFieldValue, protowire.BytesType)
			b = protowire.AppendString(b, f.Value)
		}
	}
	if len(r.Body) > 0 {
		b = protowire.AppendTag(b, fReplyBody, protowire.BytesType)
		b = protowire.AppendBytes(b, r.Body)
	}
	if r.Err != "" {
		b = protowire.AppendTag(b, fReplyError, protowire.BytesType)
		b = protowire.AppendString(b, r.Err)
	}
	if r.Interim {
		b = protowire.AppendTag(b, fReplyInterim, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	return b
}
