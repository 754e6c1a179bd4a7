package transport

import (
	"bytes"
	"fmt"
	"net"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/capuchin/capuchin/internal/contract"
	pb "github.com/capuchin/capuchin/proto/capuchin/v1"
)

// PeerFrames is a stage-20 plugin's end of a lease holder's connection to
// its peer socket (peerwire.go): Recv for one goroutine, Send from any.
type PeerFrames struct {
	framer
	body []byte // what is left of the current frame's EventBatch

	// The Conns of the events, by their bytes (at most maxPeerConns), and
	// the last event's virtual host: every call of a lease repeats them,
	// so they are decoded once.
	conns map[string]contract.Conn
	vhost string
}

// maxPeerConns bounds the decoded Conns a peer connection keeps; past it
// they are dropped and decoded again.
const maxPeerConns = 4096

// NewPeerFrames wraps c, a connection a stage-20 plugin accepted on its
// peer socket.
func NewPeerFrames(c *net.UnixConn) *PeerFrames { return &PeerFrames{framer: newFramer(c)} }

// Recv returns the next event, reading a frame when the last is used up.
func (p *PeerFrames) Recv(e *Event) error {
	for {
		if len(p.body) == 0 {
			b, err := p.next()
			if err != nil {
				return err
			}
			p.body = b
			continue
		}
		m, ok, err := nextItem(&p.body)
		if err != nil {
			return err
		}
		if ok {
			return p.parseEvent(m, e)
		}
	}
}

// parseEvent decodes an Event into e.
func (p *PeerFrames) parseEvent(m []byte, e *Event) error {
	*e = Event{}
	for len(m) > 0 {
		num, typ, n := protowire.ConsumeTag(m)
		if n < 0 {
			return badWire(n)
		}
		m = m[n:]
		var err error
		switch {
		case typ == protowire.VarintType && isEventVarint(num):
			var v uint64
			v, n = protowire.ConsumeVarint(m)
			e.setVarint(num, v)
		case typ == protowire.BytesType && isEventBytes(num):
			var v []byte
			v, n = protowire.ConsumeBytes(m)
			if n >= 0 {
				err = p.setBytes(e, num, v)
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

func isEventVarint(num protowire.Number) bool {
	switch num {
	case fEventID, fEventKind, fEventMaxBody, fEventKeepAlive, fEventTimeout, fEventMaxHead:
		return true
	}
	return false
}

func isEventBytes(num protowire.Number) bool {
	switch num {
	case fEventConn, fEventHead, fEventVHost, fEventBuffered, fEventLease, fEventServer:
		return true
	}
	return false
}

func (e *Event) setVarint(num protowire.Number, v uint64) {
	switch num {
	case fEventID:
		e.ID = v
	case fEventKind:
		e.Kind = eventKindFromPB(pb.Event_Kind(int32(v)))
	case fEventMaxBody:
		e.MaxBody = int64(v)
	case fEventKeepAlive:
		e.KeepAlive = v != 0
	case fEventTimeout:
		e.Timeout = time.Duration(int64(v))
	case fEventMaxHead:
		e.MaxHead = int(int64(v))
	}
}

// setBytes sets a length-delimited field of e; v is the frame's (reused).
func (p *PeerFrames) setBytes(e *Event, num protowire.Number, v []byte) error {
	switch num {
	case fEventConn:
		return p.setConn(e, v)
	case fEventHead:
		e.Head = bytes.Clone(v)
	case fEventBuffered:
		e.Buffered = bytes.Clone(v)
	case fEventVHost:
		if string(v) != p.vhost { // no copy to compare
			if !utf8.Valid(v) {
				return fmt.Errorf("%w: an event's vhost is not UTF-8", ErrFrame)
			}
			p.vhost = string(v)
		}
		e.VHost = p.vhost
	case fEventServer:
		if !utf8.Valid(v) {
			return fmt.Errorf("%w: an event's server is not UTF-8", ErrFrame)
		}
		e.Server = string(v)
	case fEventLease:
		var l pb.Lease
		if err := proto.Unmarshal(v, &l); err != nil {
			return fmt.Errorf("%w: %v", ErrFrame, err)
		}
		e.Lease = leaseFromPB(&l)
	}
	return nil
}

// setConn decodes an event's Conn, or takes it from the Conns decoded
// before.
func (p *PeerFrames) setConn(e *Event, v []byte) error {
	if c, ok := p.conns[string(v)]; ok { // no copy to look up
		e.Conn = c
		return nil
	}
	var c pb.Conn
	if err := proto.Unmarshal(v, &c); err != nil {
		return fmt.Errorf("%w: %v", ErrFrame, err)
	}
	e.Conn = connFromPB(&c)
	if len(p.conns) >= maxPeerConns || p.conns == nil {
		p.conns = make(map[string]contract.Conn, 64)
	}
	p.conns[string(v)] = e.Conn
	return nil
}

// Send queues r for the next frame (see HostFrames.Send). A stage-20
// reply is encoded here; anything else (a panicking handler's Close) by
// the generated code.
func (p *PeerFrames) Send(r *Reply) error {
	if !stage20Only(r) {
		return p.w.send(replyToPB(r))
	}
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
		r.Records == nil && r.Leased == 0 && !r.Unbounded && !r.Upstream.Forwarded() && r.Idle == 0
}

// peerReplySize is the encoded size of r's stage-20 fields; an error for
// strings that are not UTF-8 (the generated code refuses them too).
func peerReplySize(r *Reply) (int, error) {
	n := protowire.SizeTag(fReplyID) + protowire.SizeVarint(r.ID)
	if v := verdictToPB(r.Verdict); v != 0 {
		n += protowire.SizeTag(fReplyVerdict) + protowire.SizeVarint(uint64(v))
	}
	if r.Status != 0 {
		n += protowire.SizeTag(fReplyStatus) + protowire.SizeVarint(uint64(int64(int32(r.Status))))
	}
	for _, f := range r.Header {
		if !utf8.ValidString(f.Name) || !utf8.ValidString(f.Value) {
			return 0, fmt.Errorf("peer calls: encode: header field %q is not UTF-8", f.Name)
		}
		n += protowire.SizeTag(fReplyHeader) + protowire.SizeBytes(fieldSize(f.Name, f.Value))
	}
	if len(r.Body) > 0 {
		n += protowire.SizeTag(fReplyBody) + protowire.SizeBytes(len(r.Body))
	}
	if r.Err != "" {
		if !utf8.ValidString(r.Err) {
			return 0, fmt.Errorf("peer calls: encode: error %q is not UTF-8", r.Err)
		}
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

var _ PluginCalls = (*PeerFrames)(nil)
