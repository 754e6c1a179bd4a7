package transport

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pb "github.com/capuchin/capuchin/proto/capuchin/v1"
)

// ProtocolVersion is the version of the contract in proto/capuchin/v1.
const ProtocolVersion = 1

// PluginName is the single plugin a plugin process serves.
const PluginName = "stage"

// Environment variables naming the extra descriptors the host gives a plugin.
const (
	EnvFDPass   = "CAPUCHIN_FDPASS_FD"   // SOCK_SEQPACKET end for SCM_RIGHTS
	EnvWatchdog = "CAPUCHIN_WATCHDOG_FD" // pipe read end: EOF means the host is gone
	EnvCalls    = "CAPUCHIN_CALLS_FD"    // SOCK_STREAM end for framed calls
	// EnvPeerSocket names the path where a stage-20 plugin that declares
	// peer_calls listens (a Unix stream socket) for lease holders' calls.
	EnvPeerSocket = "CAPUCHIN_PEER_SOCKET"
)

// Handshake returns the go-plugin handshake shared by host and plugins.
func Handshake() plugin.HandshakeConfig {
	return plugin.HandshakeConfig{
		ProtocolVersion:  ProtocolVersion,
		MagicCookieKey:   "CAPUCHIN_PLUGIN",
		MagicCookieValue: "6f1c2b9e-capuchin-stage-plugin",
	}
}

// VersionedPlugins returns the plugin set per protocol version. impl is the
// plugin's implementation; the host passes nil.
func VersionedPlugins(impl Handler) map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		ProtocolVersion: {PluginName: &GRPCPlugin{Impl: impl}},
	}
}

// GRPCPlugin is the go-plugin glue: GRPCServer on the plugin side,
// GRPCClient on the host side.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Handler
}

// GRPCServer registers the plugin's service.
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterPluginServer(s, &server{h: p.Impl})
	return nil
}

// GRPCClient returns a *Client for the host.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return &Client{pb: pb.NewPluginClient(cc)}, nil
}
