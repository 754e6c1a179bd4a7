package hosttest

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
)

// KeepAliveProbes reports whether the server's end of the client
// connection c (a TCP connection to 127.0.0.1) has a TCP keep-alive timer
// armed, in the kernel's own view: the timer field of /proc/net/tcp is 2.
// It skips the test where /proc/net/tcp cannot be read.
func KeepAliveProbes(t testing.TB, c net.Conn) bool {
	t.Helper()
	local, remote := procAddr(t, c.RemoteAddr()), procAddr(t, c.LocalAddr()) // the server's side
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Skip("no /proc/net/tcp:", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 5 && f[1] == local && f[2] == remote {
			return strings.SplitN(f[5], ":", 2)[0] == "02"
		}
	}
	t.Fatalf("the server's socket %s (peer %s) is not in /proc/net/tcp", local, remote)
	return false
}

// procAddr is a 127.0.0.1 address as /proc/net/tcp writes it.
func procAddr(t testing.TB, a net.Addr) string {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil || !ap.Addr().Is4() {
		t.Fatalf("not an IPv4 address: %v", a)
	}
	b := ap.Addr().As4()
	return fmt.Sprintf("%02X%02X%02X%02X:%04X", b[3], b[2], b[1], b[0], ap.Port())
}
