//go:build !linux

package pluginhost

import "net"

// sentBytes is unknown on this platform.
func sentBytes(*net.TCPConn) (uint64, bool) { return 0, false }
