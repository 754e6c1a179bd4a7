package main

import (
	"github.com/hashicorp/go-hclog"

	"github.com/capuchin/capuchin/host/config"
	"github.com/capuchin/capuchin/host/stage"
)

// startPlugins starts the plugins of plugins.load. (Until the plugin host
// lands, no plugin runs and every stage continues.)
func startPlugins(cfg *config.Config, log hclog.Logger) (stage.Pipeline, error) {
	return stage.Nop{}, nil
}

func reloadPlugins(p stage.Pipeline, cfg *config.Config) error { return nil }

func stopPlugins(p stage.Pipeline, log hclog.Logger) {}
