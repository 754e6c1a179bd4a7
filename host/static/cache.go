package static

import (
	"io"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Limits of the small-file cache.
const (
	cacheMaxFile  = copyLimit // larger files are never cached
	cacheMaxBytes = 32 << 20  // content held in all
)

// fileCache keeps small regular files — content, validators and type —
// for a short time after they were opened, keyed by document root and
// cleaned path, so that a hot file costs no open, stat, read or close. An
// entry is used only until it expires; then the file is opened afresh
// (with every path and symlink check) and the entry replaced. Entries are
// immutable and shared.
type fileCache struct {
	valid time.Duration

	mu   sync.RWMutex
	m    map[string]*cachedFile // root + "\x00" + rel
	used int64                  // content bytes held
}

type cachedFile struct {
	file
	expires int64 // unix nanoseconds
}

// cacheOf returns h's cache, or nil when caching is off.
func (h *Handler) cacheOf() *fileCache {
	if h.FileCacheValid <= 0 {
		return nil
	}
	h.once.Do(func() { h.cache = &fileCache{valid: h.FileCacheValid, m: map[string]*cachedFile{}} })
	return h.cache
}

// get returns the live entry for rel under root, or nil.
func (c *fileCache) get(root, rel string) *file {
	if c == nil {
		return nil
	}
	var kb [512]byte
	key := cacheKey(kb[:0], root, rel)
	c.mu.RLock()
	e := c.m[string(key)] // no allocation: the compiler looks up the bytes
	c.mu.RUnlock()
	if e == nil || time.Now().UnixNano() >= e.expires {
		return nil
	}
	return &e.file
}

func cacheKey(b []byte, root, rel string) []byte {
	b = append(b, root...)
	b = append(b, 0)
	return append(b, rel...)
}

// fill reads the open file f (served for rel under root) into the cache
// when it is small enough, and makes f serve from that copy.
func (c *fileCache) fill(root, rel string, f *file) {
	if c == nil || f.size > cacheMaxFile {
		return
	}
	body := make([]byte, f.size)
	if err := preadFull(f.fd, body, 0); err != nil {
		return
	}
	e := &cachedFile{file: *f, expires: time.Now().Add(c.valid).UnixNano()}
	e.fd, e.body = -1, body
	key := string(cacheKey(nil, root, rel))
	c.mu.Lock()
	defer c.mu.Unlock()
	var old int64
	if o := c.m[key]; o != nil {
		old = o.size
	}
	if c.used+e.size-old > cacheMaxBytes && c.sweep()+e.size-old > cacheMaxBytes {
		return // full of live entries: serve this one uncached
	}
	if o := c.m[key]; o != nil { // the sweep may have dropped it
		c.used -= o.size
	}
	c.m[key] = e
	c.used += e.size
	f.body = body
}

// sweep drops expired entries and returns the bytes still held. c.mu is
// held.
func (c *fileCache) sweep() int64 {
	now := time.Now().UnixNano()
	for k, e := range c.m {
		if now >= e.expires {
			delete(c.m, k)
			c.used -= e.size
		}
	}
	return c.used
}

// preadFull reads len(b) bytes of fd from offset off.
func preadFull(fd int, b []byte, off int64) error {
	for got := 0; got < len(b); {
		m, err := unix.Pread(fd, b[got:], off+int64(got))
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return err
		case m == 0:
			return io.ErrUnexpectedEOF // the file shrank under us
		}
		got += m
	}
	return nil
}
