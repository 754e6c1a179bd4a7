package static

import (
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rootFlags open a document root only as a starting point for lookups.
const rootFlags = unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC

// resolveFlags keep a lookup inside its starting directory and refuse every
// symbolic link on the way, in the kernel and in one system call.
const resolveFlags = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// openBeneath opens rel below the directory dirfd without following any
// symbolic link: openat2(2) where the kernel has it (Linux 5.6), otherwise
// a walk with O_NOFOLLOW.
func openBeneath(dirfd int, rel string) (int, error) {
	how := unix.OpenHow{Flags: uint64(openFlags | unix.O_NOFOLLOW), Resolve: resolveFlags}
	for {
		fd, err := unix.Openat2(dirfd, rel, &how)
		switch err {
		case nil:
			return fd, nil
		case unix.EINTR, unix.EAGAIN:
			continue
		case unix.ENOSYS, unix.EPERM: // no openat2, or a seccomp filter refusing it
			return walkBeneath(dirfd, rel)
		}
		return -1, err
	}
}

// openNoLinks opens rel below root without following links below root. The
// first try resolves root/rel in one openat2 call refusing every link; as
// rel has no ".." segments, nothing outside root can be reached. ELOOP may
// then only mean that root's own path has a link, so the answer comes from
// opening root first (which follows links) and rel below it.
func openNoLinks(root, rel string) (int, error) {
	how := unix.OpenHow{Flags: uint64(openFlags | unix.O_NOFOLLOW), Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
	for {
		fd, err := openat2Joined(root, rel, &how)
		switch err {
		case nil:
			return fd, nil
		case unix.EINTR, unix.EAGAIN:
			continue
		case unix.ELOOP, unix.ENOSYS, unix.EPERM:
			return openViaRoot(root, rel)
		}
		return -1, err
	}
}

// openFollow opens root/rel following links (SymLink on).
func openFollow(root, rel string) (int, error) {
	for {
		fd, err := openatJoined(root, rel, openFlags)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// pathMax bounds the root/rel paths built on the stack; longer ones go
// through the allocating x/sys wrappers.
const pathMax = 512

// openat2Joined is openat2(AT_FDCWD, root/rel, how). The path is built on
// the stack: unlike the x/sys wrapper, the call costs no allocation.
func openat2Joined(root, rel string, how *unix.OpenHow) (int, error) {
	var buf [pathMax]byte
	if !joinInto(&buf, root, rel) {
		return unix.Openat2(unix.AT_FDCWD, joinRoot(root, rel), how)
	}
	cwd := unix.AT_FDCWD
	r, _, e := unix.Syscall6(unix.SYS_OPENAT2, uintptr(cwd), uintptr(unsafe.Pointer(&buf[0])),
		uintptr(unsafe.Pointer(how)), unix.SizeofOpenHow, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// openatJoined is openat(AT_FDCWD, root/rel, flags), without allocating.
func openatJoined(root, rel string, flags int) (int, error) {
	var buf [pathMax]byte
	if !joinInto(&buf, root, rel) {
		return unix.Openat(unix.AT_FDCWD, joinRoot(root, rel), flags, 0)
	}
	cwd := unix.AT_FDCWD
	r, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(cwd), uintptr(unsafe.Pointer(&buf[0])),
		uintptr(flags), 0, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// joinInto writes root/rel, joined as joinRoot joins them, and a NUL into
// buf. It reports false when the path does not fit or root holds a NUL.
func joinInto(buf *[pathMax]byte, root, rel string) bool {
	if len(root)+len(rel)+2 > len(buf) || strings.IndexByte(root, 0) >= 0 {
		return false
	}
	n := copy(buf[:], root)
	if rel != "." {
		if n == 0 || buf[n-1] != '/' {
			buf[n] = '/'
			n++
		}
		n += copy(buf[n:], rel)
	}
	buf[n] = 0
	return true
}
