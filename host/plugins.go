package main

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/capuchin/capuchin/host/config"
	"github.com/capuchin/capuchin/host/pluginhost"
)

// startPlugins starts the plugins of plugins.load, in order. Any failure
// stops start-up.
func startPlugins(cfg *config.Config, log hclog.Logger) (*pluginhost.Host, error) {
	return pluginhost.Start(cfg.Plugins.Load, log.Named("plugins"))
}

// reloadPlugins switches to the plugin set of cfg; on error the running set
// stays.
func reloadPlugins(h *pluginhost.Host, cfg *config.Config) error {
	return h.Reload(cfg.Plugins.Load)
}

// stopPlugins stops every plugin, giving each a moment to finish.
func stopPlugins(h *pluginhost.Host, log hclog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		log.Warn("stopping plugins", "error", err)
	}
}
