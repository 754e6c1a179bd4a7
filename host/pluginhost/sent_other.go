//go:build !linux

package pluginhost

import "github.com/capuchin/capuchin/host/stage"

// sentBytes is the relay's count on a TLS connection, unknown otherwise on
// this platform.
func sentBytes(c *stage.Conn) (uint64, bool) {
	if c.Relay != nil {
		return c.Relay.Sent(), true
	}
	return 0, false
}
