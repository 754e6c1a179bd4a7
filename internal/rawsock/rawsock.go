// Package rawsock reads and writes a non-blocking socket with recv(2) and
// send(2), for the callbacks of syscall.RawConn's Read and Write on the
// request path. recv and send cost the kernel less than read(2) and
// write(2) (no file-layer checks: position lock, access hooks). A
// non-blocking call also needs none of the scheduler's bookkeeping around
// a call that may block (syscall.Syscall's, which os.File and net.Conn
// use): under it Go's monitor hands the processor to another thread when
// a call runs long, and a loopback write, which runs the receiver's side
// too, does; at one connection the proxy made 1.6 futex calls and twice
// the context switches per request for it.
// A descriptor that is not a socket is read and written with read(2) and
// write(2).
package rawsock

import (
	"syscall"
	"unsafe"
)

// Recv reads up to len(b) bytes from fd with recv(2) and flags (a
// non-socket with read(2), flags 0 only); b must not be empty. The error
// is 0, EAGAIN when nothing is there yet, or another errno; n is 0 at EOF.
func Recv(fd uintptr, b []byte, flags int) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(flags), 0, 0)
	if errno == syscall.ENOTSOCK && flags == 0 {
		n, _, errno = syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	}
	return int(n), errno
}

// Send writes up to len(b) bytes of b to fd with send(2) (a non-socket
// with write(2)); b must not be empty. The error is 0, EAGAIN when the
// socket's buffer is full, or another errno.
func Send(fd uintptr, b []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0, 0, 0)
	if errno == syscall.ENOTSOCK {
		n, _, errno = syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	}
	return int(n), errno
}
