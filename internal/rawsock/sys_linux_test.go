package rawsock

import (
	"net"
	"path/filepath"
	"syscall"
	"testing"
)

// fdOf is c's descriptor (valid while c is open).
func fdOf(t *testing.T, c syscall.Conn) uintptr {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd uintptr
	raw.Control(func(d uintptr) { fd = d })
	return fd
}

// The addresses read raw are those Go's net package gives: IPv4 in 4
// bytes, a Unix socket's path, and '@' for an unnamed one (as
// syscall.Getsockname names it).
func TestAddrs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fd := fdOf(t, c.(*net.TCPConn))
	local, peer := LocalAddr(fd).(*net.TCPAddr), PeerAddr(fd).(*net.TCPAddr)
	if len(local.IP) != 4 || local.String() != c.LocalAddr().String() || peer.String() != ln.Addr().String() {
		t.Fatalf("TCP: %v (%d bytes), %v; want %v, %v", local, len(local.IP), peer, c.LocalAddr(), ln.Addr())
	}

	path := filepath.Join(t.TempDir(), "s")
	ul, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	uc, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	ufd := fdOf(t, uc.(*net.UnixConn))
	if got := PeerAddr(ufd); got.String() != path || got.Network() != "unix" {
		t.Fatalf("unix peer %v (%s), want %s", got, got.Network(), path)
	}
	if got := LocalAddr(ufd); got.String() != "@" {
		t.Fatalf("unnamed unix socket %q, want @", got)
	}
	if PeerAddr(^uintptr(0)>>1) != nil {
		t.Fatal("an address for a bad descriptor")
	}
}
