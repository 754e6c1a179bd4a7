package static

import (
	"strings"

	"golang.org/x/sys/unix"
)

// openFlags open a file for reading. O_NONBLOCK keeps a FIFO from blocking
// the open; it does not change reads of regular files. O_NOCTTY keeps a
// terminal from becoming the process's controlling terminal.
const openFlags = unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK | unix.O_NOCTTY

// walkBeneath opens rel below dirfd one segment at a time, refusing
// symbolic links with O_NOFOLLOW. rel has no "." or ".." segments except a
// lone "." (cleanPath guarantees it).
func walkBeneath(dirfd int, rel string) (int, error) {
	rel = strings.TrimSuffix(rel, "/")
	dir := dirfd
	defer func() {
		if dir != dirfd {
			unix.Close(dir)
		}
	}()
	for {
		seg, rest, more := strings.Cut(rel, "/")
		if !more {
			fd, err := openat(dir, seg, openFlags|unix.O_NOFOLLOW)
			return fd, linkError(dir, seg, err)
		}
		next, err := openat(dir, seg, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_DIRECTORY|unix.O_NOFOLLOW)
		if err != nil {
			return -1, linkError(dir, seg, err)
		}
		if dir != dirfd {
			unix.Close(dir)
		}
		dir, rel = next, rest
	}
}

// linkError turns the error of an O_NOFOLLOW open of seg into ELOOP when seg
// is a symbolic link: systems answer ELOOP, EMLINK or (with O_DIRECTORY)
// ENOTDIR.
func linkError(dir int, seg string, err error) error {
	if err == nil || err == unix.ELOOP {
		return err
	}
	var st unix.Stat_t
	if unix.Fstatat(dir, seg, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return unix.ELOOP
	}
	return err
}

// openat is openat(2), retried when a signal interrupts it.
func openat(dirfd int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// openRel opens rel below root. Without SymLink no symbolic link may appear
// below root; with it, links are followed wherever they lead (as Monkey
// does). cleanPath has removed every ".." segment, so rel itself cannot
// climb out of root.
func (h *Handler) openRel(root, rel string) (int, error) {
	if h.SymLink {
		return openFollow(root, rel)
	}
	return openNoLinks(root, rel)
}

// openViaRoot opens the root (through any links on its own path) and rel
// below it without following links.
func openViaRoot(root, rel string) (int, error) {
	rfd, err := openat(unix.AT_FDCWD, root, rootFlags)
	if err != nil {
		return -1, err
	}
	fd, err := openBeneath(rfd, rel)
	unix.Close(rfd)
	return fd, err
}

// openIndex opens the index file name inside the open directory dirfd.
func (h *Handler) openIndex(dirfd int, name string) (int, error) {
	if h.SymLink {
		return openat(dirfd, name, openFlags)
	}
	return openBeneath(dirfd, name)
}

func joinRoot(root, rel string) string {
	if rel == "." {
		return root
	}
	if strings.HasSuffix(root, "/") {
		return root + rel
	}
	return root + "/" + rel
}

// statusOf maps an open error to the status to answer, as nginx does:
// missing -> 404, refused (permission, symbolic link, escape, socket,
// device) -> 403, anything else -> 500.
func statusOf(err error) int {
	switch err {
	case unix.ENOENT, unix.ENOTDIR, unix.ENAMETOOLONG:
		return 404
	case unix.EACCES, unix.EPERM, unix.ELOOP, unix.EXDEV, unix.ENXIO, unix.EMLINK,
		unix.ENODEV, unix.EOPNOTSUPP:
		return 403
	}
	return 500
}
