package api

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/internal/claim"
	"github.com/capuchin/capuchin/internal/contract"
	"github.com/capuchin/capuchin/internal/fdpass"
	"github.com/capuchin/capuchin/internal/pprofenv"
	"github.com/capuchin/capuchin/internal/transport"
)

// Serve runs p as a Capuchin plugin: it answers the host's handshake on
// stdout and serves until the host stops it. It must be called from main
// and does not return normally. Run directly, not by the host, it prints a
// note and exits with status 1.
func Serve(p Plugin) {
	rt := newRuntime(p)
	if err := rt.setup(); err != nil {
		Logger().Error("plugin start-up failed", "error", err)
		os.Exit(1)
	}
	pprofenv.Start(pprofenv.PluginVar(p.Info().Name), Logger()) // off unless set
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  transport.Handshake(),
		VersionedPlugins: transport.VersionedPlugins(rt),
		GRPCServer:       transport.NewGRPCServer,
		Logger:           Logger(),
	})
}

// runtime implements transport.Handler on top of the author's Plugin.
type runtime struct {
	p Plugin
	// handleD is the stage-30 deadline of the last manifest (Info is asked
	// again at each Describe, after Configure, so it may follow the
	// plugin's configuration); the SDK holds leased requests to it.
	handleD atomic.Int64
	connect ConnectHook
	request RequestHook
	inline  atomic.Bool // the stage-20 hook runs on the reading goroutine (InlineRequestHook)
	content ContentHandler
	done    DoneHook
	closed  CloseHook

	filter   atomic.Pointer[claim.Filter] // the content handler's claims, for leased requests
	giveBack giveBackCache                // the stage-20 plugins' filters, for leased requests
	frames   *transport.PluginFrames      // the framed calls socket; nil: the Calls stream
	fds      *fdpass.Receiver
	peers    peerSet      // a lease holder's connections to stage-20 plugins (peers.go)
	peerLn   net.Listener // a stage-20 plugin's peer socket; nil: no peer calls
	workers  *workers     // run the events of the calls channels
	conns    sync.Map     // conn id -> *connState
	metrics  metricsState

	pendingRevoke sync.Map // conn id -> struct{}: revoked before its first hand-over arrived
	clock         http1.Clock
	reqs          sync.Pool // *http1.Request for stage 20
	bufs          bufPools  // connections' buffers between requests
}

func newRuntime(p Plugin) *runtime {
	rt := &runtime{p: p, workers: newWorkers()}
	rt.bufs.mem.Quiet = &rt.bufs.raw.Idle // memory is given back once connections stop coming back to work
	rt.connect, _ = p.(ConnectHook)
	rt.request, _ = p.(RequestHook)
	if _, ok := p.(Configurer); !ok {
		rt.askInline() // else once configured
	}
	rt.content, _ = p.(ContentHandler)
	rt.done, _ = p.(DoneHook)
	rt.closed, _ = p.(CloseHook)
	rt.reqs.New = func() any { return new(http1.Request) }
	return rt
}

// setup starts the watchdog and the descriptor receiver named by the
// host's environment. Without them (a plugin run by hand or in a test
// harness) it does nothing.
func (rt *runtime) setup() error {
	if v := os.Getenv(transport.EnvWatchdog); v != "" {
		f, err := fileFromEnv(v, "watchdog")
		if err != nil {
			return err
		}
		go watchdog(f)
	}
	if v := os.Getenv(transport.EnvFDPass); v != "" && rt.content != nil {
		f, err := fileFromEnv(v, "fdpass")
		if err != nil {
			return err
		}
		if rt.fds, err = fdpass.NewReceiver(f); err != nil {
			return err
		}
		go rt.fds.Run()
	}
	if v := os.Getenv(transport.EnvCalls); v != "" {
		f, err := fileFromEnv(v, "calls")
		if err != nil {
			return err
		}
		if rt.frames, err = transport.OpenPluginFrames(f); err != nil {
			return err
		}
		// Ends when the host closes the socket (the process exits then).
		go func() { _ = rt.Calls(rt.frames) }()
	}
	if v := os.Getenv(transport.EnvPeerSocket); v != "" && rt.request != nil {
		rt.listenPeers(v)
	}
	return nil
}

func fileFromEnv(v, name string) (*os.File, error) {
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("bad %s descriptor %q", name, v)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// watchdog exits the process when the host's end of the pipe closes: the
// host is gone, even if it was killed with SIGKILL.
func watchdog(f *os.File) {
	_, _ = io.Copy(io.Discard, f)
	Logger().Warn("host went away; exiting")
	os.Exit(2)
}

// Describe builds the manifest from Info and the interfaces p implements.
// The host asks after Configure, so Info may depend on the configuration.
func (rt *runtime) Describe() transport.Manifest {
	info := rt.p.Info()
	rt.handleD.Store(int64(info.Handle.Deadline))
	m := transport.Manifest{Name: info.Name, Version: info.Version, Reconfigurable: info.Reconfigure,
		FramedCalls: rt.frames != nil, PeerCalls: rt.peerLn != nil, LeaseReports: true, LeaseRecords: true}
	if rt.connect != nil {
		m.Stages = append(m.Stages, transport.StageSpec{Stage: contract.StageConnect, Limits: info.Connect})
		if f, ok := rt.p.(ConnectFilter); ok {
			n := f.ConnectFilter()
			m.ConnectFilter = &n
		}
	}
	if rt.request != nil {
		m.Stages = append(m.Stages, transport.StageSpec{Stage: contract.StageRequest, Limits: info.Request})
		if f, ok := rt.p.(RequestFilter); ok {
			c := f.RequestFilter()
			m.RequestFilter = &c
		}
	}
	if rt.content != nil {
		m.Stages = append(m.Stages, transport.StageSpec{Stage: contract.StageHandle, Limits: info.Handle})
		c := rt.content.Claims()
		m.Claims = c
		// The same filter decides which requests a lease may serve; a bad
		// one fails here and the host refuses the plugin.
		f, _ := claim.Compile(c.Paths, c.Hosts, c.Methods)
		rt.filter.Store(f)
	}
	if rt.done != nil {
		m.Stages = append(m.Stages, transport.StageSpec{Stage: contract.StageDone})
	}
	if rt.closed != nil {
		m.Stages = append(m.Stages, transport.StageSpec{Stage: contract.StageClosed})
	}
	return m
}

// Configure hands the configuration path to a Configurer.
func (rt *runtime) Configure(path string) error {
	c, ok := rt.p.(Configurer)
	if !ok {
		return nil
	}
	if err := c.Configure(path); err != nil {
		return err
	}
	rt.askInline()
	return nil
}

// askInline asks a stage-20 hook whether it runs inline
// (InlineRequestHook).
func (rt *runtime) askInline() {
	h, ok := rt.p.(InlineRequestHook)
	rt.inline.Store(ok && rt.request != nil && h.InlineRequest())
}

// Calls serves the per-request events (from the Calls stream or the framed
// socket): every event runs on its own goroutine and answers on the same
// channel.
// (A peer socket's calls are served by servePeer, peers.go.)
func (rt *runtime) Calls(s transport.PluginCalls) error {
	for {
		ev := new(transport.Event)
		if err := s.Recv(ev); err != nil {
			return nil
		}
		rt.workers.run(rt, job{ev: ev, s: s})
	}
}

// dispatch runs one event that came on calls (where a handler may send a
// reply ahead of the final one).
func (rt *runtime) dispatch(ev *transport.Event, calls transport.PluginCalls) (rep *transport.Reply) {
	rep = &transport.Reply{ID: ev.ID}
	defer func() {
		if v := recover(); v != nil {
			Logger().Error("handler panicked", "stage", ev.Kind, "panic", v)
			*rep = transport.Reply{ID: ev.ID, Err: fmt.Sprint("plugin panicked: ", v), Close: true}
		}
	}()
	c := &ev.Conn // the event is the handler's alone
	switch {
	case ev.Kind == transport.EventConnect && rt.connect != nil:
		rep.Verdict = rt.connect.Connect(c)
	case ev.Kind == transport.EventRequest && rt.request != nil:
		rt.stageRequest(c, string(ev.Head), ev.VHost, rep)
	case ev.Kind == transport.EventHandle && rt.content != nil:
		rt.handle(c, ev, rep, calls)
	case ev.Kind == transport.EventRevoke:
		rt.revoke(ev.Conn.ID)
	default:
		rep.Err = fmt.Sprintf("plugin does not hook the stage of event kind %d", ev.Kind)
	}
	return rep
}

// stageRequest runs the stage-20 hook for the request whose head is head
// (from the host or a lease holder, peers.go).
func (rt *runtime) stageRequest(c *Conn, head, vhost string, rep *transport.Reply) {
	req := rt.reqs.Get().(*http1.Request)
	defer rt.reqs.Put(req)
	if err := http1.ParseRequest(head, nil, req); err != nil {
		rep.Err = "bad request head from host: " + err.Error()
		return
	}
	v, r := rt.request.Request(c, req, vhost)
	rep.Verdict = v
	if v == Respond && r != nil {
		rep.Reply = *r
	}
}

// Notify delivers stage-40 and stage-50 notifications and releases the
// sockets of closed connections.
func (rt *runtime) Notify(notes []transport.Note) {
	for i := range notes {
		n := &notes[i]
		switch n.Kind {
		case transport.NoteDone:
			if rt.done != nil {
				rec := n.Record // the hook may keep it; notes are reused
				rt.done.Done(&rec)
			}
		case transport.NoteClosed:
			rt.release(n.Conn.ID)
			if rt.closed != nil {
				c := n.Conn
				rt.closed.Closed(&c)
			}
		}
	}
}

// release closes the plugin's copy of a closed connection.
func (rt *runtime) release(id uint64) {
	rt.pendingRevoke.Delete(id)
	if v, ok := rt.conns.LoadAndDelete(id); ok {
		v.(*connState).nc.Close()
	}
	if rt.fds != nil {
		rt.fds.Drop(id)
	}
}

// fdWait bounds the wait for a descriptor that the host sends before the
// Handle event.
const fdWait = 10 * time.Second
