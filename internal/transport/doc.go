// Package transport is the one place where Capuchin's generated gRPC types
// (proto/capuchin/v1) meet Go code. It holds the go-plugin handshake and
// plugin set, plain Go types for the messages, a Client for the host and a
// server adapter for the plugin SDK. Everything else in the module uses the
// plain types defined here.
package transport
