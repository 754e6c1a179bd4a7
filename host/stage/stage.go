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
// Nop is the pipeline with no plugins: every stage continues or declines.
package stage

import (
	"net"
	"net/netip"
	"time"

	"github.com/capuchin/capuchin/api/http1"
)

// Verdict is a stage's answer.
type Verdict uint8

const (
	Continue Verdict = iota // stages 10, 20: go on
	Close                   // close the connection (stage 30: after an error page)
	Respond                 // stage 20: send the Reply and skip stage 30
	Decline                 // stage 30: not mine (Monkey's NOT_ME)
	Handled                 // stage 30: the response was written by the handler
)

// Conn describes a client connection.
type Conn struct {
	ID     uint64
	Remote netip.AddrPort
	Local  netip.AddrPort
	TCP    *net.TCPConn // the socket, for the stage-30 hand-over
}

// Reply is a response a stage-20 plugin asks the host to send.
type Reply struct {
	Status int
	Header http1.Header
	Body   []byte
}

// Handoff is what the host gives a stage-30 handler with a request.
type Handoff struct {
	VHost     string        // the virtual host chosen at stage 20
	Buffered  []byte        // bytes read past the request head: body start, pipelined requests
	MaxBody   int64         // request body limit; 0 means none
	Timeout   time.Duration // the server's Timeout: longest wait for client bytes
	MaxHead   int           // the server's MaxHeaderSize: longest request head, in bytes
	KeepAlive bool          // whether the host allows the connection to stay open after this request
	Lease     Lease         // how long the handler may keep the connection (DESIGN.md, "Connection lease")

	// Park, when set, is called once the handler holds the connection
	// under a lease (its first request answered): the host then stops
	// watching the socket until Handle returns, so the handler's traffic
	// does not wake it. Only the goroutine running Handle calls it.
	Park func()
}

// Lease lets a stage-30 handler serve the requests that follow on the
// connection itself, while they match its claim filter and the same Host:
// MaxRequests in all (the first included; 1 is the plain hand-over), each
// awaited at most IdleTimeout. The handler gives the connection back with
// the first request it will not serve.
type Lease struct {
	MaxRequests int
	IdleTimeout time.Duration
}

// Result is a stage-30 handler's report.
type Result struct {
	Verdict  Verdict
	Status   int      // status sent (Handled) or wanted for the error page (Close; 0 means 403)
	BytesIn  int64    // request body bytes read
	BytesOut int64    // response bytes written, head included
	Leftover []byte   // bytes read past the end of the request, for the host to parse next
	Close    bool     // the connection must close after this request
	Err      error    // the handler failed: 502 if BytesOut is 0, otherwise the connection closes
	Leased   int      // requests served under a lease after the first
	Records  []Record // their stage-40 records, when a stage-40 hook wants them
}

// Record describes one finished request for stage 40.
type Record struct {
	ConnID   uint64
	Remote   netip.AddrPort
	VHost    string
	Method   string
	Target   string
	Proto    string
	Status   int
	Bytes    int64 // response bytes written, head included
	Start    time.Time
	Duration time.Duration
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
	Closed(c *Conn)
}

// Revoker is implemented by pipelines that grant leases: Revoke asks the
// handler holding c under a lease to give it back at the next request
// boundary (on reload and shutdown). It must not block for long.
type Revoker interface {
	Revoke(c *Conn)
}

// Nop is the pipeline without plugins.
type Nop struct{}

func (Nop) Connect(*Conn) Verdict                                   { return Continue }
func (Nop) Request(*Conn, *http1.Request, string) (Verdict, *Reply) { return Continue, nil }
func (Nop) Handle(*Conn, *http1.Request, *Handoff) Result           { return Result{Verdict: Decline} }
func (Nop) Done(*Record)                                            {}
func (Nop) Closed(*Conn)                                            {}
