package api

import (
	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/contract"
)

// Verdict is a plugin's answer at a blocking stage. Host and SDK share
// its one declaration (internal/contract).
type Verdict = contract.Verdict

// The verdicts.
const (
	Continue = contract.Continue // stages 10, 20: go on
	Close    = contract.Close    // close the connection (stage 30: after an error page)
	Respond  = contract.Respond  // stage 20: the host sends the returned Reply
	Decline  = contract.Decline  // stage 30: not mine; the next handler runs
	Handled  = contract.Handled  // stage 30: the response was written
)

// Policy is what the host does when a plugin fails to answer in time or is
// down.
type Policy = contract.Policy

const (
	// FailClosed (the default): stage 10 closes the connection, stages 20
	// and 30 answer 503.
	FailClosed = contract.FailClosed
	// FailOpen acts as if the plugin had said Continue (10, 20) or
	// Decline (30).
	FailOpen = contract.FailOpen
)

// Limits are the terms of one blocking stage: Deadline (0: the host
// default, 1 s for 10 and 20, 60 s for 30) and Policy.
type Limits = contract.Limits

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

// Conn describes a client connection: ID, Remote and Local addresses, and
// on a TLS connection its TLS facts (c.TLS.On(), c.TLS.ServerName,
// c.TLS.VersionName(), c.TLS.ClientCert, c.TLS.ClientSubject; c.Scheme()
// is "https" or "http"). A stage-30 handler always reads and writes plain
// HTTP: under TLS the host relays (docs/plugin-contract.md).
type Conn = contract.Conn

// TLS describes the TLS session of a client connection; see Conn.
type TLS = contract.TLS

// ConnectHook runs at stage 10, before any byte of the connection is read.
// Return Continue or Close.
type ConnectHook interface {
	Connect(c *Conn) Verdict
}

// Networks is a list of networks; see ConnectFilter.
type Networks = contract.Networks

// ConnectFilter, implemented beside ConnectHook, narrows stage 10 to the
// clients whose address is in one of the networks it returns (an
// IPv4-mapped address counts as IPv4; no network: no connection). The
// host evaluates it: any other connection costs no call. It is asked once
// at start-up, after Configure. Without it the hook sees every connection.
type ConnectFilter interface {
	ConnectFilter() Networks
}

// RequestFilter, implemented beside RequestHook, narrows stage 20 to the
// requests its Claims match (the rules of ContentHandler.Claims). The host
// evaluates it: any other request costs no call, and a connection leased
// to a stage-30 plugin stays leased until a request the filter matches
// comes (docs/writing-plugins.md, "What a hook costs"). It is asked once
// at start-up, after Configure. Without it the hook sees every request:
// through the host, or under a lease from the plugin holding it (peer
// calls, docs/plugin-contract.md). A filter must be at least as wide as
// what the hook acts on: a request it misses is never seen.
type RequestFilter interface {
	RequestFilter() Claims
}

// Reply is the response a stage-20 hook asks the host to send: Status,
// Header and Body.
type Reply = contract.Reply

// RequestHook runs at stage 20, after the request head was read and the
// virtual host chosen. Return Continue, Close, or Respond with a Reply.
// req is valid only during the call.
type RequestHook interface {
	Request(c *Conn, req *http1.Request, vhost string) (Verdict, *Reply)
}

// InlineRequestHook, implemented beside RequestHook, says whether the
// hook may run on the goroutine that read its call (true): it never
// waits, deciding from the request and memory alone (no I/O, no sleep, no
// lock held for long). The SDK then answers each stage-20 call there,
// without handing it to a worker goroutine, which saves a goroutine
// wake-up and switch per call (2–4 % of a proxied request's CPU with
// auth_header). A hook that waits anyway holds up every call read after
// it from the same socket, and those miss their deadlines. Asked at
// start-up, after Configure.
type InlineRequestHook interface {
	InlineRequest() bool
}

// Claims is a stage-30 claim filter, evaluated by the host: the handler is
// called only for requests that match every non-empty list. Paths are Go
// regexps, unanchored, against the percent-decoded path; Hosts are host
// names, case-insensitive, the port ignored; Methods are exact methods.
type Claims = contract.Claims

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

// Record describes a finished request: connection, virtual host, request
// line, status, response bytes (head included), start and duration.
type Record = contract.Record

// Upstream is the backend exchange of a forwarded request (address,
// status, response time), reported with Request.SetUpstream.
type Upstream = contract.Upstream

// DoneHook runs at stage 40 for every finished request. Notifications come
// in batches on one goroutine: do not block.
type DoneHook interface {
	Done(rec *Record)
}

// CloseHook runs at stage 50 when a connection closed. Do not block.
type CloseHook interface {
	Closed(c *Conn)
}
