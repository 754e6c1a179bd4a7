//go:build unix

package rawsock

import "syscall"

// Shutdown shuts fd's socket down (how: syscall.SHUT_RD, SHUT_WR or
// SHUT_RDWR).
func Shutdown(fd uintptr, how int) syscall.Errno {
	_, _, errno := syscall.RawSyscall(syscall.SYS_SHUTDOWN, fd, uintptr(how), 0)
	return errno
}

// Close closes fd, a socket with no SO_LINGER time set (whose close does
// not wait).
func Close(fd uintptr) syscall.Errno {
	_, _, errno := syscall.RawSyscall(syscall.SYS_CLOSE, fd, 0, 0)
	return errno
}

// Dup duplicates fd, closed on exec (fcntl(2) F_DUPFD_CLOEXEC).
func Dup(fd uintptr) (int, syscall.Errno) {
	nfd, _, errno := syscall.RawSyscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0)
	return int(nfd), errno
}
