//go:build unix && !linux

package static

import "golang.org/x/sys/unix"

// rootFlags open a document root as a starting point for lookups.
const rootFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC

// openBeneath opens rel below the directory dirfd without following any
// symbolic link.
func openBeneath(dirfd int, rel string) (int, error) {
	return walkBeneath(dirfd, rel)
}

// openNoLinks opens rel below root without following links below root.
func openNoLinks(root, rel string) (int, error) { return openViaRoot(root, rel) }

// openFollow opens root/rel following links (SymLink on).
func openFollow(root, rel string) (int, error) {
	return openat(unix.AT_FDCWD, joinRoot(root, rel), openFlags)
}
