package upstream

import (
	"net"
	"syscall"
	"unsafe"
)

// idleCheck tells whether anything arrived on an idle pooled connection
// since its last answer ended: stray bytes (a body sent after a HEAD answer,
// a late second answer, a 408 before a close) or EOF. Such a connection is
// out of step with its requests and must never carry another one.
//
// It asks the kernel with one non-blocking MSG_PEEK recv, made only when a
// pooled connection is handed out again, so a request on a new connection
// pays nothing. The closure is built once per connection: no allocation per
// request.
type idleCheck struct {
	raw   syscall.RawConn
	fn    func(fd uintptr)
	dirty bool
}

// init prepares the check for c; a connection that is not a socket is
// never reported stray.
func (k *idleCheck) init(c net.Conn) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	k.raw = raw
	k.fn = func(fd uintptr) {
		var b [1]byte
		// Non-blocking, so the raw form (no scheduler hand-off) is right.
		_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		// EAGAIN: nothing there. Bytes (n > 0), EOF (n == 0) or an error
		// such as ECONNRESET: the connection is not reusable.
		k.dirty = errno != syscall.EAGAIN
	}
}

// stray reports whether the connection has bytes or EOF waiting (or cannot
// be checked).
func (k *idleCheck) stray() bool {
	if k.raw == nil {
		return false
	}
	// Control, not Read: the call does not block, and a read deadline
	// left over from the last answer must not count.
	if err := k.raw.Control(k.fn); err != nil {
		return true
	}
	return k.dirty
}
