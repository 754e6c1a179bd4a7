// Package static is the host's default stage-30 content handler: it serves
// files from a virtual host's document root, as Monkey's core does, with the
// behaviour nginx users expect.
//
// Methods: GET and HEAD serve; OPTIONS answers 204 with Allow; every other
// method gets 405.
//
// Paths: the percent-decoded path is cleaned; a ".." that would climb above
// the root is 403, a NUL byte or a backslash is 400. A directory without a
// trailing slash is redirected (301, query kept); with one, the first index
// file that exists (in IndexFiles order) is served, and 403 when none does:
// there are no directory listings. Missing files are 404; unreadable files,
// FIFOs, devices and sockets are 403; a document root that cannot be opened
// is 500.
//
// Symbolic links: with SymLink off, a link anywhere below the root is 403.
// The kernel checks while opening (openat2 with RESOLVE_NO_SYMLINKS and
// RESOLVE_BENEATH, or a walk with O_NOFOLLOW where openat2 is missing), on
// the descriptor that is then served: there is no window between check and
// use. The root itself may be reached through links. With SymLink on, links
// are followed wherever they lead, as Monkey does (the administrator vouches
// for them); ".." segments in the request are still refused.
//
// Responses carry Last-Modified, a strong ETag ("size-mtime" in hex, the
// time in nanoseconds), Accept-Ranges and a Content-Type chosen by extension
// (case-insensitive), DefaultMIME otherwise. Preconditions follow RFC 9110
// §13.2.2: If-Match and If-Unmodified-Since give 412, If-None-Match (weak
// comparison) or else If-Modified-Since give 304. One byte range ("a-b",
// "a-", "-n") gives 206, also for HEAD, and an unsatisfiable one 416 with
// "bytes */size"; a list of several ranges and a malformed Range field are
// ignored and the whole file is sent, as it is when If-Range does not match.
//
// Small bodies are copied into the connection's write buffer after the head
// (one write for both, and pipelined responses batch); larger ones go out
// with sendfile. With FileCacheValid set, small files are kept in memory
// for that long (see cache.go).
package static

import (
	"os"
	"sync"
	"time"

	"github.com/capuchin/capuchin/api/http1"
	"github.com/capuchin/capuchin/host/respond"
	"golang.org/x/sys/unix"
)

// Handler serves files from a document root. The zero value is not usable:
// set the fields. Serve does not modify the Handler, so one may be shared by
// any number of goroutines.
type Handler struct {
	IndexFiles  []string          // tried in order for a directory, e.g. index.html index.htm
	SymLink     bool              // follow symbolic links (off: a symlink anywhere under the root -> 403)
	DefaultMIME string            // type for unknown extensions, e.g. "text/plain"
	MIME        map[string]string // lower-case extension without dot -> type

	// FileCacheValid, when positive, keeps the content and validators of
	// small files in memory for that long: a hot file then costs no system
	// call but the write, and a change to it shows within that time. Set it
	// before the first Serve.
	FileCacheValid time.Duration

	once  sync.Once
	cache *fileCache
}

// allowed lists the methods the handler answers.
const allowed = "GET, HEAD, OPTIONS"

// copyLimit is the largest body copied through the write buffer instead of
// being sent with sendfile.
const copyLimit = 16 << 10

// Serve answers req from root through w (host/respond.Writer, already Reset
// by the caller). It returns a non-nil error only when writing to the client
// failed (the caller then closes).
func (h *Handler) Serve(w *respond.Writer, req *http1.Request, root string) error {
	switch req.Method {
	case "GET", "HEAD":
	case "OPTIONS":
		w.AddField("Allow", allowed)
		return w.WriteHead(204, -1)
	default:
		w.AddField("Allow", allowed)
		return w.Error(405, "")
	}
	rel, status := cleanPath(req.Path)
	if status != 0 {
		return w.Error(status, "")
	}
	if f := h.cacheOf().get(root, rel); f != nil {
		return serveFile(w, req, f)
	}
	fd, err := h.openRel(root, rel)
	if err != nil {
		return w.Error(statusOf(err), "")
	}
	var st unix.Stat_t
	if err := fstat(fd, &st); err != nil {
		unix.Close(fd)
		return w.Error(500, "")
	}
	name := rel
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if fd, name, status = h.index(fd, rel, &st); status != 0 {
			return dirStatus(w, req, rel, status)
		}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return w.Error(403, "")
	}
	f := h.newFile(fd, name, &st)
	defer f.close()
	h.cacheOf().fill(root, rel, &f)
	return serveFile(w, req, &f)
}

// dirStatus answers a directory request that has no file to serve: status
// 301 redirects to the path with a slash.
func dirStatus(w *respond.Writer, req *http1.Request, rel string, status int) error {
	if status != 301 {
		return w.Error(status, "")
	}
	loc := appendLocation(make([]byte, 0, len(rel)+len(req.Query)+8), rel, req.Query)
	return errorWith(w, 301, "Location", string(loc))
}

// errorWith sends the error page for status with one extra field.
func errorWith(w *respond.Writer, status int, name, value string) error {
	w.AddField(name, value)
	return w.Error(status, "")
}

// index finds the file to serve for the open directory dirfd, which it
// closes: the first index file that exists, 301 when the request lacked the
// trailing slash, 403 when there is no index file.
func (h *Handler) index(dirfd int, rel string, st *unix.Stat_t) (int, string, int) {
	defer unix.Close(dirfd)
	if rel != "." && rel[len(rel)-1] != '/' {
		return -1, "", 301
	}
	for _, name := range h.IndexFiles {
		if !validIndexName(name) {
			continue
		}
		fd, err := h.openIndex(dirfd, name)
		if err == unix.ENOENT {
			continue
		}
		if err != nil {
			return -1, "", statusOf(err)
		}
		if err := fstat(fd, st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			unix.Close(fd)
			continue
		}
		return fd, name, 0
	}
	return -1, "", 403
}

// validIndexName keeps index names to one path segment.
func validIndexName(name string) bool {
	if name == "" || name == "." || name == ".." {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c == '/' || c == 0 {
			return false
		}
	}
	return true
}

func fstat(fd int, st *unix.Stat_t) error {
	for {
		if err := unix.Fstat(fd, st); err != unix.EINTR {
			return err
		}
	}
}

// file is a regular file to answer with: its validators, type, and the
// body's source (an open descriptor, or the content itself when cached).
type file struct {
	size    int64
	etag    string
	lastMod string
	mtime   int64 // seconds
	ctype   string
	fd      int    // -1 when body holds the content
	body    []byte // the whole content (cached files)
}

// newFile describes the open regular file fd, served as name.
func (h *Handler) newFile(fd int, name string, st *unix.Stat_t) file {
	var etagBuf, lmBuf [32]byte
	return file{
		size:    st.Size,
		etag:    string(appendETag(etagBuf[:0], st.Size, st.Mtim.Nano())),
		lastMod: string(appendHTTPDate(lmBuf[:0], st.Mtim.Sec)),
		mtime:   st.Mtim.Sec,
		ctype:   h.contentType(name),
		fd:      fd,
	}
}

// serveFile answers req with f: preconditions, ranges, head and body.
func serveFile(w *respond.Writer, req *http1.Request, f *file) error {
	v := validators{etag: f.etag, mtime: f.mtime}
	if status := v.check(req.Header); status != 0 {
		if status == 304 {
			w.AddField("ETag", f.etag)
			w.AddField("Last-Modified", f.lastMod)
			return w.WriteHead(304, -1)
		}
		return w.Error(status, "")
	}
	off, n, status := int64(0), f.size, 200
	if r := req.Header.Get("Range"); r != "" && v.rangeAllowed(req.Header) {
		var kind rangeKind
		switch kind, off, n = parseRange(r, f.size); kind {
		case rangeNone:
			off, n = 0, f.size
		case rangeOne:
			status = 206
		case rangeUnsatisfiable:
			var crBuf [32]byte
			return errorWith(w, 416, "Content-Range", string(appendUnsatisfied(crBuf[:0], f.size)))
		}
	}
	if f.ctype != "" {
		w.AddField("Content-Type", f.ctype)
	}
	w.AddField("Last-Modified", f.lastMod)
	w.AddField("ETag", f.etag)
	w.AddField("Accept-Ranges", "bytes")
	if status == 206 {
		var crBuf [64]byte
		w.AddField("Content-Range", string(appendContentRange(crBuf[:0], off, n, f.size)))
	}
	if err := w.WriteHead(status, n); err != nil {
		return err
	}
	return sendBody(w, req, f, off, n)
}

// sendBody writes n bytes of f from off: cached content and small bodies
// through the write buffer, larger ones with sendfile.
func sendBody(w *respond.Writer, req *http1.Request, f *file, off, n int64) error {
	switch {
	case n == 0 || req.Method == "HEAD":
		return nil
	case f.body != nil:
		_, err := w.Write(f.body[off : off+n])
		return err
	case n <= copyLimit && int(n) <= w.BW.Available():
		return copyBody(w, f.fd, off, n)
	}
	of := os.NewFile(uintptr(f.fd), "static") // takes the descriptor over
	f.fd = -1
	err := w.SendFile(of, off, n)
	of.Close()
	return err
}

// close closes the file's descriptor, if it still has one.
func (f *file) close() {
	if f.fd >= 0 {
		unix.Close(f.fd)
		f.fd = -1
	}
}

// copyBody reads n bytes at off into the free part of the write buffer and
// writes them there, for one write of head and body.
func copyBody(w *respond.Writer, fd int, off, n int64) error {
	buf := w.BW.AvailableBuffer()[:n]
	if err := preadFull(fd, buf, off); err != nil {
		return err
	}
	_, err := w.Write(buf)
	return err
}
