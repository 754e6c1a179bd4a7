// Package transport is the one place where Capuchin's generated gRPC types
// (proto/capuchin/v1) meet Go code. It holds the go-plugin handshake and
// plugin set, plain Go types for the messages (built from the shared stage
// contract in internal/contract), the one adapter between those and the
// generated types, a Client for the host and a server adapter for the
// plugin SDK. Enums cross the wire by name (enums.go), never by number.
// Everything else in the module uses the plain types.
package transport
