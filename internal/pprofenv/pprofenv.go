// Package pprofenv serves Go's pprof profiles on an address named by an
// environment variable, for profiling the host and plugins under load. It is
// off unless the variable is set: CAPUCHIN_PPROF for the host,
// CAPUCHIN_PPROF_<PLUGIN NAME> (upper case, e.g. CAPUCHIN_PPROF_PROXY_REVERSE)
// for a plugin built with the Go SDK. The address should be a loopback one,
// such as 127.0.0.1:6060: the profiles show the process's internals.
package pprofenv

import (
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// HostVar is the host's variable.
const HostVar = "CAPUCHIN_PPROF"

// PluginVar is the variable of the plugin named name.
func PluginVar(name string) string {
	return HostVar + "_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(name))
}

// Start serves the profiles on the address in the environment variable env
// when it is set, until the process exits, and returns the address it
// listens on ("" when off or when it cannot listen: the error is logged).
func Start(env string, log hclog.Logger) string {
	addr := os.Getenv(env)
	if addr == "" {
		return ""
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Error("pprof: cannot listen", "variable", env, "address", addr, "error", err)
		return ""
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Info("pprof: serving profiles", "address", ln.Addr().String())
	go srv.Serve(ln) // lives as long as the process
	return ln.Addr().String()
}
