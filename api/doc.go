// Package api is Capuchin's plugin SDK. A plugin is its own executable: the
// author implements the stages they want as methods on one type and calls
// Serve from main. The SDK does the rest: the go-plugin handshake, the
// gRPC streams, receiving handed-over client sockets, the request-body
// reader (Content-Length and chunked, via api/http1), the response writer,
// leftover accounting for pipelined requests, the claim filter declaration,
// the configuration path and a named logger whose lines the host re-emits
// under the plugin's name.
//
// The stages, each an optional interface:
//
//	ConnectHook     10  a connection was accepted: Continue or Close
//	RequestHook     20  a request head was read: Continue, Close or Respond
//	ContentHandler  30  content handler for requests its Claims match:
//	                    Decline, Handled or Close
//	DoneHook        40  a response is complete (notification)
//	CloseHook       50  a connection closed (notification)
//
// Beside RequestHook: RequestFilter (stage 20 for the requests its Claims
// match only) and InlineRequestHook (the hook never waits, so the SDK runs
// it on the goroutine that read the call, without a hand-off to a worker).
//
// And for operators, also optional: MetricsSource (prometheus/client_golang
// collectors, gathered at each scrape of the host's MetricsURL), Reopener
// (reopen the files the plugin writes when the host gets SIGUSR1), and
// Request.SetUpstream (a forwarded request's backend exchange, for the
// stage-40 record and access logs).
//
// A ContentHandler gets the client socket itself: it reads the body with
// Request.Body and answers with the ResponseWriter, or takes the raw
// connection with Request.Conn. It must decide to Decline before touching
// either. The host calls a stage only if the plugin implements it, and only
// for requests its Claims match; Info sets each blocking stage's deadline
// and failure policy (fail-closed by default).
//
// A complete plugin:
//
//	package main
//
//	import (
//		"os"
//
//		"github.com/capuchin/capuchin/api"
//	)
//
//	type hello struct{ greeting string }
//
//	func (h *hello) Info() api.Info { return api.Info{Name: "hello", Version: "1.0"} }
//
//	// Configure reads the plugin's own configuration file.
//	func (h *hello) Configure(path string) error {
//		b, err := os.ReadFile(path)
//		if os.IsNotExist(err) {
//			h.greeting = "hello, world\n"
//			return nil
//		}
//		h.greeting = string(b)
//		return err
//	}
//
//	func (h *hello) Claims() api.Claims {
//		return api.Claims{Paths: []string{"^/hello$"}, Methods: []string{"GET", "HEAD"}}
//	}
//
//	func (h *hello) Handle(r *api.Request, w *api.ResponseWriter) api.Verdict {
//		if r.Query == "skip" {
//			return api.Decline // nothing read or written: the next handler runs
//		}
//		w.AddField("Content-Type", "text/plain")
//		w.WriteHead(200, int64(len(h.greeting)))
//		w.WriteString(h.greeting)
//		api.Logger().Debug("greeted", "client", r.Client.Remote)
//		return api.Handled
//	}
//
//	func main() { api.Serve(&hello{}) }
//
// Build it, drop the binary into the host's plugin directory and add
// "Load hello" to plugins.load. docs/plugin-contract.md describes the wire
// contract underneath.
package api
