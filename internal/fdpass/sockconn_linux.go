package fdpass

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// sockConn is a received client socket as a net.Conn, made with
// os.NewFile: a socket that is already non-blocking (the host's are) is
// then polled by the runtime as net.FileConn's would be, with deadlines,
// and costs two system calls (fcntl, epoll_ctl) where net.FileConn costs
// thirteen (a duplicate, its close, getsockopt, getsockname, getpeername,
// fcntl, epoll_ctl and six setsockopt: TCP_NODELAY, which the host set
// already, keep-alive probes on and their three timings, and off again,
// see FileConn). Its addresses are read when first asked for. ReadFrom
// moves a TCP socket's bytes with splice(2), as net.TCPConn's does.
type sockConn struct {
	f     *os.File
	once  sync.Once
	local net.Addr
	peer  net.Addr
}

// newSockConn wraps fd; a descriptor that cannot be polled (a blocking
// one) goes through FileConn instead.
func newSockConn(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "client")
	if f.SetReadDeadline(time.Time{}) == nil { // polled: deadlines work
		return &sockConn{f: f}, nil
	}
	defer f.Close()
	return FileConn(f)
}

func (c *sockConn) Read(b []byte) (int, error)  { return c.f.Read(b) }
func (c *sockConn) Write(b []byte) (int, error) { return c.f.Write(b) }
func (c *sockConn) Close() error                { return c.f.Close() }

func (c *sockConn) SetDeadline(t time.Time) error      { return c.f.SetDeadline(t) }
func (c *sockConn) SetReadDeadline(t time.Time) error  { return c.f.SetReadDeadline(t) }
func (c *sockConn) SetWriteDeadline(t time.Time) error { return c.f.SetWriteDeadline(t) }

// SyscallConn gives the socket's descriptor to raw reads and controls.
func (c *sockConn) SyscallConn() (syscall.RawConn, error) { return c.f.SyscallConn() }

// CloseWrite shuts the socket's sending side, as net.TCPConn's does.
func (c *sockConn) CloseWrite() error {
	raw, err := c.f.SyscallConn()
	if err != nil {
		return err
	}
	if cerr := raw.Control(func(fd uintptr) { err = syscall.Shutdown(int(fd), syscall.SHUT_WR) }); cerr != nil {
		return cerr
	}
	return os.NewSyscallError("shutdown", err)
}

// ReadFrom copies from r, with splice(2) when r is a TCP connection.
func (c *sockConn) ReadFrom(r io.Reader) (int64, error) { return c.f.ReadFrom(r) }

func (c *sockConn) LocalAddr() net.Addr  { c.once.Do(c.addrs); return c.local }
func (c *sockConn) RemoteAddr() net.Addr { c.once.Do(c.addrs); return c.peer }

// addrs reads the socket's addresses (nil where they cannot be read).
func (c *sockConn) addrs() {
	raw, err := c.f.SyscallConn()
	if err != nil {
		return
	}
	raw.Control(func(fd uintptr) {
		if sa, err := syscall.Getsockname(int(fd)); err == nil {
			c.local = sockAddr(sa)
		}
		if sa, err := syscall.Getpeername(int(fd)); err == nil {
			c.peer = sockAddr(sa)
		}
	})
}

// sockAddr is sa as a net.Addr.
func sockAddr(sa syscall.Sockaddr) net.Addr {
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(sa.Addr[:]).To16(), Port: sa.Port}
	case *syscall.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(sa.Addr[:]), Port: sa.Port}
	case *syscall.SockaddrUnix:
		return &net.UnixAddr{Name: sa.Name, Net: "unix"}
	}
	return nil
}
