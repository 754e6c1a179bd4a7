package transport

import (
	"time"

	pb "github.com/capuchin/capuchin/proto/capuchin/v1"
)

func manifestToPB(m Manifest) *pb.Manifest {
	out := &pb.Manifest{Name: m.Name, Version: m.Version, Claims: &pb.Claims{
		PathRegex: m.Claims.Paths, Hosts: m.Claims.Hosts, Methods: m.Claims.Methods,
	}}
	for _, s := range m.Stages {
		out.Stages = append(out.Stages, &pb.StageSpec{
			Stage: int32(s.Stage), DeadlineNs: int64(s.Deadline), Policy: pb.Policy(s.Policy),
		})
	}
	return out
}

func manifestFromPB(p *pb.Manifest) Manifest {
	m := Manifest{Name: p.GetName(), Version: p.GetVersion()}
	if c := p.GetClaims(); c != nil {
		m.Claims = Claims{Paths: c.PathRegex, Hosts: c.Hosts, Methods: c.Methods}
	}
	for _, s := range p.GetStages() {
		m.Stages = append(m.Stages, StageSpec{
			Stage: int(s.Stage), Deadline: time.Duration(s.DeadlineNs), Policy: Policy(s.Policy),
		})
	}
	return m
}

func connToPB(c Conn) *pb.Conn { return &pb.Conn{Id: c.ID, Remote: c.Remote, Local: c.Local} }

func connFromPB(c *pb.Conn) Conn {
	return Conn{ID: c.GetId(), Remote: c.GetRemote(), Local: c.GetLocal()}
}

func eventToPB(e *Event) *pb.Event {
	out := &pb.Event{
		Id: e.ID, Kind: pb.Event_Kind(e.Kind), Conn: connToPB(e.Conn), Head: e.Head,
		Vhost: e.VHost, Buffered: e.Buffered, MaxBody: e.MaxBody, KeepAlive: e.KeepAlive,
	}
	if e.Kind == EventHandle {
		out.Lease = &pb.Lease{MaxRequests: e.Lease.MaxRequests, IdleTimeoutNs: int64(e.Lease.IdleTimeout),
			Records: e.Lease.Records}
	}
	return out
}

func eventFromPB(p *pb.Event, e *Event) {
	*e = Event{
		ID: p.Id, Kind: EventKind(p.Kind), Conn: connFromPB(p.Conn), Head: p.Head,
		VHost: p.Vhost, Buffered: p.Buffered, MaxBody: p.MaxBody, KeepAlive: p.KeepAlive,
	}
	if l := p.Lease; l != nil {
		e.Lease = Lease{MaxRequests: l.MaxRequests, IdleTimeout: time.Duration(l.IdleTimeoutNs), Records: l.Records}
	}
}

func replyToPB(r *Reply) *pb.Reply {
	out := &pb.Reply{
		Id: r.ID, Verdict: pb.Verdict(r.Verdict), Status: int32(r.Status), Body: r.Body,
		BytesIn: r.BytesIn, BytesOut: r.BytesOut, Leftover: r.Leftover, Close: r.Close, Error: r.Err,
		Leased: r.Leased, Interim: r.Interim,
	}
	for _, f := range r.Header {
		out.Header = append(out.Header, &pb.Field{Name: f.Name, Value: f.Value})
	}
	for i := range r.Records {
		out.Records = append(out.Records, recordToPB(&r.Records[i]))
	}
	return out
}

func replyFromPB(p *pb.Reply, r *Reply) {
	*r = Reply{
		ID: p.Id, Verdict: Verdict(p.Verdict), Status: int(p.Status), Body: p.Body,
		BytesIn: p.BytesIn, BytesOut: p.BytesOut, Leftover: p.Leftover, Close: p.Close, Err: p.Error,
		Leased: p.Leased, Interim: p.Interim,
	}
	if len(p.Header) > 0 {
		r.Header = make([]Field, len(p.Header))
		for i, f := range p.Header {
			r.Header[i] = Field{Name: f.Name, Value: f.Value}
		}
	}
	for _, rec := range p.Records {
		r.Records = append(r.Records, recordFromPB(rec))
	}
}

func recordToPB(r *Record) *pb.Record {
	return &pb.Record{
		ConnId: r.ConnID, Remote: r.Remote, Vhost: r.VHost, Method: r.Method, Target: r.Target,
		Proto: r.Proto, Status: int32(r.Status), Bytes: r.Bytes,
		StartUnixNs: r.Start.UnixNano(), DurationNs: int64(r.Duration),
	}
}

func recordFromPB(p *pb.Record) Record {
	return Record{
		ConnID: p.GetConnId(), Remote: p.GetRemote(), VHost: p.GetVhost(), Method: p.GetMethod(),
		Target: p.GetTarget(), Proto: p.GetProto(), Status: int(p.GetStatus()), Bytes: p.GetBytes(),
		Start: time.Unix(0, p.GetStartUnixNs()), Duration: time.Duration(p.GetDurationNs()),
	}
}

func notesToPB(notes []Note) *pb.NoteBatch {
	b := &pb.NoteBatch{Notes: make([]*pb.Note, len(notes))}
	for i := range notes {
		n := &notes[i]
		p := &pb.Note{Kind: pb.Note_Kind(n.Kind)}
		if n.Kind == NoteDone {
			p.Record = recordToPB(&n.Record)
		} else {
			p.Conn = connToPB(n.Conn)
		}
		b.Notes[i] = p
	}
	return b
}

func notesFromPB(b *pb.NoteBatch, out []Note) []Note {
	for _, p := range b.Notes {
		n := Note{Kind: NoteKind(p.Kind)}
		if p.Record != nil {
			n.Record = recordFromPB(p.Record)
		}
		if p.Conn != nil {
			n.Conn = connFromPB(p.Conn)
		}
		out = append(out, n)
	}
	return out
}
