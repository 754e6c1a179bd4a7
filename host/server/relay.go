package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// relay carries plain HTTP between the TLS session of a client connection,
// which the host keeps, and the stage-30 plugins it is handed to: they get
// one end of a local socketpair (the peer end), the host keeps the other,
// and while a plugin holds the request (Begin to End) two goroutines copy
// client → plugin (decrypted) and plugin → client (encrypted). Outside a
// hand-over nothing is relayed and the host reads the TLS session itself.
//
// End leaves no byte behind: the plugin's output still in the pair is sent
// on; client bytes the plugin had not read (still queued at its end, read
// back by the host through its own copy of the peer end, and any the pump
// could not deliver) are kept, in order, for the host to parse next
// (Pending), after the leftover the plugin reports.
type relay struct {
	tc      *tls.Conn
	timeout time.Duration // longest stall writing to the client

	mu   sync.Mutex    // guards host and peer against Shutdown and Close
	host *net.UnixConn // the host's end of the pair
	peer *os.File      // the plugin's end (a copy; not in the poller)

	wg        sync.WaitGroup // the two pumps of one hand-over
	wdl       time.Time      // when the client write deadline was last set
	in, out   []byte         // pump buffers, made once
	rest      []byte         // client bytes the in-pump has still to deliver, or could not
	pending   []byte         // client bytes for the host to parse next
	sent      atomic.Uint64  // bytes relayed to the client
	clientEOF bool           // the client closed its side: nothing more to relay in
}

func newRelay(tc *tls.Conn, timeout time.Duration) *relay {
	return &relay{tc: tc, timeout: timeout}
}

// relayChunk is the size of a pump's buffer: one TLS record's payload.
const relayChunk = 16 << 10

// open creates the socketpair.
func (r *relay) open() error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("relay: socketpair: %w", err)
	}
	hf := os.NewFile(uintptr(fds[0]), "relay-host")
	nc, err := net.FileConn(hf)
	hf.Close()
	if err != nil {
		unix.Close(fds[1])
		return fmt.Errorf("relay: host end: %w", err)
	}
	r.mu.Lock()
	r.host, r.peer = nc.(*net.UnixConn), os.NewFile(uintptr(fds[1]), "relay-plugin")
	r.mu.Unlock()
	r.in, r.out = make([]byte, relayChunk), make([]byte, relayChunk)
	return nil
}

// Begin returns the socket to hand to a plugin and starts relaying.
func (r *relay) Begin() (syscall.Conn, error) {
	if r.host == nil {
		if err := r.open(); err != nil {
			return nil, err
		}
	}
	// The plugin keeps its own time on its socket; the host's deadlines
	// of the request must not cut the relay.
	r.tc.SetReadDeadline(time.Time{})
	r.host.SetDeadline(time.Time{})
	r.wdl = time.Time{} // the host may have set its own write deadline since
	// Bytes an earlier plugin left unread in this hand-over (it declined)
	// go to this one first.
	r.rest = append(r.rest[:0], r.pending...)
	r.pending = r.pending[:0]
	r.wg.Add(2)
	go r.toPlugin()
	go r.toClient()
	return r.peer, nil
}

// toPlugin copies client bytes to the plugin until End (or the client
// closes: the plugin then reads EOF).
func (r *relay) toPlugin() {
	defer r.wg.Done()
	if len(r.rest) > 0 {
		w, err := r.host.Write(r.rest)
		r.rest = r.rest[:copy(r.rest, r.rest[w:])]
		if err != nil {
			return
		}
	}
	if r.clientEOF {
		return
	}
	for {
		n, err := r.tc.Read(r.in)
		if n > 0 {
			if w, werr := r.host.Write(r.in[:n]); werr != nil {
				r.rest = append(r.rest, r.in[w:n]...)
				return
			}
		}
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				r.clientEOF = true
				r.host.CloseWrite()
			}
			return
		}
	}
}

// toClient copies the plugin's bytes to the client until End. A plugin
// that shuts its side for writing (a tunnel's end) closes the TLS session
// for writing (close_notify).
func (r *relay) toClient() {
	defer r.wg.Done()
	raw, err := r.host.SyscallConn()
	if err != nil {
		return
	}
	eof := false
	raw.Read(func(fd uintptr) bool {
		var more bool
		more, eof = r.forward(int(fd), -1)
		return !more
	})
	if eof {
		r.tc.CloseWrite()
	}
}

// forward sends what is queued at the host's end to the client, at most
// limit bytes (-1: no limit). more is true when it stopped because the
// queue was empty and the pump should wait; eof when the plugin shut its
// side. A read shorter than the buffer emptied the queue (a stream
// socket's read takes all that is queued, up to the buffer), so the pump
// waits at once instead of reading again for EAGAIN: anything written
// since then has signalled the poller, which wakes the wait (the pump's
// one RawRead keeps that signal; only a new RawRead would reset it).
func (r *relay) forward(fd, limit int) (more, eof bool) {
	for limit != 0 {
		n, err := unix.Read(fd, r.out)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return true, false
		case n == 0 && err == nil:
			return false, true
		case err != nil:
			return false, false
		}
		if r.writeClient(r.out[:n]) != nil {
			return false, false
		}
		if n < len(r.out) {
			return true, false
		}
		if limit > 0 {
			limit = max(0, limit-n)
		}
	}
	return false, false
}

// deadlineSlack is how stale the client write deadline may grow before a
// write sets it again: a stalled write is cut after between 7/8 of the
// timeout and the timeout, and a steady stream of responses sets the
// deadline a few times per timeout rather than once per write.
const deadlineSlack = 8

func (r *relay) writeClient(b []byte) error {
	if now := time.Now(); now.Sub(r.wdl) > r.timeout/deadlineSlack {
		r.wdl = now
		r.tc.SetWriteDeadline(now.Add(r.timeout))
	}
	n, err := r.tc.Write(b)
	r.sent.Add(uint64(n))
	return err
}

// maxFlush bounds what End sends on after the plugin answered: all of it
// for a plugin that has finished writing, as it must have; a plugin still
// writing (late, or crashed mid-way) cannot hold End forever.
const maxFlush = 4 << 20

// End stops relaying once the plugin has answered (or failed): the pumps
// stop, the plugin's output still queued goes to the client, and the
// client bytes the plugin did not read become Pending.
func (r *relay) End() {
	past := time.Unix(1, 0)
	r.tc.SetReadDeadline(past)
	r.host.SetDeadline(past)
	r.wg.Wait()
	if raw, err := r.host.SyscallConn(); err == nil {
		raw.Control(func(fd uintptr) { r.forward(int(fd), maxFlush) })
	}
	r.pending = r.unread(r.pending)
	r.pending = append(r.pending, r.rest...)
	r.rest = r.rest[:0]
}

// unread appends the client bytes queued at the plugin's end that the
// plugin did not read (it no longer reads once it has answered).
func (r *relay) unread(dst []byte) []byte {
	raw, err := r.peer.SyscallConn()
	if err != nil {
		return dst
	}
	raw.Control(func(fd uintptr) {
		for {
			n, _, err := unix.Recvfrom(int(fd), r.in, unix.MSG_DONTWAIT)
			if err == unix.EINTR {
				continue
			}
			if n <= 0 || err != nil {
				return
			}
			dst = append(dst, r.in[:n]...)
		}
	})
	return dst
}

// Pending returns and forgets the client bytes the last hand-over left
// unread; they come before anything still in the TLS session.
func (r *relay) Pending() []byte {
	p := r.pending
	r.pending = r.pending[:0]
	return p
}

// Sent is the count of bytes relayed to the client so far (plain bytes,
// before encryption), as TCP_INFO's count is for a plain connection.
func (r *relay) Sent() uint64 { return r.sent.Load() }

// Shutdown shuts the pair down both ways, so that a plugin's copy of its
// end can neither read nor write, whatever it does with it.
func (r *relay) Shutdown() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.peer != nil {
		if raw, err := r.peer.SyscallConn(); err == nil {
			raw.Control(func(fd uintptr) { unix.Shutdown(int(fd), unix.SHUT_RDWR) })
		}
	}
}

// Close releases the pair (the connection has ended).
func (r *relay) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.host != nil {
		r.host.Close()
		r.peer.Close()
	}
}
