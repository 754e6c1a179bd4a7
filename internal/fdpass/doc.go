// Package fdpass hands client-connection descriptors from the host to a
// plugin process: SCM_RIGHTS messages on a SOCK_SEQPACKET socketpair, each
// message carrying one descriptor and the 8-byte connection id it belongs to.
//
// The host keeps a Sender and gives the other end of the pair to the plugin
// as an extra file. In the plugin, a Receiver reads the messages and parks
// each descriptor until Wait claims it, so a Handle event that arrives before
// its descriptor simply waits. A received socket becomes a net.Conn over an
// os.File (see sockConn), which costs two system calls where net.FileConn
// costs thirteen (the host takes a parked socket back the same way: Conn);
// FileConn is net.FileConn without the TCP keep-alive probes it would turn
// on. The host's listeners (Listen) accept every client connection as
// such a socket too, so that host and plugins meet one kind of socket and
// a connection answered at once never joins the poller.
//
// Descriptor passing is implemented on Linux; elsewhere Supported is false
// and Pair fails, and the host refuses stage-30 plugins at start-up.
package fdpass

import "errors"

// ErrClosed is returned by a Receiver that has stopped.
var ErrClosed = errors.New("fdpass: receiver closed")

// ErrTimeout is returned by Wait when no descriptor came in time.
var ErrTimeout = errors.New("fdpass: no descriptor in time")
