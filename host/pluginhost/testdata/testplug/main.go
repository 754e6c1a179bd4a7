// Command testplug is the test plugin of package pluginhost. Its executable
// name picks what it does:
//
//	hello, helloopen   stage 30 on paths ^/hello (helloopen: fail-open)
//	gate, gateopen     stages 10 and 20 on every connection and request
//	                   (gateopen: fail-open); on TLS connections it closes
//	                   at stage 10 those whose SNI is blocked.test and
//	                   answers /tls-facts at stage 20; its paths work
//	                   under /hello too (/hello/deny is /deny), so that a
//	                   request hello serves under a lease meets them
//	gatef              gate with filters: stage 10 for 127.0.0.2 only,
//	                   stage 20 for paths ^/(deny|gate-) only
//	notes              stages 40 and 50, written as lines to the file named
//	                   in its configuration file
//
// A trailing "grpc" (gategrpc, helloopengrpc) makes the plugin ignore the
// framed calls socket and take its events on the gRPC Calls stream, and
// open no peer socket, as a plugin in another language may.
// A trailing "inline" (gateinline, gateopeninline) makes the stage-20
// hook run on the goroutine that read its call (api.InlineRequestHook).
// Every mode writes its pid to CONFIG.pid on Configure and refuses a
// configuration file that contains "bad".
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/capuchin/capuchin/api"
	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/transport"
)

type base struct {
	name   string
	policy api.Policy
	conf   []byte
	inline bool
}

// InlineRequest: the "inline" modes run their stage-20 hook inline.
func (b *base) InlineRequest() bool { return b.inline }

func (b *base) Info() api.Info {
	// Stage 10 has no slow path to test: its deadline is long, so that a
	// loaded machine never turns a stage-10 verdict into the policy's.
	c := api.Limits{Deadline: 2 * time.Second, Policy: b.policy}
	l := api.Limits{Deadline: 400 * time.Millisecond, Policy: b.policy}
	return api.Info{Name: b.name, Version: "0.1", Connect: c, Request: l,
		Handle: api.Limits{Deadline: 1500 * time.Millisecond, Policy: b.policy}}
}

func (b *base) Configure(path string) error {
	b.conf, _ = os.ReadFile(path)
	if bytes.Contains(b.conf, []byte("bad")) {
		return errors.New(path + ":1: bad is not a setting")
	}
	pid := strconv.Itoa(os.Getpid())
	if err := os.WriteFile(path+".pid.tmp", []byte(pid), 0o644); err != nil {
		return err
	}
	api.Logger().Info("configured", "path", path)
	return os.Rename(path+".pid.tmp", path+".pid")
}

// hello is a stage-30 handler.
type hello struct {
	base
	calls atomic.Int64
}

func (h *hello) Claims() api.Claims {
	return api.Claims{Paths: []string{"^/hello"}, Methods: []string{"GET", "POST", "HEAD"}}
}

func (h *hello) Handle(r *api.Request, w *api.ResponseWriter) api.Verdict {
	n := h.calls.Add(1)
	switch r.Path {
	case "/hello/decline":
		return api.Decline
	case "/hello/close":
		w.SetErrorStatus(418)
		return api.Close
	case "/hello/nap": // within the deadline; helloopen answers it
		if h.name == "hello" {
			time.Sleep(500 * time.Millisecond)
			return api.Decline
		}
	case "/hello/slow":
		time.Sleep(3 * time.Second)
		return api.Decline
	case "/hello/hang":
		w.AddField("X-Plugin-Pid", strconv.Itoa(os.Getpid()))
		w.WriteHead(200, 100)
		w.Flush()
		time.Sleep(time.Minute)
		return api.Handled
	case "/hello/raw":
		return raw(r, w)
	case "/hello/readidle": // reads the client socket though the request has no body
		nc, _ := r.Conn()
		nc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		_, err := nc.Read(make([]byte, 1))
		nc.SetReadDeadline(time.Time{})
		out := fmt.Sprintf("read: %v", err)
		w.WriteHead(200, int64(len(out)))
		w.WriteString(out)
		return api.Handled
	case "/hello/tls":
		out := tlsFacts(&r.Client)
		w.WriteHead(200, int64(len(out)))
		w.WriteString(out)
		return api.Handled
	}
	body, err := io.ReadAll(r.Body())
	if err != nil {
		w.SetClose()
		w.WriteHead(http1.StatusOf(err), 0) // 413 past MaxBody, 408 on a stall
		return api.Handled
	}
	w.AddField("X-Plugin-Calls", strconv.FormatInt(n, 10))
	w.AddField("X-Plugin-Pid", strconv.Itoa(os.Getpid()))
	out := fmt.Sprintf("hello %s %s vhost=%s body=%q", r.Method, r.Path, r.VHost, body)
	if r.Query == "chunked" {
		w.WriteHead(200, -1)
		w.WriteString(out[:5])
		w.WriteString(out[5:])
		return api.Handled
	}
	w.WriteHead(200, int64(len(out)))
	w.WriteString(out)
	return api.Handled
}

// raw answers on the raw connection, as a proxy would.
func raw(r *api.Request, w *api.ResponseWriter) api.Verdict {
	nc, br := r.Conn()
	if r.ContentLength > 0 {
		br.Discard(int(r.ContentLength))
	}
	h := http1.ResponseHead{Status: 200, Server: r.Server, Length: 3, Method: r.Method, Minor: r.Minor, Close: !r.KeepAlive}
	resp, _ := h.Append(nil, nil)
	n, _ := nc.Write(append(resp, "raw"...))
	w.Report(200, int64(n))
	return api.Handled
}

// gate hooks stages 10 and 20 and counts its calls.
type gate struct {
	base
	connects, requests atomic.Int64
}

// gatef is gate with filters.
type gatef struct{ gate }

func (g *gatef) ConnectFilter() api.Networks {
	return api.Networks{netip.MustParsePrefix("127.0.0.2/32")}
}

func (g *gatef) RequestFilter() api.Claims {
	return api.Claims{Paths: []string{"^/(deny|gate-)"}}
}

// tlsFacts describes the TLS facts of c.
func tlsFacts(c *api.Conn) string {
	t := &c.TLS
	return fmt.Sprintf("scheme=%s tls=%v version=%s sni=%s cert=%v subject=%s",
		c.Scheme(), t.On(), t.VersionName(), t.ServerName, t.ClientCert, t.ClientSubject)
}

func (g *gate) Connect(c *api.Conn) api.Verdict {
	g.connects.Add(1)
	if c.Remote.Addr().String() == "127.0.0.2" || c.TLS.ServerName == "blocked.test" {
		return api.Close
	}
	return api.Continue
}

func (g *gate) Request(c *api.Conn, req *http1.Request, vhost string) (api.Verdict, *api.Reply) {
	n := g.requests.Add(1)
	switch strings.TrimPrefix(req.Path, "/hello") {
	case "/gate-count": // the calls seen so far, this one included
		return api.Respond, &api.Reply{Status: 200,
			Body: []byte(fmt.Sprintf("connect=%d request=%d", g.connects.Load(), n))}
	case "/gate-wait":
		time.Sleep(150 * time.Millisecond)
	case "/deny":
		return api.Respond, &api.Reply{Status: 403,
			Header: http1.Header{{Name: "X-Gate", Value: "denied " + vhost}}, Body: []byte("denied")}
	case "/teapot": // no body: the host sends its error page with this status
		return api.Respond, &api.Reply{Status: 418}
	case "/teapot-body":
		return api.Respond, &api.Reply{Status: 418, Body: []byte("short and stout")}
	case "/gate-close":
		return api.Close, nil
	case "/tls-facts":
		return api.Respond, &api.Reply{Status: 200, Body: []byte(tlsFacts(c))}
	case "/gate-slow":
		time.Sleep(2 * time.Second)
	}
	return api.Continue, nil
}

// notes hooks stages 40 and 50.
type notes struct {
	base
	mu sync.Mutex
}

func (n *notes) write(line string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f, err := os.OpenFile(strings.TrimSpace(string(n.conf)), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		api.Logger().Error("open notes file", "error", err)
		return
	}
	defer f.Close()
	io.WriteString(f, line+"\n")
}

func (n *notes) Done(r *api.Record) {
	n.write(fmt.Sprintf("done %d %s %s %s %d %d", r.ConnID, r.Remote.Addr(), r.Method, r.Target, r.Status, r.Bytes))
}

func (n *notes) Closed(c *api.Conn) { n.write(fmt.Sprintf("closed %d", c.ID)) }

func main() {
	name := filepath.Base(os.Args[0])
	if strings.HasSuffix(name, "grpc") {
		name = strings.TrimSuffix(name, "grpc")
		os.Unsetenv(transport.EnvCalls)
		os.Unsetenv(transport.EnvPeerSocket)
	}
	inline := strings.HasSuffix(name, "inline")
	name = strings.TrimSuffix(name, "inline")
	b := base{name: name, inline: inline}
	if strings.HasSuffix(name, "open") {
		b.policy = api.FailOpen
	}
	switch strings.TrimSuffix(name, "open") {
	case "hello":
		api.Serve(&hello{base: b})
	case "gate":
		api.Serve(&gate{base: b})
	case "gatef":
		api.Serve(&gatef{gate{base: b}})
	case "notes":
		api.Serve(&notes{base: b})
	default:
		fmt.Fprintln(os.Stderr, "testplug: unknown mode", name)
		os.Exit(1)
	}
}
