//go:build !linux

package fdpass

import (
	"errors"
	"net"
	"os"
	"runtime"
	"syscall"
	"time"
)

// Supported reports whether this platform can pass descriptors.
const Supported = false

var errUnsupported = errors.New("fdpass: descriptor passing is not implemented on " + runtime.GOOS)

// Sender is unavailable on this platform.
type Sender struct{}

// Pair fails on this platform.
func Pair() (*Sender, *os.File, error) { return nil, nil, errUnsupported }

// Send fails on this platform.
func (s *Sender) Send(uint64, syscall.Conn, time.Duration) error { return errUnsupported }

// Close does nothing.
func (s *Sender) Close() error { return nil }

// Receiver is unavailable on this platform.
type Receiver struct{}

// NewReceiver fails on this platform.
func NewReceiver(f *os.File) (*Receiver, error) { f.Close(); return nil, errUnsupported }

// Run fails at once.
func (r *Receiver) Run() error { return errUnsupported }

// Wait fails at once.
func (r *Receiver) Wait(uint64, time.Duration) (net.Conn, error) { return nil, errUnsupported }

// Drop does nothing.
func (r *Receiver) Drop(uint64) {}

// Close does nothing.
func (r *Receiver) Close() error { return nil }

// Conn wraps the socket descriptor fd, which it then owns (even when it
// fails), with FileConn.
func Conn(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "client")
	defer f.Close()
	return FileConn(f)
}

// Shutdown does nothing here: no descriptor is ever passed.
func Shutdown(conn syscall.Conn) {}

// Listen returns ln: its connections are net.TCPConns here.
func Listen(ln *net.TCPListener) (net.Listener, error) { return ln, nil }
