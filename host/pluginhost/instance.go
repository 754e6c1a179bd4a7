package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/capuchin/capuchin/host/config"
	"github.com/capuchin/capuchin/internal/fdpass"
	"github.com/capuchin/capuchin/internal/transport"
)

// Errors a call can end with besides the plugin's own.
var (
	errDeadline = errors.New("plugin missed its deadline")
	errNotSent  = errors.New("plugin is down")
	errCrashed  = errors.New("plugin crashed during the call")
)

// instance is one running plugin process and its streams.
type instance struct {
	log    hclog.Logger
	client *goplugin.Client
	tc     *transport.Client
	calls  transport.CallConn    // safe for concurrent Send
	frames *transport.HostFrames // the framed calls socket; nil if unsupported
	cancel context.CancelFunc
	fds    *fdpass.Sender // nil when the plugin does not hook stage 30
	// peerSock is where the plugin may listen for lease holders' stage-20
	// calls (it says so in its manifest: peer_calls).
	peerSock string
	wdog     *os.File // watchdog pipe, host end
	started  time.Time

	waitMu  sync.Mutex
	waiters map[uint64]*call
	nextID  atomic.Uint64

	dead     chan struct{}
	deadOnce sync.Once

	handed  sync.Map     // conn id -> struct{}: descriptor already passed (releasedCopy: and closed by the plugin)
	notes   chan queued  // see notes.go
	queued  atomic.Int64 // records queued (see notes.go)
	stopN   chan struct{}
	nDone   chan struct{} // closed when the notifier ends
	dropped atomic.Uint64
	wg      sync.WaitGroup
}

// call is one outstanding request on the Calls stream; pooled.
type call struct {
	ch    chan *transport.Reply
	timer *time.Timer
}

// launch starts the plugin process of spec and performs the handshake,
// Describe and Configure. The caller owns the result.
func launch(sp *spawner, spec config.PluginSpec, log hclog.Logger) (*instance, transport.Manifest, error) {
	var man transport.Manifest
	if _, err := os.Stat(spec.Path); err != nil {
		return nil, man, fmt.Errorf("plugin executable: %w", err)
	}
	in := &instance{log: log, waiters: map[uint64]*call{}, dead: make(chan struct{}),
		notes: make(chan queued, noteQueue), stopN: make(chan struct{}), nDone: make(chan struct{}), started: time.Now()}
	cmd, closeChild, err := in.command(spec, sp.peerSocket(spec.Name))
	if err != nil {
		return nil, man, err
	}
	in.client = goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  transport.Handshake(),
		VersionedPlugins: transport.VersionedPlugins(nil),
		Cmd:              cmd,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Logger:           goPluginLogger(log, spec.Path),
		StartTimeout:     10 * time.Second,
	})
	var rpc goplugin.ClientProtocol
	sp.run(func() { rpc, err = in.client.Client() })
	closeChild()
	if err != nil {
		in.kill()
		return nil, man, fmt.Errorf("start: %w", err)
	}
	if man, err = in.connect(rpc, spec.Config); err != nil {
		in.kill()
		return nil, man, err
	}
	return in, man, nil
}

// command builds the plugin's exec.Cmd with its extra files: the watchdog
// pipe, the descriptor-passing socket and the framed calls socket, each
// named by its environment variable, and the path of its peer socket
// (peer, if any). closeChild closes the host's copies of the child's ends
// once the child has started.
func (in *instance) command(spec config.PluginSpec, peer string) (*exec.Cmd, func(), error) {
	cmd := exec.Command(spec.Path)
	if peer != "" {
		in.peerSock = peer
		cmd.Env = append(cmd.Env, transport.EnvPeerSocket+"="+peer)
	}
	var child []*os.File
	closeChild := func() {
		for _, f := range child {
			f.Close()
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("watchdog pipe: %w", err)
	}
	in.wdog = w
	child = append(child, r)
	cmd.Env = append(cmd.Env, transport.EnvWatchdog+"=3")
	if fdpass.Supported {
		s, peer, err := fdpass.Pair()
		if err != nil {
			closeChild()
			w.Close()
			return nil, nil, err
		}
		in.fds = s
		child = append(child, peer)
		cmd.Env = append(cmd.Env, transport.EnvFDPass+"="+strconv.Itoa(3+len(child)-1))
	}
	if hf, peer, err := transport.FramePair(); err == nil {
		in.frames = hf
		child = append(child, peer)
		cmd.Env = append(cmd.Env, transport.EnvCalls+"="+strconv.Itoa(3+len(child)-1))
	} else {
		in.log.Warn("no framed calls socket; the plugin gets its events on the Calls stream", "error", err)
	}
	cmd.ExtraFiles = child
	setDeathSignal(cmd)
	return cmd, closeChild, nil
}

// connect dispenses the plugin, configures it, reads its manifest and
// opens the two streams.
func (in *instance) connect(rpc goplugin.ClientProtocol, confPath string) (transport.Manifest, error) {
	raw, err := rpc.Dispense(transport.PluginName)
	if err != nil {
		return transport.Manifest{}, fmt.Errorf("dispense: %w", err)
	}
	tc, ok := raw.(*transport.Client)
	if !ok {
		return transport.Manifest{}, fmt.Errorf("dispense: unexpected %T", raw)
	}
	in.tc = tc
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Configure first: a plugin's claims may come from its configuration.
	if err := tc.Configure(ctx, confPath); err != nil {
		var ce *transport.ConfigError
		if errors.As(err, &ce) {
			return transport.Manifest{}, &ConfigError{Path: confPath, Msg: ce.Msg}
		}
		return transport.Manifest{}, err
	}
	man, err := tc.Describe(ctx)
	if err != nil {
		return man, err
	}
	return man, in.open(man.FramedCalls)
}

// open opens the notification stream and the per-request channel: the
// framed socket when the plugin takes it, else the Calls stream.
func (in *instance) open(framed bool) error {
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	if framed && in.frames != nil {
		in.calls = in.frames
	} else {
		calls, err := in.tc.Calls(ctx)
		if err != nil {
			return err
		}
		in.calls = calls
	}
	notes, err := in.tc.Notify(ctx)
	if err != nil {
		return err
	}
	in.wg.Add(2)
	go in.demux()
	go in.notifier(notes)
	return nil
}

// demux routes replies to their waiters until the stream breaks.
func (in *instance) demux() {
	defer in.wg.Done()
	for {
		r := new(transport.Reply)
		if err := in.calls.Recv(r); err != nil {
			in.die()
			return
		}
		in.waitMu.Lock()
		c := in.waiters[r.ID]
		if !r.Interim {
			delete(in.waiters, r.ID)
		}
		in.waitMu.Unlock()
		if c != nil {
			c.ch <- r
		}
	}
}

func (in *instance) die() { in.deadOnce.Do(func() { close(in.dead) }) }

// roundTrip sends ev and waits for its reply at most d. The error is
// errNotSent (nothing reached the plugin), errDeadline or errCrashed.
func (in *instance) roundTrip(pool *sync.Pool, ev *transport.Event, d time.Duration) (*transport.Reply, error) {
	return in.leaseTrip(pool, ev, d, 0, nil)
}

// post sends ev without waiting for its reply (which the demux drops:
// nobody waits for id 0).
func (in *instance) post(ev *transport.Event) {
	ev.ID = 0
	_ = in.calls.Send(ev)
}

// leaseTrip is roundTrip for a stage-30 call under a lease: the first
// request must be done within d (the plugin says so with an interim
// reply, which it tells tm when tm is not nil), the whole lease within
// then+rest.
func (in *instance) leaseTrip(pool *sync.Pool, ev *transport.Event, d, rest time.Duration, tm *handleTimer) (*transport.Reply, error) {
	c := pool.Get().(*call)
	ev.ID = in.nextID.Add(1)
	in.waitMu.Lock()
	in.waiters[ev.ID] = c
	in.waitMu.Unlock()
	err := in.calls.Send(ev)
	if err == nil {
		c.timer.Reset(d)
		err = in.await(c, rest, tm)
		c.timer.Stop()
		if err == nil {
			r := <-c.ch
			pool.Put(c)
			return r, nil
		}
	} else {
		err = errNotSent
	}
	if r := in.forget(c, ev.ID, tm); r != nil {
		pool.Put(c)
		return r, nil
	}
	// Not pooled again: the demux may still hand c an interim reply.
	return nil, err
}

// await waits for c's final reply (leaving it in c.ch), extending the
// deadline by rest after an interim one; an unbounded interim reply stops
// the deadline. Either tells tm (when not nil). The error says why it
// stopped.
func (in *instance) await(c *call, rest time.Duration, tm *handleTimer) error {
	for {
		select {
		case r := <-c.ch:
			switch {
			case !r.Interim:
				c.ch <- r // room: the channel holds three
				return nil
			case r.Leased > 0 && tm != nil: // a report: the deadlines stay
				tm.report(r)
				continue
			}
			c.timer.Stop()
			if !r.Unbounded { // else the plugin's own idle timeouts bound it now
				c.timer.Reset(rest)
			}
			if tm != nil {
				tm.interim(r)
			}
		case <-c.timer.C:
			return errDeadline
		case <-in.dead:
			return errCrashed
		}
	}
}

// forget removes a waiter; if the demux already took it, the reply is on
// its way and is returned, after the reports before it (told to tm, when
// not nil).
func (in *instance) forget(c *call, id uint64, tm *handleTimer) *transport.Reply {
	in.waitMu.Lock()
	_, waiting := in.waiters[id]
	delete(in.waiters, id)
	in.waitMu.Unlock()
	if waiting {
		return nil
	}
	for { // the final reply is on its way; an interim one may come first
		switch r := <-c.ch; {
		case !r.Interim:
			return r
		case r.Leased > 0 && tm != nil:
			tm.report(r)
		}
	}
}

// stop ends the instance: flushes notifications, closes the streams and
// stops the process (go-plugin asks it to exit, then kills it).
func (in *instance) stop() {
	close(in.stopN)
	t := time.NewTimer(2 * time.Second)
	select {
	case <-in.nDone:
	case <-t.C:
		in.log.Warn("plugin did not take its last notifications in time")
	}
	t.Stop()
	if in.calls != nil {
		_ = in.calls.CloseSend()
	}
	in.kill()
}

func (in *instance) kill() {
	if in.cancel != nil {
		in.cancel()
	}
	in.client.Kill()
	in.die()
	if in.frames != nil {
		in.frames.Close() // ends the demux's read
	}
	in.wg.Wait()
	if in.fds != nil {
		in.fds.Close()
	}
	if in.wdog != nil {
		in.wdog.Close()
	}
}

// goPluginLogger is the logger go-plugin re-emits the plugin's lines under:
// go-plugin adds the executable's name itself, so it gets log's parent
// when log is already named after it (plugins.NAME, not plugins.NAME.NAME).
func goPluginLogger(log hclog.Logger, path string) hclog.Logger {
	if parent, ok := strings.CutSuffix(log.Name(), "."+filepath.Base(path)); ok {
		return log.ResetNamed(parent)
	}
	return log
}
