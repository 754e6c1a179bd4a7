// Command wrongversion is a plugin that speaks protocol version 99 only.
package main

import (
	"github.com/hashicorp/go-plugin"

	"github.com/capuchin/capuchin/internal/transport"
)

func main() {
	hs := transport.Handshake()
	hs.ProtocolVersion = 99
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: hs,
		VersionedPlugins: map[int]plugin.PluginSet{
			99: {transport.PluginName: &transport.GRPCPlugin{}},
		},
		GRPCServer: plugin.DefaultGRPCServer,
	})
}
