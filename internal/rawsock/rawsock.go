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
//
// The other calls a connection meets on its way in and out (accept4,
// sendmsg and recvmsg of a descriptor handed to a plugin, shutdown,
// close, fcntl, the TCP_INFO read) are made the same way: none of them
// can block, and the first call made under that bookkeeping after the
// process sat idle wakes Go's monitor thread, which then polls every 20
// µs for a while and hands the processor to another thread when it sees
// one call span two of its polls. With a new connection per request that
// cost host and plugin 0.19 futex and 0.6 nanosleep calls per request.
package rawsock

import (
	"io"
	"syscall"
	"unsafe"
)

// Recv reads up to len(b) bytes from fd with recv(2) and flags (a
// non-socket with read(2), flags 0 only); b must not be empty. The error
// is 0, EAGAIN when nothing is there yet, or another errno; n is 0 at EOF.
// It says MSG_DONTWAIT, so that a socket that is not non-blocking after
// all (a fault) cannot block the thread and its processor.
func Recv(fd uintptr, b []byte, flags int) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(flags|syscall.MSG_DONTWAIT), 0, 0)
	if errno == syscall.ENOTSOCK && flags == 0 {
		n, _, errno = syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	}
	return int(n), errno
}

// Send writes up to len(b) bytes of b to fd with send(2) (a non-socket
// with write(2)); b must not be empty. The error is 0, EAGAIN when the
// socket's buffer is full, or another errno. It says MSG_DONTWAIT, as
// Recv does.
func Send(fd uintptr, b []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), syscall.MSG_DONTWAIT, 0, 0)
	if errno == syscall.ENOTSOCK {
		n, _, errno = syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	}
	return int(n), errno
}

// IO reads and writes one non-blocking socket with Recv and Send inside
// the runtime poller's waits (its syscall.RawConn), which wait while the
// socket is not ready and honour its deadlines. Its callbacks are made
// once (Init): a read or write allocates nothing. Reads come from one
// goroutine at a time, and so do writes.
type IO struct {
	rc       syscall.RawConn
	rb, wb   []byte
	rn, wn   int
	rerr     syscall.Errno
	werr     syscall.Errno
	rfn, wfn func(fd uintptr) bool
}

// Init makes x read and write the socket rc reaches.
func (x *IO) Init(rc syscall.RawConn) {
	x.rc, x.rfn, x.wfn = rc, x.read, x.write
}

// Ready reports whether Init was called.
func (x *IO) Ready() bool { return x.rc != nil }

// Read reads what the socket holds into b, waiting until it holds bytes.
// Its error is the RawConn's (a deadline that passed, a closed socket),
// recv's errno (a syscall.Errno), or io.EOF.
func (x *IO) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	x.rb, x.rn, x.rerr = b, 0, 0
	err := x.rc.Read(x.rfn)
	x.rb = nil
	return x.result(err)
}

// ReadNow is Read without its wait: try calls the raw read once on the
// descriptor if it can (fdpass's sockets do before they join the poller)
// and reports whether it was done. done is false when try did not call it
// or it found nothing; Read then waits.
func (x *IO) ReadNow(b []byte, try func(fn func(fd uintptr) bool) (bool, error)) (n int, done bool, err error) {
	if len(b) == 0 {
		return 0, false, nil
	}
	x.rb, x.rn, x.rerr = b, 0, 0
	done, err = try(x.rfn)
	x.rb = nil
	if !done {
		return 0, false, nil
	}
	n, err = x.result(err)
	return n, true, err
}

// result is a read's outcome, from the RawConn's error and the recv.
func (x *IO) result(err error) (int, error) {
	switch {
	case err != nil:
		return 0, err
	case x.rerr != 0:
		return 0, x.rerr
	case x.rn == 0:
		return 0, io.EOF
	}
	return x.rn, nil
}

func (x *IO) read(fd uintptr) bool {
	for {
		n, e := Recv(fd, x.rb, 0)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait in the poller
		case 0:
			x.rn = n
		default:
			x.rerr = e
		}
		return true
	}
}

// Write writes all of b, waiting while the socket's buffer is full. Its
// error is the RawConn's or send's errno (a syscall.Errno).
func (x *IO) Write(b []byte) (int, error) {
	x.wb, x.wn, x.werr = b, 0, 0
	err := x.rc.Write(x.wfn)
	x.wb = nil
	if err == nil && x.werr != 0 {
		err = x.werr
	}
	return x.wn, err
}

func (x *IO) write(fd uintptr) bool {
	for x.wn < len(x.wb) {
		n, e := Send(fd, x.wb[x.wn:])
		switch e {
		case 0:
			x.wn += n
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // wait in the poller, then write the rest
		default:
			x.werr = e
			return true
		}
	}
	return true
}
