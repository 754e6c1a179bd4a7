package rawsock

import (
	"bytes"
	"net"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SendRights sends b and the descriptor fd over the non-blocking Unix
// socket sock with one sendmsg(2) (SCM_RIGHTS). The error is 0, EAGAIN
// when the socket's buffer is full, or another errno.
func SendRights(sock uintptr, b []byte, fd int) syscall.Errno {
	oob := syscall.UnixRights(fd)
	iov := syscall.Iovec{Base: &b[0]}
	iov.SetLen(len(b))
	msg := syscall.Msghdr{Iov: &iov, Iovlen: 1, Control: &oob[0]}
	msg.SetControllen(len(oob))
	_, _, errno := syscall.RawSyscall(syscall.SYS_SENDMSG, sock, uintptr(unsafe.Pointer(&msg)), syscall.MSG_DONTWAIT|syscall.MSG_NOSIGNAL)
	return errno
}

// RecvRights reads one message from the non-blocking Unix socket sock with
// recvmsg(2) into b, and its control data (descriptors received) into oob,
// closing them on exec. It returns the lengths of both; the error is 0,
// EAGAIN when nothing is there yet, or another errno. n is 0 at EOF.
func RecvRights(sock uintptr, b, oob []byte) (n, oobn int, errno syscall.Errno) {
	iov := syscall.Iovec{Base: &b[0]}
	iov.SetLen(len(b))
	msg := syscall.Msghdr{Iov: &iov, Iovlen: 1, Control: &oob[0]}
	msg.SetControllen(len(oob))
	r, _, errno := syscall.RawSyscall(syscall.SYS_RECVMSG, sock, uintptr(unsafe.Pointer(&msg)), syscall.MSG_DONTWAIT|syscall.MSG_CMSG_CLOEXEC)
	return int(r), int(msg.Controllen), errno
}

// Accept takes a connection from the non-blocking listening socket ln with
// accept4(2), non-blocking and closed on exec, and returns its descriptor
// and the peer's address (see Addr). The error is 0, EAGAIN when none is
// waiting, or another errno.
func Accept(ln uintptr) (int, net.Addr, syscall.Errno) {
	var rsa syscall.RawSockaddrAny
	size := uint32(syscall.SizeofSockaddrAny)
	fd, _, errno := syscall.RawSyscall6(syscall.SYS_ACCEPT4, ln, uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&size)),
		syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0, 0)
	if errno != 0 {
		return -1, nil, errno
	}
	return int(fd), Addr(&rsa), 0
}

// LocalAddr is fd's socket's address (getsockname(2)), nil if it cannot be
// read.
func LocalAddr(fd uintptr) net.Addr { return name(syscall.SYS_GETSOCKNAME, fd) }

// PeerAddr is the address of fd's peer (getpeername(2)), nil if it cannot
// be read.
func PeerAddr(fd uintptr) net.Addr { return name(syscall.SYS_GETPEERNAME, fd) }

func name(call, fd uintptr) net.Addr {
	var rsa syscall.RawSockaddrAny
	size := uint32(syscall.SizeofSockaddrAny)
	if _, _, errno := syscall.RawSyscall(call, fd, uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&size))); errno != 0 {
		return nil
	}
	return Addr(&rsa)
}

// Addr is the address in rsa as Go's net package gives it: a *net.TCPAddr
// (IPv4 in 4 bytes, an IPv6 scope as its interface's name) or a
// *net.UnixAddr (an abstract or unnamed one's name begins with '@'); nil
// for another family.
func Addr(rsa *syscall.RawSockaddrAny) net.Addr {
	switch rsa.Addr.Family {
	case syscall.AF_INET:
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return &net.TCPAddr{IP: net.IP(append([]byte(nil), sa.Addr[:]...)), Port: port(sa.Port)}
	case syscall.AF_INET6:
		sa := (*syscall.RawSockaddrInet6)(unsafe.Pointer(rsa))
		return &net.TCPAddr{IP: net.IP(append([]byte(nil), sa.Addr[:]...)), Port: port(sa.Port), Zone: zone(sa.Scope_id)}
	case syscall.AF_UNIX:
		sa := (*syscall.RawSockaddrUnix)(unsafe.Pointer(rsa))
		path := unsafe.Slice((*byte)(unsafe.Pointer(&sa.Path[0])), len(sa.Path))
		at := path[0] == 0
		if at {
			path = path[1:]
		}
		if i := bytes.IndexByte(path, 0); i >= 0 {
			path = path[:i]
		}
		if at {
			return &net.UnixAddr{Name: "@" + string(path), Net: "unix"}
		}
		return &net.UnixAddr{Name: string(path), Net: "unix"}
	}
	return nil
}

// port is a sockaddr's port, which is in network byte order.
func port(p uint16) int {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return int(b[0])<<8 | int(b[1])
}

// zone is the name of an IPv6 scope's interface, or its number.
func zone(id uint32) string {
	if id == 0 {
		return ""
	}
	if ifi, err := net.InterfaceByIndex(int(id)); err == nil {
		return ifi.Name
	}
	return strconv.FormatUint(uint64(id), 10)
}

// BytesSent is the count of bytes fd's TCP socket has sent (TCP_INFO's
// tcpi_bytes_sent); false when it cannot be read.
func BytesSent(fd uintptr) (uint64, bool) {
	var info unix.TCPInfo
	size := uint32(unsafe.Sizeof(info))
	_, _, errno := syscall.RawSyscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_INFO,
		uintptr(unsafe.Pointer(&info)), uintptr(unsafe.Pointer(&size)), 0)
	if errno != 0 || uintptr(size) < unsafe.Offsetof(info.Bytes_sent)+8 {
		return 0, false
	}
	return info.Bytes_sent, true
}
