package pluginhost

import (
	"net"

	"golang.org/x/sys/unix"
)

// sentBytes returns the bytes the kernel has sent on c so far, so that the
// host can tell whether a plugin that crashed or ran late had started a
// response.
func sentBytes(c *net.TCPConn) (uint64, bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	var n uint64
	var ok bool
	_ = rc.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err == nil {
			n, ok = info.Bytes_sent, true
		}
	})
	return n, ok
}
