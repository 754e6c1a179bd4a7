package main

import (
	"context"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/capuchin/capuchin/host/config"
	"github.com/capuchin/capuchin/host/metrics"
	"github.com/capuchin/capuchin/host/pluginhost"
	"github.com/capuchin/capuchin/host/server"
)

// serve runs the server with the started plugins until SIGTERM or SIGINT,
// reloading on SIGHUP and having the plugins reopen their files on SIGUSR1.
func serve(dir string, cfg *config.Config, plugins *pluginhost.Host, log hclog.Logger) error {
	if cfg.Server.Workers > 0 {
		runtime.GOMAXPROCS(cfg.Server.Workers)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1)
	defer signal.Stop(sigs)

	srv, err := newServer(cfg, plugins, log)
	if err == nil {
		err = srv.Start()
	}
	if err != nil {
		stopPlugins(plugins, log)
		return err
	}
	pidFile := cfg.Server.PidFile
	if err := writePid(pidFile); err != nil {
		log.Error("cannot write the pid file", "path", pidFile, "error", err)
	}
	defer removePid(pidFile, log)
	log.Info("started", "version", server.Version, "config", cfg.Dir, "pid", os.Getpid())

	for sig := range sigs {
		switch sig {
		case syscall.SIGHUP:
			cfg = reload(dir, cfg, srv, plugins, log)
			continue
		case syscall.SIGUSR1:
			reopen(plugins, log)
			continue
		}
		log.Info("shutting down", "signal", sig.String(), "grace", cfg.Server.ShutdownTimeout)
		ctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
		err := srv.Shutdown(ctx)
		cancel()
		stopPlugins(plugins, log)
		if err != nil {
			log.Warn("shutdown", "error", err)
		}
		log.Info("stopped")
		return nil
	}
	return nil
}

// newServer prepares the server with its metrics exporter (the host's and
// the plugins' figures, answered at MetricsURL).
func newServer(cfg *config.Config, plugins *pluginhost.Host, log hclog.Logger) (*server.Server, error) {
	srv := server.New(cfg, plugins, log.Named("server"))
	exp, err := metrics.New(plugins, log.Named("metrics"), srv.Collector(), plugins.Collector())
	if err != nil {
		return nil, err
	}
	srv.SetExporter(exp)
	return srv, nil
}

// reload re-reads the configuration; on any error it keeps the old one.
func reload(dir string, old *config.Config, srv *server.Server, plugins *pluginhost.Host, log hclog.Logger) *config.Config {
	cfg, err := config.Load(dir)
	if err != nil {
		log.Error("reload failed, keeping the running configuration", "error", err)
		return old
	}
	if err := reloadPlugins(plugins, cfg); err != nil {
		log.Error("reload failed, keeping the running configuration", "error", err)
		return old
	}
	if err := srv.Reload(cfg); err != nil {
		log.Error("reload failed, keeping the running configuration", "error", err)
		return old
	}
	log.Info("configuration reloaded", "config", cfg.Dir)
	return cfg
}

// reopen asks every plugin to reopen the files it writes (SIGUSR1, as
// nginx -s reopen: log rotation).
func reopen(plugins *pluginhost.Host, log hclog.Logger) {
	for name, err := range plugins.Reopen(context.Background(), 5*time.Second) {
		log.Error("reopen failed", "plugin", name, "error", err)
	}
	log.Info("plugins reopened their files")
}

func writePid(path string) error {
	if path == "" {
		return nil
	}
	return os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
}

func removePid(path string, log hclog.Logger) {
	if path == "" {
		return
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		log.Warn("cannot remove the pid file", "path", path, "error", err)
	}
}
