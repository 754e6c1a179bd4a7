// Package pluginhost starts, supervises and calls Capuchin's stage plugins:
// separate executables spoken to over gRPC with hashicorp/go-plugin. A
// *Host implements host/stage.Pipeline.
//
// Each plugin gets two long-lived streams: Calls carries the blocking
// stages 10, 20 and 30 (events with request ids; one demux goroutine per
// plugin routes replies to waiters), Notify carries stages 40 and 50 in
// batches from a bounded queue that drops (and counts) rather than block.
// For stage 30 the client socket is passed to the plugin once per
// connection (SCM_RIGHTS on a socketpair given as an extra file); the
// plugin reads the body and writes the response itself.
//
// The set of plugins is an immutable snapshot behind an atomic pointer:
// the per-request path takes no lock of the Host. A plugin that dies is
// restarted with exponential backoff (100 ms to 10 s); while it is down,
// and when it misses a deadline, its declared failure policy applies. A
// request in flight at a crashing stage-30 plugin gets Result.Err.
//
// Plugins never outlive the host: they are forked from one OS thread that
// lives as long as the Host with a parent-death signal (Linux), and the SDK
// exits when the watchdog pipe from the host closes.
package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/capuchin/capuchin/host/config"
	"github.com/capuchin/capuchin/internal/contract"
	"github.com/capuchin/capuchin/internal/transport"
)

// Host runs the configured plugins and implements stage.Pipeline.
type Host struct {
	log    hclog.Logger
	sp     *spawner
	cur    atomic.Pointer[snapshot]
	mu     sync.Mutex // serialises Reload and Shutdown
	shut   bool
	calls  sync.Pool // *call
	leases leases    // connections held under a lease, for Revoke
	peers  peerTerms // the Lease.Peers of the current snapshot
	met    *hostMetrics
}

// snapshot is one immutable set of plugins, in load order, with the
// per-stage lists the hot path walks.
type snapshot struct {
	all     []*plugin
	connect []*plugin
	request []*plugin
	handle  []*plugin
	done    []*plugin
	closed  []*plugin // stage 50 or stage 30 (handed sockets are released on close)

	// leasable: every stage-20 plugin has a filter or takes peer calls, so
	// a connection may be leased; giveBack are those filters, sent with
	// every lease, and peers the plugins the lease holder calls itself.
	leasable bool
	giveBack []contract.Claims
	peers    []*plugin
}

func newSnapshot(ps []*plugin) *snapshot {
	s := &snapshot{all: ps}
	for _, p := range ps {
		if p.hooks(contract.StageConnect) {
			s.connect = append(s.connect, p)
		}
		if p.hooks(contract.StageRequest) {
			s.request = append(s.request, p)
		}
		switch hf := p.hf.Load(); {
		case !p.hooks(contract.StageRequest):
		case hf.reqSpec != nil:
			s.giveBack = append(s.giveBack, *hf.reqSpec)
		case hf.peer:
			s.peers = append(s.peers, p)
		}
		if p.hooks(contract.StageHandle) {
			s.handle = append(s.handle, p)
		}
		if p.hooks(contract.StageDone) {
			s.done = append(s.done, p)
		}
		if p.hooks(contract.StageClosed) || p.hooks(contract.StageHandle) {
			s.closed = append(s.closed, p)
		}
	}
	s.leasable = len(s.giveBack)+len(s.peers) == len(s.request)
	return s
}

// Start starts the plugins of specs in order. Each plugin logs (and its
// own log lines are re-emitted) under log.Named(plugin name). A missing executable, a
// failed handshake, a wrong protocol version or a configuration error stops
// everything already started and returns an error naming the plugin and its
// Load line.
func Start(specs []config.PluginSpec, log hclog.Logger) (*Host, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	h := &Host{log: log, sp: newSpawner(), met: newHostMetrics()}
	h.calls.New = func() any {
		t := time.NewTimer(time.Hour)
		t.Stop()
		// An unbounded and a lease interim reply, and the final one.
		return &call{ch: make(chan *transport.Reply, 3), timer: t}
	}
	ps, err := h.startAll(specs, nil)
	if err != nil {
		h.sp.close()
		return nil, err
	}
	h.cur.Store(newSnapshot(ps))
	return h, nil
}

// startAll starts specs, reusing plugins of keep that are unchanged. On an
// error it stops what it started and returns the error.
func (h *Host) startAll(specs []config.PluginSpec, keep []*plugin) ([]*plugin, error) {
	var out, started []*plugin
	for _, spec := range specs {
		if p := find(keep, spec); p != nil {
			out = append(out, p)
			continue
		}
		p, err := h.reconfigure(keep, spec)
		if p != nil {
			out = append(out, p)
			continue
		}
		if err == nil {
			p, err = startPlugin(h.sp, spec, h.log)
		}
		if err != nil {
			for _, q := range started {
				q.stop(0)
			}
			var ce *ConfigError
			if errors.As(err, &ce) {
				return nil, ce // it names its own file and line
			}
			return nil, fmt.Errorf("%s: Load: plugin %s (%s): %w", spec.Where, spec.Name, spec.Path, err)
		}
		h.log.Info("plugin started", "plugin", spec.Name, "version", p.man.Version, "stages", stageList(p))
		out, started = append(out, p), append(started, p)
	}
	return out, nil
}

// ConfigError is a plugin's refusal of its configuration file.
type ConfigError struct {
	Path string // the configuration file
	Msg  string // the plugin's message, usually "file:line: key: what is wrong"
}

// Error returns the plugin's message, prefixed with the file when the
// message does not name it already.
func (e *ConfigError) Error() string {
	if strings.HasPrefix(e.Msg, e.Path+":") {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// reconfigure switches a running plugin of keep to spec's changed
// configuration in place, when it can (see plugin.reconfigure); nil and no
// error means start a new process.
func (h *Host) reconfigure(keep []*plugin, spec config.PluginSpec) (*plugin, error) {
	for _, p := range keep {
		if !p.sameBinary(spec) {
			continue
		}
		ok, err := p.reconfigure(spec)
		if ok {
			h.log.Info("plugin reconfigured in place", "plugin", spec.Name, "config", spec.Config)
			return p, nil
		}
		return nil, err
	}
	return nil, nil
}

func find(ps []*plugin, spec config.PluginSpec) *plugin {
	for _, p := range ps {
		if p.same(spec) {
			return p
		}
	}
	return nil
}

func stageList(p *plugin) []int {
	var out []int
	for s := contract.StageConnect; s.Valid(); s = s.Next() {
		if p.hooks(s) {
			out = append(out, int(s))
		}
	}
	return out
}

// Reload moves to the plugin set of specs: it starts new and changed
// plugins, keeps unchanged ones (same name, path, configuration path and
// executable mtime) running, and stops removed ones once their calls in
// flight are done. On any error the old set stays fully in place.
func (h *Host) Reload(specs []config.PluginSpec) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.shut {
		return errors.New("plugin host is shut down")
	}
	old := h.cur.Load()
	ps, err := h.startAll(specs, old.all)
	if err != nil {
		return err
	}
	h.cur.Store(newSnapshot(ps))
	for _, p := range old.all {
		if !contains(ps, p) {
			h.revokeAll(p)
			h.drainPeerLeases(old, p, maxGrace(p))
			p.stop(maxGrace(p))
			h.log.Info("plugin stopped", "plugin", p.spec.Name)
		}
	}
	return nil
}

// revokeAll ends every lease p holds, so that its calls in flight end at
// their next request boundary instead of their idle timeout; it returns
// p's running process and the connections revoked.
func (h *Host) revokeAll(p *plugin) (*instance, []uint64) {
	in := p.inst.Load()
	if in == nil {
		return nil, nil
	}
	ids := h.leases.held(in)
	for _, id := range ids {
		in.post(&transport.Event{Kind: transport.EventRevoke, Conn: contract.Conn{ID: id}})
	}
	return in, ids
}

func contains(ps []*plugin, p *plugin) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// maxGrace is how long a removed plugin's calls in flight may take.
func maxGrace(p *plugin) time.Duration {
	var g time.Duration
	for _, t := range p.stages {
		g = max(g, t.deadline)
	}
	return g
}

// Shutdown stops every plugin. Calls after it see no plugins.
func (h *Host) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.shut {
		return nil
	}
	h.shut = true
	old := h.cur.Swap(newSnapshot(nil))
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for _, p := range old.all {
			wg.Add(1)
			go func() { defer wg.Done(); h.revokeAll(p); p.stop(time.Second) }()
		}
		wg.Wait()
		h.sp.close()
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("plugin shutdown: %w", ctx.Err())
	}
}

// Dropped returns the stage-40/50 notifications dropped so far because a
// plugin's queue was full or the plugin was down, per plugin name.
func (h *Host) Dropped() map[string]uint64 {
	out := map[string]uint64{}
	for _, p := range h.cur.Load().all {
		n := p.dropped.Load()
		if in := p.inst.Load(); in != nil {
			n += in.dropped.Load()
		}
		out[p.spec.Name] = n
	}
	return out
}
