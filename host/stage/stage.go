// Package stage is the contract between the connection loop and whatever runs
// at Monkey's numbered stages. The connection loop calls a Pipeline at each
// point of a connection's life:
//
//	10 Connect  a connection was accepted, before any byte is read
//	20 Request  a request head was read and validated, the virtual host chosen
//	30 Handle   content handler; Decline lets the static-file handler run
//	40 Done     the response is complete (notification, must not block)
//	50 Closed   the connection closed (notification, must not block)
//
// The values shared with plugins (Verdict, Reply, Record, Lease, and the
// description inside Conn) are declared once, in internal/contract, and
// aliased here; the stage numbers are contract.Stage.
//
// Nop is the pipeline with no plugins: every stage continues or declines.
package stage

import (
	"net"
	"syscall"
	"time"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/contract"
	"github.com/capuchin/capuchin/internal/recordwire"
)

// Verdict is a stage's answer.
type Verdict = contract.Verdict

// The verdicts.
const (
	Continue = contract.Continue // stages 10, 20: go on
	Close    = contract.Close    // close the connection (stage 30: after an error page)
	Respond  = contract.Respond  // stage 20: send the Reply and skip stage 30
	Decline  = contract.Decline  // stage 30: not mine (Monkey's NOT_ME)
	Handled  = contract.Handled  // stage 30: the response was written by the handler
)

// Conn is a client connection: the description plugins see, and the
// socket, for the stage-30 hand-over.
type Conn struct {
	contract.Conn
	TCP Socket // the client's socket; nil while it is parked (see Holder.Park)
	// Relay is set on a TLS connection, whose socket carries TLS: a
	// stage-30 handler is handed the relay's socket instead, on which it
	// reads and writes plain HTTP.
	Relay Relay
}

// Socket is a client's TCP socket: the host's own wrapper of its
// descriptor (internal/fdpass's), as its listeners accept it and as it
// takes a parked socket back; a *net.TCPConn where fdpass.Listen is not
// implemented (not Linux).
type Socket interface {
	net.Conn
	syscall.Conn
	CloseWrite() error
}

// Relay carries plain HTTP between a TLS session the host keeps and a
// stage-30 handler (docs/plugin-contract.md, "TLS").
type Relay interface {
	// Begin returns the socket to hand to the handler (the same one for
	// the whole connection) and starts relaying.
	Begin() (syscall.Conn, error)
	// End stops relaying once the handler has answered or failed: its
	// output still in transit reaches the client, and the client bytes it
	// did not read are kept for the host.
	End()
	// Sent counts the bytes relayed to the client so far.
	Sent() uint64
	// Shutdown shuts the handler's socket down both ways.
	Shutdown()
}

// Reply is a response a stage-20 plugin asks the host to send.
type Reply = contract.Reply

// Lease is the terms of a connection lease (see contract.Lease); the
// server sets MaxRequests and IdleTimeout.
type Lease = contract.Lease

// Record describes one finished request for stage 40.
type Record = contract.Record

// Records are records of requests served under a lease, encoded as the
// plugin sent them (see recordwire).
type Records = recordwire.Records

// Upstream is a forwarded request's backend exchange, in a Record.
type Upstream = contract.Upstream

// Classes counts requests by status class (see contract.Classes).
type Classes = contract.Classes

// Handoff is what the host gives a stage-30 handler with a request.
type Handoff struct {
	VHost     string        // the virtual host chosen at stage 20
	Buffered  []byte        // bytes read past the request head: body start, pipelined requests
	MaxBody   int64         // request body limit; 0 means none
	Timeout   time.Duration // the server's Timeout: longest wait for client bytes
	MaxHead   int           // the server's MaxHeaderSize: longest request head, in bytes
	KeepAlive bool          // whether the host allows the connection to stay open after this request
	Lease     Lease         // how long the handler may keep the connection (docs/plugin-contract.md, "Connection lease"); the server sets GiveBack for its own needs (MetricsURL), the pipeline adds its own
	Server    string        // the Server field value responses carry
	Unsent    bool          // the connection's first request on a plain socket: no byte has been sent on it yet

	// Held, when set, is the connection, told what happens while the
	// handler holds it under a lease. Only the goroutine running Handle
	// calls it.
	Held Holder
}

// Holder is what Handoff.Held tells: the connection (an interface, not
// funcs: a method value would be an allocation per connection).
type Holder interface {
	// Park: the handler answered the request and holds the connection
	// under a lease. first is the answer, when the handler told it
	// (Status, BytesOut, HeadOut, Upstream, Handler; nil when it did not:
	// see transport.Manifest.LeaseRecords), so the request's record need
	// not wait for the lease's end. The host stops watching the socket
	// until Handle returns, so the handler's traffic does not wake it.
	Park(first *Result)
	// Report takes the counts of requests the handler served under the
	// lease since its last report (r's Leased, Classes and PeerClasses)
	// and their stage-40 records (r.Records, when the lease asks for
	// them), before Handle returns (contract.Lease.ReportCounts).
	Report(r *Result)
}

// Result is a stage-30 handler's report.
type Result struct {
	Verdict  Verdict
	Status   int     // status sent (Handled) or wanted for the error page (Close; 0 means 403)
	BytesIn  int64   // request body bytes read
	BytesOut int64   // response bytes written, head included
	HeadOut  int64   // of BytesOut, the response heads (1xx included)
	Leftover []byte  // bytes read past the end of the request, for the host to parse next
	Close    bool    // the connection must close after this request
	Err      error   // the handler failed: 502 if BytesOut is 0, otherwise the connection closes
	Leased   int     // requests served under a lease after the first
	Classes  Classes // those requests by status class
	// PeerClasses are, of those, the requests a peer (a stage-20 plugin
	// the lease holder called) answered.
	PeerClasses Classes
	Records     Records       // their stage-40 records, when a stage-40 hook wants them (the connection adds ConnID, Remote and VHost)
	Handler     string        // the name of the plugin that answered (not Decline), for the host's metrics
	Upstream    Upstream      // the request's backend exchange, when the handler forwarded it
	Idle        time.Duration // a lease given back idle: how long the connection had been idle
}

// Pipeline is called by the connection loop at every stage. Implementations
// must be safe for concurrent use by many connections. A *Conn stays valid
// until Closed returns; the other pointers (Request, Handoff, Record) are
// reused by the connection loop and valid only during the call: copy what
// must outlive it.
type Pipeline interface {
	Connect(c *Conn) Verdict
	Request(c *Conn, req *http1.Request, vhost string) (Verdict, *Reply)
	Handle(c *Conn, req *http1.Request, h *Handoff) Result
	Done(rec *Record)
	// DoneLeased is Done for the records of requests a handler served
	// under a lease, completed by the connection (Records.SetConn); the
	// pipeline keeps rs (the caller lets go of them).
	DoneLeased(rs Records)
	Closed(c *Conn)
}

// Leaser is implemented by pipelines that grant leases. MayLease reports
// whether a stage-30 call for req could be granted one (the connection
// loop offers a lease, and prepares for it, only then); Revoke asks the
// handler holding c under a lease to give it back at the next request
// boundary (on reload and shutdown). Neither may block for long.
type Leaser interface {
	MayLease(req *http1.Request) bool
	Revoke(c *Conn)
}

// Nop is the pipeline without plugins.
type Nop struct{}

func (Nop) Connect(*Conn) Verdict                                   { return Continue }
func (Nop) Request(*Conn, *http1.Request, string) (Verdict, *Reply) { return Continue, nil }
func (Nop) Handle(*Conn, *http1.Request, *Handoff) Result           { return Result{Verdict: Decline} }
func (Nop) Done(*Record)                                            {}
func (Nop) DoneLeased(Records)                                      {}
func (Nop) Closed(*Conn)                                            {}
