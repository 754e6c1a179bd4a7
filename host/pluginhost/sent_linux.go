package pluginhost

import (
	"github.com/capuchin/capuchin/host/stage"
	"github.com/capuchin/capuchin/internal/rawsock"
)

// sentBytes returns the bytes sent to c's client so far, so that the host
// can tell whether a plugin that crashed or ran late had started a
// response: the kernel's count for a plain connection, the relay's for a
// TLS one.
func sentBytes(c *stage.Conn) (uint64, bool) {
	if c.Relay != nil {
		return c.Relay.Sent(), true
	}
	if c.TCP == nil {
		return 0, false
	}
	rc, err := c.TCP.SyscallConn()
	if err != nil {
		return 0, false
	}
	var n uint64
	var ok bool
	_ = rc.Control(func(fd uintptr) { n, ok = rawsock.BytesSent(fd) })
	return n, ok
}
