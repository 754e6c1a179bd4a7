package transport

import "time"

// Stage numbers, as in Monkey.
const (
	StageConnect = 10
	StageRequest = 20
	StageHandle  = 30
	StageDone    = 40
	StageClosed  = 50
)

// Verdict is a plugin's answer to a blocking stage.
type Verdict uint8

// Verdicts, numbered as in the contract.
const (
	Continue Verdict = iota
	Close
	Respond
	Decline
	Handled
)

// Policy says what the host does when a plugin cannot answer in time.
type Policy uint8

const (
	FailClosed Policy = iota // stage 10: close; stages 20, 30: 503
	FailOpen                 // act as if the plugin said continue / decline
)

// StageSpec is one hooked stage in a Manifest.
type StageSpec struct {
	Stage    int
	Deadline time.Duration // 0: the host default
	Policy   Policy
}

// Claims is a stage-30 claim filter. Every non-empty list must match.
type Claims struct {
	Paths   []string // Go regexps, unanchored, on the decoded path
	Hosts   []string // host names, case-insensitive, port ignored
	Methods []string
}

// Manifest is what a plugin declares at start-up.
type Manifest struct {
	Name    string
	Version string
	Stages  []StageSpec
	Claims  Claims
}

// Conn identifies a client connection.
type Conn struct {
	ID     uint64
	Remote string
	Local  string
}

// Lease is the terms of a stage-30 hand-over; MaxRequests 1 is the plain one.
type Lease struct {
	MaxRequests uint32
	IdleTimeout time.Duration
	Records     bool // send stage-40 records of leased requests
}

// EventKind says which stage an Event is for.
type EventKind uint8

const (
	EventConnect EventKind = iota + 1
	EventRequest
	EventHandle
	EventRevoke // end the lease on Conn at the next request boundary
)

// Event is one host -> plugin call on the Calls stream.
type Event struct {
	ID        uint64
	Kind      EventKind
	Conn      Conn
	Head      []byte // request head without the final CRLF (20, 30)
	VHost     string
	Buffered  []byte // bytes read past the head (30)
	MaxBody   int64
	KeepAlive bool
	Lease     Lease
}

// Field is a header field.
type Field struct{ Name, Value string }

// Record describes one finished request (stage 40).
type Record struct {
	ConnID   uint64
	Remote   string
	VHost    string
	Method   string
	Target   string
	Proto    string
	Status   int
	Bytes    int64
	Start    time.Time
	Duration time.Duration
}

// Reply is a plugin's answer to one Event.
type Reply struct {
	ID       uint64
	Verdict  Verdict
	Status   int
	Header   []Field
	Body     []byte
	BytesIn  int64
	BytesOut int64
	Leftover []byte
	Close    bool
	Records  []Record
	Leased   uint32 // requests served under the lease after the first
	Interim  bool   // the lease's first request is done; the final reply follows
	Err      string
}

// NoteKind says what a Note reports.
type NoteKind uint8

const (
	NoteDone   NoteKind = iota + 1 // stage 40
	NoteClosed                     // stage 50
)

// Note is a one-way notification.
type Note struct {
	Kind   NoteKind
	Record Record // NoteDone
	Conn   Conn   // NoteClosed
}
