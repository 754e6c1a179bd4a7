// Command hello is the smallest useful Capuchin plugin and the template for
// new ones: a stage-30 content handler that answers GET and HEAD requests
// whose path starts with /hello with a short text/plain greeting. Every
// other request is left to the next handler (in the end, the static files).
//
// Configuration (hello.conf, optional):
//
//	[HELLO]
//	    Message TEXT    the greeting; default "Hello from the hello plugin"
//
// Copy this folder to start a plugin: rename the type, change Info, Claims
// and Handle, build with "go build", and drop the binary into the host's
// plugin directory. See docs/writing-plugins.md.
package main

import (
	"strconv"

	"github.com/capuchin/capuchin/api"
)

// hello is the plugin. The SDK finds out which stages it hooks from the
// methods it has: Claims and Handle make it a stage-30 ContentHandler,
// Configure makes it read its configuration file.
type hello struct {
	body   string // the response body, greeting plus newline
	length string // len(body) in decimal, computed once
}

// Info names the plugin. The zero Limits mean: the host's default deadline
// (60 s at stage 30) and fail-closed (503 if the plugin is down).
func (h *hello) Info() api.Info { return api.Info{Name: "hello", Version: "1.0"} }

// Configure reads hello.conf; a missing file means the defaults.
func (h *hello) Configure(path string) error {
	msg, err := loadConfig(path)
	if err != nil {
		return err
	}
	h.body = msg + "\n"
	h.length = strconv.Itoa(len(h.body))
	return nil
}

// Claims is evaluated by the host, in-process: Handle is called only for
// GET and HEAD requests whose decoded path matches ^/hello. Any other
// request costs this plugin nothing.
func (h *hello) Claims() api.Claims {
	return api.Claims{Paths: []string{"^/hello"}, Methods: []string{"GET", "HEAD"}}
}

// Handle answers one request. The ResponseWriter adds Date, framing and
// Connection itself and sends no body for HEAD; the SDK flushes the
// response after Handle returns.
func (h *hello) Handle(r *api.Request, w *api.ResponseWriter) api.Verdict {
	w.AddField("Content-Type", "text/plain; charset=utf-8")
	if err := w.WriteHead(200, int64(len(h.body))); err != nil {
		return api.Handled // the client went away; the SDK closes the connection
	}
	_, _ = w.WriteString(h.body)
	return api.Handled
}

// main hands the plugin to the SDK, which speaks to the host until the host
// stops it.
func main() { api.Serve(&hello{}) }
