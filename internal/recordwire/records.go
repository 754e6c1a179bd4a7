// Package recordwire holds stage-40 records in their wire form, from the
// request that ends to the stage-40 plugin that reads them: a lease's
// holder encodes each record as its request ends (Records.Append), a
// reply carries them as its records field, and the host takes them from
// the reply without decoding them (SplitReply checks each) and sends
// them on in Notes, with the fields only it knows (Records.SetConn)
// appended to each: protobuf takes the last value of a field, and
// serialized messages concatenate. The messages are the proto's
// (proto/capuchin/v1/plugin.proto: Reply, Record, Upstream), encoded and
// checked here by hand, so that the host neither decodes nor re-encodes
// the records it passes on.
package recordwire

import (
	"errors"
	"net/netip"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/capuchin/capuchin/internal/contract"
)

// errRecord is the error of a record a stage-40 plugin could not decode.
var errRecord = errors.New("a record is not a valid Record message")

// Field numbers (proto/capuchin/v1/plugin.proto).
const (
	fReplyRecords = 10

	fRecordConnID   = 1
	fRecordRemote   = 2
	fRecordVHost    = 3
	fRecordUpstream = 13

	fNoteBatchNotes = 1
	fNoteKind       = 1
	fNoteRecord     = 2
	kindDone        = 1 // Note.KIND_DONE
)

// Records are stage-40 records, encoded: entries of a Reply's records
// field. The zero value holds none.
type Records struct {
	b    []byte // entries of a Reply's records field: tag 10, length, a Record
	n    int
	conn []byte // Record fields 1-3 appended to each (SetConn)
}

// Len is the number of records.
func (rs *Records) Len() int { return rs.n }

// Reset empties rs, keeping its memory.
func (rs *Records) Reset() { rs.b, rs.n, rs.conn = rs.b[:0], 0, nil }

// Add appends the records of o (the connection's fields of rs stay).
func (rs *Records) Add(o *Records) {
	rs.b = append(rs.b, o.b...)
	rs.n += o.n
}

// Append encodes r and appends it. Its strings are made valid UTF-8
// (contract.ValidUTF8); Referer and UserAgent are bytes on the wire.
func (rs *Records) Append(r *contract.Record) {
	b := slices.Grow(rs.b, 256) // a record's usual size: one allocation for a first record
	b = protowire.AppendTag(b, fReplyRecords, protowire.BytesType)
	at := len(b)
	b = append(b, 0, 0) // room for a length of 128 bytes to 16 KiB, as most are
	b = appendRecord(b, r)
	rs.b = putLength(b, at, 2)
	rs.n++
}

// putLength writes the length of b[at+room:] as a varint at b[at:], where
// room bytes were left for it, moving what follows as needed.
func putLength(b []byte, at, room int) []byte {
	n := len(b) - at - room
	size := protowire.SizeVarint(uint64(n))
	if size != room {
		b = append(b, make([]byte, max(size-room, 0))...)
		copy(b[at+size:], b[at+room:at+room+n])
		b = b[:at+size+n]
	}
	protowire.AppendVarint(b[:at], uint64(n))
	return b
}

// appendRecord appends r's fields (their numbers are plugin.proto's).
func appendRecord(b []byte, r *contract.Record) []byte {
	b = appendUint(b, fRecordConnID, r.ConnID)
	if r.Remote.IsValid() {
		b = appendString(b, fRecordRemote, r.Remote.String())
	}
	b = appendString(b, fRecordVHost, r.VHost)
	b = appendString(b, 4, r.Method)
	b = appendString(b, 5, r.Target)
	b = appendString(b, 6, r.Proto)
	b = appendInt(b, 7, int64(int32(r.Status)))
	b = appendInt(b, 8, r.Bytes)
	b = appendInt(b, 9, r.Start.UnixNano())
	b = appendInt(b, 10, int64(r.Duration))
	b = appendBytes(b, 11, r.Referer)
	b = appendBytes(b, 12, r.UserAgent)
	if u := &r.Upstream; u.Forwarded() {
		b = protowire.AppendTag(b, fRecordUpstream, protowire.BytesType)
		at := len(b)
		b = append(b, 0)
		b = appendString(b, 1, u.Addr)
		b = appendInt(b, 2, int64(int32(u.Status)))
		b = appendInt(b, 3, int64(u.Duration))
		b = putLength(b, at, 1)
	}
	return appendInt(b, 14, r.HeadBytes)
}

// appendUint, appendInt, appendString and appendBytes append a field
// unless it has its zero value, as proto3 does.
func appendUint(b []byte, n protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	return protowire.AppendVarint(protowire.AppendTag(b, n, protowire.VarintType), v)
}

func appendInt(b []byte, n protowire.Number, v int64) []byte { return appendUint(b, n, uint64(v)) }

func appendString(b []byte, n protowire.Number, s string) []byte {
	return appendBytes(b, n, contract.ValidUTF8(s))
}

func appendBytes(b []byte, n protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	return protowire.AppendString(protowire.AppendTag(b, n, protowire.BytesType), s)
}

// SetConn has the connection's ID, client address and virtual host
// appended to every record as it is sent on (NoteBatch.AddRecords).
func (rs *Records) SetConn(id uint64, remote netip.AddrPort, vhost string) {
	c := protowire.AppendVarint(protowire.AppendTag(nil, fRecordConnID, protowire.VarintType), id)
	c = protowire.AppendString(protowire.AppendTag(c, fRecordRemote, protowire.BytesType), contract.AddrString(remote))
	rs.conn = protowire.AppendString(protowire.AppendTag(c, fRecordVHost, protowire.BytesType), contract.ValidUTF8(vhost))
}

// ConsumeField is protowire.ConsumeField refusing, as the generated
// decoder does, a field number past protowire.MaxValidNumber, which
// protowire lets through: the hand-written scanners of messages use it.
func ConsumeField(b []byte) (protowire.Number, protowire.Type, int) {
	num, typ, n := protowire.ConsumeField(b)
	if n >= 0 && num > protowire.MaxValidNumber {
		return 0, 0, -2 // protowire's code of an invalid field number (ParseError)
	}
	return num, typ, n
}

// Wire is the records as a Reply's records field: the encoded Reply's
// other fields followed by these make the Reply with its records.
func (rs *Records) Wire() []byte { return rs.b }

// AppendNotes appends to b, the fields of an encoded NoteBatch, a
// stage-40 Note for each record, with the connection's fields (SetConn)
// appended to it.
func (rs *Records) AppendNotes(b []byte) []byte {
	b = slices.Grow(b, len(rs.b)+rs.n*(len(rs.conn)+8))
	rs.Each(func(rec []byte) bool {
		size := len(rec) + len(rs.conn)
		note := 2 + protowire.SizeTag(fNoteRecord) + protowire.SizeBytes(size) // kind: a byte of tag, one of value
		b = protowire.AppendVarint(protowire.AppendTag(b, fNoteBatchNotes, protowire.BytesType), uint64(note))
		b = protowire.AppendVarint(protowire.AppendTag(b, fNoteKind, protowire.VarintType), kindDone)
		b = protowire.AppendVarint(protowire.AppendTag(b, fNoteRecord, protowire.BytesType), uint64(size))
		b = append(append(b, rec...), rs.conn...)
		return true
	})
	return b
}

// DoneRecord returns the record of note, a serialized Note, when it is a
// stage-40 note with one record and nothing else, as AppendNotes writes
// them; false for any other (a connection's end, fields to merge or
// unknown here), which the generated code decodes.
func DoneRecord(note []byte) ([]byte, bool) {
	kind, rec := uint64(0), []byte(nil)
	for len(note) > 0 {
		num, typ, n := ConsumeField(note)
		if n < 0 {
			return nil, false
		}
		_, _, t := protowire.ConsumeTag(note)
		switch {
		case num == fNoteKind && typ == protowire.VarintType:
			kind, _ = protowire.ConsumeVarint(note[t:n])
		case num == fNoteRecord && typ == protowire.BytesType && rec == nil:
			rec, _ = protowire.ConsumeBytes(note[t:n])
		default:
			return nil, false
		}
		note = note[n:]
	}
	return rec, rec != nil && kind == kindDone
}

// Each calls f with each record's serialized Record, until f returns false.
func (rs *Records) Each(f func(rec []byte) bool) {
	for b := rs.b; len(b) > 0; {
		_, _, n := protowire.ConsumeTag(b) // well formed: Append or AppendEncoded wrote it
		v, m := protowire.ConsumeBytes(b[n:])
		if !f(v) {
			return
		}
		b = b[n+m:]
	}
}

// Split returns the first n records (all when there are fewer) and the
// rest, both with rs's connection fields; they share rs's memory.
func (rs *Records) Split(n int) (head, tail Records) {
	if n >= rs.n {
		return Records{b: rs.b[:len(rs.b):len(rs.b)], n: rs.n, conn: rs.conn}, Records{conn: rs.conn}
	}
	off := 0
	for i := 0; i < n; i++ {
		_, _, m := protowire.ConsumeField(rs.b[off:])
		off += m
	}
	// (capacities capped: an Add to either cannot write into the other)
	return Records{b: rs.b[:off:off], n: n, conn: rs.conn}, Records{b: rs.b[off:len(rs.b):len(rs.b)], n: rs.n - n, conn: rs.conn}
}

// SplitReply returns the fields of the Reply b but its records (b
// itself when it has none, else a copy in *scratch) and its records,
// checked (see check): what the host sends on must decode.
func SplitReply(b []byte, scratch *[]byte) ([]byte, Records, error) {
	var rs Records
	for off := 0; off < len(b); {
		num, typ, n := ConsumeField(b[off:])
		if n < 0 {
			return nil, rs, protowire.ParseError(n)
		}
		field := b[off : off+n]
		switch {
		case num == fReplyRecords && typ == protowire.BytesType:
			if rs.n == 0 {
				*scratch = append((*scratch)[:0], b[:off]...)
				rs.b = make([]byte, 0, recordsSize(b[off:]))
			}
			_, _, t := protowire.ConsumeTag(field)
			rec, _ := protowire.ConsumeBytes(field[t:])
			if err := rs.AppendEncoded(rec); err != nil {
				return nil, rs, err
			}
		case rs.n > 0:
			*scratch = append(*scratch, field...)
		}
		off += n
	}
	if rs.n == 0 {
		return b, rs, nil
	}
	return *scratch, rs, nil
}

// recordsSize is the size of the records fields of b, fields of a Reply.
func recordsSize(b []byte) int {
	size := 0
	for len(b) > 0 {
		num, typ, n := ConsumeField(b)
		if n < 0 {
			break
		}
		if num == fReplyRecords && typ == protowire.BytesType {
			size += n
		}
		b = b[n:]
	}
	return size
}

// AppendEncoded appends rec, a serialized Record, once checked.
func (rs *Records) AppendEncoded(rec []byte) error {
	if err := check(rec); err != nil {
		return err
	}
	rs.b = protowire.AppendBytes(protowire.AppendTag(rs.b, fReplyRecords, protowire.BytesType), rec)
	rs.n++
	return nil
}

// fieldKind is what a known field of a message must be.
type fieldKind uint8

const (
	unknownField fieldKind = iota // anything well formed: kept as it is, as a decoder does
	varintField
	stringField // bytes, UTF-8
	bytesField
	upstreamField // an Upstream message
)

// The fields of Record and Upstream, by number.
var (
	recordFields = [...]fieldKind{1: varintField, 2: stringField, 3: stringField, 4: stringField, 5: stringField,
		6: stringField, 7: varintField, 8: varintField, 9: varintField, 10: varintField, 11: bytesField,
		12: bytesField, 13: upstreamField, 14: varintField}
	upstreamFields = [...]fieldKind{1: stringField, 2: varintField, 3: varintField}
)
