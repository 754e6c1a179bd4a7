package transport

import (
	"time"

	"github.com/capuchin/capuchin/internal/contract"
	"github.com/capuchin/capuchin/internal/recordwire"
)

// StageSpec is one hooked stage in a Manifest, with its terms (blocking
// stages only).
type StageSpec struct {
	Stage contract.Stage
	contract.Limits
}

// Manifest is what a plugin declares at start-up.
type Manifest struct {
	Name    string
	Version string
	Stages  []StageSpec
	Claims  contract.Claims // stage 30
	// Reconfigurable: Configure may be called again on the running
	// process when its configuration file changes.
	Reconfigurable bool
	// RequestFilter narrows stage 20 to the requests it matches; nil: all.
	RequestFilter *contract.Claims
	// ConnectFilter narrows stage 10 to clients in these networks; nil: all.
	ConnectFilter *contract.Networks
	// FramedCalls: the plugin takes events on the framed calls socket.
	FramedCalls bool
	// PeerCalls: the plugin also takes stage-20 events from a lease
	// holder, on the peer socket it listens on (EnvPeerSocket).
	PeerCalls bool
	// LeaseReports: the plugin reports a lease's counts as it goes when
	// the lease asks (contract.Lease.ReportCounts).
	LeaseReports bool
	// LeaseRecords: its reports carry the lease's stage-40 records too
	// (contract.Lease.Records), and the interim reply that ends a lease's
	// first request carries that request's answer.
	LeaseRecords bool
}

// EventKind says which stage an Event is for.
type EventKind uint8

const (
	EventConnect EventKind = iota + 1 // stage 10
	EventRequest                      // stage 20
	EventHandle                       // stage 30
	EventRevoke                       // end the lease on Conn at the next request boundary
)

// Event is one host -> plugin call on the Calls stream.
type Event struct {
	ID        uint64
	Kind      EventKind
	Conn      contract.Conn
	Head      []byte // request head without the final CRLF (20, 30)
	VHost     string
	Buffered  []byte // bytes read past the head (30)
	MaxBody   int64
	KeepAlive bool
	Lease     contract.Lease // (30)
	Server    string         // the Server field value of the host's responses (30)
	Timeout   time.Duration  // the host's Timeout (30)
	MaxHead   int            // the host's MaxHeaderSize in bytes (30)
}

// Reply is a plugin's answer to one Event: a stage-20 Reply (its status,
// header and body; for stage 30 the status sent or wanted) and the rest of
// a stage-30 report.
type Reply struct {
	ID      uint64
	Verdict contract.Verdict
	contract.Reply
	BytesIn  int64
	BytesOut int64
	HeadOut  int64 // of BytesOut, the response heads (1xx included)
	Leftover []byte
	Close    bool
	Records  recordwire.Records // of the requests served under the lease, when asked
	Leased   int                // requests served under the lease after the first
	Classes  contract.Classes   // those requests by status class
	// PeerClasses are, of those, the requests a peer answered; PeerTimes
	// the time of each peer call, by peer (Lease.PeerTimes).
	PeerClasses contract.Classes
	PeerTimes   [][]time.Duration
	Interim     bool // the lease's first request is done; the final reply follows
	// Unbounded (with Interim): the request in progress runs under the
	// plugin's own idle timeouts; the host drops the stage deadline.
	Unbounded bool
	Upstream  contract.Upstream // the first request's backend exchange, if it was forwarded
	Idle      time.Duration     // a lease given back idle: how long nothing had come
	// Released (with Close): the plugin closed its copy of the socket and
	// forgot the connection; the host sends it no connection-closed Note.
	Released bool
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
	Record contract.Record // NoteDone
	Conn   contract.Conn   // NoteClosed
}
