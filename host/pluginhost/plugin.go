package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/host/config"
	"github.com/capuchin/capuchin/internal/claim"
	"github.com/capuchin/capuchin/internal/contract"
	"github.com/capuchin/capuchin/internal/fdpass"
	"github.com/capuchin/capuchin/internal/transport"
)

// Restart backoff after a crash.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 10 * time.Second
)

// terms are a plugin's declared terms for one stage.
type terms struct {
	hooked   bool
	deadline time.Duration
	failOpen bool
}

// plugin is one configured plugin: its manifest as read at start-up and
// the process currently serving it, replaced by the supervisor on a crash.
type plugin struct {
	spec   config.PluginSpec
	mtime  time.Time // of the executable
	conf   string    // identity of the config file (size and mtime) at start
	log    hclog.Logger
	man    transport.Manifest
	stages [contract.NumStages]terms    // index: contract.Stage.Index
	filter atomic.Pointer[claim.Filter] // stage 30; replaced by reconfigure
	hf     atomic.Pointer[hookFilters]  // stages 10 and 20; replaced by reconfigure

	inst     atomic.Pointer[instance] // nil while down
	inflight atomic.Int64
	dropped  atomic.Uint64 // notifications dropped while down
	restarts atomic.Uint64 // processes started after a crash
	stopping chan struct{}
	done     chan struct{}
}

// startPlugin launches spec's process and checks its manifest.
func startPlugin(sp *spawner, spec config.PluginSpec, log hclog.Logger) (*plugin, error) {
	fi, err := os.Stat(spec.Path)
	if err != nil {
		return nil, fmt.Errorf("plugin executable: %w", err)
	}
	p := &plugin{spec: spec, mtime: fi.ModTime(), conf: fileStamp(spec.Config), log: log.Named(spec.Name),
		stopping: make(chan struct{}), done: make(chan struct{})}
	in, man, err := launch(sp, spec, p.log)
	if err != nil {
		return nil, err
	}
	if err := p.adopt(man); err != nil {
		in.stop()
		return nil, err
	}
	p.inst.Store(in)
	go p.supervise(sp, in)
	return p, nil
}

// adopt validates the manifest and compiles its claim filter.
func (p *plugin) adopt(m transport.Manifest) error {
	p.man = m
	for _, s := range m.Stages {
		if !s.Stage.Valid() {
			return fmt.Errorf("manifest declares unknown stage %d", s.Stage)
		}
		*p.termsAt(s.Stage) = terms{hooked: true, deadline: s.DeadlineAt(s.Stage), failOpen: s.Policy == contract.FailOpen}
	}
	if err := p.adoptFilters(m); err != nil {
		return err
	}
	if !p.hooks(contract.StageHandle) {
		return nil
	}
	if !fdpass.Supported {
		return fmt.Errorf("plugin hooks stage 30, but this platform cannot hand connections over (no descriptor passing)")
	}
	f, err := claim.Compile(m.Claims.Paths, m.Claims.Hosts, m.Claims.Methods)
	p.filter.Store(f)
	return err
}

// hookFilters are a plugin's stage-10 and stage-20 filters, as declared
// and compiled; nil fields take everything.
type hookFilters struct {
	req     *claim.Filter
	reqSpec *contract.Claims // sent with leases (Lease.GiveBack)
	conn    *contract.Networks
	peer    bool // takes stage-20 calls from a lease holder (Lease.Peers)
}

// compileHookFilters compiles the stage-10 and stage-20 filters of m.
func compileHookFilters(m transport.Manifest) (*hookFilters, error) {
	hf := &hookFilters{reqSpec: m.RequestFilter, conn: m.ConnectFilter, peer: m.PeerCalls}
	if c := m.RequestFilter; c == nil || len(c.Paths)+len(c.Hosts)+len(c.Methods) == 0 {
		hf.reqSpec = nil // a filter that takes every request is none (no lease)
		return hf, nil
	}
	f, err := claim.Compile(m.RequestFilter.Paths, m.RequestFilter.Hosts, m.RequestFilter.Methods)
	if err != nil {
		return nil, fmt.Errorf("stage-20 filter: %w", err)
	}
	hf.req = f
	return hf, nil
}

// adoptFilters compiles the stage-10 and stage-20 filters.
func (p *plugin) adoptFilters(m transport.Manifest) error {
	hf, err := compileHookFilters(m)
	if err != nil {
		return err
	}
	p.hf.Store(hf)
	return nil
}

// wantsConn reports whether p's stage-10 hook is to see a client at addr.
func (p *plugin) wantsConn(addr netip.Addr) bool {
	n := p.hf.Load().conn
	return n == nil || n.Contains(addr)
}

// wantsRequest reports whether p's stage-20 hook is to see req.
func (p *plugin) wantsRequest(req *http1.Request) bool {
	f := p.hf.Load().req
	return f == nil || f.Match(req)
}

// termsAt returns p's terms for a valid stage s.
func (p *plugin) termsAt(s contract.Stage) *terms { return &p.stages[s.Index()] }

func (p *plugin) hooks(s contract.Stage) bool { return p.termsAt(s).hooked }

// same reports whether spec would start the very same plugin: same
// executable and same configuration file, both unchanged.
func (p *plugin) same(spec config.PluginSpec) bool {
	return p.sameBinary(spec) && fileStamp(spec.Config) == p.conf
}

// sameBinary reports whether spec names p's unchanged executable and the
// same configuration path (whose content may have changed).
func (p *plugin) sameBinary(spec config.PluginSpec) bool {
	if spec.Name != p.spec.Name || spec.Path != p.spec.Path || spec.Config != p.spec.Config {
		return false
	}
	fi, err := os.Stat(spec.Path)
	return err == nil && fi.ModTime().Equal(p.mtime)
}

// reconfigure hands spec's changed configuration file to p's running
// process, if p declared it can switch in place, and adopts the claims it
// then describes. It returns false when p must be restarted instead (not
// reconfigurable, down, or now declaring other stages), and the plugin's
// error when it refuses the file (it then keeps its running configuration).
// The caller holds the Host's reload lock.
func (p *plugin) reconfigure(spec config.PluginSpec) (bool, error) {
	in := p.inst.Load()
	if !p.man.Reconfigurable || in == nil || !p.sameBinary(spec) {
		return false, nil
	}
	stamp := fileStamp(spec.Config)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := in.tc.Configure(ctx, spec.Config); err != nil {
		var ce *transport.ConfigError
		if errors.As(err, &ce) {
			return false, &ConfigError{Path: spec.Config, Msg: ce.Msg}
		}
		return false, nil // the process is failing: start a new one
	}
	man, err := in.tc.Describe(ctx)
	if err != nil || !slices.Equal(man.Stages, p.man.Stages) {
		return false, nil
	}
	f, err := claim.Compile(man.Claims.Paths, man.Claims.Hosts, man.Claims.Methods)
	if err != nil {
		return false, err
	}
	hf, err := compileHookFilters(man)
	if err != nil {
		return false, err
	}
	p.filter.Store(f)
	p.hf.Store(hf)
	p.conf = stamp
	return true, nil
}

// fileStamp identifies a file's version by size and modification time;
// "" when it does not exist.
func fileStamp(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return fmt.Sprint(fi.Size(), fi.ModTime().UnixNano())
}

// supervise restarts the process with exponential backoff whenever it dies,
// until stop. It owns every instance it starts.
func (p *plugin) supervise(sp *spawner, in *instance) {
	defer close(p.done)
	backoff := minBackoff
	for {
		select {
		case <-in.dead:
		case <-p.stopping:
			p.inst.Store(nil)
			in.stop()
			p.dropped.Add(in.lost())
			return
		}
		p.inst.Store(nil)
		in.kill()
		p.dropped.Add(in.lost())
		if time.Since(in.started) > maxBackoff {
			backoff = minBackoff
		}
		p.log.Error("plugin exited; restarting", "after", backoff)
		if in = p.restart(sp, &backoff); in == nil {
			return
		}
		p.inst.Store(in)
		p.restarts.Add(1)
		p.log.Info("plugin restarted")
	}
}

// restart starts a new instance, retrying with backoff; nil means stop.
func (p *plugin) restart(sp *spawner, backoff *time.Duration) *instance {
	t := time.NewTimer(*backoff)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-p.stopping:
			return nil
		}
		*backoff = min(*backoff*2, maxBackoff)
		in, man, err := launch(sp, p.spec, p.log)
		if err == nil && len(man.Stages) != len(p.man.Stages) {
			p.log.Warn("restarted plugin declares other stages; keeping those read at start-up (reload to change)")
		}
		if err == nil {
			return in
		}
		p.log.Error("plugin restart failed", "error", err, "retry_in", *backoff)
		t.Reset(*backoff)
	}
}

// stop ends supervision and the process, waiting at most grace for calls
// in flight.
func (p *plugin) stop(grace time.Duration) {
	deadline := time.Now().Add(grace)
	for p.inflight.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	close(p.stopping)
	<-p.done
}
