package api

import (
	"net/netip"
	"time"

	"github.com/capuchin/capuchin/api/http1"
)

// Verdict is a plugin's answer at a blocking stage.
type Verdict uint8

const (
	Continue Verdict = iota // stages 10, 20: go on
	Close                   // close the connection (stage 30: after an error page)
	Respond                 // stage 20: the host sends the returned Reply
	Decline                 // stage 30: not mine; the next handler runs
	Handled                 // stage 30: the response was written
)

// Policy is what the host does when a plugin fails to answer in time or is
// down.
type Policy uint8

const (
	// FailClosed (the default): stage 10 closes the connection, stages 20
	// and 30 answer 503.
	FailClosed Policy = iota
	// FailOpen acts as if the plugin had said Continue (10, 20) or
	// Decline (30).
	FailOpen
)

// Limits are the terms of one blocking stage.
type Limits struct {
	Deadline time.Duration // 0: the host default (1 s for 10 and 20, 60 s for 30)
	Policy   Policy
}

// Info names a plugin and sets its per-stage terms.
type Info struct {
	Name    string
	Version string
	Connect Limits // stage 10
	Request Limits // stage 20
	Handle  Limits // stage 30

	// Reconfigure says that Configure may be called again on the running
	// plugin when its configuration file changes (on a reload), instead
	// of a new process being started: the plugin then keeps its state
	// (proxy_reverse: backend health and counters). Configure must then
	// switch atomically, and keep the running configuration on an error.
	Reconfigure bool
}

// Plugin is what Serve runs. Implement any of ConnectHook, RequestHook,
// ContentHandler, DoneHook, CloseHook and Configurer on the same type; the
// host calls only the stages implemented.
type Plugin interface {
	Info() Info
}

// Configurer receives the path of the plugin's configuration file (which
// may not exist) once at start-up. An error stops the host's start-up with
// the error's text.
type Configurer interface {
	Configure(path string) error
}

// Conn describes a client connection.
type Conn struct {
	ID     uint64
	Remote netip.AddrPort
	Local  netip.AddrPort
}

// ConnectHook runs at stage 10, before any byte of the connection is read.
// Return Continue or Close.
type ConnectHook interface {
	Connect(c *Conn) Verdict
}

// Reply is the response a stage-20 hook asks the host to send.
type Reply struct {
	Status int
	Header http1.Header
	Body   []byte
}

// RequestHook runs at stage 20, after the request head was read and the
// virtual host chosen. Return Continue, Close, or Respond with a Reply.
// req is valid only during the call.
type RequestHook interface {
	Request(c *Conn, req *http1.Request, vhost string) (Verdict, *Reply)
}

// Claims is a stage-30 claim filter, evaluated by the host: the handler is
// called only for requests that match every non-empty list.
type Claims struct {
	Paths   []string // Go regexps, unanchored, against the percent-decoded path
	Hosts   []string // host names, case-insensitive; the port is ignored
	Methods []string // exact methods, e.g. "GET"
}

// ContentHandler runs at stage 30 for the requests its Claims match.
// Claims is asked once at start-up, after Configure, so it may depend on
// the plugin's configuration. Handle returns Decline (without touching the body or the connection), Handled
// (the response was written through w or the raw connection), or Close
// (the host sends an error page, see ResponseWriter.SetErrorStatus, and
// closes).
type ContentHandler interface {
	Claims() Claims
	Handle(req *Request, w *ResponseWriter) Verdict
}

// Record describes a finished request.
type Record struct {
	ConnID   uint64
	Remote   netip.AddrPort
	VHost    string
	Method   string
	Target   string
	Proto    string
	Status   int
	Bytes    int64 // response bytes, head included
	Start    time.Time
	Duration time.Duration
}

// DoneHook runs at stage 40 for every finished request. Notifications come
// in batches on one goroutine: do not block.
type DoneHook interface {
	Done(rec *Record)
}

// CloseHook runs at stage 50 when a connection closed. Do not block.
type CloseHook interface {
	Closed(c *Conn)
}
