package recordwire

import (
	"net/netip"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/capuchin/capuchin/internal/contract"
)

// DecodeRecord decodes b, a serialized Record, into r as the generated
// code would (a field's last value wins, an Upstream's fields merge,
// unknown fields and known ones of another wire type are skipped, a
// string that is not UTF-8 is an error), with one allocation: r's strings
// share one copy of b. It is what a stage-40 plugin's SDK reads each
// record with.
func DecodeRecord(b []byte, r *contract.Record) error {
	*r = contract.Record{}
	d := decoder{b: b, s: string(b)}
	var start int64
	err := d.fields(0, len(b), recordFields[:], func(f field) error {
		switch f.num {
		case fRecordRemote:
			r.Remote, _ = netip.ParseAddrPort(d.str(f))
		case fRecordUpstream:
			return d.upstream(f, &r.Upstream)
		case 9:
			start = int64(f.v)
		default:
			setRecord(r, f.num, f.v, d.str(f))
		}
		return nil
	})
	r.Start = time.Unix(0, start)
	return err
}

// Decode returns the records decoded (DecodeRecord), with their
// connection's fields (SetConn).
func (rs *Records) Decode() ([]contract.Record, error) {
	out := make([]contract.Record, 0, rs.n)
	var err error
	rs.Each(func(rec []byte) bool {
		var r contract.Record
		if err = DecodeRecord(append(rec[:len(rec):len(rec)], rs.conn...), &r); err == nil {
			out = append(out, r)
		}
		return err == nil
	})
	return out, err
}

// setRecord sets the field num of r but Remote, Upstream and Start: v for
// a varint field, s for the others.
func setRecord(r *contract.Record, num protowire.Number, v uint64, s string) {
	switch num {
	case fRecordConnID:
		r.ConnID = v
	case fRecordVHost:
		r.VHost = s
	case 4:
		r.Method = s
	case 5:
		r.Target = s
	case 6:
		r.Proto = s
	case 7:
		r.Status = int(int32(v))
	case 8:
		r.Bytes = int64(v)
	case 10:
		r.Duration = time.Duration(v)
	case 11:
		r.Referer = s
	case 12:
		r.UserAgent = s
	case 14:
		r.HeadBytes = int64(v)
	}
}

// decoder reads a message's fields; s is b as a string, whose substrings
// the fields' strings and bytes are. A strict one is the host's check of
// what it passes on (check).
type decoder struct {
	b      []byte
	s      string
	strict bool
}

// field is a known field of its wire type: a varint's value v, or the
// place of the others' bytes, b[at:at+n].
type field struct {
	num   protowire.Number
	v     uint64
	at, n int
}

// str is f's bytes as a string.
func (d *decoder) str(f field) string { return d.s[f.at : f.at+f.n] }

// fields calls each with the fields of the message at b[from:to] that
// kinds knows, of their wire types (see known).
func (d *decoder) fields(from, to int, kinds []fieldKind, each func(field) error) error {
	for off := from; off < to; {
		num, typ, n := protowire.ConsumeTag(d.b[off:to])
		if n < 0 || num > protowire.MaxValidNumber {
			return errRecord
		}
		off += n
		m := protowire.ConsumeFieldValue(num, typ, d.b[off:to])
		if m < 0 {
			return errRecord
		}
		if f, ok, err := d.known(num, typ, off, off+m, kinds); err != nil {
			return err
		} else if ok {
			if err := each(f); err != nil {
				return err
			}
		}
		off += m
	}
	return nil
}

// known returns the field num of wire type typ, its value at b[at:end],
// when kinds knows it with that type; a string that is not UTF-8 is an
// error. A decoder skips the other fields, as the generated code does; a
// strict one refuses groups and known fields of another wire type.
func (d *decoder) known(num protowire.Number, typ protowire.Type, at, end int, kinds []fieldKind) (field, bool, error) {
	k := unknownField
	if int(num) < len(kinds) {
		k = kinds[num]
	}
	switch {
	case d.strict && (typ == protowire.StartGroupType || typ == protowire.EndGroupType):
		return field{}, false, errRecord
	case k == unknownField:
	case k == varintField && typ == protowire.VarintType:
		v, _ := protowire.ConsumeVarint(d.b[at:end])
		return field{num: num, v: v}, true, nil
	case k > varintField && typ == protowire.BytesType:
		v, _ := protowire.ConsumeBytes(d.b[at:end])
		if k == stringField && !utf8.Valid(v) {
			return field{}, false, errRecord
		}
		return field{num: num, at: end - len(v), n: len(v)}, true, nil
	case d.strict:
		return field{}, false, errRecord
	}
	return field{}, false, nil
}

// check returns an error unless rec, a serialized Record, decodes in any
// protobuf decoder: well formed, valid field numbers, no groups (neither
// Record nor Upstream has any, and decoders bound their nesting,
// protobufjs at 100 levels where protowire takes 10,000), its known
// fields of their wire types, their strings UTF-8.
func check(rec []byte) error {
	d := decoder{b: rec, strict: true}
	return d.fields(0, len(rec), recordFields[:], func(f field) error {
		if f.num != fRecordUpstream {
			return nil
		}
		return d.fields(f.at, f.at+f.n, upstreamFields[:], func(field) error { return nil })
	})
}

// upstream decodes f, an Upstream, into u (merged into what u holds, as
// repeated occurrences of a message field are).
func (d *decoder) upstream(f field, u *contract.Upstream) error {
	return d.fields(f.at, f.at+f.n, upstreamFields[:], func(g field) error {
		switch g.num {
		case 1:
			u.Addr = d.str(g)
		case 2:
			u.Status = int(int32(g.v))
		case 3:
			u.Duration = time.Duration(g.v)
		}
		return nil
	})
}
