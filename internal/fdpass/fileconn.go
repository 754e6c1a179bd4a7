package fdpass

import (
	"net"
	"os"
)

// FileConn wraps a socket's descriptor (a duplicate is made; f stays the
// caller's) as net.FileConn does, but leaves a TCP socket as the host's
// listener made it: net.FileConn turns TCP keep-alive probes on (Go's
// default for dialled and accepted sockets), and the option belongs to
// the socket, so a plugin's or a re-taken copy would turn them on for the
// client's connection the host serves without them (nginx's and
// HAProxy's default).
func FileConn(f *os.File) (net.Conn, error) {
	c, err := net.FileConn(f)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		if err := tc.SetKeepAlive(false); err != nil {
			tc.Close()
			return nil, err
		}
	}
	return c, nil
}
