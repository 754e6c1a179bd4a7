package main

import "golang.org/x/sys/unix"

// The tests' handles on a loop: where it listens, and how it is stopped.

// port is the port the loop listens on.
func (l *loop) port() int {
	sa, _ := unix.Getsockname(l.lfd)
	if in, ok := sa.(*unix.SockaddrInet4); ok {
		return in.Port
	}
	return 0
}

// stop ends run (from another goroutine).
func (l *loop) stop() { _, _ = unix.Write(l.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0}) }
